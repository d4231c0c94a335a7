//! The payload of a `KvBatch` WAL record: an atomic group of operations
//! (see `docs/format.md`). [`crate::WriteBatch`] builds it; the write
//! path, replay and the tools decode it here.
//!
//! ```text
//! u32  operation count
//! then per operation, by kind (u8):
//!   1 put        u32 key length, u32 value length, key, value
//!   2 delete     u32 key length, key
//!   3 put in     u32 keyspace id, u32 key length, u32 value length, key, value
//!   4 delete in  u32 keyspace id, u32 key length, key
//!   5 create keyspace  u32 keyspace id, u32 name length, name (UTF-8)
//!   6 drop keyspace    u32 keyspace id, u32 name length, name (UTF-8)
//!   7 put, with crc    u32 key length, u32 value length, u32 value crc,
//!                      key, value
//!   8 put in, with crc u32 keyspace id, u32 key length, u32 value length,
//!                      u32 value crc, key, value
//!   9 relocate         u8 table (0 default, 1 named), 24-byte value
//!                      pointer it replaces, u32 key length, key, value
//!                      (of the pointer's length)
//! ```
//! Kinds 7 and 8 carry the CRC-32 (IEEE) of the value, so that a value
//! the index leaves in the log is verified by one positioned read of its
//! own bytes (`WriteBatch` writes them for values of at least
//! [`CRC_FROM`] bytes). Kind 9 is written only by reclaim: it moves a
//! separated value out of an old segment, and applies only if the key
//! (the table's key: a named keyspace's keys start with the 4-byte
//! big-endian id) still points at the old place, in the write path and in
//! replay alike.
//! All integers are little-endian. Kinds 1 and 2 address the default
//! keyspace and are the only kinds stores written before keyspaces
//! existed contain. Kinds 5 and 6 are written only by
//! `Db::create_keyspace` and `Db::drop_keyspace`.

/// Kind 1: put in the default keyspace.
pub(crate) const OP_PUT: u8 = 1;
/// Kind 2: delete from the default keyspace.
pub(crate) const OP_DELETE: u8 = 2;
/// Kind 3: put in a named keyspace.
pub(crate) const OP_PUT_IN: u8 = 3;
/// Kind 4: delete from a named keyspace.
pub(crate) const OP_DELETE_IN: u8 = 4;
/// Kind 5: create a keyspace.
pub(crate) const OP_CREATE_KEYSPACE: u8 = 5;
/// Kind 6: drop a keyspace and every key in it.
pub(crate) const OP_DROP_KEYSPACE: u8 = 6;

/// Kind 7: put in the default keyspace, with the value's CRC-32.
pub(crate) const OP_PUT_CRC: u8 = 7;
/// Kind 8: put in a named keyspace, with the value's CRC-32.
pub(crate) const OP_PUT_IN_CRC: u8 = 8;
/// Kind 9: relocate a separated value (reclaim).
pub(crate) const OP_RELOCATE: u8 = 9;

/// Values of at least this many bytes are written with their CRC (kinds
/// 7 and 8); smaller ones with kinds 1 and 3, byte for byte as before.
pub const CRC_FROM: usize = 256;

/// One decoded operation, borrowing from the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op<'a> {
    /// Set `key` to `value` in the default keyspace.
    Put(&'a [u8], &'a [u8]),
    /// Remove `key` from the default keyspace.
    Delete(&'a [u8]),
    /// Set `key` to `value` in the keyspace with this id.
    PutIn(u32, &'a [u8], &'a [u8]),
    /// Remove `key` from the keyspace with this id.
    DeleteIn(u32, &'a [u8]),
    /// Create the keyspace `name` with this id.
    CreateKeyspace(u32, &'a [u8]),
    /// Drop the keyspace `name` with this id and every key in it.
    DropKeyspace(u32, &'a [u8]),
    /// Reclaim moved a separated value: if `key` of the default table
    /// (`named == false`) or the named table still points at `from`, it
    /// now points at `value`'s bytes in this record.
    Relocate {
        /// Which table: the named one (keys start with the keyspace id).
        named: bool,
        /// Where the value was.
        from: super::value::ValuePtr,
        /// The table's key.
        key: &'a [u8],
        /// The value (`from.len` bytes).
        value: &'a [u8],
    },
}

impl<'a> Op<'a> {
    /// The key the operation is about (the name, for keyspace operations).
    pub fn key(&self) -> &'a [u8] {
        match self {
            Op::Put(k, _) | Op::Delete(k) | Op::PutIn(_, k, _) | Op::DeleteIn(_, k) => k,
            Op::CreateKeyspace(_, n) | Op::DropKeyspace(_, n) => n,
            Op::Relocate { key, .. } => key,
        }
    }
}

/// Append one operation to `payload` laid out as in the module docs:
/// kind, the keyspace id if any, key length, value length if any, key,
/// value. The caller keeps the operation count in the first 4 bytes.
pub fn push_op(payload: &mut Vec<u8>, kind: u8, id: Option<u32>, key: &[u8], value: Option<&[u8]>) {
    let p = payload;
    p.reserve(13 + key.len() + value.map_or(0, <[u8]>::len));
    p.push(kind);
    if let Some(id) = id {
        p.extend_from_slice(&id.to_le_bytes());
    }
    p.extend_from_slice(&(key.len() as u32).to_le_bytes());
    if let Some(v) = value {
        p.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    p.extend_from_slice(key);
    if let Some(v) = value {
        p.extend_from_slice(v);
    }
}

/// Append a put with the value's CRC (kind 7, or kind 8 with `id`).
pub fn push_put_crc(payload: &mut Vec<u8>, id: Option<u32>, key: &[u8], value: &[u8]) {
    let p = payload;
    p.reserve(17 + key.len() + value.len());
    match id {
        Some(id) => {
            p.push(OP_PUT_IN_CRC);
            p.extend_from_slice(&id.to_le_bytes());
        }
        None => p.push(OP_PUT_CRC),
    }
    p.extend_from_slice(&(key.len() as u32).to_le_bytes());
    p.extend_from_slice(&(value.len() as u32).to_le_bytes());
    p.extend_from_slice(&crc32fast::hash(value).to_le_bytes());
    p.extend_from_slice(key);
    p.extend_from_slice(value);
}

/// Append a relocation (kind 9) of `key` of the default table or the
/// named one from `from` to `value` (which must be `from.len` bytes).
pub fn push_relocate(
    payload: &mut Vec<u8>,
    named: bool,
    from: &super::value::ValuePtr,
    key: &[u8],
    value: &[u8],
) {
    let p = payload;
    p.reserve(30 + key.len() + value.len());
    p.push(OP_RELOCATE);
    p.push(u8::from(named));
    p.extend_from_slice(&from.encode());
    p.extend_from_slice(&(key.len() as u32).to_le_bytes());
    p.extend_from_slice(key);
    p.extend_from_slice(value);
}

/// Decode a `KvBatch` payload. Yields an error (and then stops) if the
/// payload is malformed; lengths are checked against the bytes present
/// before anything is sliced, so damage can never cause a huge allocation.
pub fn decode(payload: &[u8]) -> impl Iterator<Item = Result<Op<'_>, &'static str>> {
    decode_ops(payload).map(|r| r.map(|(op, _)| op))
}

/// [`decode`], with the value CRC that kinds 7 and 8 carry (and kind 9,
/// in its pointer).
pub fn decode_ops(
    payload: &[u8],
) -> impl Iterator<Item = Result<(Op<'_>, Option<u32>), &'static str>> {
    let mut at = 4usize;
    let count = super::codec::u32_at(payload, 0).unwrap_or(u32::MAX);
    let mut remaining = if payload.len() >= 4 { count } else { 1 };
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed {
            return None;
        }
        if remaining == 0 {
            if at != payload.len() {
                failed = true;
                return Some(Err("trailing bytes after the last batch operation"));
            }
            return None;
        }
        remaining -= 1;
        let r = next_op(payload, &mut at, count);
        if r.is_err() {
            failed = true;
        }
        Some(r)
    })
}

fn take<'a>(p: &'a [u8], at: &mut usize, n: usize) -> Result<&'a [u8], &'static str> {
    if p.len() < *at || p.len() - *at < n {
        return Err("batch operation runs past the end of the record");
    }
    let s = &p[*at..*at + n];
    *at += n;
    Ok(s)
}

fn take_u32(p: &[u8], at: &mut usize) -> Result<usize, &'static str> {
    let b = take(p, at, 4)?;
    Ok(super::codec::u32_at(b, 0).unwrap_or(0) as usize)
}

fn next_op<'a>(
    p: &'a [u8],
    at: &mut usize,
    count: u32,
) -> Result<(Op<'a>, Option<u32>), &'static str> {
    if count == u32::MAX && p.len() < 4 {
        return Err("batch record shorter than its operation count");
    }
    let kind = take(p, at, 1)?[0];
    match kind {
        OP_PUT_CRC | OP_PUT_IN_CRC => {
            let id = if kind == OP_PUT_IN_CRC {
                Some(take_u32(p, at)? as u32)
            } else {
                None
            };
            let kl = take_u32(p, at)?;
            let vl = take_u32(p, at)?;
            let crc = take_u32(p, at)? as u32;
            let k = take(p, at, kl)?;
            let v = take(p, at, vl)?;
            Ok(match id {
                Some(id) => (Op::PutIn(id, k, v), Some(crc)),
                None => (Op::Put(k, v), Some(crc)),
            })
        }
        OP_RELOCATE => {
            let named = match take(p, at, 1)?[0] {
                0 => false,
                1 => true,
                _ => return Err("relocation names an unknown table"),
            };
            let from = super::value::ValuePtr::decode(take(p, at, 24)?)
                .ok_or("relocation pointer is not 24 bytes")?;
            let kl = take_u32(p, at)?;
            let k = take(p, at, kl)?;
            let v = take(p, at, from.len as usize)?;
            Ok((
                Op::Relocate {
                    named,
                    from,
                    key: k,
                    value: v,
                },
                Some(from.crc),
            ))
        }
        _ => next_plain(p, at, kind).map(|op| (op, None)),
    }
}

fn next_plain<'a>(p: &'a [u8], at: &mut usize, kind: u8) -> Result<Op<'a>, &'static str> {
    match kind {
        OP_PUT => {
            let kl = take_u32(p, at)?;
            let vl = take_u32(p, at)?;
            let k = take(p, at, kl)?;
            let v = take(p, at, vl)?;
            Ok(Op::Put(k, v))
        }
        OP_DELETE => {
            let kl = take_u32(p, at)?;
            Ok(Op::Delete(take(p, at, kl)?))
        }
        OP_PUT_IN => {
            let id = take_u32(p, at)? as u32;
            let kl = take_u32(p, at)?;
            let vl = take_u32(p, at)?;
            let k = take(p, at, kl)?;
            let v = take(p, at, vl)?;
            Ok(Op::PutIn(id, k, v))
        }
        OP_DELETE_IN | OP_CREATE_KEYSPACE | OP_DROP_KEYSPACE => {
            let id = take_u32(p, at)? as u32;
            let kl = take_u32(p, at)?;
            let k = take(p, at, kl)?;
            Ok(match kind {
                OP_DELETE_IN => Op::DeleteIn(id, k),
                OP_CREATE_KEYSPACE => Op::CreateKeyspace(id, k),
                _ => Op::DropKeyspace(id, k),
            })
        }
        _ => Err("unknown batch operation kind"),
    }
}
