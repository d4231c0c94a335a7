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
//! ```
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
}

impl<'a> Op<'a> {
    /// The key the operation is about (the name, for keyspace operations).
    pub fn key(&self) -> &'a [u8] {
        match self {
            Op::Put(k, _) | Op::Delete(k) | Op::PutIn(_, k, _) | Op::DeleteIn(_, k) => k,
            Op::CreateKeyspace(_, n) | Op::DropKeyspace(_, n) => n,
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

/// Decode a `KvBatch` payload. Yields an error (and then stops) if the
/// payload is malformed; lengths are checked against the bytes present
/// before anything is sliced, so damage can never cause a huge allocation.
pub fn decode(payload: &[u8]) -> impl Iterator<Item = Result<Op<'_>, &'static str>> {
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

fn next_op<'a>(p: &'a [u8], at: &mut usize, count: u32) -> Result<Op<'a>, &'static str> {
    if count == u32::MAX && p.len() < 4 {
        return Err("batch record shorter than its operation count");
    }
    let kind = take(p, at, 1)?[0];
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
