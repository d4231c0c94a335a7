//! The value pointer: where a separated value is in the WAL (see
//! `docs/format.md`, "Separated values and the key directory"). The index
//! holds it in memory and a version-3 checkpoint stores it.

/// Where a separated value lives: the WAL segment that holds the record
/// it was written in, the file offset of its first byte, its length and
/// its CRC-32 (IEEE), so that one positioned read fetches and verifies
/// it. Encoded in 24 bytes, little-endian: segment id u64, offset u64,
/// length u32, crc u32 (the same bytes in the index and in a key
/// directory, see `docs/format.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ValuePtr {
    /// Id of the segment file.
    pub segment: u64,
    /// Offset of the value's first byte in that file, in bytes.
    pub offset: u64,
    /// Length of the value in bytes.
    pub len: u32,
    /// CRC-32 (IEEE) of the value's bytes.
    pub crc: u32,
}

impl ValuePtr {
    /// Encoded size in bytes.
    pub(crate) const SIZE: usize = 24;

    /// The 24-byte encoding.
    pub fn encode(&self) -> [u8; 24] {
        let mut b = [0u8; 24];
        b[0..8].copy_from_slice(&self.segment.to_le_bytes());
        b[8..16].copy_from_slice(&self.offset.to_le_bytes());
        b[16..20].copy_from_slice(&self.len.to_le_bytes());
        b[20..24].copy_from_slice(&self.crc.to_le_bytes());
        b
    }

    /// Decode 24 bytes; `None` if `b` is not 24 bytes long.
    pub fn decode(b: &[u8]) -> Option<ValuePtr> {
        use super::codec::{u32_at, u64_at};
        if b.len() != Self::SIZE {
            return None;
        }
        Some(ValuePtr {
            segment: u64_at(b, 0)?,
            offset: u64_at(b, 8)?,
            len: u32_at(b, 16)?,
            crc: u32_at(b, 20)?,
        })
    }
}
