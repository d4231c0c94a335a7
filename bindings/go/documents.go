package keyval

/*
#include <stdlib.h>
#include "keyval.h"
*/
import "C"

import (
	"bytes"
	"encoding/json"
	"fmt"
	"iter"
	"unsafe"
)

// Document is a JSON object as encoding/json decodes it. Numbers decode as
// json.Number, so integers keep their exact value.
type Document = map[string]any

// Collection is a collection of JSON documents in a DB (see
// docs/documents.md): documents with a string "_id" (assigned "1", "2", ...
// when absent), filtered, sorted and paginated queries, update operators and
// persistent secondary indexes. Every write is one atomic batch with its
// index entries. Get one with DB.Collection; it is created by the first
// write. Safe for concurrent use.
type Collection struct {
	db   *DB
	name string
}

// FindOptions controls Find: Sort fields ("age" ascending, "-age"
// descending; ties by _id), a Projection ({"name": 1} or {"big": 0}), Limit
// (0 means the default 50; at most 1000), Offset, and the After/Before
// cursors of a previous Page.
type FindOptions struct {
	Sort       []string       `json:"sort,omitempty"`
	Projection map[string]int `json:"projection,omitempty"`
	Limit      int            `json:"limit,omitempty"`
	Offset     int            `json:"offset,omitempty"`
	After      string         `json:"after,omitempty"`
	Before     string         `json:"before,omitempty"`
}

// Page is one page of Find results.
type Page struct {
	Docs       []Document `json:"docs"`
	Total      uint64     `json:"total"`
	HasNext    bool       `json:"has_next"`
	HasPrev    bool       `json:"has_prev"`
	NextCursor string     `json:"next_cursor"`
	PrevCursor string     `json:"prev_cursor"`
}

// Plan is how Find runs a query (Collection.Explain).
type Plan struct {
	Plan    string `json:"plan"`
	Index   string `json:"index"`
	Ranges  int    `json:"ranges"`
	Entries uint64 `json:"entries"`
	Sort    string `json:"sort"`
}

// IndexInfo describes one index ("_id" first).
type IndexInfo struct {
	Path     string `json:"path"`
	Unique   bool   `json:"unique"`
	Multikey bool   `json:"multikey"`
}

// CollectionStats counts a collection's documents, their JSON bytes, its
// secondary indexes and their entries.
type CollectionStats struct {
	Documents    uint64 `json:"documents"`
	Bytes        uint64 `json:"bytes"`
	Indexes      uint64 `json:"indexes"`
	IndexEntries uint64 `json:"index_entries"`
}

// Collection returns the collection name (1-200 bytes of UTF-8). Nothing is
// created until the first write (or CreateCollection).
func (db *DB) Collection(name string) *Collection { return &Collection{db: db, name: name} }

// CreateCollection creates collection name if missing (idempotent).
// Errors: ErrInvalidArgument (bad name), ErrClosed, ErrPoisoned, ErrIO.
func (db *DB) CreateCollection(name string) (*Collection, error) {
	err := db.with(func(h *C.kv_db) C.kv_status {
		np, nl := bytesPtr([]byte(name))
		return C.kv_coll_create(h, np, nl)
	})
	return db.Collection(name), err
}

// ListCollections is Collections, under the name the Rust API and the
// docs use.
func (db *DB) ListCollections() ([]string, error) { return db.Collections() }

// Collections lists the collections, sorted. Errors: ErrClosed.
func (db *DB) Collections() ([]string, error) {
	var names []string
	err := db.jsonOut(func(h *C.kv_db, out **C.uint8_t, n *C.size_t) C.kv_status {
		return C.kv_coll_list(h, out, n)
	}, &names)
	return names, err
}

// DropCollection drops collection name with its documents and indexes and
// reports whether it existed. Errors as CreateCollection.
func (db *DB) DropCollection(name string) (bool, error) {
	var existed C.int32_t
	err := db.with(func(h *C.kv_db) C.kv_status {
		np, nl := bytesPtr([]byte(name))
		return C.kv_coll_drop(h, np, nl, &existed)
	})
	return existed != 0, err
}

// jsonOut runs a C call that returns a JSON buffer and decodes it into v
// (nil: discard).
func (db *DB) jsonOut(f func(h *C.kv_db, out **C.uint8_t, n *C.size_t) C.kv_status, v any) error {
	var raw []byte
	err := db.with(func(h *C.kv_db) C.kv_status {
		var out *C.uint8_t
		var n C.size_t
		st := f(h, &out, &n)
		if st == C.KV_OK && out != nil {
			raw = C.GoBytes(unsafe.Pointer(out), C.int(n))
			C.kv_free(unsafe.Pointer(out))
		}
		return st
	})
	if err != nil || v == nil || raw == nil {
		return err
	}
	return decodeJSON(raw, v)
}

func decodeJSON(raw []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return newError(StatusInvalidArgument, "decoding the library's JSON: "+err.Error())
	}
	return nil
}

func encodeJSON(v any) ([]byte, error) {
	if raw, ok := v.(json.RawMessage); ok {
		return raw, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, newError(StatusInvalidArgument, "encoding JSON: "+err.Error())
	}
	return b, nil
}

// call runs a C function on this collection with one JSON argument and an
// optional JSON result decoded into out.
func (c *Collection) call(arg any, out any, f func(h *C.kv_db, cp *C.uint8_t, cl C.size_t, ap *C.uint8_t, al C.size_t, o **C.uint8_t, n *C.size_t) C.kv_status) error {
	var a []byte
	if arg != nil {
		var err error
		if a, err = encodeJSON(arg); err != nil {
			return err
		}
	}
	return c.db.jsonOut(func(h *C.kv_db, o **C.uint8_t, n *C.size_t) C.kv_status {
		cp, cl := bytesPtr([]byte(c.name))
		ap, al := bytesPtr(a)
		return f(h, cp, cl, ap, al, o, n)
	}, out)
}

// Name is the collection's name.
func (c *Collection) Name() string { return c.name }

// Insert stores doc (anything encoding/json encodes as an object) and
// returns its id: its "_id" string, or the next automatic id. Errors:
// ErrDuplicateKey (the _id exists, or a unique index holds one of its
// values), ErrInvalidArgument (not an object, an _id that is not a
// non-empty string), ErrClosed, ErrPoisoned, ErrIO. On error nothing is
// written.
func (c *Collection) Insert(doc any) (string, error) {
	var raw []byte
	err := c.call(doc, nil, func(h *C.kv_db, cp *C.uint8_t, cl C.size_t, ap *C.uint8_t, al C.size_t, o **C.uint8_t, n *C.size_t) C.kv_status {
		st := C.kv_doc_insert(h, cp, cl, ap, al, o, n)
		if st == C.KV_OK {
			raw = C.GoBytes(unsafe.Pointer(*o), C.int(*n))
			C.kv_free(unsafe.Pointer(*o))
			*o = nil
		}
		return st
	})
	return string(raw), err
}

// InsertMany stores every document atomically, or none, and returns their
// ids in order. Errors as Insert.
func (c *Collection) InsertMany(docs []any) ([]string, error) {
	var ids []string
	err := c.call(docs, &ids, func(h *C.kv_db, cp *C.uint8_t, cl C.size_t, ap *C.uint8_t, al C.size_t, o **C.uint8_t, n *C.size_t) C.kv_status {
		return C.kv_doc_insert(h, cp, cl, ap, al, o, n)
	})
	return ids, err
}

// Get returns document id. Errors: ErrNotFound (no such document; a
// missing collection has none), ErrInvalidArgument (empty id), ErrClosed.
func (c *Collection) Get(id string) (Document, error) {
	var d Document
	return d, c.GetInto(id, &d)
}

// GetInto decodes document id into v (a struct, a map, ...). Errors as Get.
func (c *Collection) GetInto(id string, v any) error {
	return c.call(json.RawMessage(id), v, func(h *C.kv_db, cp *C.uint8_t, cl C.size_t, ap *C.uint8_t, al C.size_t, o **C.uint8_t, n *C.size_t) C.kv_status {
		return C.kv_doc_get(h, cp, cl, ap, al, o, n)
	})
}

// Delete removes document id and reports whether it existed (false in a
// missing collection, which it does not create). Errors:
// ErrInvalidArgument, ErrClosed, ErrPoisoned, ErrIO.
func (c *Collection) Delete(id string) (bool, error) {
	var existed C.int32_t
	err := c.db.with(func(h *C.kv_db) C.kv_status {
		cp, cl := bytesPtr([]byte(c.name))
		ip, il := bytesPtr([]byte(id))
		return C.kv_doc_delete(h, cp, cl, ip, il, &existed)
	})
	return existed != 0, err
}

func (c *Collection) update(id string, change any, mode C.uint32_t) (Document, error) {
	ch, err := encodeJSON(change)
	if err != nil {
		return nil, err
	}
	var d Document
	err = c.db.jsonOut(func(h *C.kv_db, o **C.uint8_t, n *C.size_t) C.kv_status {
		cp, cl := bytesPtr([]byte(c.name))
		ip, il := bytesPtr([]byte(id))
		chp, chl := bytesPtr(ch)
		return C.kv_doc_update(h, cp, cl, ip, il, chp, chl, mode, o, n)
	}, &d)
	return d, err
}

// Update applies the JSON merge patch (RFC 7396) patch to document id and
// returns the new document. Errors: ErrNotFound, ErrInvalidArgument (not
// an object, changes _id), ErrDuplicateKey, ErrClosed, ErrPoisoned, ErrIO.
func (c *Collection) Update(id string, patch any) (Document, error) { return c.update(id, patch, 0) }

// UpdateWith applies update operators ($set $unset $inc $mul $min $max
// $rename $push $pull) to document id. Errors as Update.
func (c *Collection) UpdateWith(id string, ops any) (Document, error) {
	return c.update(id, ops, 1)
}

// Replace replaces document id with doc; with upsert a missing document is
// inserted, without it that is ErrNotFound. Errors as Update.
func (c *Collection) Replace(id string, doc any, upsert bool) (Document, error) {
	mode := C.uint32_t(2)
	if upsert {
		mode = 3
	}
	return c.update(id, doc, mode)
}

// UpdateMany merge-patches several documents atomically (map of id to
// patch): all are checked first; one missing id fails the call with
// ErrNotFound and changes nothing.
func (c *Collection) UpdateMany(patches map[string]any) error {
	pairs := make([][2]any, 0, len(patches))
	for id, p := range patches {
		pairs = append(pairs, [2]any{id, p})
	}
	b, err := encodeJSON(pairs)
	if err != nil {
		return err
	}
	return c.db.with(func(h *C.kv_db) C.kv_status {
		cp, cl := bytesPtr([]byte(c.name))
		bp, bl := bytesPtr(b)
		return C.kv_doc_update_many(h, cp, cl, bp, bl)
	})
}

func (c *Collection) query(filter any, opts *FindOptions, explain bool, out any) error {
	if filter == nil {
		filter = map[string]any{}
	}
	f, err := encodeJSON(filter)
	if err != nil {
		return err
	}
	if opts == nil {
		opts = &FindOptions{}
	}
	o, err := encodeJSON(opts)
	if err != nil {
		return err
	}
	return c.db.jsonOut(func(h *C.kv_db, out **C.uint8_t, n *C.size_t) C.kv_status {
		cp, cl := bytesPtr([]byte(c.name))
		fp, fl := bytesPtr(f)
		op, ol := bytesPtr(o)
		if explain {
			return C.kv_doc_explain(h, cp, cl, fp, fl, op, ol, out, n)
		}
		return C.kv_doc_find(h, cp, cl, fp, fl, op, ol, out, n)
	}, out)
}

// Find returns one page of the documents matching filter (a MongoDB-style
// filter such as map[string]any{"age": map[string]any{"$gte": 18}}; nil
// for all) under opts (nil for defaults). Follow Page.NextCursor with
// opts.After to visit every match exactly once. Errors: ErrInvalidArgument
// (bad filter or options), ErrClosed.
func (c *Collection) Find(filter any, opts *FindOptions) (*Page, error) {
	var p Page
	if err := c.query(filter, opts, false, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// All iterates over every document matching filter in _id order, a page
// of 1000 at a time (no lock is held between pages). Iteration stops at the
// first error, which is yielded.
func (c *Collection) All(filter any) iter.Seq2[Document, error] {
	return func(yield func(Document, error) bool) {
		opts := &FindOptions{Limit: 1000}
		for {
			p, err := c.Find(filter, opts)
			if err != nil {
				yield(nil, err)
				return
			}
			for _, d := range p.Docs {
				if !yield(d, nil) {
					return
				}
			}
			if !p.HasNext {
				return
			}
			opts.After = p.NextCursor
		}
	}
}

// Count returns the number of documents matching filter (0 for a missing
// collection). Errors: ErrInvalidArgument, ErrClosed.
func (c *Collection) Count(filter any) (uint64, error) {
	if filter == nil {
		filter = map[string]any{}
	}
	f, err := encodeJSON(filter)
	if err != nil {
		return 0, err
	}
	var n C.uint64_t
	err = c.db.with(func(h *C.kv_db) C.kv_status {
		cp, cl := bytesPtr([]byte(c.name))
		fp, fl := bytesPtr(f)
		return C.kv_doc_count(h, cp, cl, fp, fl, &n)
	})
	return uint64(n), err
}

// Explain reports how Find would run filter with opts: the index used (or
// a collection scan) and how many entries it reads.
func (c *Collection) Explain(filter any, opts *FindOptions) (Plan, error) {
	var p Plan
	err := c.query(filter, opts, true, &p)
	return p, err
}

// CreateIndex indexes the dotted path over the existing documents (unique:
// no two documents may share a value; missing and null are exempt). Errors:
// ErrDuplicateKey (nothing is written), ErrInvalidArgument, ErrClosed,
// ErrPoisoned, ErrIO.
func (c *Collection) CreateIndex(path string, unique bool) error {
	u := C.int32_t(0)
	if unique {
		u = 1
	}
	return c.db.with(func(h *C.kv_db) C.kv_status {
		cp, cl := bytesPtr([]byte(c.name))
		pp, pl := bytesPtr([]byte(path))
		return C.kv_coll_create_index(h, cp, cl, pp, pl, u)
	})
}

// DropIndex drops the index on path and reports whether it existed.
func (c *Collection) DropIndex(path string) (bool, error) {
	var existed C.int32_t
	err := c.db.with(func(h *C.kv_db) C.kv_status {
		cp, cl := bytesPtr([]byte(c.name))
		pp, pl := bytesPtr([]byte(path))
		return C.kv_coll_drop_index(h, cp, cl, pp, pl, &existed)
	})
	return existed != 0, err
}

// ListIndexes is Indexes, under the name the Rust API and the docs use.
func (c *Collection) ListIndexes() ([]IndexInfo, error) { return c.Indexes() }

// Indexes lists the indexes, "_id" first (only "_id" for a missing
// collection). Errors: ErrClosed.
func (c *Collection) Indexes() ([]IndexInfo, error) {
	var out []IndexInfo
	err := c.call(nil, &out, func(h *C.kv_db, cp *C.uint8_t, cl C.size_t, _ *C.uint8_t, _ C.size_t, o **C.uint8_t, n *C.size_t) C.kv_status {
		return C.kv_coll_list_indexes(h, cp, cl, o, n)
	})
	return out, err
}

// Stats counts documents, bytes and index entries (all 0 for a missing
// collection). Errors: ErrClosed.
func (c *Collection) Stats() (CollectionStats, error) {
	var s CollectionStats
	err := c.call(nil, &s, func(h *C.kv_db, cp *C.uint8_t, cl C.size_t, _ *C.uint8_t, _ C.size_t, o **C.uint8_t, n *C.size_t) C.kv_status {
		return C.kv_coll_stats(h, cp, cl, o, n)
	})
	return s, err
}

// String describes the collection.
func (c *Collection) String() string { return fmt.Sprintf("keyval.Collection(%q)", c.name) }
