package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// link is a one-way route from node `from` to node `to`: a loopback TCP
// proxy that `from` dials instead of `to`'s Raft address. Cutting it
// closes every connection through it and refuses new ones, which is a
// network partition of that direction.
type link struct {
	from, to int
	ln       net.Listener
	target   string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
}

func newLink(from, to int, target string) (*link, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	l := &link{from: from, to: to, ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	go l.run()
	return l, nil
}

func (l *link) addr() string { return l.ln.Addr().String() }

func (l *link) run() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		go l.forward(c)
	}
}

func (l *link) forward(c net.Conn) {
	l.mu.Lock()
	cut := l.cut
	l.mu.Unlock()
	if cut {
		c.Close()
		return
	}
	up, err := net.DialTimeout("tcp", l.target, time.Second)
	if err != nil {
		c.Close()
		return
	}
	l.mu.Lock()
	if l.cut {
		l.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	l.conns[c], l.conns[up] = struct{}{}, struct{}{}
	l.mu.Unlock()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	c.Close()
	up.Close()
	<-done
	l.mu.Lock()
	delete(l.conns, c)
	delete(l.conns, up)
	l.mu.Unlock()
}

func (l *link) setCut(cut bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cut = cut
	if cut {
		for c := range l.conns {
			c.Close()
		}
	}
}

func (l *link) close() {
	l.ln.Close()
	l.setCut(true)
}

// proc is one node: its addresses, directory and current process.
type proc struct {
	id         int
	raftAddr   string
	clientAddr string
	dir        string
	log        *os.File

	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{}
	paused   bool
	stopping bool // asked to shut down: its exit is not a crash
	starts   int
	crashed  []string // unexpected exits
}

// cluster is three nodes, the six links between them and the event
// counts the nodes report on stdout.
type cluster struct {
	nodeBin  string
	nodeArgs []string // extra flags for every node
	procs    []*proc
	links    map[[2]int]*link

	mu     sync.Mutex
	events map[string]int
	terms  map[uint64]bool // terms in which some node became leader
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func newCluster(nodeBin, base string, n int) (*cluster, error) {
	c := &cluster{nodeBin: nodeBin, links: map[[2]int]*link{},
		events: map[string]int{}, terms: map[uint64]bool{}}
	for i := 1; i <= n; i++ {
		ra, err := freeAddr()
		if err != nil {
			return nil, err
		}
		ca, err := freeAddr()
		if err != nil {
			return nil, err
		}
		dir := filepath.Join(base, fmt.Sprintf("node%d", i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		lf, err := os.Create(filepath.Join(base, fmt.Sprintf("node%d.log", i)))
		if err != nil {
			return nil, err
		}
		c.procs = append(c.procs, &proc{id: i, raftAddr: ra, clientAddr: ca, dir: dir, log: lf})
	}
	for _, a := range c.procs {
		for _, b := range c.procs {
			if a != b {
				l, err := newLink(a.id, b.id, b.raftAddr)
				if err != nil {
					return nil, err
				}
				c.links[[2]int{a.id, b.id}] = l
			}
		}
	}
	return c, nil
}

func (c *cluster) proc(id int) *proc { return c.procs[id-1] }

// start launches node id's process (it must not be running).
func (c *cluster) start(id int, init bool) error {
	p := c.proc(id)
	var members, routes []string
	for _, q := range c.procs {
		members = append(members, fmt.Sprintf("%d=%s", q.id, q.raftAddr))
		if q.id != id {
			routes = append(routes, fmt.Sprintf("%d=%s", q.id, c.links[[2]int{id, q.id}].addr()))
		}
	}
	args := []string{"--id", strconv.Itoa(id), "--dir", p.dir, "--raft", p.raftAddr,
		"--client", p.clientAddr, "--members", strings.Join(members, ","), "--routes", strings.Join(routes, ",")}
	if init {
		args = append(args, "--init")
	}
	args = append(args, c.nodeArgs...)
	cmd := exec.Command(c.nodeBin, args...)
	// The node dies with the harness, whatever happens to the harness.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = p.log
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return fmt.Errorf("node %d is already running", id)
	}
	fmt.Fprintf(p.log, "=== harness: start #%d at %s\n", p.starts+1, time.Now().Format(time.RFC3339Nano))
	if err := cmd.Start(); err != nil {
		return err
	}
	p.cmd, p.exited, p.paused, p.stopping = cmd, make(chan struct{}), false, false
	p.starts++
	exited := p.exited
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintf(p.log, "%s\n", line)
			if ev, ok := strings.CutPrefix(line, "event "); ok {
				c.record(ev)
			}
		}
		err := cmd.Wait()
		p.mu.Lock()
		if p.cmd == cmd {
			if !p.stopping {
				// Nobody killed or stopped it: a crash.
				p.crashed = append(p.crashed, fmt.Sprintf("node %d exited on its own: %v", id, err))
			}
			p.cmd = nil
		}
		p.mu.Unlock()
		close(exited)
	}()
	return nil
}

func (c *cluster) record(ev string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	kind, arg, _ := strings.Cut(ev, " ")
	c.events[kind]++
	if kind == "leader" {
		if t, err := strconv.ParseUint(arg, 10, 64); err == nil {
			c.terms[t] = true
		}
	}
}

func (c *cluster) eventCount(kind string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.events[kind]
}

func (c *cluster) running(id int) bool {
	p := c.proc(id)
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil
}

// kill SIGKILLs node id and waits until it is gone.
func (c *cluster) kill(id int) {
	p := c.proc(id)
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.cmd = nil
	p.paused = false
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
	fmt.Fprintf(p.log, "=== harness: SIGKILL at %s\n", time.Now().Format(time.RFC3339Nano))
}

func (c *cluster) pause(id int, stop bool) {
	p := c.proc(id)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.paused == stop {
		return
	}
	sig := syscall.SIGCONT
	if stop {
		sig = syscall.SIGSTOP
	}
	_ = p.cmd.Process.Signal(sig)
	p.paused = stop
	fmt.Fprintf(p.log, "=== harness: %v at %s\n", sig, time.Now().Format(time.RFC3339Nano))
}

// isolate cuts (or heals) every link to and from node id.
func (c *cluster) isolate(id int, cut bool) {
	for k, l := range c.links {
		if k[0] == id || k[1] == id {
			l.setCut(cut)
		}
	}
}

// healAll resumes paused nodes, restarts dead ones and heals every link.
func (c *cluster) healAll() error {
	for _, l := range c.links {
		l.setCut(false)
	}
	for _, p := range c.procs {
		c.pause(p.id, false)
		if !c.running(p.id) {
			if err := c.start(p.id, false); err != nil {
				return err
			}
		}
	}
	return nil
}

// stopAll asks every node to shut down cleanly (closing its stores), and
// kills those that do not exit within the timeout.
func (c *cluster) stopAll(timeout time.Duration) error {
	var errs []error
	for _, p := range c.procs {
		c.pause(p.id, false)
		p.mu.Lock()
		cmd, exited := p.cmd, p.exited
		p.stopping = true
		p.mu.Unlock()
		if cmd == nil {
			continue
		}
		if _, err := call(p.clientAddr, request{Op: "shutdown"}, 2*time.Second); err != nil {
			errs = append(errs, fmt.Errorf("node %d: shutdown: %w", p.id, err))
		}
		select {
		case <-exited:
			// An exit after "shutdown" is not a crash, unless it failed.
			if cmd.ProcessState != nil && !cmd.ProcessState.Success() {
				errs = append(errs, fmt.Errorf("node %d: shutdown exited with %v", p.id, cmd.ProcessState))
			}
		case <-time.After(timeout):
			errs = append(errs, fmt.Errorf("node %d did not shut down within %v", p.id, timeout))
			c.kill(p.id)
		}
	}
	return errors.Join(errs...)
}

// killAll is the cleanup of last resort: every node gone, every link closed.
func (c *cluster) killAll() {
	for _, p := range c.procs {
		c.pause(p.id, false)
		c.kill(p.id)
	}
	for _, l := range c.links {
		l.close()
	}
}

// crashes lists unexpected node exits so far.
func (c *cluster) crashes() []string {
	var out []string
	for _, p := range c.procs {
		p.mu.Lock()
		out = append(out, p.crashed...)
		p.mu.Unlock()
	}
	return out
}

// request and reply are the nodes' client protocol (see the node programs).
type request struct {
	Op       string  `json:"op"`
	Key      string  `json:"key,omitempty"`
	Value    string  `json:"value,omitempty"`
	Expected *string `json:"expected,omitempty"`
}

type reply struct {
	OK       bool              `json:"ok"`
	Found    bool              `json:"found"`
	Value    *string           `json:"value"`
	CasOK    bool              `json:"cas_ok"`
	Definite bool              `json:"definite"`
	Leader   json.RawMessage   `json:"leader"`
	Term     uint64            `json:"term"`
	Applied  *uint64           `json:"applied"`
	Data     map[string]string `json:"data"`
}

// leaderID reads the leader field: a number (openraft) or a string id
// (hashicorp/raft); 0 when none.
func (r *reply) leaderID() int {
	s := strings.Trim(string(r.Leader), `"`)
	n, _ := strconv.Atoi(s)
	return n
}

// call sends one request on a fresh connection.
func call(addr string, req request, timeout time.Duration) (*reply, error) {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	cl := &client{conn: conn, r: bufio.NewReader(conn)}
	return cl.do(req, timeout)
}

// client is one open connection to a node.
type client struct {
	conn net.Conn
	r    *bufio.Reader
}

func (c *client) do(req request, timeout time.Duration) (*reply, error) {
	_ = c.conn.SetDeadline(time.Now().Add(timeout))
	b, _ := json.Marshal(req)
	if _, err := c.conn.Write(append(b, '\n')); err != nil {
		return nil, err
	}
	line, err := c.r.ReadBytes('\n')
	if err != nil {
		return nil, err
	}
	var rep reply
	if err := json.Unmarshal(line, &rep); err != nil {
		return nil, fmt.Errorf("bad reply %q: %w", line, err)
	}
	return &rep, nil
}
