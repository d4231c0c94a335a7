// An out-of-tree program that uses the KeyVal Go modules the way a user
// does: required by version in go.mod, fetched through GOPROXY, built
// against the C library found by pkg-config. Built and run by
// tests/packaging/go_module.sh.
package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
	keyval "github.com/keyval/keyval/bindings/go"
	"github.com/keyval/keyval/bindings/go/raftstore"
)

func main() {
	dir := os.Args[1]
	db, err := keyval.Open(filepath.Join(dir, "kv"))
	check(err)
	check(db.Set([]byte("lang"), []byte("go")))
	check(db.Close())
	db, err = keyval.Open(filepath.Join(dir, "kv"))
	check(err)
	v, err := db.Get([]byte("lang"))
	check(err)
	check(db.Close())
	if !bytes.Equal(v, []byte("go")) {
		check(fmt.Errorf("read back %q", v))
	}

	s, err := raftstore.Open(filepath.Join(dir, "raft"))
	check(err)
	check(s.StoreLogs([]*raft.Log{{Index: 1, Term: 1, Data: []byte("x")}, {Index: 2, Term: 1}}))
	last, err := s.LastIndex()
	check(err)
	check(s.Close())
	if last != 2 {
		check(fmt.Errorf("last index %d", last))
	}
	fmt.Println("go module consumer: ok, library", keyval.Version())
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "go module consumer:", err)
		os.Exit(1)
	}
}
