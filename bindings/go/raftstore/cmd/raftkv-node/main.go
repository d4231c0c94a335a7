// Command raftkv-node is one hashicorp/raft node on KeyVal storage, as its
// own process: the server the fault test (tests/jepsen) starts, kills,
// pauses and partitions.
//
//	raftkv-node -id 1 -dir D -raft 127.0.0.1:7001 -client 127.0.0.1:7101 \
//	    -members 1=127.0.0.1:7001,2=...,3=... [-routes 2=127.0.0.1:7202,...] [-init]
//
// Raft runs on raft.NewTCPTransportWithConfig over loopback; -routes makes
// this node dial peer J at another address (the test's per-link proxies)
// through the transport's ServerAddressProvider. The log and stable store
// are raftstore (KeyVal) in D/raft with 64 KiB segments, snapshots are
// raft's file snapshot store in D/snapshots, and the state machine is an
// in-memory map restored from snapshots and the log. Snapshots are taken
// every 100 entries, keeping 20 behind, so that logs are truncated and
// snapshots installed all the time. -init bootstraps the cluster with
// -members (first start only).
//
// Clients speak the line protocol of the openraft node
// (examples/raft-cluster/src/bin/raft-node.rs): one JSON object per line
// in, one out. read, write and cas all go through the Raft log, so reads
// are linearizable (unless -stale-reads, which serves reads from the local
// state machine so that the test can check that its checker catches stale
// reads); status, dump and shutdown are local. Failures carry
// "definite": true when the operation was certainly not applied
// (raft.ErrNotLeader, raft.ErrEnqueueTimeout). Stdout carries one line per
// counted event: "event leader TERM", "event snapshot-built", "event
// snapshot-installed", "event purge" (prefix truncation), "event
// truncate" (suffix truncation).
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	keyval "github.com/keyval/keyval/bindings/go"
	"github.com/keyval/keyval/bindings/go/raftstore"
)

var stdout sync.Mutex

// event prints one event line for the test.
func event(format string, args ...any) {
	stdout.Lock()
	defer stdout.Unlock()
	fmt.Printf("event "+format+"\n", args...)
}

// command is a client request and, for read, write and cas, a log entry.
type command struct {
	Op       string  `json:"op"`
	Key      string  `json:"key,omitempty"`
	Value    string  `json:"value,omitempty"`
	Expected *string `json:"expected,omitempty"`
}

// result is what the state machine returns for a command.
type result struct {
	Found bool
	Value string
	CasOK bool
}

type fsm struct {
	mu      sync.Mutex
	m       map[string]string
	started bool
}

func (f *fsm) Apply(l *raft.Log) interface{} {
	var c command
	if err := json.Unmarshal(l.Data, &c); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	cur, found := f.m[c.Key]
	switch c.Op {
	case "read":
		return result{Found: found, Value: cur}
	case "write":
		f.m[c.Key] = c.Value
		return result{}
	case "cas":
		if c.Expected != nil && found && cur == *c.Expected {
			f.m[c.Key] = c.Value
			return result{CasOK: true}
		}
		return result{}
	}
	return fmt.Errorf("unknown op %q", c.Op)
}

func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := json.Marshal(f.m)
	event("snapshot-built")
	return snapshot(b), err
}

func (f *fsm) Restore(r io.ReadCloser) error {
	defer r.Close()
	m := map[string]string{}
	if err := json.NewDecoder(r).Decode(&m); err != nil {
		return err
	}
	f.mu.Lock()
	f.m = m
	started := f.started
	f.mu.Unlock()
	if started {
		event("snapshot-installed")
	}
	return nil
}

func (f *fsm) dump() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.m)
}

type snapshot []byte

func (s snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s snapshot) Release() {}

// countingStore reports raftstore's truncations as events.
type countingStore struct{ *raftstore.Store }

func (s countingStore) DeleteRange(min, max uint64) error {
	first, err := s.FirstIndex()
	if err != nil {
		return err
	}
	if err := s.Store.DeleteRange(min, max); err != nil {
		return err
	}
	if min <= first {
		event("purge")
	} else {
		event("truncate")
	}
	return nil
}

// routes is the transport's ServerAddressProvider.
type routes map[raft.ServerID]raft.ServerAddress

func (r routes) ServerAddr(id raft.ServerID) (raft.ServerAddress, error) {
	if a, ok := r[id]; ok {
		return a, nil
	}
	return "", fmt.Errorf("no route to %s", id)
}

func pairs(s string) (map[raft.ServerID]raft.ServerAddress, error) {
	m := map[raft.ServerID]raft.ServerAddress{}
	for _, p := range strings.Split(s, ",") {
		if p == "" {
			continue
		}
		id, addr, ok := strings.Cut(p, "=")
		if !ok {
			return nil, fmt.Errorf("expected ID=ADDR, got %q", p)
		}
		m[raft.ServerID(id)] = raft.ServerAddress(addr)
	}
	return m, nil
}

type node struct {
	// staleReads serves reads from the local state machine without the
	// log: not linearizable, for the fault test's self-check only.
	staleReads bool
	id         raft.ServerID
	raft       *raft.Raft
	fsm        *fsm
	store      *raftstore.Store
	trans      *raft.NetworkTransport
}

func failure(err error, definite bool, leader raft.ServerID) map[string]any {
	return map[string]any{"ok": false, "err": err.Error(), "definite": definite, "leader": string(leader)}
}

func (n *node) handle(c command) map[string]any {
	if c.Op == "read" && n.staleReads {
		n.fsm.mu.Lock()
		v, found := n.fsm.m[c.Key]
		n.fsm.mu.Unlock()
		return map[string]any{"ok": true, "found": found, "value": v}
	}
	switch c.Op {
	case "read", "write", "cas":
		b, _ := json.Marshal(c)
		f := n.raft.Apply(b, 2*time.Second)
		if err := f.Error(); err != nil {
			_, leader := n.raft.LeaderWithID()
			definite := errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrEnqueueTimeout)
			return failure(err, definite, leader)
		}
		switch r := f.Response().(type) {
		case result:
			return map[string]any{"ok": true, "found": r.Found, "value": r.Value, "cas_ok": r.CasOK}
		case error:
			return failure(r, true, "")
		}
		return failure(errors.New("unexpected FSM response"), true, "")
	case "status":
		_, leader := n.raft.LeaderWithID()
		return map[string]any{
			"ok": true, "id": string(n.id), "leader": string(leader), "term": n.raft.CurrentTerm(),
			"last_index": n.raft.LastIndex(), "applied": n.raft.AppliedIndex(),
		}
	case "dump":
		return map[string]any{"ok": true, "data": n.fsm.dump()}
	}
	return failure(fmt.Errorf("unknown op %q", c.Op), true, "")
}

func (n *node) serve(conn net.Conn, stop chan<- struct{}) {
	defer conn.Close()
	in := bufio.NewScanner(conn)
	in.Buffer(make([]byte, 1<<16), 1<<24)
	enc := json.NewEncoder(conn)
	for in.Scan() {
		var c command
		var reply map[string]any
		if err := json.Unmarshal(in.Bytes(), &c); err != nil {
			reply = failure(fmt.Errorf("bad request: %v", err), true, "")
		} else if c.Op == "shutdown" {
			reply = map[string]any{"ok": true}
			select {
			case stop <- struct{}{}:
			default:
			}
		} else {
			reply = n.handle(c)
		}
		if enc.Encode(reply) != nil {
			return
		}
	}
}

func run() error {
	id := flag.String("id", "", "this node's id")
	dir := flag.String("dir", "", "data directory")
	raftAddr := flag.String("raft", "", "Raft listen address")
	clientAddr := flag.String("client", "", "client listen address")
	membersFlag := flag.String("members", "", "cluster: ID=RAFTADDR,...")
	routesFlag := flag.String("routes", "", "dial peer ID at ADDR: ID=ADDR,...")
	init := flag.Bool("init", false, "bootstrap the cluster with -members")
	stale := flag.Bool("stale-reads", false, "serve reads from local state (NOT linearizable; for checking the checker)")
	flag.Parse()
	members, err := pairs(*membersFlag)
	if err != nil {
		return err
	}
	rt, err := pairs(*routesFlag)
	if err != nil {
		return err
	}
	// The transport asks for every server's address, its own included:
	// the members' addresses unless a route overrides them.
	for sid, addr := range members {
		if _, ok := rt[sid]; !ok {
			rt[sid] = addr
		}
	}
	if *id == "" || *dir == "" || *raftAddr == "" || *clientAddr == "" || len(members) == 0 {
		flag.Usage()
		os.Exit(2)
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: "raft-" + *id, Output: os.Stderr, Level: hclog.Warn})

	n := &node{id: raft.ServerID(*id), fsm: &fsm{m: map[string]string{}}, staleReads: *stale}
	if n.store, err = raftstore.Open(filepath.Join(*dir, "raft"), keyval.WithSegmentSize(64<<10)); err != nil {
		return err
	}
	// Snapshots on KeyVal (raftstore.SnapshotStore): streamed in 1 MiB
	// chunks, SHA-256 checked, installed atomically, two retained.
	snaps, err := raftstore.OpenSnapshotStore(filepath.Join(*dir, "snapshots"), 2, keyval.WithSegmentSize(256<<10))
	if err != nil {
		return err
	}
	defer snaps.Close()
	advertise, err := net.ResolveTCPAddr("tcp", *raftAddr)
	if err != nil {
		return err
	}
	n.trans, err = raft.NewTCPTransportWithConfig(*raftAddr, advertise, &raft.NetworkTransportConfig{
		ServerAddressProvider: routes(rt),
		MaxPool:               3,
		Timeout:               2 * time.Second,
		Logger:                logger,
	})
	if err != nil {
		return err
	}
	conf := raft.DefaultConfig()
	conf.LocalID = n.id
	conf.HeartbeatTimeout = 500 * time.Millisecond
	conf.ElectionTimeout = 500 * time.Millisecond
	conf.LeaderLeaseTimeout = 250 * time.Millisecond
	conf.CommitTimeout = 20 * time.Millisecond
	conf.SnapshotThreshold = 100
	conf.SnapshotInterval = 500 * time.Millisecond
	conf.TrailingLogs = 20
	conf.Logger = logger
	if n.raft, err = raft.NewRaft(conf, n.fsm, countingStore{n.store}, n.store, snaps, n.trans); err != nil {
		return err
	}
	n.fsm.mu.Lock()
	n.fsm.started = true
	n.fsm.mu.Unlock()
	if *init {
		var cfg raft.Configuration
		for sid, addr := range members {
			cfg.Servers = append(cfg.Servers, raft.Server{ID: sid, Address: addr})
		}
		if err := n.raft.BootstrapCluster(cfg).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			return err
		}
	}
	go func() {
		for isLeader := range n.raft.LeaderCh() {
			if isLeader {
				event("leader %d", n.raft.CurrentTerm())
			}
		}
	}()

	ln, err := net.Listen("tcp", *clientAddr)
	if err != nil {
		return err
	}
	stop := make(chan struct{}, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go n.serve(c, stop)
		}
	}()
	<-stop
	ln.Close()
	return errors.Join(n.raft.Shutdown().Error(), n.trans.Close(), n.store.Close())
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "raftkv-node: %v\n", err)
		os.Exit(1)
	}
}
