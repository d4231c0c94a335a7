package keyval

import (
	"bytes"
	"errors"
	"testing"
)

// Every key operation exists for every keyspace: the same calls on a
// named keyspace and on DB.Default, which is what the DB methods address.
func TestEveryOperationOnEveryKeyspace(t *testing.T) {
	db, err := Open(t.TempDir())
	must(t, err)
	defer db.Close()
	named, err := db.Keyspace("named")
	must(t, err)
	for _, ks := range []*Keyspace{db.Default(), named} {
		mine := []byte("value of " + ks.Name())
		must(t, ks.Set([]byte("a"), []byte("1")))
		must(t, ks.SetWith([]byte("b"), mine, DurabilityOS))
		if err := ks.SetWith([]byte("c"), []byte("3"), Durability(77)); !errors.Is(err, ErrInvalidArgument) {
			t.Fatalf("unknown durability: %v", err)
		}
		if has, err := ks.Has([]byte("a")); err != nil || !has {
			t.Fatalf("Has(a) = %v, %v", has, err)
		}
		if has, err := ks.Has([]byte("zz")); err != nil || has {
			t.Fatalf("Has(zz) = %v, %v", has, err)
		}
		vals, err := ks.GetMany([][]byte{[]byte("a"), []byte("b"), []byte("zz")})
		must(t, err)
		if !bytes.Equal(vals[0], []byte("1")) || !bytes.Equal(vals[1], mine) || vals[2] != nil {
			t.Fatalf("GetMany in %q = %q", ks.Name(), vals)
		}
		must(t, ks.DeleteWith([]byte("a"), DurabilitySync))
		if n, err := ks.Len(); err != nil || n != 1 {
			t.Fatalf("Len in %q = %d, %v", ks.Name(), n, err)
		}
		b := db.NewBatch()
		b.SetIn(ks, []byte("batched"), []byte("x"))
		must(t, b.Commit())
		if v, err := ks.Get([]byte("batched")); err != nil || string(v) != "x" {
			t.Fatalf("batched write in %q: %q, %v", ks.Name(), v, err)
		}
	}
	// The default keyspace and the DB methods are one keyspace.
	if v, err := db.Get([]byte("b")); err != nil || string(v) != "value of " {
		t.Fatalf("db.Get(b) = %q, %v", v, err)
	}
	must(t, db.Set([]byte("d"), []byte("4")))
	if has, _ := db.Default().Has([]byte("d")); !has {
		t.Fatal("a DB write is not in its default keyspace")
	}
	if has, _ := named.Has([]byte("d")); has {
		t.Fatal("a DB write leaked into a named keyspace")
	}
	must(t, db.Close())
	if _, err := db.Default().Has([]byte("d")); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}
