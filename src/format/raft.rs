//! The payloads of the Raft log's WAL records (record types 10-15; the
//! record frame is [`super::record`]). All integers little-endian.
//!
//! ```text
//! RaftEntries (10):        u64 first index, u32 count, then per entry:
//!                          u64 term, u32 data length, u32 CRC-32 of data, data
//! RaftHardState (11):      u64 term, u64 commit, u32 vote length, vote bytes
//! RaftTruncateSuffix (12): u64 from (entries >= from are removed)
//! RaftTruncatePrefix (13): u64 upto, u64 term of that entry (0 if unknown)
//! RaftReclaim (14):        u64 lsn (segments below it may be deleted)
//! RaftRebase (15):         u8 0 = a rewrite of the whole log begins,
//!                          1 = it is complete
//! ```
//!
//! Decoding checks every length against the bytes present before slicing,
//! so a damaged payload is an error, never a panic or a huge allocation.

use super::codec::{u32_at, u64_at};
use super::record::RecordType;

/// Bytes before the first entry of a `RaftEntries` payload.
pub(crate) const ENTRIES_HEADER: usize = 12;
/// Bytes before an entry's data inside a `RaftEntries` payload.
pub(crate) const ENTRY_HEADER: usize = 16;

/// The payload of a `RaftEntries` record for consecutive entries starting
/// at log index `first`, each given as (term, data).
pub fn encode_entries(first: u64, entries: &[(u64, &[u8])]) -> Vec<u8> {
    let body: usize = entries.iter().map(|(_, d)| ENTRY_HEADER + d.len()).sum();
    let mut p = Vec::with_capacity(ENTRIES_HEADER + body);
    p.extend_from_slice(&first.to_le_bytes());
    p.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for (term, data) in entries {
        p.extend_from_slice(&term.to_le_bytes());
        p.extend_from_slice(&(data.len() as u32).to_le_bytes());
        p.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
        p.extend_from_slice(data);
    }
    p
}

/// The payload of a `RaftHardState` record.
pub fn encode_hard_state(term: u64, commit: u64, vote: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(20 + vote.len());
    p.extend_from_slice(&term.to_le_bytes());
    p.extend_from_slice(&commit.to_le_bytes());
    p.extend_from_slice(&(vote.len() as u32).to_le_bytes());
    p.extend_from_slice(vote);
    p
}

/// The payload of a `RaftTruncatePrefix` record.
pub fn encode_truncate_prefix(upto: u64, term: u64) -> Vec<u8> {
    let mut p = upto.to_le_bytes().to_vec();
    p.extend_from_slice(&term.to_le_bytes());
    p
}

/// The payload of a record holding one u64 (`RaftTruncateSuffix`: the
/// first removed index; `RaftReclaim`: an LSN).
pub fn encode_u64(v: u64) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

/// One decoded Raft record payload, borrowing from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RaftRecord<'a> {
    /// `count` entries from index `first`; read them with
    /// [`RaftRecord::entries`].
    Entries {
        /// Log index of the first entry.
        first: u64,
        /// Number of entries.
        count: u32,
        /// The whole payload.
        payload: &'a [u8],
    },
    /// The hard state.
    HardState {
        /// Current term.
        term: u64,
        /// Commit index.
        commit: u64,
        /// The vote, opaque (empty: none).
        vote: &'a [u8],
    },
    /// Entries from index `from` on are removed.
    TruncateSuffix {
        /// First removed index.
        from: u64,
    },
    /// Entries up to index `upto` (of term `term`, 0 if unknown) are removed.
    TruncatePrefix {
        /// Last removed index.
        upto: u64,
        /// Its term.
        term: u64,
    },
    /// Segments holding only records below `lsn` may be deleted.
    Reclaim {
        /// The LSN.
        lsn: u64,
    },
    /// A rewrite of the whole log begins (`false`) or is complete (`true`).
    Rebase {
        /// Whether this is the commit record.
        commit: bool,
    },
}

/// One entry of a `RaftEntries` payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRef<'a> {
    /// Its term.
    pub term: u64,
    /// The CRC-32 of its data, as stored.
    pub crc: u32,
    /// Offset of its data inside the payload.
    pub data_at: usize,
    /// Its data.
    pub data: &'a [u8],
}

impl<'a> RaftRecord<'a> {
    /// Decode the payload `p` of a record of type `rtype`. Returns `None`
    /// for a type that is not a Raft record (`KvBatch`, `SegmentLink`).
    ///
    /// Errors: a short or malformed payload, with the reason.
    pub fn decode(rtype: RecordType, p: &'a [u8]) -> Option<Result<RaftRecord<'a>, &'static str>> {
        let r = match rtype {
            RecordType::RaftEntries => (|| {
                let first = u64_at(p, 0).ok_or("short entries record")?;
                let count = u32_at(p, 8).ok_or("short entries record")?;
                Ok(RaftRecord::Entries {
                    first,
                    count,
                    payload: p,
                })
            })(),
            RecordType::RaftHardState => (|| {
                let term = u64_at(p, 0).ok_or("short hard state")?;
                let commit = u64_at(p, 8).ok_or("short hard state")?;
                let vl = u32_at(p, 16).ok_or("short hard state")? as usize;
                let vote = p.get(20..20usize.saturating_add(vl)).ok_or("short vote")?;
                Ok(RaftRecord::HardState { term, commit, vote })
            })(),
            RecordType::RaftTruncateSuffix => u64_at(p, 0)
                .map(|from| RaftRecord::TruncateSuffix { from })
                .ok_or("short truncate record"),
            RecordType::RaftTruncatePrefix => match (u64_at(p, 0), u64_at(p, 8)) {
                (Some(upto), Some(term)) => Ok(RaftRecord::TruncatePrefix { upto, term }),
                _ => Err("short truncate record"),
            },
            RecordType::RaftReclaim => u64_at(p, 0)
                .map(|lsn| RaftRecord::Reclaim { lsn })
                .ok_or("short reclaim record"),
            RecordType::RaftRebase => match p.first() {
                Some(0) => Ok(RaftRecord::Rebase { commit: false }),
                Some(1) => Ok(RaftRecord::Rebase { commit: true }),
                _ => Err("bad rebase record"),
            },
            RecordType::KvBatch | RecordType::SegmentLink => return None,
        };
        Some(r)
    }

    /// The entries of an `Entries` record, in order (nothing for the other
    /// kinds); stops with an error at the first entry that does not fit.
    pub fn entries(&self) -> impl Iterator<Item = Result<EntryRef<'a>, &'static str>> + 'a {
        let (count, p) = match *self {
            RaftRecord::Entries { count, payload, .. } => (count, payload),
            _ => (0, &[][..]),
        };
        let mut at = ENTRIES_HEADER;
        let mut left = count;
        std::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            left -= 1;
            let r = (|| {
                let term = u64_at(p, at).ok_or("short entry")?;
                let len = u32_at(p, at + 8).ok_or("short entry")? as usize;
                let crc = u32_at(p, at + 12).ok_or("short entry")?;
                let data_at = at + ENTRY_HEADER;
                let data = p
                    .get(data_at..data_at.saturating_add(len))
                    .ok_or("entry runs past its record")?;
                at = data_at + len;
                Ok(EntryRef {
                    term,
                    crc,
                    data_at,
                    data,
                })
            })();
            if r.is_err() {
                left = 0;
            }
            Some(r)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_short_payloads() {
        let p = encode_entries(7, &[(1, b"a"), (2, b"bcd")]);
        let r = RaftRecord::decode(RecordType::RaftEntries, &p)
            .expect("raft")
            .expect("decodes");
        let e: Vec<_> = r.entries().collect::<Result<_, _>>().expect("entries");
        assert_eq!(
            (e[0].term, e[0].data, e[1].term, e[1].data),
            (1, &b"a"[..], 2, &b"bcd"[..])
        );
        assert_eq!(e[1].crc, crc32fast::hash(b"bcd"));
        for cut in 0..p.len() {
            let ok = RaftRecord::decode(RecordType::RaftEntries, &p[..cut])
                .expect("raft")
                .map(|r| r.entries().all(|e| e.is_ok()));
            assert_ne!(ok, Ok(true), "cut at {cut} must not decode whole");
        }
        let h = encode_hard_state(3, 9, b"v");
        assert_eq!(
            RaftRecord::decode(RecordType::RaftHardState, &h).expect("raft"),
            Ok(RaftRecord::HardState {
                term: 3,
                commit: 9,
                vote: b"v"
            })
        );
        assert!(RaftRecord::decode(RecordType::RaftHardState, &h[..20])
            .expect("raft")
            .is_err());
        assert!(RaftRecord::decode(RecordType::KvBatch, &h).is_none());
    }
}
