// Command jepsen runs a three-node replicated KeyVal (hashicorp/raft on
// raftstore, or openraft on keyval-openraft) under faults and checks the
// history for linearizability with porcupine.
//
//	jepsen --engine hashicorp|openraft --node-bin PATH --keyval-bin PATH \
//	    [--duration 60s] [--out DIR] [--seed N] [--clients 5] [--min-events 10] [--min-leader-kills 3]
//	    [--faults KIND,...] [--node-args "FLAGS"] [--expect-illegal]
//
// The run:
//  1. starts three node processes on loopback; every Raft link between
//     two nodes goes through a one-way TCP proxy the nemesis can cut;
//  2. runs concurrent clients issuing reads, writes and compare-and-sets
//     on a few keys (a new key set every 10 s), plus one-time writes of
//     unique keys, recording each operation's invocation and completion
//     time and its outcome: ok, failed (definitely not applied) or unknown;
//  3. meanwhile the nemesis kills and restarts nodes (the leader every
//     third event), pauses them, isolates them and cuts pairs of them
//     apart, one fault at a time;
//  4. heals everything, restarts dead nodes, waits for every node to hold
//     the same state, reads that state as the final value of every key,
//     checks that every acknowledged one-time write is on every node;
//  5. shuts the nodes down cleanly and runs `keyval verify` on each of
//     their KeyVal directories;
//  6. checks the history per key against a register model with porcupine;
//     an illegal history is written as porcupine's HTML visualisation.
//
// --expect-illegal turns the run into a self-check of the checker: with a
// node that serves stale reads (raftkv-node --stale-reads) it must find
// the history not linearizable.
//
// It writes DIR/summary.md and DIR/history.json and exits 0 only when
// every check passed. All node processes are gone when it returns, even on
// failure (they also die with it: Pdeathsig).
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/anishathalye/porcupine"
)

type config struct {
	engine, nodeBin, keyvalBin, out string
	duration, checkTimeout          time.Duration
	seed                            int64
	clients                         int
	uniqueValueBytes                int
	minEvents, minLeaderKills       int
	faults                          []string
	nodeArgs                        []string
	expectIllegal                   bool
}

func main() {
	var cfg config
	flag.StringVar(&cfg.engine, "engine", "", "hashicorp or openraft")
	flag.StringVar(&cfg.nodeBin, "node-bin", "", "the node program (raftkv-node or raft-node)")
	flag.StringVar(&cfg.keyvalBin, "keyval-bin", "", "the keyval CLI, for `keyval DIR verify`")
	flag.StringVar(&cfg.out, "out", "", "directory for logs, history and summary (default: a new temporary directory)")
	flag.DurationVar(&cfg.duration, "duration", 60*time.Second, "how long the nemesis runs")
	flag.DurationVar(&cfg.checkTimeout, "check-timeout", 10*time.Minute, "porcupine's time limit")
	flag.Int64Var(&cfg.seed, "seed", 0, "random seed (0: from the clock)")
	flag.IntVar(&cfg.clients, "clients", 5, "concurrent clients")
	flag.IntVar(&cfg.uniqueValueBytes, "unique-value-bytes", 1,
		"length of the one-time writes' values (large ones make the state outgrow a small --memory-budget)")
	flag.IntVar(&cfg.minEvents, "min-events", 10, "fail unless the nemesis ran at least this many events")
	flag.IntVar(&cfg.minLeaderKills, "min-leader-kills", 3, "fail unless at least this many kills hit the leader")
	faults := flag.String("faults", strings.Join(nemesisKinds, ","), "the nemesis's fault kinds")
	nodeArgs := flag.String("node-args", "", "extra flags for every node, space-separated")
	flag.BoolVar(&cfg.expectIllegal, "expect-illegal", false,
		"self-check of the checker: succeed only if porcupine finds the history NOT linearizable")
	flag.Parse()
	cfg.faults = strings.Split(*faults, ",")
	for _, f := range cfg.faults {
		if !slices.Contains(nemesisKinds, f) {
			fmt.Fprintf(os.Stderr, "unknown fault %q (known: %s)\n", f, strings.Join(nemesisKinds, ","))
			os.Exit(2)
		}
	}
	cfg.nodeArgs = strings.Fields(*nodeArgs)
	if (cfg.engine != "hashicorp" && cfg.engine != "openraft") || cfg.nodeBin == "" || cfg.keyvalBin == "" {
		flag.Usage()
		os.Exit(2)
	}
	if cfg.seed == 0 {
		cfg.seed = time.Now().UnixNano()
	}
	if cfg.out == "" {
		d, err := os.MkdirTemp("", "keyval-jepsen-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		cfg.out = d
	}
	if err := run(cfg); err != nil {
		fmt.Fprintf(os.Stderr, "jepsen %s: FAILED: %v\n  logs, history and summary: %s\n", cfg.engine, err, cfg.out)
		os.Exit(1)
	}
}

// summary is what a run reports.
type summary struct {
	Engine          string         `json:"engine"`
	Seed            int64          `json:"seed"`
	Duration        string         `json:"duration"`
	Clients         int            `json:"clients"`
	Ops             map[string]int `json:"ops"` // "read ok", "cas unknown", ...
	Nemesis         map[string]int `json:"nemesis"`
	NodeEvents      map[string]int `json:"node_events"`
	LeaderTerms     int            `json:"leader_terms"`   // terms in which a leader was elected
	LeaderChanges   int            `json:"leader_changes"` // a different node seen leading (polled every 200 ms)
	Keys            int            `json:"keys"`
	UniqueAcked     int            `json:"unique_writes_acknowledged"`
	CheckedOps      int            `json:"checked_ops"`
	CheckTime       string         `json:"check_time"`
	Linearizability string         `json:"linearizability"`
	Verify          []string       `json:"verify"`
	Problems        []string       `json:"problems"`
	Verdict         string         `json:"verdict"`
}

func run(cfg config) (err error) {
	if err := os.MkdirAll(cfg.out, 0o755); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(cfg.out, "node1")); err == nil {
		return fmt.Errorf("%s holds a previous run's nodes: give an empty directory", cfg.out)
	}
	logf := func(format string, args ...any) {
		fmt.Printf("[%s %s] %s\n", cfg.engine, time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
	}
	logf("seed %d, %v of faults, %d clients, output in %s", cfg.seed, cfg.duration, cfg.clients, cfg.out)
	c, err := newCluster(cfg.nodeBin, cfg.out, 3)
	if err != nil {
		return err
	}
	c.nodeArgs = cfg.nodeArgs
	// Every process stops, whatever happens, including on SIGINT/SIGTERM.
	defer c.killAll()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigs
		c.killAll()
		fmt.Fprintf(os.Stderr, "jepsen: %v: nodes stopped\n", s)
		os.Exit(1)
	}()

	for _, p := range c.procs {
		if err := c.start(p.id, true); err != nil {
			return err
		}
	}
	if err := waitLeader(c, 30*time.Second); err != nil {
		return err
	}
	l, term := c.leader(time.Second)
	logf("cluster up: node %d leads in term %d", l, term)

	sum := summary{Engine: cfg.engine, Seed: cfg.seed, Duration: cfg.duration.String(), Clients: cfg.clients,
		Ops: map[string]int{}, NodeEvents: map[string]int{}}
	h := &history{start: time.Now()}
	w := &workload{c: c, h: h, keys: 5, epoch: 10 * time.Second, timeout: 2 * time.Second,
		lastSeen: map[string]string{}, uniqueValue: "x" + strings.Repeat("-", max(0, cfg.uniqueValueBytes-1))}
	w.leader.Store(int64(l))
	monitorDone := make(chan struct{})
	go w.monitor(monitorDone)
	var clients sync.WaitGroup
	for i := 0; i < cfg.clients; i++ {
		clients.Add(1)
		go w.runClient(i, cfg.seed+int64(i)+1, &clients)
	}

	nem := &nemesis{kinds: cfg.faults, c: c, rng: rand.New(rand.NewSource(cfg.seed)), logf: logf, counts: map[string]int{}}
	stopNemesis := make(chan struct{})
	nemDone := make(chan struct{})
	go func() {
		nem.run(stopNemesis)
		close(nemDone)
	}()
	time.Sleep(cfg.duration)
	close(stopNemesis)
	<-nemDone
	sum.Nemesis = nem.counts
	sum.LeaderChanges = int(w.changes.Load())
	var problems []string
	for _, e := range nem.errs {
		problems = append(problems, e.Error())
	}

	logf("healing: every node resumed, restarted and reconnected")
	if err := c.healAll(); err != nil {
		return err
	}
	// Clients keep going on the healed cluster for a moment: operations
	// must succeed again.
	okBefore := countOK(h)
	time.Sleep(5 * time.Second)
	w.stop.Store(true)
	clients.Wait()
	close(monitorDone)
	if countOK(h) == okBefore {
		problems = append(problems, "no operation succeeded in the 5 s after healing")
	}

	final, err := converge(c, 60*time.Second)
	if err != nil {
		problems = append(problems, err.Error())
	}
	// The converged state is the final read of every key.
	ops := h.ops
	t := h.now()
	keys := map[string]bool{}
	for _, o := range ops {
		keys[o.in.Key] = true
	}
	if final != nil {
		for k := range keys {
			v, found := final[k]
			ops = append(ops, op{client: cfg.clients, in: kvInput{Op: "read", Key: k},
				out: kvOutput{Found: found, Value: v}, call: t, ret: t + 1, outcome: outcomeOK})
		}
		missing := 0
		for _, k := range w.unique {
			if _, ok := final[k]; !ok {
				missing++
				if missing <= 5 {
					problems = append(problems, fmt.Sprintf("acknowledged write of %s is missing", k))
				}
			}
		}
		if missing > 5 {
			problems = append(problems, fmt.Sprintf("... %d acknowledged one-time writes missing in all", missing))
		}
	}
	sum.Keys, sum.UniqueAcked = len(keys), len(w.unique)
	for _, o := range h.ops {
		sum.Ops[o.in.Op+" "+o.outcome]++
	}

	if err := c.stopAll(30 * time.Second); err != nil {
		problems = append(problems, err.Error())
	}
	problems = append(problems, c.crashes()...)
	for _, kind := range []string{"snapshot-built", "snapshot-installed", "purge", "truncate"} {
		sum.NodeEvents[kind] = c.eventCount(kind)
	}
	c.mu.Lock()
	sum.LeaderTerms = len(c.terms)
	c.mu.Unlock()

	for _, p := range c.procs {
		for _, d := range storeDirs(cfg.engine, p.dir) {
			out, err := exec.Command(cfg.keyvalBin, d, "verify").CombinedOutput()
			line := fmt.Sprintf("node %d %s: ", p.id, strings.TrimPrefix(d, p.dir+"/"))
			if err != nil {
				line += "FAILED: " + err.Error()
				problems = append(problems, fmt.Sprintf("keyval verify %s: %v\n%s", d, err, out))
			} else {
				line += "ok"
			}
			sum.Verify = append(sum.Verify, line)
		}
	}

	if err := writeHistory(filepath.Join(cfg.out, "history.json"), ops); err != nil {
		return err
	}
	logf("checking %d operations for linearizability", len(ops))
	pops := toPorcupine(ops)
	sum.CheckedOps = len(pops)
	t0 := time.Now()
	res, info := porcupine.CheckOperationsVerbose(kvModel, pops, cfg.checkTimeout)
	sum.CheckTime = time.Since(t0).Round(time.Millisecond).String()
	sum.Linearizability = string(res)
	switch res {
	case porcupine.Ok:
	case porcupine.Illegal:
		path := filepath.Join(cfg.out, "linearizability.html")
		if err := porcupine.VisualizePath(kvModel, info, path); err != nil {
			problems = append(problems, fmt.Sprintf("history is NOT linearizable (visualisation failed: %v)", err))
		} else {
			problems = append(problems, "history is NOT linearizable; porcupine's visualisation: "+path)
		}
	default:
		problems = append(problems, fmt.Sprintf("porcupine gave no verdict within %v", cfg.checkTimeout))
	}

	events, leaderKills := 0, nem.counts[killLeader]
	for _, n := range nem.counts {
		events += n
	}
	if events < cfg.minEvents {
		problems = append(problems, fmt.Sprintf("only %d nemesis events (want at least %d)", events, cfg.minEvents))
	}
	if leaderKills < cfg.minLeaderKills {
		problems = append(problems, fmt.Sprintf("only %d kills of a known leader (want at least %d)", leaderKills, cfg.minLeaderKills))
	}
	if cfg.expectIllegal {
		// The self-check passes when the checker caught the planted bug
		// and wrote its visualisation; the run's other problems stand.
		want := "history is NOT linearizable; porcupine's visualisation: "
		caught := false
		for i, p := range problems {
			if strings.HasPrefix(p, want) {
				caught = true
				problems = append(problems[:i], problems[i+1:]...)
				logf("self-check: the checker caught the planted stale reads (%s)", strings.TrimPrefix(p, want))
				break
			}
		}
		if !caught {
			problems = append(problems, "self-check: the checker did NOT catch the planted bug")
		}
	}
	sum.Problems = problems
	sum.Verdict = "PASS"
	if len(problems) > 0 {
		sum.Verdict = "FAIL"
	}
	text := sum.markdown()
	fmt.Print(text)
	if err := os.WriteFile(filepath.Join(cfg.out, "summary.md"), []byte(text), 0o644); err != nil {
		return err
	}
	js, _ := json.MarshalIndent(sum, "", "  ")
	if err := os.WriteFile(filepath.Join(cfg.out, "summary.json"), js, 0o644); err != nil {
		return err
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// storeDirs are a node's KeyVal directories.
func storeDirs(engine, dir string) []string {
	if engine == "hashicorp" {
		return []string{filepath.Join(dir, "raft", "log"), filepath.Join(dir, "raft", "stable")}
	}
	return []string{filepath.Join(dir, "log"), filepath.Join(dir, "sm")}
}

func countOK(h *history) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, o := range h.ops {
		if o.outcome == outcomeOK {
			n++
		}
	}
	return n
}

func waitLeader(c *cluster, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if l, _ := c.leader(500 * time.Millisecond); l != 0 {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("no leader within %v", timeout)
}

// converge waits until every node reports the same applied index and
// holds the same state, twice in a row, and returns that state.
func converge(c *cluster, timeout time.Duration) (map[string]string, error) {
	deadline := time.Now().Add(timeout)
	var prev map[string]string
	last := ""
	for time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
		var states []map[string]string
		var applied []uint64
		ok := true
		for _, p := range c.procs {
			st, err := call(p.clientAddr, request{Op: "status"}, time.Second)
			if err != nil || !st.OK || st.Applied == nil {
				ok, last = false, fmt.Sprintf("node %d has no status (%v)", p.id, err)
				break
			}
			d, err := call(p.clientAddr, request{Op: "dump"}, 5*time.Second)
			if err != nil || !d.OK {
				ok, last = false, fmt.Sprintf("node %d: dump failed (%v)", p.id, err)
				break
			}
			applied = append(applied, *st.Applied)
			states = append(states, d.Data)
		}
		if !ok {
			prev = nil
			continue
		}
		same := true
		for i := 1; i < len(states); i++ {
			same = same && applied[i] == applied[0] && reflect.DeepEqual(states[i], states[0])
		}
		if !same {
			prev, last = nil, fmt.Sprintf("applied indexes %v, states differ", applied)
			continue
		}
		if prev != nil && reflect.DeepEqual(prev, states[0]) {
			return states[0], nil
		}
		prev = states[0]
	}
	return nil, fmt.Errorf("nodes did not converge within %v: %s", timeout, last)
}

func writeHistory(path string, ops []op) error {
	type rec struct {
		Client  int    `json:"client"`
		Op      string `json:"op"`
		Key     string `json:"key"`
		Value   string `json:"value,omitempty"`
		Expect  string `json:"expected,omitempty"`
		Outcome string `json:"outcome"`
		Found   bool   `json:"found,omitempty"`
		Read    string `json:"read,omitempty"`
		CasOK   bool   `json:"cas_ok,omitempty"`
		Call    int64  `json:"call_ns"`
		Return  int64  `json:"return_ns"`
	}
	sorted := append([]op(nil), ops...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].call < sorted[j].call })
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	enc := json.NewEncoder(f)
	for _, o := range sorted {
		if err := enc.Encode(rec{o.client, o.in.Op, o.in.Key, o.in.Value, o.in.Expected, o.outcome,
			o.out.Found, o.out.Value, o.out.CasOK, o.call, o.ret}); err != nil {
			return err
		}
	}
	return nil
}

func (s *summary) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n## %s: %s\n\n", s.Engine, s.Verdict)
	fmt.Fprintf(&b, "- seed %d, %s of faults, %d clients, %d keys (%d one-time keys acknowledged)\n",
		s.Seed, s.Duration, s.Clients, s.Keys, s.UniqueAcked)
	fmt.Fprintf(&b, "- operations: %s\n", counts(s.Ops))
	fmt.Fprintf(&b, "- nemesis events: %s\n", counts(s.Nemesis))
	fmt.Fprintf(&b, "- leaders: %d changes of the leading node, leaders elected in %d distinct terms\n",
		s.LeaderChanges, s.LeaderTerms)
	fmt.Fprintf(&b, "- node events: %s\n", counts(s.NodeEvents))
	fmt.Fprintf(&b, "- linearizability (porcupine, %d operations): %s in %s\n", s.CheckedOps, s.Linearizability, s.CheckTime)
	fmt.Fprintf(&b, "- keyval verify: %s\n", strings.Join(s.Verify, "; "))
	for _, p := range s.Problems {
		fmt.Fprintf(&b, "- PROBLEM: %s\n", p)
	}
	return b.String()
}

func counts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	total := 0
	for k, v := range m {
		keys = append(keys, k)
		total += v
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return fmt.Sprintf("%d (%s)", total, strings.Join(parts, ", "))
}
