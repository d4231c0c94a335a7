package raftstore

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"testing"

	"github.com/hashicorp/raft"
	keyval "github.com/keyval/keyval/bindings/go"
)

func writeSnapshot(t *testing.T, s *SnapshotStore, index uint64, data []byte) string {
	t.Helper()
	sink, err := s.Create(1, index, 3, raft.Configuration{}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(int64(index)))
	for p := data; len(p) > 0; {
		n := min(len(p), 1+rng.Intn(300_000))
		if _, err := sink.Write(p[:n]); err != nil {
			t.Fatal(err)
		}
		p = p[n:]
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	return sink.ID()
}

func readSnapshot(t *testing.T, s *SnapshotStore, id string) ([]byte, error) {
	t.Helper()
	meta, r, err := s.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err == nil && int64(len(b)) != meta.Size {
		t.Fatalf("read %d bytes, meta says %d", len(b), meta.Size)
	}
	return b, err
}

// Snapshots several times the value cache stream in and out in chunks;
// retention keeps the newest two; a cancelled or unfinished one is never
// listed and its chunks are removed; a damaged chunk fails the read.
func TestSnapshotStore(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenSnapshotStore(dir, 2, keyval.WithMemoryBudget(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 5<<20+12345)
	rand.New(rand.NewSource(1)).Read(data)
	ids := []string{}
	for i := uint64(1); i <= 3; i++ {
		ids = append(ids, writeSnapshot(t, s, 100*i, data))
	}
	list, err := s.List()
	if err != nil || len(list) != 2 || list[0].ID != ids[2] || list[1].ID != ids[1] {
		t.Fatalf("list %v %v", list, err)
	}
	got, err := readSnapshot(t, s, ids[2])
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, %v", len(got), err)
	}
	if _, _, err := s.Open(ids[0]); !errors.Is(err, keyval.ErrNotFound) {
		t.Fatalf("a reaped snapshot opened: %v", err)
	}
	// Cancelled, and unfinished (never closed): not listed.
	sink, _ := s.Create(1, 900, 4, raft.Configuration{}, 1, nil)
	sink.Write(data[:3<<20])
	sink.Cancel()
	unfinished, _ := s.Create(1, 901, 4, raft.Configuration{}, 1, nil)
	unfinished.Write(data[:3<<20])
	if list, _ := s.List(); len(list) != 2 {
		t.Fatalf("unfinished snapshots listed: %v", list)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = OpenSnapshotStore(dir, 2)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := s.ks.Len()
	if want := uint64(2 + 2*6); n != want {
		t.Fatalf("%d keys after reopen, want %d (two snapshots of 6 chunks and their metadata)", n, want)
	}
	// A chunk overwritten with other bytes of the same length: the read
	// fails at its end, naming the SHA-256.
	bad := bytes.Clone(data[:SnapshotChunk])
	bad[7] ^= 1
	if err := s.ks.Set(chunkKey(ids[2], 0), bad); err != nil {
		t.Fatal(err)
	}
	if _, err := readSnapshot(t, s, ids[2]); !errors.Is(err, keyval.ErrCorruption) {
		t.Fatalf("a damaged snapshot read without error: %v", err)
	}
	if _, err := NewSnapshotStore(s.db, 0); err == nil {
		t.Fatal("retain 0 accepted")
	}
	s.Close()
}
