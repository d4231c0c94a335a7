package main

import (
	"bufio"
	"fmt"
	"math/rand"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anishathalye/porcupine"
)

// Outcomes of an operation.
const (
	outcomeOK      = "ok"      // completed; its result is known
	outcomeFail    = "fail"    // definitely not applied
	outcomeUnknown = "unknown" // timed out or the connection broke: may or may not be applied
)

// kvInput is an operation as issued.
type kvInput struct {
	Op       string // read, write or cas
	Key      string
	Value    string // write and cas: the new value (unique per operation)
	Expected string // cas: the value the key must hold
}

// kvOutput is what came back. Unknown outputs constrain nothing.
type kvOutput struct {
	Found   bool
	Value   string
	CasOK   bool
	Unknown bool
}

// op is one recorded operation; times are nanoseconds since the start.
type op struct {
	client    int
	in        kvInput
	out       kvOutput
	call, ret int64
	outcome   string
}

// history collects operations from every client.
type history struct {
	start time.Time
	mu    sync.Mutex
	ops   []op
}

func (h *history) now() int64 { return int64(time.Since(h.start)) }

func (h *history) add(o op) {
	h.mu.Lock()
	h.ops = append(h.ops, o)
	h.mu.Unlock()
}

// register is the model's state for one key.
type register struct {
	Exists bool
	Value  string
}

// kvModel is a key-value store of registers with read, write and
// compare-and-set, partitioned by key (each key is checked on its own).
var kvModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, o := range h {
			k := o.Input.(kvInput).Key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], o)
		}
		sort.Strings(keys)
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() interface{} { return register{} },
	Step: func(state, input, output interface{}) (bool, interface{}) {
		st, in, out := state.(register), input.(kvInput), output.(kvOutput)
		switch in.Op {
		case "read":
			if out.Found != st.Exists || (out.Found && out.Value != st.Value) {
				return false, st
			}
			return true, st
		case "write":
			return true, register{Exists: true, Value: in.Value}
		case "cas":
			match := st.Exists && st.Value == in.Expected
			if !out.Unknown && out.CasOK != match {
				return false, st
			}
			if match {
				return true, register{Exists: true, Value: in.Value}
			}
			return true, st
		}
		return false, st
	},
	DescribeOperation: func(input, output interface{}) string {
		in, out := input.(kvInput), output.(kvOutput)
		res := ""
		switch {
		case out.Unknown:
			res = "?"
		case in.Op == "read" && !out.Found:
			res = "nil"
		case in.Op == "read":
			res = out.Value
		case in.Op == "cas":
			res = fmt.Sprint(out.CasOK)
		default:
			res = "ok"
		}
		switch in.Op {
		case "read":
			return fmt.Sprintf("read(%s) -> %s", in.Key, res)
		case "write":
			return fmt.Sprintf("write(%s, %s) -> %s", in.Key, in.Value, res)
		}
		return fmt.Sprintf("cas(%s, %s, %s) -> %s", in.Key, in.Expected, in.Value, res)
	},
	DescribeState: func(state interface{}) string {
		st := state.(register)
		if !st.Exists {
			return "nil"
		}
		return st.Value
	},
}

// toPorcupine turns the history into porcupine operations: completed
// operations as they are, unknown writes and compare-and-sets as pending
// until after the end of the history (they may take effect at any point
// after their call), and failed operations and reads without an answer
// not at all (they did nothing).
func toPorcupine(ops []op) []porcupine.Operation {
	var end int64
	for _, o := range ops {
		if o.ret > end {
			end = o.ret
		}
	}
	out := make([]porcupine.Operation, 0, len(ops))
	for _, o := range ops {
		switch {
		case o.outcome == outcomeOK:
			out = append(out, porcupine.Operation{ClientId: o.client, Input: o.in, Call: o.call, Output: o.out, Return: o.ret})
		case o.outcome == outcomeUnknown && o.in.Op != "read":
			out = append(out, porcupine.Operation{ClientId: o.client, Input: o.in, Call: o.call,
				Output: kvOutput{Unknown: true}, Return: end + 1})
		}
	}
	return out
}

// workload is the shared state of the clients.
type workload struct {
	c        *cluster
	h        *history
	keys     int           // keys per epoch
	epoch    time.Duration // the key set changes every epoch
	timeout  time.Duration // a request without an answer by then is unknown
	leader   atomic.Int64  // the monitor's current leader guess (0: none)
	changes  atomic.Int64  // times the monitor saw a different node lead
	stop     atomic.Bool
	mu       sync.Mutex
	lastSeen map[string]string // last value observed per key, for cas
	unique   []string          // keys of acknowledged one-time writes
	// uniqueValue is the value of every one-time write: "x", or longer
	// (--unique-value-bytes), so that the replicated state outgrows a small
	// memory budget and snapshots carry values kept in the WAL segments.
	uniqueValue string
}

// key picks one of the current epoch's keys. Changing the key set every
// epoch keeps each key's history short, so the checker's search stays
// small even when many operations end unknown.
func (w *workload) key(rng *rand.Rand) string {
	e := time.Since(w.h.start) / w.epoch
	return fmt.Sprintf("e%03d-k%d", e, rng.Intn(w.keys))
}

// runClient issues operations until stopped, one at a time.
func (w *workload) runClient(id int, seed int64, wg *sync.WaitGroup) {
	defer wg.Done()
	rng := rand.New(rand.NewSource(seed))
	conns := map[int]*client{}
	defer func() {
		for _, c := range conns {
			c.conn.Close()
		}
	}()
	seq := 0
	for !w.stop.Load() {
		seq++
		target := int(w.leader.Load())
		if target == 0 || rng.Intn(5) == 0 {
			target = 1 + rng.Intn(len(w.c.procs))
		}
		in := kvInput{Key: w.key(rng)}
		switch r := rng.Intn(100); {
		case r < 10:
			// A one-time key, never overwritten: it must be on every node
			// at the end if the write was acknowledged.
			in = kvInput{Op: "write", Key: fmt.Sprintf("u-%d-%d", id, seq), Value: w.uniqueValue}
		case r < 45:
			in.Op = "read"
		case r < 70:
			in.Op = "write"
			in.Value = fmt.Sprintf("%d-%d", id, seq)
		default:
			in.Op = "cas"
			in.Value = fmt.Sprintf("%d-%d", id, seq)
			w.mu.Lock()
			in.Expected = w.lastSeen[in.Key]
			w.mu.Unlock()
		}
		o := w.issue(id, target, conns, in)
		w.h.add(o)
		if o.outcome == outcomeOK {
			w.mu.Lock()
			switch {
			case strings.HasPrefix(in.Key, "u-"):
				w.unique = append(w.unique, in.Key)
			case in.Op == "read" && o.out.Found:
				w.lastSeen[in.Key] = o.out.Value
			case in.Op == "write" || (in.Op == "cas" && o.out.CasOK):
				w.lastSeen[in.Key] = in.Value
			}
			w.mu.Unlock()
		}
		if o.outcome != outcomeOK {
			// Back off a little while the cluster is in trouble.
			time.Sleep(time.Duration(10+rng.Intn(40)) * time.Millisecond)
		}
	}
}

// issue sends one operation to node target and classifies the result.
func (w *workload) issue(clientID, target int, conns map[int]*client, in kvInput) op {
	o := op{client: clientID, in: in, call: w.h.now()}
	req := request{Op: in.Op, Key: in.Key, Value: in.Value}
	if in.Op == "cas" {
		e := in.Expected
		req.Expected = &e
	}
	c := conns[target]
	if c == nil {
		conn, err := net.DialTimeout("tcp", w.c.proc(target).clientAddr, w.timeout)
		if err != nil {
			// Nothing was sent.
			o.ret, o.outcome = w.h.now(), outcomeFail
			return o
		}
		c = &client{conn: conn, r: bufio.NewReader(conn)}
		conns[target] = c
	}
	rep, err := c.do(req, w.timeout)
	o.ret = w.h.now()
	if err != nil {
		c.conn.Close()
		delete(conns, target)
		// The request may have reached the node: unknown.
		o.outcome = outcomeUnknown
		return o
	}
	switch {
	case rep.OK:
		o.outcome = outcomeOK
		o.out = kvOutput{Found: rep.Found, CasOK: rep.CasOK}
		if rep.Value != nil {
			o.out.Value = *rep.Value
		}
	case rep.Definite:
		o.outcome = outcomeFail
		if l := rep.leaderID(); l != 0 {
			w.leader.Store(int64(l))
		}
	default:
		o.outcome = outcomeUnknown
	}
	return o
}

// monitor polls every node's status and keeps the leader guess current.
func (w *workload) monitor(done <-chan struct{}) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	last := 0
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		if l, _ := w.c.leader(300 * time.Millisecond); l != 0 {
			if l != last {
				if last != 0 {
					w.changes.Add(1)
				}
				last = l
			}
			w.leader.Store(int64(l))
		}
	}
}

// leader asks every node and returns the one that reports itself leader
// in the highest term (0 if none does).
func (c *cluster) leader(timeout time.Duration) (int, uint64) {
	best, bestTerm := 0, uint64(0)
	for _, p := range c.procs {
		rep, err := call(p.clientAddr, request{Op: "status"}, timeout)
		if err != nil || !rep.OK {
			continue
		}
		if rep.leaderID() == p.id && (best == 0 || rep.Term > bestTerm) {
			best, bestTerm = p.id, rep.Term
		}
	}
	return best, bestTerm
}
