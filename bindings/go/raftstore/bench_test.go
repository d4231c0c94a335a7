package raftstore

// raftbench (github.com/hashicorp/raft/bench) against KeyVal, raft-boltdb
// and raft-wal, side by side in one run:
//
//	go test -run '^$' -bench . -benchtime 2000x
//
// Each store runs with its default durability (all three fsync each
// StoreLog/StoreLogs and each stable-store Set). raftbench.DeleteRange
// writes non-contiguous indexes starting at 0, which monotonic stores
// (KeyVal, raft-wal) refuse by design; DeletePrefix below measures the
// compaction Raft actually performs (DeleteRange from the first index) on
// every store instead. raftbench.StoreLog starts at index 0, which raft-wal
// refuses; StoreLogFrom1 repeats it from index 1 for all three.

import (
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	raftwal "github.com/hashicorp/raft-wal"
	raftbench "github.com/hashicorp/raft/bench"
)

type benchStore interface {
	raft.LogStore
	raft.StableStore
}

type peer struct {
	name string
	open func(b *testing.B) benchStore
}

var peers = []peer{
	{"KeyVal", func(b *testing.B) benchStore {
		s, err := Open(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	}},
	{"BoltDB", func(b *testing.B) benchStore {
		s, err := raftboltdb.NewBoltStore(filepath.Join(b.TempDir(), "raft.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	}},
	{"WAL", func(b *testing.B) benchStore {
		s, err := raftwal.Open(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	}},
}

func run(b *testing.B, f func(*testing.B, benchStore)) {
	for _, p := range peers {
		b.Run(p.name, func(b *testing.B) {
			s := p.open(b)
			b.ResetTimer() // opening (and preallocating) is not measured
			f(b, s)
		})
	}
}

func BenchmarkFirstIndex(b *testing.B) {
	run(b, func(b *testing.B, s benchStore) { raftbench.FirstIndex(b, s) })
}

func BenchmarkLastIndex(b *testing.B) {
	run(b, func(b *testing.B, s benchStore) { raftbench.LastIndex(b, s) })
}

func BenchmarkGetLog(b *testing.B) {
	run(b, func(b *testing.B, s benchStore) { raftbench.GetLog(b, s) })
}

func BenchmarkStoreLog(b *testing.B) {
	run(b, func(b *testing.B, s benchStore) { raftbench.StoreLog(b, s) })
}

func BenchmarkStoreLogFrom1(b *testing.B) {
	run(b, func(b *testing.B, s benchStore) {
		for i := 0; i < b.N; i++ {
			if err := s.StoreLog(&raft.Log{Index: uint64(i) + 1, Data: []byte("data")}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkStoreLogs(b *testing.B) {
	run(b, func(b *testing.B, s benchStore) { raftbench.StoreLogs(b, s) })
}

func BenchmarkSet(b *testing.B) {
	run(b, func(b *testing.B, s benchStore) { raftbench.Set(b, s) })
}

func BenchmarkGet(b *testing.B) {
	run(b, func(b *testing.B, s benchStore) { raftbench.Get(b, s) })
}

func BenchmarkSetUint64(b *testing.B) {
	run(b, func(b *testing.B, s benchStore) { raftbench.SetUint64(b, s) })
}

func BenchmarkGetUint64(b *testing.B) {
	run(b, func(b *testing.B, s benchStore) { raftbench.GetUint64(b, s) })
}

// BenchmarkDeletePrefix: compaction as Raft does it, 10 entries per
// DeleteRange from the first index.
func BenchmarkDeletePrefix(b *testing.B) {
	run(b, func(b *testing.B, s benchStore) {
		const batch = 1000
		n := uint64(b.N) * 10
		for lo := uint64(1); lo <= n; lo += batch {
			var logs []*raft.Log
			for i := lo; i < lo+batch && i <= n; i++ {
				logs = append(logs, &raft.Log{Index: i, Data: []byte("data")})
			}
			if err := s.StoreLogs(logs); err != nil {
				b.Fatal(err)
			}
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			lo := uint64(i)*10 + 1
			if err := s.DeleteRange(lo, lo+9); err != nil {
				b.Fatal(err)
			}
		}
	})
}
