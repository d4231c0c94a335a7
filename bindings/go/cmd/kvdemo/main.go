// Command kvdemo is step 3 of `make demo`: it reopens the demo directory
// from Go, runs a range scan and a batch, checkpoints and closes.
package main

import (
	"fmt"
	"os"

	keyval "github.com/keyval/keyval/bindings/go"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: kvdemo DIR PREFIX")
		os.Exit(2)
	}
	if err := run(os.Args[1], []byte(os.Args[2])); err != nil {
		fmt.Fprintln(os.Stderr, "kvdemo:", err)
		os.Exit(1)
	}
}

func run(dir string, prefix []byte) error {
	db, err := keyval.Open(dir)
	if err != nil {
		return err
	}
	defer db.Close()
	it, err := db.NewIterator(&keyval.IterOptions{Prefix: prefix})
	if err != nil {
		return err
	}
	n := 0
	var first []byte
	for it.Next() {
		if first == nil {
			first = it.Key()
		}
		n++
	}
	it.Close()
	if err := it.Err(); err != nil {
		return err
	}
	fmt.Printf("go: range scan of prefix %q: %d records, first %q\n", prefix, n, first)
	b := db.NewBatch()
	b.Set([]byte("demo:go:scanned"), []byte(fmt.Sprint(n)))
	b.Set([]byte("demo:go:done"), []byte("yes"))
	b.Delete([]byte("demo:go:never-written"))
	if err := b.Commit(); err != nil {
		return err
	}
	if err := db.Checkpoint(); err != nil {
		return err
	}
	st, err := db.Stats()
	if err != nil {
		return err
	}
	fmt.Printf("go: batch of %d committed; checkpoint at LSN %d, %d keys, %d bytes on disk\n", b.Len(), st.SnapshotLSN, st.Keys, st.DiskBytes)
	return db.Close()
}
