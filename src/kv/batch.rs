//! [`WriteBatch`]: sets and deletes applied atomically. Its buffer is
//! already the WAL payload of a `KvBatch` record, laid out as
//! [`crate::format::batch`] describes.

use crate::format::batch::{
    self, decode, Op, OP_CREATE_KEYSPACE, OP_DELETE, OP_DELETE_IN, OP_DROP_KEYSPACE, OP_PUT,
    OP_PUT_IN,
};

/// A group of sets and deletes that [`crate::Db::write`] applies
/// atomically: after a crash either all of them are present or none.
/// Later operations on the same key win.
///
/// Thread safety: a `WriteBatch` is plain data (`Send + Sync`); build it on
/// one thread at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteBatch {
    payload: Vec<u8>,
    count: u32,
    /// Written by reclaim (holds relocations): never paced for space.
    relocation: bool,
}

impl Default for WriteBatch {
    fn default() -> Self {
        WriteBatch::new()
    }
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> WriteBatch {
        WriteBatch {
            payload: vec![0; 4],
            count: 0,
            relocation: false,
        }
    }

    /// Add "set `key` to `value`". Sizes are checked when the batch is
    /// written.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> &mut Self {
        let (k, v) = (key.as_ref(), value.as_ref());
        if v.len() >= batch::CRC_FROM {
            batch::push_put_crc(&mut self.payload, None, k, v);
            self.counted();
        } else {
            self.push(OP_PUT, None, k, Some(v));
        }
        self
    }

    /// Add "remove `key`" (a no-op if the key is absent).
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> &mut Self {
        self.push(OP_DELETE, None, key.as_ref(), None);
        self
    }

    /// Add "set `key` to `value` in keyspace `ks`". A batch may write to
    /// several keyspaces; it is still applied atomically. Writing to a
    /// keyspace that has been dropped fails the whole batch with
    /// [`crate::Error::NotFound`].
    pub fn put_in(
        &mut self,
        ks: &crate::Keyspace,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> &mut Self {
        self.put_in_id(ks.id(), key.as_ref(), value.as_ref())
    }

    /// Add "remove `key` from keyspace `ks`" (a no-op if absent).
    pub fn delete_in(&mut self, ks: &crate::Keyspace, key: impl AsRef<[u8]>) -> &mut Self {
        self.delete_in_id(ks.id(), key.as_ref())
    }

    /// [`WriteBatch::put_in`] by keyspace id; id 0 is the default keyspace.
    pub(crate) fn put_in_id(&mut self, id: u32, k: &[u8], v: &[u8]) -> &mut Self {
        if id == 0 {
            return self.put(k, v);
        }
        if v.len() >= batch::CRC_FROM {
            batch::push_put_crc(&mut self.payload, Some(id), k, v);
            self.counted();
        } else {
            self.push(OP_PUT_IN, Some(id), k, Some(v));
        }
        self
    }

    /// [`WriteBatch::delete_in`] by keyspace id; id 0 is the default one.
    pub(crate) fn delete_in_id(&mut self, id: u32, k: &[u8]) -> &mut Self {
        if id == 0 {
            return self.delete(k);
        }
        self.push(OP_DELETE_IN, Some(id), k, None);
        self
    }

    /// A keyspace operation (create or drop): kind, id, name.
    pub(crate) fn keyspace_op(&mut self, create: bool, id: u32, name: &str) -> &mut Self {
        let kind = if create {
            OP_CREATE_KEYSPACE
        } else {
            OP_DROP_KEYSPACE
        };
        self.push(kind, Some(id), name.as_bytes(), None);
        self
    }

    /// Append one operation (see [`crate::format::batch`]).
    fn push(&mut self, kind: u8, id: Option<u32>, key: &[u8], value: Option<&[u8]>) {
        batch::push_op(&mut self.payload, kind, id, key, value);
        self.counted();
    }

    /// Count one more operation appended to the payload.
    fn counted(&mut self) {
        self.count += 1;
        self.payload[0..4].copy_from_slice(&self.count.to_le_bytes());
    }

    /// Add a relocation (reclaim only; see [`crate::format::batch`]).
    pub(crate) fn relocate(
        &mut self,
        named: bool,
        from: &crate::index::entry::ValuePtr,
        key: &[u8],
        value: &[u8],
    ) -> &mut Self {
        batch::push_relocate(&mut self.payload, named, from, key, value);
        self.counted();
        self.relocation = true;
        self
    }

    /// Whether reclaim built it.
    pub(crate) fn is_relocation(&self) -> bool {
        self.relocation
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether the batch holds no operation.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Remove every operation, keeping the allocation.
    pub fn clear(&mut self) {
        self.payload.truncate(4);
        self.count = 0;
        self.payload[0..4].copy_from_slice(&[0; 4]);
    }

    /// Encoded size in bytes (what the WAL record's payload will be).
    pub fn encoded_len(&self) -> usize {
        self.payload.len()
    }

    /// The encoded batch: the WAL's `KvBatch` payload, laid out as in the
    /// module docs (the inverse of [`WriteBatch::from_payload`], and what
    /// C callers pass to `kv_write_packed`).
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// A batch from its encoded form, the `KvBatch` payload laid out as in
    /// the module docs (what C and Go callers pack with `kv_write_packed`).
    ///
    /// Errors: [`crate::Error::InvalidArgument`] if `payload` does not decode
    /// exactly (short, an unknown operation kind, lengths running past the
    /// end, trailing bytes), if a put of kind 7 or 8 carries a CRC that
    /// is not its value's, or if it holds a relocation (kind 9, which only
    /// reclaim writes). Key and value limits are checked when the batch is
    /// written.
    pub fn from_payload(payload: Vec<u8>) -> crate::Result<WriteBatch> {
        let mut count = 0u32;
        for op in batch::decode_ops(&payload) {
            let bad = |why: &str| crate::Error::InvalidArgument(format!("packed batch: {why}"));
            match op.map_err(bad)? {
                (Op::Relocate { .. }, _) => {
                    return Err(bad("relocation operations are written by reclaim only"))
                }
                (Op::Put(_, v) | Op::PutIn(_, _, v), Some(crc)) if crc32fast::hash(v) != crc => {
                    return Err(bad("a put's value CRC does not match its value"))
                }
                _ => {}
            }
            count += 1;
        }
        Ok(WriteBatch {
            payload,
            count,
            relocation: false,
        })
    }

    pub(crate) fn into_payload(self) -> Vec<u8> {
        self.payload
    }

    /// The operations in order.
    pub fn ops(&self) -> impl Iterator<Item = Op<'_>> {
        // A batch we built ourselves always decodes.
        decode(&self.payload).filter_map(|r| r.ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode() {
        let mut b = WriteBatch::new();
        b.put(b"a", b"1").delete(b"b").put(b"", b"");
        let ops: Vec<_> = decode(b.payload())
            .collect::<Result<_, _>>()
            .expect("decode");
        assert_eq!(
            ops,
            vec![Op::Put(b"a", b"1"), Op::Delete(b"b"), Op::Put(b"", b"")]
        );
        let mut k = WriteBatch::new();
        k.put_in_id(7, b"k", b"v")
            .delete_in_id(7, b"k")
            .keyspace_op(true, 7, "seven")
            .keyspace_op(false, 7, "seven")
            .put_in_id(0, b"d", b"0");
        let ops: Vec<_> = decode(k.payload())
            .collect::<Result<_, _>>()
            .expect("decode");
        assert_eq!(
            ops,
            vec![
                Op::PutIn(7, b"k", b"v"),
                Op::DeleteIn(7, b"k"),
                Op::CreateKeyspace(7, b"seven"),
                Op::DropKeyspace(7, b"seven"),
                Op::Put(b"d", b"0")
            ]
        );
        for cut in 0..k.payload().len() {
            assert!(decode(&k.payload()[..cut]).any(|r| r.is_err()), "cut {cut}");
        }
        b.clear();
        assert!(b.is_empty());
        assert_eq!(decode(b.payload()).count(), 0);
    }

    #[test]
    fn malformed_payloads_error_without_panicking() {
        let mut b = WriteBatch::new();
        b.put(b"key", b"value");
        let p = b.payload().to_vec();
        for cut in 0..p.len() {
            assert!(decode(&p[..cut]).any(|r| r.is_err()), "cut {cut}");
        }
        let mut huge = p.clone();
        huge[5..9].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&huge).any(|r| r.is_err()));
        let mut extra = p.clone();
        extra.push(0);
        assert!(decode(&extra).any(|r| r.is_err()));
    }
}
