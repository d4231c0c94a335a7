package keyval

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
)

func TestKeyspaces(t *testing.T) {
	db := openT(t, t.TempDir())
	defer db.Close()
	ks, err := db.Keyspace("users")
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.Set([]byte("k"), []byte("in users")); err != nil {
		t.Fatal(err)
	}
	if err := db.Set([]byte("k"), []byte("default")); err != nil {
		t.Fatal(err)
	}
	if v, err := ks.Get([]byte("k")); err != nil || string(v) != "in users" {
		t.Fatalf("get: %q %v", v, err)
	}
	if n, err := ks.Len(); err != nil || n != 1 {
		t.Fatalf("len: %d %v", n, err)
	}
	if names, err := db.Keyspaces(); err != nil || fmt.Sprint(names) != "[users]" {
		t.Fatalf("list: %v %v", names, err)
	}
	if _, err := db.Keyspace(""); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("empty name: %v", err)
	}

	// One batch across the default keyspace and two named ones.
	orders, err := db.Keyspace("orders")
	if err != nil {
		t.Fatal(err)
	}
	b := db.NewBatch()
	b.Set([]byte("k"), []byte("default 2"))
	b.SetIn(ks, []byte("u:2"), []byte("bob"))
	b.SetIn(ks, []byte("u:1"), []byte("ann"))
	b.SetIn(orders, []byte("o:1"), []byte("u:1"))
	b.DeleteIn(ks, []byte("k"))
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if v, err := db.Get([]byte("k")); err != nil || string(v) != "default 2" {
		t.Fatalf("default after batch: %q %v", v, err)
	}
	if v, err := orders.Get([]byte("o:1")); err != nil || string(v) != "u:1" {
		t.Fatalf("orders after batch: %q %v", v, err)
	}
	if st, err := ks.Stats(); err != nil || st != (KeyspaceStats{Keys: 2, KeyBytes: 6, ValueBytes: 6}) {
		t.Fatalf("keyspace stats: %+v %v", st, err)
	}
	// Iteration sees the keyspace's keys only, in order.
	it, err := ks.NewIterator(&IterOptions{Prefix: []byte("u:")})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for it.Next() {
		got = append(got, string(it.Key())+"="+string(it.Value()))
	}
	if err := it.Err(); err != nil || fmt.Sprint(got) != "[u:1=ann u:2=bob]" {
		t.Fatalf("iterate: %v %v", got, err)
	}
	it.Close()
	it, err = ks.NewIterator(nil)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range it.All() {
		n++
	}
	if n != 2 {
		t.Fatalf("every key: %d", n)
	}
	it.Close()

	if existed, err := db.DropKeyspace("users"); err != nil || !existed {
		t.Fatalf("drop: %v %v", existed, err)
	}
	if _, err := ks.Get([]byte("k")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after drop: %v", err)
	}
	if _, err := ks.NewIterator(nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("iterator after drop: %v", err)
	}
	if _, err := ks.Stats(); !errors.Is(err, ErrNotFound) {
		t.Fatalf("stats after drop: %v", err)
	}
	// A batch naming a dropped keyspace applies nothing.
	b = db.NewBatch()
	b.Set([]byte("k"), []byte("default 3"))
	b.SetIn(ks, []byte("u:3"), []byte("cy"))
	if err := b.Commit(); !errors.Is(err, ErrNotFound) {
		t.Fatalf("batch into a dropped keyspace: %v", err)
	}
	if v, _ := db.Get([]byte("k")); string(v) != "default 2" {
		t.Fatalf("a failed batch applied: %q", v)
	}
}

type person struct {
	ID   string `json:"_id,omitempty"`
	Name string `json:"name"`
	Age  int    `json:"age"`
}

func TestCollections(t *testing.T) {
	db := openT(t, t.TempDir())
	defer db.Close()
	c := db.Collection("people")
	for i := 0; i < 30; i++ {
		id, err := c.Insert(person{Name: fmt.Sprintf("p%02d", i), Age: i % 10})
		if err != nil || id != fmt.Sprint(i+1) {
			t.Fatalf("insert %d: %q %v", i, id, err)
		}
	}
	if st, err := db.Stats(); err != nil || st.Collections != 1 || st.Keyspaces != 3 {
		t.Fatalf("stats: %+v %v", st, err)
	}
	if _, err := c.Insert(map[string]any{"_id": "1"}); !errors.Is(err, ErrDuplicateKey) {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := c.Insert([]int{1}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("not an object: %v", err)
	}
	ids, err := c.InsertMany([]any{map[string]any{"_id": "x", "age": 50}, person{Name: "y", Age: 51}})
	if err != nil || fmt.Sprint(ids) != "[x 31]" {
		t.Fatalf("insert many: %v %v", ids, err)
	}
	var p person
	if err := c.GetInto("3", &p); err != nil || p.Name != "p02" || p.ID != "3" {
		t.Fatalf("get into: %+v %v", p, err)
	}
	if _, err := c.Get("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	d, err := c.UpdateWith("3", map[string]any{"$inc": map[string]any{"age": 100}})
	if err != nil || d["age"].(json.Number).String() != "102" {
		t.Fatalf("update with: %v %v", d, err)
	}
	if _, err := c.Update("3", map[string]any{"_id": "9"}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("change _id: %v", err)
	}
	if err := c.UpdateMany(map[string]any{"1": map[string]any{"v": 1}, "zz": map[string]any{}}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update many: %v", err)
	}
	if _, err := c.Replace("new", map[string]any{"age": 7}, true); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateIndex("age", false); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateIndex("name", true); err != nil {
		t.Fatalf("unique index: %v", err)
	}
	if _, err := c.Insert(person{Name: "p01"}); !errors.Is(err, ErrDuplicateKey) {
		t.Fatalf("unique violation: %v", err)
	}
	filter := map[string]any{"age": map[string]any{"$gte": 3, "$lt": 6}}
	plan, err := c.Explain(filter, nil)
	if err != nil || plan.Index != "age" || plan.Entries != 9 {
		t.Fatalf("explain: %+v %v", plan, err)
	}
	var seen []string
	opts := &FindOptions{Sort: []string{"-age", "name"}, Limit: 4}
	for {
		page, err := c.Find(filter, opts)
		if err != nil {
			t.Fatal(err)
		}
		if page.Total != 9 {
			t.Fatalf("total %d", page.Total)
		}
		for _, d := range page.Docs {
			seen = append(seen, d["_id"].(string))
		}
		if !page.HasNext {
			break
		}
		opts.After = page.NextCursor
	}
	if len(seen) != 9 {
		t.Fatalf("pages visited %v", seen)
	}
	if _, err := c.Find(nil, &FindOptions{Limit: 5000}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("limit: %v", err)
	}
	n := 0
	for d, err := range c.All(map[string]any{"age": map[string]any{"$exists": true}}) {
		if err != nil {
			t.Fatal(err)
		}
		if d["_id"] == nil {
			t.Fatal("document without _id")
		}
		n++
	}
	if cnt, err := c.Count(nil); err != nil || uint64(n) != cnt || cnt != 33 {
		t.Fatalf("count %d vs iterated %d: %v", cnt, n, err)
	}
	if ok, err := c.Delete("x"); err != nil || !ok {
		t.Fatalf("delete: %v %v", ok, err)
	}
	st, err := c.Stats()
	if err != nil || st.Documents != 32 || st.Indexes != 2 {
		t.Fatalf("stats: %+v %v", st, err)
	}
	ix, err := c.Indexes()
	if err != nil || len(ix) != 3 || ix[0].Path != "_id" {
		t.Fatalf("indexes: %+v %v", ix, err)
	}
	if names, err := db.Collections(); err != nil || fmt.Sprint(names) != "[people]" {
		t.Fatalf("collections: %v %v", names, err)
	}
	if ok, err := db.DropCollection("people"); err != nil || !ok {
		t.Fatalf("drop: %v %v", ok, err)
	}
}

// Issue 29: a failed write leaves no collection behind; a missing
// collection reads as an empty one; hostile update paths are refused.
func TestHostileDocumentInput(t *testing.T) {
	db := openT(t, t.TempDir())
	defer db.Close()
	never := db.Collection("never")
	if _, err := never.Insert(map[string]any{"_id": 5}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("non-string _id: %v", err)
	}
	if _, err := never.Insert(map[string]any{"$where": 1}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("$ name: %v", err)
	}
	if names, err := db.ListCollections(); err != nil || len(names) != 0 {
		t.Fatalf("a failed write created a collection: %v %v", names, err)
	}
	if n, err := never.Count(nil); err != nil || n != 0 {
		t.Fatalf("count of a missing collection: %d %v", n, err)
	}
	if ix, err := never.ListIndexes(); err != nil || len(ix) != 1 || ix[0].Path != "_id" {
		t.Fatalf("indexes of a missing collection: %v %v", ix, err)
	}
	if existed, err := never.Delete("1"); err != nil || existed {
		t.Fatalf("delete in a missing collection: %v %v", existed, err)
	}
	if _, err := never.Get("1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get in a missing collection: %v", err)
	}

	c := db.Collection("c")
	id, err := c.Insert(map[string]any{"a": 1})
	if err != nil {
		t.Fatal(err)
	}
	long := "a"
	for i := 0; i < 100000; i++ {
		long += ".a"
	}
	if _, err := c.UpdateWith(id, map[string]any{"$set": map[string]any{long: 1}}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("100,000-segment path: %v", err)
	}
	if n, err := c.Count(nil); err != nil || n != 1 {
		t.Fatalf("count after a refused update: %d %v", n, err)
	}
}
