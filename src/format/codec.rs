//! Little-endian integers at byte offsets, for every on-disk format in
//! `docs/format.md`. Bounds-checked: a read past the end of the slice is
//! `None`, never a panic, so damaged or short input cannot crash a reader.

/// The `u32` stored little-endian at `b[at..at + 4]`, if those bytes exist.
pub(crate) fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let bytes: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(bytes))
}

/// The `u64` stored little-endian at `b[at..at + 8]`, if those bytes exist.
pub(crate) fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    let bytes: [u8; 8] = b.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_in_bounds_and_refuses_beyond() {
        let b = [1, 0, 0, 0, 2, 0, 0, 0, 3];
        assert_eq!(u32_at(&b, 0), Some(1));
        assert_eq!(u32_at(&b, 4), Some(2));
        assert_eq!(u64_at(&b, 0), Some(0x2_0000_0001));
        assert_eq!(u32_at(&b, 6), None);
        assert_eq!(u64_at(&b, 2), None);
        assert_eq!(u64_at(&b, usize::MAX), None);
    }
}
