package raftstore

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	keyval "github.com/keyval/keyval/bindings/go"
)

// kvFSM applies "key=value" commands to a map.
type kvFSM struct {
	mu sync.Mutex
	m  map[string]string
}

func newFSM() *kvFSM { return &kvFSM{m: map[string]string{}} }

func (f *kvFSM) Apply(l *raft.Log) interface{} {
	var kv [2]string
	if err := json.Unmarshal(l.Data, &kv); err != nil {
		return err
	}
	f.mu.Lock()
	f.m[kv[0]] = kv[1]
	f.mu.Unlock()
	return nil
}

func (f *kvFSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := json.Marshal(f.m)
	return fsmSnapshot(b), err
}

func (f *kvFSM) Restore(r io.ReadCloser) error {
	defer r.Close()
	m := map[string]string{}
	if err := json.NewDecoder(r).Decode(&m); err != nil {
		return err
	}
	f.mu.Lock()
	f.m = m
	f.mu.Unlock()
	return nil
}

func (f *kvFSM) copyMap() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := make(map[string]string, len(f.m))
	for k, v := range f.m {
		c[k] = v
	}
	return c
}

type fsmSnapshot []byte

func (s fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s fsmSnapshot) Release() {}

// node is one Raft server whose log and stable store are KeyVal.
type node struct {
	id    raft.ServerID
	addr  raft.ServerAddress
	dir   string
	store *Store
	snaps *SnapshotStore
	trans *raft.InmemTransport
	fsm   *kvFSM
	raft  *raft.Raft
}

func config(id raft.ServerID) *raft.Config {
	c := raft.DefaultConfig()
	c.LocalID = id
	c.HeartbeatTimeout = 100 * time.Millisecond
	c.ElectionTimeout = 100 * time.Millisecond
	c.LeaderLeaseTimeout = 50 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
	// Snapshot and compact often, so that compaction, segment reclaim and
	// snapshot installation all run during the test.
	c.SnapshotThreshold = 300
	c.SnapshotInterval = 100 * time.Millisecond
	c.TrailingLogs = 100
	c.Logger = hclog.New(&hclog.LoggerOptions{Output: io.Discard, Level: hclog.Error})
	return c
}

// start opens n's directories and starts Raft on them.
func (n *node) start(t *testing.T) {
	t.Helper()
	var err error
	if n.store, err = Open(filepath.Join(n.dir, "raft"), small()...); err != nil {
		t.Fatalf("%s: %v", n.id, err)
	}
	// Snapshots on KeyVal too (SnapshotStore), streamed in chunks that
	// stay in the WAL segments of a Db with a small value cache.
	n.snaps, err = OpenSnapshotStore(filepath.Join(n.dir, "snapshots"), 2, keyval.WithMemoryBudget(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	n.addr, n.trans = raft.NewInmemTransport(n.addr)
	n.fsm = newFSM()
	if n.raft, err = raft.NewRaft(config(n.id), n.fsm, n.store, n.store, n.snaps, n.trans); err != nil {
		t.Fatalf("%s: NewRaft: %v", n.id, err)
	}
}

func (n *node) stop(t *testing.T) {
	t.Helper()
	if err := n.raft.Shutdown().Error(); err != nil {
		t.Fatalf("%s: shutdown: %v", n.id, err)
	}
	if err := n.store.Close(); err != nil {
		t.Fatalf("%s: close: %v", n.id, err)
	}
	if err := n.snaps.Close(); err != nil {
		t.Fatalf("%s: close snapshots: %v", n.id, err)
	}
	n.raft = nil
}

func connectAll(nodes []*node) {
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b && a.raft != nil && b.raft != nil {
				a.trans.Connect(b.addr, b.trans)
			}
		}
	}
}

func waitLeader(t *testing.T, nodes []*node) *node {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range nodes {
			if n.raft != nil && n.raft.State() == raft.Leader {
				return n
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("no leader elected")
	return nil
}

// apply writes keys lo..hi-1 through the leader, 50 in flight at a time,
// and returns once every one is committed (acknowledged).
func apply(t *testing.T, leader *node, lo, hi int, acked map[string]string) {
	t.Helper()
	for start := lo; start < hi; start += 50 {
		var fs []raft.ApplyFuture
		var keys []string
		for i := start; i < hi && i < start+50; i++ {
			k, v := fmt.Sprintf("key-%05d", i), fmt.Sprintf("value-%05d", i)
			b, _ := json.Marshal([2]string{k, v})
			fs = append(fs, leader.raft.Apply(b, 5*time.Second))
			keys = append(keys, k)
		}
		for i, f := range fs {
			if err := f.Error(); err != nil {
				t.Fatalf("apply %s on %s: %v", keys[i], leader.id, err)
			}
			if r := f.Response(); r != nil {
				t.Fatalf("apply %s: FSM returned %v", keys[i], r)
			}
			acked[keys[i]] = "value-" + keys[i][len("key-"):]
		}
	}
}

// waitAgree waits until every running node's FSM holds exactly acked.
func waitAgree(t *testing.T, nodes []*node, acked map[string]string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		bad := ""
		for _, n := range nodes {
			m := n.fsm.copyMap()
			if len(m) != len(acked) {
				bad = fmt.Sprintf("%s has %d keys, want %d", n.id, len(m), len(acked))
				break
			}
			for k, v := range acked {
				if m[k] != v {
					bad = fmt.Sprintf("%s: %s = %q, want %q", n.id, k, m[k], v)
					break
				}
			}
		}
		if bad == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(bad)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestThreeNodeClusterFailoverAndRestart(t *testing.T) {
	base := t.TempDir()
	var nodes []*node
	var servers []raft.Server
	for i := 1; i <= 3; i++ {
		n := &node{id: raft.ServerID(fmt.Sprintf("node%d", i)), addr: raft.ServerAddress(fmt.Sprintf("node%d", i)),
			dir: filepath.Join(base, fmt.Sprintf("node%d", i))}
		n.start(t)
		nodes = append(nodes, n)
		servers = append(servers, raft.Server{ID: n.id, Address: n.addr})
	}
	connectAll(nodes)
	if err := nodes[0].raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]string{}
	leader := waitLeader(t, nodes)
	apply(t, leader, 0, 1000, acked)
	waitAgree(t, nodes, acked)
	t.Logf("1,000 keys committed through %s; every FSM agrees", leader.id)

	old := leader
	old.stop(t)
	var rest []*node
	for _, n := range nodes {
		if n != old {
			rest = append(rest, n)
		}
	}
	leader = waitLeader(t, rest)
	t.Logf("%s stopped; %s elected", old.id, leader.id)
	apply(t, leader, 1000, 1600, acked)
	waitAgree(t, rest, acked)

	// Restart the old leader from its directories: its log is still there.
	old.start(t)
	first, _ := old.store.FirstIndex()
	last, _ := old.store.LastIndex()
	if last < 1000 {
		t.Fatalf("%s restarted with log %d..%d: acknowledged entries are missing", old.id, first, last)
	}
	t.Logf("%s restarted from disk with log %d..%d", old.id, first, last)
	connectAll(nodes)
	waitAgree(t, nodes, acked)
	apply(t, waitLeader(t, nodes), 1600, 1700, acked)
	waitAgree(t, nodes, acked)
	t.Logf("%s caught up; %d keys on every node", old.id, len(acked))

	// Compaction ran on every node, and each still holds the newest entries.
	for _, n := range nodes {
		f, _ := n.store.FirstIndex()
		l, _ := n.store.LastIndex()
		if f <= 1 || l < f {
			t.Errorf("%s: log %d..%d, want compacted and non-empty", n.id, f, l)
		}
		var e raft.Log
		if err := n.store.GetLog(l, &e); err != nil {
			t.Errorf("%s: last entry %d: %v", n.id, l, err)
		}
	}
	keys := make([]string, 0, len(acked))
	for k := range acked {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if keys[0] != "key-00000" || keys[len(keys)-1] != "key-01699" {
		t.Fatalf("acknowledged keys %s..%s", keys[0], keys[len(keys)-1])
	}
	for _, n := range nodes {
		n.stop(t)
	}
}

func TestSingleNodeRestartFromDisk(t *testing.T) {
	n := &node{id: "solo", addr: "solo", dir: t.TempDir()}
	n.start(t)
	if err := n.raft.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{ID: n.id, Address: n.addr}}}).Error(); err != nil {
		t.Fatal(err)
	}
	waitLeader(t, []*node{n})
	acked := map[string]string{}
	apply(t, n, 0, 500, acked)
	term := n.raft.Stats()["term"]
	lastBefore, _ := n.store.LastIndex()
	n.stop(t)

	n.start(t)
	defer n.stop(t)
	if last, _ := n.store.LastIndex(); last != lastBefore {
		t.Fatalf("last index %d after restart, %d before", last, lastBefore)
	}
	if cur, err := n.store.GetUint64([]byte("CurrentTerm")); err != nil || fmt.Sprint(cur) != term {
		t.Fatalf("CurrentTerm after restart = %d, %v; was %s", cur, err, term)
	}
	waitLeader(t, []*node{n})
	if err := n.raft.Barrier(5 * time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	waitAgree(t, []*node{n}, acked)
	apply(t, n, 500, 600, acked)
	waitAgree(t, []*node{n}, acked)
}
