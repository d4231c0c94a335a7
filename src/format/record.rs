//! WAL record framing: a 40-byte checksummed header, the payload, and zero
//! padding to the next multiple of 8 bytes. See `docs/format.md`.
//!
//! ```text
//! offset size field
//!  0     4    crc32 (IEEE), over the 8-byte database id (not stored in the
//!             record), bytes 4..40 of this header, and the payload
//!  4     4    payload length in bytes (padding excluded)
//!  8     8    LSN (sequence number) of this record
//! 16     8    synced LSN: every record with LSN <= this was durable
//!             (fdatasync returned OK) before this record was written
//! 24     8    segment id of the file this record was written to
//! 32     1    record type (see RecordType)
//! 33     7    zero
//! 40     n    payload
//! 40+n   p    zero padding, 0 <= p < 8, so the next header is 8-aligned
//! ```

/// Size of a record header in bytes.
pub const HEADER_SIZE: usize = 40;

/// Record types. Values are stored on disk and never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum RecordType {
    /// A key-value write batch (see `crate::batch` for the payload).
    KvBatch = 1,
    /// The last record of a segment: the log continues in the segment whose
    /// id is the 8-byte payload. Written (and made durable) only after that
    /// segment was installed and its directory entry fsynced, so a missing
    /// successor is a deleted file, never a crash artefact. Handled by
    /// replay itself; never handed to a store.
    SegmentLink = 2,
    /// Raft log entries (see `crate::raft` for the payload).
    RaftEntries = 10,
    /// Raft hard state: term, vote, commit index.
    RaftHardState = 11,
    /// Raft: remove entries from an index on (conflict resolution).
    RaftTruncateSuffix = 12,
    /// Raft: remove entries up to an index (compaction).
    RaftTruncatePrefix = 13,
    /// Raft: segments holding only records with LSN below the 8-byte
    /// payload may be deleted (written and made durable before compaction
    /// deletes them).
    RaftReclaim = 14,
    /// Raft: a rewrite of the whole log after a salvage. One `u8` payload:
    /// 0 begins the rewrite, 1 commits it. The records between describe the
    /// complete log; replay applies them only once the commit follows (the
    /// log they replace stands until then), so a crash half-way through a
    /// rewrite loses nothing.
    RaftRebase = 15,
}

impl RecordType {
    /// Decode a stored type byte.
    pub fn from_u8(b: u8) -> Option<RecordType> {
        match b {
            1 => Some(RecordType::KvBatch),
            2 => Some(RecordType::SegmentLink),
            10 => Some(RecordType::RaftEntries),
            11 => Some(RecordType::RaftHardState),
            12 => Some(RecordType::RaftTruncateSuffix),
            13 => Some(RecordType::RaftTruncatePrefix),
            14 => Some(RecordType::RaftReclaim),
            15 => Some(RecordType::RaftRebase),
            _ => None,
        }
    }
}

/// Whose record it is: the database (whose random id seeds the checksum, so
/// a record copied from another database never verifies) and the segment
/// (stored in the header, so a record written to the wrong segment or left
/// over from an older one never verifies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// Random id of the database, from the segment header.
    pub db_id: u64,
    /// Id of the segment the record must be in.
    pub segment_id: u64,
}

/// Bytes a [`RecordType::SegmentLink`] record occupies (header + 8-byte
/// successor id). Every segment keeps this much room free for it.
pub const LINK_RECORD_LEN: u64 = (HEADER_SIZE + 8) as u64;

/// Total bytes a record with `payload_len` bytes of payload occupies on disk.
pub fn encoded_len(payload_len: usize) -> usize {
    HEADER_SIZE + pad8(payload_len)
}

fn pad8(n: usize) -> usize {
    (n + 7) & !7
}

/// Append one framed record to `out`.
pub fn encode(
    out: &mut Vec<u8>,
    owner: Owner,
    rtype: RecordType,
    lsn: u64,
    synced_lsn: u64,
    payload: &[u8],
) {
    let start = out.len();
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&lsn.to_le_bytes());
    out.extend_from_slice(&synced_lsn.to_le_bytes());
    out.extend_from_slice(&owner.segment_id.to_le_bytes());
    out.push(rtype as u8);
    out.extend_from_slice(&[0u8; 7]);
    out.extend_from_slice(payload);
    let mut h = crc32fast::Hasher::new();
    h.update(&owner.db_id.to_le_bytes());
    h.update(&out[start + 4..]);
    let crc = h.finalize();
    out[start..start + 4].copy_from_slice(&crc.to_le_bytes());
    let padded = start + encoded_len(payload.len());
    out.resize(padded, 0);
}

/// A record header as read from disk (not yet verified).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Stored checksum.
    pub crc: u32,
    /// Payload length in bytes.
    pub len: u32,
    /// Sequence number.
    pub lsn: u64,
    /// Durable watermark at write time.
    pub synced_lsn: u64,
    /// Segment the record claims to belong to.
    pub segment_id: u64,
    /// Raw type byte.
    pub rtype: u8,
}

// Reads past a short slice give 0, which `check` then rejects.
fn u32_at(b: &[u8], at: usize) -> u32 {
    crate::format::codec::u32_at(b, at).unwrap_or(0)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    crate::format::codec::u64_at(b, at).unwrap_or(0)
}

impl Header {
    /// Parse the first [`HEADER_SIZE`] bytes of `b`. `b` must be at least
    /// that long.
    pub fn parse(b: &[u8]) -> Header {
        Header {
            crc: u32_at(b, 0),
            len: u32_at(b, 4),
            lsn: u64_at(b, 8),
            synced_lsn: u64_at(b, 16),
            segment_id: u64_at(b, 24),
            rtype: b[32],
        }
    }
}

/// Outcome of checking the bytes at one offset of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// A valid record: its header and the payload's byte range in the
    /// buffer, and the total encoded length.
    Valid {
        /// The parsed header.
        header: Header,
        /// Payload start offset in the buffer.
        payload_start: usize,
        /// Encoded length (header + payload + padding).
        total: usize,
    },
    /// Fewer than a header's bytes remain, or the header is all zeros: the
    /// normal end of written data in a preallocated segment.
    Zero,
    /// Anything else: bad checksum, impossible length, wrong segment id,
    /// unknown type, nonzero reserved bytes.
    Bad(&'static str),
}

/// Check whether `buf[at..]` starts with a valid record of `segment_id`.
/// Never allocates; a huge stored length is rejected by comparing it with
/// the bytes actually present.
pub fn check(buf: &[u8], at: usize, owner: Owner) -> Check {
    let rest = &buf[at.min(buf.len())..];
    if rest.len() < HEADER_SIZE {
        return if rest.iter().all(|&b| b == 0) {
            Check::Zero
        } else {
            Check::Bad("partial record header at end of segment")
        };
    }
    let hb = &rest[..HEADER_SIZE];
    if hb.iter().all(|&b| b == 0) {
        return Check::Zero;
    }
    let h = Header::parse(hb);
    if h.segment_id != owner.segment_id {
        return Check::Bad("record header names another segment (stale, misdirected or damaged)");
    }
    let len = h.len as usize;
    if len > rest.len() - HEADER_SIZE {
        return Check::Bad("record length runs past the end of the segment");
    }
    if hb[33..40].iter().any(|&b| b != 0) {
        return Check::Bad("nonzero reserved bytes in record header");
    }
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&owner.db_id.to_le_bytes());
    hasher.update(&rest[4..HEADER_SIZE + len]);
    if hasher.finalize() != h.crc {
        return Check::Bad("record checksum mismatch");
    }
    if RecordType::from_u8(h.rtype).is_none() {
        return Check::Bad("unknown record type");
    }
    Check::Valid {
        header: h,
        payload_start: at + HEADER_SIZE,
        total: encoded_len(len).min(rest.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const O1: Owner = Owner {
        db_id: 7,
        segment_id: 1,
    };
    const O3: Owner = Owner {
        db_id: 7,
        segment_id: 3,
    };

    #[test]
    fn round_trip_and_padding() {
        let mut buf = Vec::new();
        encode(&mut buf, O3, RecordType::KvBatch, 7, 5, b"hello");
        assert_eq!(buf.len(), 48);
        match check(&buf, 0, O3) {
            Check::Valid {
                header,
                payload_start,
                total,
            } => {
                assert_eq!(header.lsn, 7);
                assert_eq!(header.synced_lsn, 5);
                assert_eq!(&buf[payload_start..payload_start + 5], b"hello");
                assert_eq!(total, 48);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            check(
                &buf,
                0,
                Owner {
                    segment_id: 4,
                    ..O3
                }
            ),
            Check::Bad(_)
        ));
        assert!(
            matches!(check(&buf, 0, Owner { db_id: 8, ..O3 }), Check::Bad(_)),
            "another database"
        );
    }

    #[test]
    fn every_bit_flip_in_header_and_payload_is_caught() {
        let mut buf = Vec::new();
        encode(&mut buf, O1, RecordType::KvBatch, 1, 0, b"payload!!");
        for bit in 0..(HEADER_SIZE + 9) * 8 {
            let mut b = buf.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            assert!(
                !matches!(check(&b, 0, O1), Check::Valid { .. }),
                "bit {bit} undetected"
            );
        }
    }

    #[test]
    fn zeros_and_absurd_lengths() {
        assert_eq!(check(&[0u8; 100], 0, O1), Check::Zero);
        assert_eq!(check(&[0u8; 10], 0, O1), Check::Zero);
        let mut buf = Vec::new();
        encode(&mut buf, O1, RecordType::KvBatch, 1, 0, b"x");
        buf[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(check(&buf, 0, O1), Check::Bad(_)));
    }
}
