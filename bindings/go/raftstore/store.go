// Package raftstore implements hashicorp/raft's LogStore (also
// MonotonicLogStore) and StableStore on KeyVal: the log on a keyval.RaftLog
// (a checksummed, group-committed write-ahead log), the stable store on a
// keyval.DB. Both are durable (fdatasync) before a call returns, under the
// default keyval.DurabilitySync.
//
//	store, err := raftstore.Open("/var/lib/node1/raft")
//	r, err := raft.NewRaft(conf, fsm, store, store, snaps, transport)
//
// Open uses two subdirectories, "log" and "stable". A Store is safe for
// concurrent use.
//
// # Entry encoding
//
// Each raft.Log is one RaftLog entry with the same index and term; its
// payload is (integers little-endian):
//
//	byte  0      format version, 1
//	byte  1      raft.LogType
//	bytes 2..10  AppendedAt, i64 Unix nanoseconds (0 = the zero time)
//	bytes 10..14 u32 length E of Extensions
//	E bytes      Extensions
//	the rest     Data
//
// Stable store values are stored as given; SetUint64 stores 8 bytes,
// big-endian (as raft-boltdb does).
//
// # Contracts
//
//   - GetLog of a missing (compacted or never written) index returns exactly
//     raft.ErrLogNotFound.
//   - Get and GetUint64 of a missing key return an error whose text is
//     exactly "not found" (ErrKeyNotFound), as raft expects.
//   - DeleteRange(min, max) is inclusive. A range that reaches the last
//     entry is a suffix truncation (conflict resolution); a range that
//     starts at or before the first entry is a prefix truncation
//     (compaction), which reclaims whole WAL segments. A range strictly
//     inside the log is refused: Raft never asks for one. A range that
//     covers every entry is deferred, as described next.
//   - The store is monotonic: StoreLogs must continue the log without gaps,
//     except that an empty log accepts any next index (after a snapshot
//     restore, raft removes every entry and continues after the snapshot).
//
// # Removing every entry
//
// hashicorp/raft removes every entry, DeleteRange(first, last), in two
// situations: after installing a snapshot on a MonotonicLogStore
// (removeOldLogs) and when conflict resolution starts at the first entry.
// In the first, raft 1.7.3 keeps its in-memory last index when the log ran
// ahead of the snapshot, and may then append at that stale last index + 1
// and apply the entries between the snapshot and it: with the entries gone
// it panics with "log not found", and again on every restart, since the
// append left a gap after the snapshot (hashicorp/raft issue 697, open
// upstream; seen in this repository's fault test, docs/raft.md).
//
// So a DeleteRange that covers every entry is recorded and carried out by
// the next write, which shows what raft meant:
//
//   - StoreLogs that continues the held entries (index last+1): raft
//     still holds them, and it appends only after matching the leader's
//     entry at last (index and term), so by the Log Matching property every
//     held entry is the leader's. They stay, and the removal is dropped.
//   - any other StoreLogs (after the snapshot, or at the first index after
//     a conflict): every entry is removed durably first, then the append
//     follows the rules above.
//   - Close carries out a pending removal.
//
// Until then FirstIndex, LastIndex and GetLog still show the entries,
// which is what raft's stale last index expects. A crash before the next
// write leaves them in place: the state of a crash just before the
// DeleteRange call, which raft recovers from like any other.
package raftstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	keyval "github.com/keyval/keyval/bindings/go"
)

// ErrKeyNotFound is returned by Get and GetUint64 for a missing key; its
// text is exactly "not found", which hashicorp/raft checks for.
var ErrKeyNotFound = errors.New("not found")

const formatVersion = 1

// Store is a raft.LogStore, raft.MonotonicLogStore and raft.StableStore.
type Store struct {
	log    *keyval.RaftLog
	stable *keyval.DB

	// mu orders the log's writes (StoreLogs, DeleteRange, Close) with the
	// pending removal; reads need no lock.
	mu sync.Mutex
	// removeAll: a DeleteRange covered every entry and waits for the next
	// write (see "Removing every entry").
	removeAll bool
}

var (
	_ raft.LogStore          = (*Store)(nil)
	_ raft.MonotonicLogStore = (*Store)(nil)
	_ raft.StableStore       = (*Store)(nil)
)

// Open opens (creating if missing) the store in dir: the log in dir/log,
// the stable store in dir/stable. opts apply to both (for example
// keyval.WithSegmentSize; the stable store defaults to 1 MiB segments, the
// log to keyval's 64 MiB); the durability must not be
// keyval.DurabilityBuffered. Errors: as keyval.Open and keyval.OpenRaftLog
// (keyval.ErrLocked when another process has the directory).
func Open(dir string, opts ...keyval.Option) (*Store, error) {
	l, err := keyval.OpenRaftLog(filepath.Join(dir, "log"), opts...)
	if err != nil {
		return nil, err
	}
	// The stable store holds a few small keys: 1 MiB segments, not 64 MiB,
	// unless the caller says otherwise.
	stableOpts := append([]keyval.Option{keyval.WithSegmentSize(1 << 20)}, opts...)
	db, err := keyval.Open(filepath.Join(dir, "stable"), stableOpts...)
	if err != nil {
		l.Close()
		return nil, err
	}
	return &Store{log: l, stable: db}, nil
}

// Close carries out a pending removal of every entry, then syncs and
// releases both directories. Closing twice is a no-op.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if s.removeAll {
		s.removeAll = false
		err = s.removeEntries()
	}
	return errors.Join(err, s.log.Close(), s.stable.Close())
}

// removeEntries removes every entry durably (a suffix truncation from the
// first index). The caller holds s.mu.
func (s *Store) removeEntries() error {
	first, last, err := s.log.Bounds()
	if err != nil || last < first {
		return err
	}
	return s.log.TruncateSuffix(first)
}

// RaftLog gives access to the underlying log (for inspection and tests).
func (s *Store) RaftLog() *keyval.RaftLog { return s.log }

// IsMonotonic reports true: StoreLogs must not leave gaps.
func (s *Store) IsMonotonic() bool { return true }

// FirstIndex returns the first index written, 0 for no entries.
func (s *Store) FirstIndex() (uint64, error) {
	first, last, err := s.log.Bounds()
	if err != nil || last < first {
		return 0, err
	}
	return first, nil
}

// LastIndex returns the last index written, 0 for no entries.
func (s *Store) LastIndex() (uint64, error) {
	first, last, err := s.log.Bounds()
	if err != nil || last < first {
		return 0, err
	}
	return last, nil
}

// GetLog reads the entry at index into out. A missing index returns
// exactly raft.ErrLogNotFound; a damaged entry returns an error wrapping
// keyval.ErrCorruption.
func (s *Store) GetLog(index uint64, out *raft.Log) error {
	e, err := s.log.Entry(index)
	if errors.Is(err, keyval.ErrCompacted) || errors.Is(err, keyval.ErrOutOfRange) {
		return raft.ErrLogNotFound
	}
	if err != nil {
		return err
	}
	return decode(e, out)
}

// StoreLog stores one entry.
func (s *Store) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

// StoreLogs stores entries durably, in one WAL record (one fsync, shared
// with concurrent callers). The indexes must be consecutive and continue
// the log; an empty log accepts any next index. It first settles a pending
// removal of every entry (see "Removing every entry").
func (s *Store) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	es := make([]keyval.Entry, len(logs))
	for i, l := range logs {
		if l.Index != logs[0].Index+uint64(i) {
			return fmt.Errorf("raftstore: log indexes are not consecutive (%d after %d)", l.Index, logs[0].Index+uint64(i)-1)
		}
		es[i] = keyval.Entry{Index: l.Index, Term: l.Term, Data: encode(l)}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	first, last, err := s.log.Bounds()
	if err != nil {
		return err
	}
	if s.removeAll {
		if logs[0].Index != last+1 {
			if err := s.removeEntries(); err != nil {
				return err
			}
			if first, last, err = s.log.Bounds(); err != nil {
				return err
			}
		}
		// Either way the removal is settled; if the entries were kept,
		// raft continues them.
		s.removeAll = false
	}
	if next := logs[0].Index; last < first && next > first {
		// An empty log restarting after a snapshot: record the gap as a
		// compaction so that the log stays contiguous.
		if err := s.log.TruncatePrefix(next - 1); err != nil {
			return err
		}
	}
	return s.log.Append(es)
}

// DeleteRange deletes the entries min..max, inclusive (see the package
// documentation for how ranges map onto truncations, and "Removing every
// entry" for a range that covers them all).
func (s *Store) DeleteRange(min, max uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	first, last, err := s.log.Bounds()
	if err != nil {
		return err
	}
	switch {
	case last < first || max < min || max < first || min > last:
		return nil // nothing held in the range
	case min <= first && max >= last:
		s.removeAll = true
		return nil
	case max >= last:
		return s.log.TruncateSuffix(maxU(min, first))
	case min <= first:
		return s.log.TruncatePrefix(max)
	default:
		return fmt.Errorf("raftstore: DeleteRange(%d, %d) would leave a hole in %d..%d", min, max, first, last)
	}
}

func maxU(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

// Set stores val under key, durably.
func (s *Store) Set(key, val []byte) error { return s.stable.Set(key, val) }

// Get returns the value of key, or ErrKeyNotFound ("not found").
func (s *Store) Get(key []byte) ([]byte, error) {
	v, err := s.stable.Get(key)
	if errors.Is(err, keyval.ErrNotFound) {
		return nil, ErrKeyNotFound
	}
	return v, err
}

// SetUint64 stores val under key as 8 big-endian bytes, durably.
func (s *Store) SetUint64(key []byte, val uint64) error {
	return s.stable.Set(key, binary.BigEndian.AppendUint64(nil, val))
}

// GetUint64 returns the value stored by SetUint64, or 0 and ErrKeyNotFound
// ("not found").
func (s *Store) GetUint64(key []byte) (uint64, error) {
	v, err := s.Get(key)
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("raftstore: value of %q is %d bytes, not a uint64", key, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

func encode(l *raft.Log) []byte {
	b := make([]byte, 14, 14+len(l.Extensions)+len(l.Data))
	b[0] = formatVersion
	b[1] = byte(l.Type)
	var at int64
	if !l.AppendedAt.IsZero() {
		at = l.AppendedAt.UnixNano()
	}
	binary.LittleEndian.PutUint64(b[2:], uint64(at))
	binary.LittleEndian.PutUint32(b[10:], uint32(len(l.Extensions)))
	b = append(b, l.Extensions...)
	return append(b, l.Data...)
}

func decode(e keyval.Entry, out *raft.Log) error {
	p := e.Data
	if len(p) < 14 || p[0] != formatVersion {
		return fmt.Errorf("%w: raftstore: entry %d has an unknown encoding", keyval.ErrCorruption, e.Index)
	}
	n := binary.LittleEndian.Uint32(p[10:])
	if uint64(len(p)-14) < uint64(n) {
		return fmt.Errorf("%w: raftstore: entry %d is shorter than its extensions", keyval.ErrCorruption, e.Index)
	}
	*out = raft.Log{Index: e.Index, Term: e.Term, Type: raft.LogType(p[1])}
	if at := int64(binary.LittleEndian.Uint64(p[2:])); at != 0 {
		out.AppendedAt = time.Unix(0, at)
	}
	if n > 0 {
		out.Extensions = p[14 : 14+n]
	}
	if len(p) > int(14+n) {
		out.Data = p[14+n:]
	}
	return nil
}
