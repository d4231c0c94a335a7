package main

import (
	"fmt"
	"math/rand"
	"slices"
	"time"
)

// Nemesis event kinds.
const (
	killLeader      = "kill-leader"       // SIGKILL the leader, restart it from its directories
	killFollower    = "kill-follower"     // SIGKILL a follower, restart it
	killMany        = "kill-many"         // SIGKILL two or three nodes at once, restart them all
	pauseLeader     = "pause-leader"      // SIGSTOP the leader, SIGCONT later
	pauseFollower   = "pause-follower"    // SIGSTOP a follower, SIGCONT later
	isolateLeader   = "isolate-leader"    // cut every link to and from the leader, heal later
	isolateFollower = "isolate-follower"  // the same for a follower
	partitionPair   = "partition-bridge"  // cut two nodes from each other only; the third still sees both
	leaderUnknown   = "(no leader known)" // the event ran against a random node instead
)

var nemesisKinds = []string{killLeader, killFollower, killMany, pauseLeader, pauseFollower,
	isolateLeader, isolateFollower, partitionPair}

// nemesis runs one fault at a time: it waits a quiet interval, injects a
// fault, holds it, heals it. Every third event kills the leader (when
// kill-leader is among the kinds).
type nemesis struct {
	kinds  []string // the fault kinds to draw from
	c      *cluster
	rng    *rand.Rand
	logf   func(format string, args ...any)
	counts map[string]int
	errs   []error
}

func (n *nemesis) pause(lo, hi time.Duration) {
	time.Sleep(lo + time.Duration(n.rng.Int63n(int64(hi-lo))))
}

// pick returns the leader (if wantLeader) or a follower, as far as the
// cluster says, waiting up to 3 s for a leader to be known; ok is false
// when none is, and id is then a random node.
func (n *nemesis) pick(wantLeader bool) (id int, ok bool) {
	ids := len(n.c.procs)
	deadline := time.Now().Add(3 * time.Second)
	l, _ := n.c.leader(300 * time.Millisecond)
	for l == 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		l, _ = n.c.leader(300 * time.Millisecond)
	}
	if l == 0 {
		return 1 + n.rng.Intn(ids), false
	}
	if wantLeader {
		return l, true
	}
	f := 1 + n.rng.Intn(ids-1)
	if f >= l {
		f++
	}
	return f, true
}

func (n *nemesis) restart(ids ...int) {
	for _, id := range ids {
		if err := n.c.start(id, false); err != nil {
			n.errs = append(n.errs, fmt.Errorf("restart node %d: %w", id, err))
		}
	}
}

// run injects faults until stop is closed.
func (n *nemesis) run(stop <-chan struct{}) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		case <-time.After(time.Duration(500+n.rng.Intn(1500)) * time.Millisecond):
		}
		kind := n.kinds[n.rng.Intn(len(n.kinds))]
		if i%3 == 0 && slices.Contains(n.kinds, killLeader) {
			kind = killLeader
		}
		n.inject(kind)
	}
}

func (n *nemesis) inject(kind string) {
	wantLeader := kind == killLeader || kind == pauseLeader || kind == isolateLeader
	id, known := n.pick(wantLeader)
	label := kind
	if wantLeader && !known {
		label = kind + " " + leaderUnknown
	}
	n.counts[label]++
	switch kind {
	case killLeader, killFollower:
		n.logf("nemesis: %s: SIGKILL node %d", label, id)
		n.c.kill(id)
		if kind == killLeader && n.rng.Intn(2) == 0 {
			// Down past the election timeout (at most 1 s for both
			// engines here), so that the others must elect a new leader
			// rather than wait for it to come back.
			n.counts[killLeader+" (down past the election timeout)"]++
			n.pause(2500*time.Millisecond, 4*time.Second)
		} else {
			n.pause(200*time.Millisecond, 2*time.Second)
		}
		n.restart(id)
	case killMany:
		ids := n.rng.Perm(len(n.c.procs))[:2+n.rng.Intn(len(n.c.procs)-1)]
		for i := range ids {
			ids[i]++
		}
		n.logf("nemesis: %s: SIGKILL nodes %v", label, ids)
		for _, id := range ids {
			n.c.kill(id)
		}
		n.pause(200*time.Millisecond, 2*time.Second)
		n.restart(ids...)
	case pauseLeader, pauseFollower:
		n.logf("nemesis: %s: SIGSTOP node %d", label, id)
		n.c.pause(id, true)
		n.pause(time.Second, 4*time.Second)
		n.c.pause(id, false)
	case isolateLeader, isolateFollower:
		n.logf("nemesis: %s: isolate node %d", label, id)
		n.c.isolate(id, true)
		n.pause(time.Second, 5*time.Second)
		n.c.isolate(id, false)
	case partitionPair:
		a := 1 + n.rng.Intn(len(n.c.procs))
		b := 1 + (a+n.rng.Intn(len(n.c.procs)-1))%len(n.c.procs)
		n.logf("nemesis: %s: cut %d <-> %d", label, a, b)
		n.c.links[[2]int{a, b}].setCut(true)
		n.c.links[[2]int{b, a}].setCut(true)
		n.pause(time.Second, 5*time.Second)
		n.c.links[[2]int{a, b}].setCut(false)
		n.c.links[[2]int{b, a}].setCut(false)
	}
}
