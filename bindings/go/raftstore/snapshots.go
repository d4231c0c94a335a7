package raftstore

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	keyval "github.com/keyval/keyval/bindings/go"
)

// SnapshotStore is a raft.SnapshotStore on a keyval.DB: each snapshot is
// streamed into the keyspace "raft-snapshots" in chunks of 1 MiB (values
// that stay in the DB's WAL segments, so neither writing nor reading a
// snapshot holds it in memory), and becomes visible only when its sink is
// closed: one durable write then records its metadata with the SHA-256
// and size of its bytes (an atomic install: a crash before that leaves
// only chunks, which the next Open deletes). Open(id) streams the chunks
// back and fails the read at its end if the bytes do not match the
// SHA-256. The newest `retain` snapshots are kept; older ones are deleted
// when a new one is installed.
//
// Keys of the keyspace: "m/<id>" the metadata (JSON: raft.SnapshotMeta,
// the SHA-256 in hex and the chunk count); "c/<id>/<chunk, 8 bytes
// big-endian>" the chunks. Ids are "<term>-<index>-<unix ms>", so they sort
// by creation within a term as hashicorp's FileSnapshotStore's do.
//
// Safe for concurrent use.
type SnapshotStore struct {
	db     *keyval.DB
	ks     *keyval.Keyspace
	retain int
	own    bool
	mu     sync.Mutex
}

// SnapshotChunk is the size of the chunks snapshots are stored in.
const SnapshotChunk = 1 << 20

type storedMeta struct {
	raft.SnapshotMeta
	SHA256 string
	Chunks uint64
}

// NewSnapshotStore keeps snapshots in db (keyspace "raft-snapshots"),
// retaining the newest `retain` (at least 1). Chunks of a snapshot whose
// sink was never closed (a crash while it was written) are deleted.
// Errors: ErrInvalidArgument (retain < 1), those of db.Keyspace.
func NewSnapshotStore(db *keyval.DB, retain int) (*SnapshotStore, error) {
	if retain < 1 {
		return nil, fmt.Errorf("%w: retain must be at least 1", keyval.ErrInvalidArgument)
	}
	ks, err := db.Keyspace("raft-snapshots")
	if err != nil {
		return nil, err
	}
	s := &SnapshotStore{db: db, ks: ks, retain: retain}
	return s, s.removeIncomplete()
}

// OpenSnapshotStore opens (creating) a keyval.DB in dir for the snapshots
// and returns NewSnapshotStore on it; Close closes that DB.
func OpenSnapshotStore(dir string, retain int, opts ...keyval.Option) (*SnapshotStore, error) {
	db, err := keyval.Open(dir, opts...)
	if err != nil {
		return nil, err
	}
	s, err := NewSnapshotStore(db, retain)
	if err != nil {
		db.Close()
		return nil, err
	}
	s.own = true
	return s, nil
}

// Close closes the DB if OpenSnapshotStore opened it.
func (s *SnapshotStore) Close() error {
	if s.own {
		return s.db.Close()
	}
	return nil
}

func metaKey(id string) []byte { return []byte("m/" + id) }

func chunkKey(id string, n uint64) []byte {
	k := []byte("c/" + id + "/")
	return binary.BigEndian.AppendUint64(k, n)
}

// removeIncomplete deletes chunks whose snapshot has no metadata.
func (s *SnapshotStore) removeIncomplete() error {
	it, err := s.ks.NewIterator(&keyval.IterOptions{Prefix: []byte("c/")})
	if err != nil {
		return err
	}
	defer it.Close()
	known := map[string]bool{}
	b := s.db.NewBatch()
	for it.Next() {
		k := it.Key()
		id := string(k[2 : len(k)-9])
		ok, seen := known[id]
		if !seen {
			ok, err = s.ks.Has(metaKey(id))
			if err != nil {
				return err
			}
			known[id] = ok
		}
		if !ok {
			b.DeleteIn(s.ks, bytes.Clone(k))
		}
	}
	if err := it.Err(); err != nil {
		return err
	}
	if b.Len() == 0 {
		return nil
	}
	return b.Commit()
}

// Create starts a snapshot; its bytes are written to the returned sink.
func (s *SnapshotStore) Create(version raft.SnapshotVersion, index, term uint64,
	configuration raft.Configuration, configurationIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	if version != 1 {
		return nil, fmt.Errorf("unsupported snapshot version %d", version)
	}
	id := fmt.Sprintf("%d-%d-%d", term, index, time.Now().UnixMilli())
	return &snapshotSink{
		s: s,
		meta: storedMeta{SnapshotMeta: raft.SnapshotMeta{
			Version: version, ID: id, Index: index, Term: term,
			Configuration: configuration, ConfigurationIndex: configurationIndex,
		}},
		hash: sha256.New(),
		buf:  make([]byte, 0, SnapshotChunk),
	}, nil
}

// List returns the installed snapshots, newest first.
func (s *SnapshotStore) List() ([]*raft.SnapshotMeta, error) {
	metas, err := s.list()
	if err != nil {
		return nil, err
	}
	out := make([]*raft.SnapshotMeta, 0, len(metas))
	for i := range metas {
		m := metas[i].SnapshotMeta
		out = append(out, &m)
	}
	return out, nil
}

func (s *SnapshotStore) list() ([]storedMeta, error) {
	it, err := s.ks.NewIterator(&keyval.IterOptions{Prefix: []byte("m/")})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []storedMeta
	for it.Next() {
		var m storedMeta
		if err := json.Unmarshal(it.Value(), &m); err != nil {
			return nil, fmt.Errorf("snapshot metadata %q: %w", it.Key(), err)
		}
		out = append(out, m)
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Term != b.Term {
			return a.Term > b.Term
		}
		if a.Index != b.Index {
			return a.Index > b.Index
		}
		return a.ID > b.ID
	})
	return out, nil
}

// Open returns a snapshot's metadata and a reader of its bytes, which
// reads one chunk at a time and returns an error at the end if they do
// not match the SHA-256 recorded at install.
func (s *SnapshotStore) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	v, err := s.ks.Get(metaKey(id))
	if err != nil {
		return nil, nil, err
	}
	if v == nil {
		return nil, nil, fmt.Errorf("%w: no snapshot %q", keyval.ErrNotFound, id)
	}
	var m storedMeta
	if err := json.Unmarshal(v, &m); err != nil {
		return nil, nil, err
	}
	meta := m.SnapshotMeta
	return &meta, &snapshotReader{s: s, meta: m, hash: sha256.New()}, nil
}

type snapshotSink struct {
	s      *SnapshotStore
	meta   storedMeta
	hash   hash.Hash
	buf    []byte
	chunks uint64
	done   bool
}

func (k *snapshotSink) ID() string { return k.meta.ID }

func (k *snapshotSink) Write(p []byte) (int, error) {
	if k.done {
		return 0, errors.New("snapshot sink already closed")
	}
	n := len(p)
	for len(p) > 0 {
		room := SnapshotChunk - len(k.buf)
		take := min(room, len(p))
		k.buf = append(k.buf, p[:take]...)
		p = p[take:]
		if len(k.buf) == SnapshotChunk {
			if err := k.flush(); err != nil {
				return n - len(p), err
			}
		}
	}
	return n, nil
}

// flush writes the buffered chunk (handed to the OS; the install's sync
// makes it durable).
func (k *snapshotSink) flush() error {
	if len(k.buf) == 0 {
		return nil
	}
	k.hash.Write(k.buf)
	k.meta.Size += int64(len(k.buf))
	if err := k.s.ks.SetWith(chunkKey(k.meta.ID, k.chunks), k.buf, keyval.DurabilityOS); err != nil {
		return err
	}
	k.chunks++
	k.buf = k.buf[:0]
	return nil
}

// Close installs the snapshot: the last chunk, then its metadata, in one
// durable write; then the snapshots beyond retention are deleted.
func (k *snapshotSink) Close() error {
	if k.done {
		return nil
	}
	k.done = true
	if err := k.flush(); err != nil {
		return err
	}
	k.meta.Chunks = k.chunks
	k.meta.SHA256 = fmt.Sprintf("%x", k.hash.Sum(nil))
	m, err := json.Marshal(k.meta)
	if err != nil {
		return err
	}
	if err := k.s.ks.SetWith(metaKey(k.meta.ID), m, keyval.DurabilitySync); err != nil {
		return err
	}
	return k.s.reap()
}

// Cancel drops what was written.
func (k *snapshotSink) Cancel() error {
	if k.done {
		return nil
	}
	k.done = true
	return k.s.deleteChunks(k.meta.ID, k.chunks)
}

func (s *SnapshotStore) deleteChunks(id string, n uint64) error {
	b := s.db.NewBatch()
	for i := uint64(0); i < n; i++ {
		b.DeleteIn(s.ks, chunkKey(id, i))
	}
	if b.Len() == 0 {
		return nil
	}
	return b.Commit()
}

// reap deletes every snapshot beyond the newest `retain`: its metadata
// first (durably), then its chunks.
func (s *SnapshotStore) reap() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	metas, err := s.list()
	if err != nil {
		return err
	}
	for _, m := range metas[min(len(metas), s.retain):] {
		if err := s.ks.Delete(metaKey(m.ID)); err != nil {
			return err
		}
		if err := s.deleteChunks(m.ID, m.Chunks); err != nil {
			return err
		}
	}
	return nil
}

type snapshotReader struct {
	s    *SnapshotStore
	meta storedMeta
	hash hash.Hash
	next uint64
	cur  []byte
	err  error
}

func (r *snapshotReader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.next == r.meta.Chunks {
			if got := fmt.Sprintf("%x", r.hash.Sum(nil)); got != r.meta.SHA256 {
				r.err = fmt.Errorf("%w: snapshot %s: SHA-256 %s, recorded %s", keyval.ErrCorruption, r.meta.ID, got, r.meta.SHA256)
			} else {
				r.err = io.EOF
			}
			return 0, r.err
		}
		v, err := r.s.ks.Get(chunkKey(r.meta.ID, r.next))
		if err != nil {
			r.err = err
			return 0, err
		}
		if v == nil {
			r.err = fmt.Errorf("%w: snapshot %s: chunk %d is missing", keyval.ErrCorruption, r.meta.ID, r.next)
			return 0, r.err
		}
		r.next++
		r.hash.Write(v)
		r.cur = v
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

func (r *snapshotReader) Close() error { return nil }
