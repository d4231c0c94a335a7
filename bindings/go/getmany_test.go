package keyval

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

// GetMany answers like one Get per key, in order, with nil for absent keys
// and a non-nil empty slice for an empty value; values do not alias.
func TestGetMany(t *testing.T) {
	db := openT(t, t.TempDir(), small()...)
	defer db.Close()
	must(t, db.Set([]byte("a"), []byte("1")))
	must(t, db.Set([]byte("e"), nil))
	must(t, db.Set([]byte("c"), []byte("three")))
	got, err := db.GetMany([][]byte{[]byte("a"), []byte("zz"), []byte("e"), []byte("c"), []byte("a")})
	must(t, err)
	want := [][]byte{[]byte("1"), nil, {}, []byte("three"), []byte("1")}
	if len(got) != len(want) {
		t.Fatalf("got %d values", len(got))
	}
	for i := range want {
		if (got[i] == nil) != (want[i] == nil) || !bytes.Equal(got[i], want[i]) {
			t.Fatalf("value %d: got %q (nil %v), want %q", i, got[i], got[i] == nil, want[i])
		}
	}
	got[0] = append(got[0], 'X') // capped: must not run into the next value
	if !bytes.Equal(got[3], []byte("three")) || !bytes.Equal(got[4], []byte("1")) {
		t.Fatalf("append to one value changed another: %q %q", got[3], got[4])
	}
	empty, err := db.GetMany(nil)
	if err != nil || len(empty) != 0 {
		t.Fatalf("no keys: %v %v", empty, err)
	}
	if _, err := db.GetMany([][]byte{[]byte("a"), {}}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("empty key: %v", err)
	}
	m, err := db.Metrics()
	must(t, err)
	if m.Gets != 5 || m.GetHits != 4 {
		t.Fatalf("metrics: %d gets, %d hits", m.Gets, m.GetHits)
	}
	must(t, db.Close())
	if _, err := db.GetMany([][]byte{[]byte("a")}); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
}

func benchDB(b *testing.B, n int) (*DB, [][]byte) {
	db, err := Open(b.TempDir(), WithDurability(DurabilityBuffered))
	if err != nil {
		b.Fatal(err)
	}
	// The project's benchmark workload: 24-byte random keys, 150-byte
	// values, from a seeded generator.
	rng := rand.New(rand.NewPCG(42, 42))
	keys := make([][]byte, n)
	batch := db.NewBatch()
	for i := range keys {
		keys[i] = make([]byte, 24)
		for j := range keys[i] {
			keys[i][j] = byte(rng.Uint32())
		}
		batch.Set(keys[i], bytes.Repeat([]byte{'v'}, 150))
	}
	if err := batch.Commit(); err != nil {
		b.Fatal(err)
	}
	return db, keys
}

// BenchmarkGet and BenchmarkGetMany100 report ns per key, side by side
// (make bench prints the ratio).
func BenchmarkGet(b *testing.B) {
	db, keys := benchDB(b, benchKeys)
	defer db.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := db.Get(keys[i%len(keys)]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetMany100(b *testing.B) {
	db, keys := benchDB(b, benchKeys)
	defer db.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i += 100 {
		at := i % (len(keys) - 100)
		if _, err := db.GetMany(keys[at : at+100]); err != nil {
			b.Fatal(err)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// benchKeys is the store size of the Get benchmarks.
const benchKeys = 100_000
