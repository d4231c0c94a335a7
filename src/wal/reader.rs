//! Scanning a segment's bytes into records, and classifying where and how
//! the valid prefix ends. Recovery and `keyval verify` both use this; the
//! scan itself never modifies anything.

use super::segment::SEGMENT_HEADER_SIZE;
use crate::format::record::{self, Check, Header, Owner};
use std::ops::Range;

/// One valid record found in a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedRecord {
    /// Byte offset of the record header in the segment file.
    pub offset: u64,
    /// Its header.
    pub header: Header,
    /// Byte range of its payload in the scanned buffer.
    pub payload: Range<usize>,
    /// Bytes it occupies (header + payload + padding).
    pub total: u64,
}

/// Why the valid prefix of a segment ended before its zero-filled tail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Offset of the first byte that is not part of the valid prefix.
    pub offset: u64,
    /// What was found there.
    pub reason: String,
    /// Whether the damage is a checksum-valid record with a wrong sequence
    /// number (a misdirected, stale or spliced write, never a torn one).
    pub misplaced: bool,
    /// Valid records of this segment found after the damage.
    pub later: Vec<ScannedRecord>,
}

/// Result of [`scan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentScan {
    /// The valid, contiguous prefix of records.
    pub records: Vec<ScannedRecord>,
    /// Offset just past the last record of the valid prefix: where the next
    /// record would be written.
    pub end: u64,
    /// `Some` if anything other than zeros follows the valid prefix.
    pub damage: Option<Damage>,
    /// Offset just past the last nonzero byte of the segment (at least
    /// `end`): how far a truncation must zero.
    pub dirty_end: u64,
}

/// Scan `buf` (a whole segment file, header included) for the records of
/// `owner`. Sequence numbers inside the valid prefix must
/// increase by exactly one.
pub fn scan(buf: &[u8], owner: Owner) -> SegmentScan {
    let mut records = Vec::new();
    let mut at = SEGMENT_HEADER_SIZE as usize;
    let mut damage = None;
    while at < buf.len() {
        match record::check(buf, at, owner) {
            Check::Valid {
                header,
                payload_start,
                total,
            } => {
                if let Some(prev) = records.last().map(|r: &ScannedRecord| r.header.lsn) {
                    if header.lsn != prev + 1 {
                        damage = Some((
                            at,
                            format!("sequence number {} follows {prev}", header.lsn),
                            true,
                        ));
                        break;
                    }
                }
                records.push(ScannedRecord {
                    offset: at as u64,
                    header,
                    payload: payload_start..payload_start + header.len as usize,
                    total: total as u64,
                });
                at += total;
            }
            Check::Zero => break,
            Check::Bad(why) => {
                damage = Some((at, why.to_string(), false));
                break;
            }
        }
    }
    let end = at.min(buf.len());
    let dirty_end = buf
        .iter()
        .rposition(|&b| b != 0)
        .map(|p| p + 1)
        .unwrap_or(0)
        .max(end);
    let later = if dirty_end > end {
        find_valid_after(buf, end + 8, owner)
    } else {
        Vec::new()
    };
    let damage = match damage {
        Some((offset, reason, misplaced)) => Some(Damage {
            offset: offset as u64,
            reason,
            misplaced,
            later,
        }),
        None if dirty_end > end => Some(Damage {
            offset: end as u64,
            reason: if later.is_empty() {
                "garbage after the last valid record".to_string()
            } else {
                "zeroed or unreadable bytes in front of valid records".to_string()
            },
            misplaced: false,
            later,
        }),
        None => None,
    };
    SegmentScan {
        records,
        end: end as u64,
        damage,
        dirty_end: dirty_end as u64,
    }
}

/// Find every valid record of `owner` starting at an 8-aligned offset
/// at or after `from`. Zero runs are skipped quickly: a valid header always
/// holds a nonzero byte (its segment id), so only offsets within 40 bytes
/// before a nonzero byte can start one.
pub fn find_valid_after(buf: &[u8], from: usize, owner: Owner) -> Vec<ScannedRecord> {
    let mut out = Vec::new();
    let mut at = (from + 7) & !7;
    while at + record::HEADER_SIZE <= buf.len() {
        // Skip to the first candidate near the next nonzero byte.
        let Some(nz) = buf[at..].iter().position(|&b| b != 0) else {
            break;
        };
        let nz = at + nz;
        let first = nz.saturating_sub(record::HEADER_SIZE - 1) & !7;
        at = at.max(first);
        let mut found = false;
        while at <= nz {
            if let Check::Valid {
                header,
                payload_start,
                total,
            } = record::check(buf, at, owner)
            {
                out.push(ScannedRecord {
                    offset: at as u64,
                    header,
                    payload: payload_start..payload_start + header.len as usize,
                    total: total as u64,
                });
                at += total;
                found = true;
                break;
            }
            at += 8;
        }
        if !found {
            at = (nz + 8) & !7;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::record::{encode, RecordType};

    const O: Owner = Owner {
        db_id: 5,
        segment_id: 1,
    };

    fn segment(records: &[(u64, &[u8])]) -> Vec<u8> {
        let mut buf = vec![0u8; SEGMENT_HEADER_SIZE as usize];
        for (lsn, p) in records {
            encode(&mut buf, O, RecordType::KvBatch, *lsn, 0, p);
        }
        buf.resize(buf.len() + 4096, 0);
        buf
    }

    #[test]
    fn clean_segment() {
        let buf = segment(&[(1, b"a"), (2, b"bb"), (3, b"ccc")]);
        let s = scan(&buf, O);
        assert_eq!(s.records.len(), 3);
        assert!(s.damage.is_none());
        assert_eq!(s.end, s.dirty_end);
    }

    #[test]
    fn zeroed_record_in_front_of_valid_ones_is_damage_with_later_records() {
        let mut buf = segment(&[(1, b"a"), (2, b"bb"), (3, b"ccc")]);
        let s = scan(&buf, O);
        let second = s.records[1].offset as usize;
        for b in &mut buf[second..second + 48] {
            *b = 0;
        }
        let s = scan(&buf, O);
        assert_eq!(s.records.len(), 1);
        let d = s.damage.expect("damage");
        assert_eq!(d.offset as usize, second);
        assert_eq!(d.later.len(), 1);
        assert_eq!(d.later[0].header.lsn, 3);
    }

    #[test]
    fn garbage_tail_is_damage_without_later_records() {
        let mut buf = segment(&[(1, b"a")]);
        let end = SEGMENT_HEADER_SIZE as usize + 48;
        buf[end + 100] = 0xAB;
        let s = scan(&buf, O);
        let d = s.damage.expect("damage");
        assert_eq!(d.offset as usize, end);
        assert!(d.later.is_empty());
        assert_eq!(s.dirty_end as usize, end + 101);
    }

    #[test]
    fn sequence_gap_is_misplaced() {
        let buf = segment(&[(1, b"a"), (5, b"b")]);
        let d = scan(&buf, O).damage.expect("damage");
        assert!(d.misplaced);
    }
}
