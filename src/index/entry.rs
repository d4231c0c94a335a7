//! One live key-value pair as the index holds it: a single
//! reference-counted allocation ([`triomphe::ThinArc`]: count, key length,
//! slice length, then `[key][value]`), plus the first 8 bytes of the key
//! inline for comparisons. The ordered tree ([`crate::index::tree`]) and
//! the hash index ([`crate::index::table`]) hold the same allocation, and
//! a snapshot that still holds an old version holds its allocation: a
//! pair's bytes are freed when the last of them lets go.

use std::cell::RefCell;
use std::cmp::Ordering;
use triomphe::ThinArc;

/// One pair's allocation: the header is the key length (its top bit set
/// when the value is separated), the slice is the key followed by the
/// value, or by the 24-byte [`ValuePtr`] of a separated value.
pub(crate) type Data = ThinArc<u32, u8>;

/// Top bit of [`Data`]'s header: the bytes after the key are a
/// [`ValuePtr`], not the value. Keys are at most 16 MiB + 4 bytes, so the
/// bit is never part of a length.
const SEPARATED: u32 = 1 << 31;

pub(crate) fn data_key(d: &Data) -> &[u8] {
    &d.slice[..(d.header.header & !SEPARATED) as usize]
}

pub use crate::format::value::ValuePtr;

/// A stored value as the index holds it: the bytes themselves, or where
/// they are in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Val<'a> {
    /// The value, held in memory.
    Inline(&'a [u8]),
    /// A separated value, read from its segment on demand.
    At(ValuePtr),
}

impl Val<'_> {
    /// Length of the value in bytes (not of the pointer).
    pub fn len(&self) -> usize {
        match self {
            Val::Inline(v) => v.len(),
            Val::At(p) => p.len as usize,
        }
    }
    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The pointer, for a separated value.
    pub fn ptr(&self) -> Option<ValuePtr> {
        match self {
            Val::Inline(_) => None,
            Val::At(p) => Some(*p),
        }
    }
    /// An owned copy.
    pub fn into_owned(self) -> OwnedVal {
        match self {
            Val::Inline(v) => OwnedVal::Inline(v.to_vec()),
            Val::At(p) => OwnedVal::At(p),
        }
    }
}

/// [`Val`], owned: what a read copies out under the index lock before it
/// reads a separated value with no lock held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnedVal {
    /// The value.
    Inline(Vec<u8>),
    /// Where the value is.
    At(ValuePtr),
}

/// One live key-value pair, plus the first 8 bytes of its key inline
/// (big-endian, zero-padded) so that most comparisons in a B-tree search
/// never leave the node: for keys that differ in their first 8 bytes,
/// comparing the prefixes gives the same order as comparing the keys byte
/// by byte.
#[derive(Clone)]
pub struct Entry {
    pub(crate) prefix: u64,
    pub(crate) data: Data,
}

pub(crate) fn key_prefix(key: &[u8]) -> u64 {
    let mut p = [0u8; 8];
    let n = key.len().min(8);
    p[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(p)
}

thread_local! {
    /// Where [`Entry::new`] joins key and value before the one copy into
    /// the shared allocation.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl Entry {
    /// Build an entry. `key.len()` must fit in a u32 (keys are limited to
    /// 16 MiB by the options).
    pub fn new(key: &[u8], value: &[u8]) -> Entry {
        let data = SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            s.clear();
            s.extend_from_slice(key);
            s.extend_from_slice(value);
            let d = ThinArc::from_header_and_slice(key.len() as u32, &s);
            // Do not keep a large value's buffer for the thread's lifetime.
            if s.capacity() > 64 << 10 {
                *s = Vec::new();
            }
            d
        });
        Entry {
            prefix: key_prefix(key),
            data,
        }
    }
    /// Build an entry whose value is separated: the key and where the
    /// value is.
    pub fn new_ptr(key: &[u8], at: ValuePtr) -> Entry {
        let mut s = Vec::with_capacity(key.len() + ValuePtr::SIZE);
        s.extend_from_slice(key);
        s.extend_from_slice(&at.encode());
        Entry {
            prefix: key_prefix(key),
            data: ThinArc::from_header_and_slice(key.len() as u32 | SEPARATED, &s),
        }
    }
    /// A key-only entry to search with.
    pub(crate) fn probe(key: &[u8]) -> Entry {
        Entry::new(key, &[])
    }
    /// The key.
    pub fn key(&self) -> &[u8] {
        data_key(&self.data)
    }
    /// The value, or where it is.
    pub fn val(&self) -> Val<'_> {
        data_val(&self.data)
    }
    /// An inline value's bytes (tests of the index, which hold no
    /// separated values). Panics on a separated one.
    #[cfg(test)]
    pub(crate) fn value(&self) -> &[u8] {
        match self.val() {
            Val::Inline(v) => v,
            Val::At(p) => panic!("separated value {p:?}"),
        }
    }
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Entry({} byte key, {:?})", self.key().len(), self.val())
    }
}

/// The value of one pair's allocation, or where it is.
pub(crate) fn data_val(d: &Data) -> Val<'_> {
    let h = d.header.header;
    let rest = &d.slice[(h & !SEPARATED) as usize..];
    if h & SEPARATED == 0 {
        Val::Inline(rest)
    } else {
        // Built by `Entry::new_ptr`: always 24 bytes.
        Val::At(ValuePtr::decode(rest).unwrap_or(ValuePtr {
            segment: 0,
            offset: 0,
            len: 0,
            crc: 0,
        }))
    }
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        self.prefix == o.prefix && self.key() == o.key()
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> Ordering {
        self.prefix
            .cmp(&o.prefix)
            .then_with(|| self.key().cmp(o.key()))
    }
}

impl Entry {
    /// Bytes of its allocation: the 16-byte header (count, key length,
    /// slice length) and the key and value bytes, rounded up to 8 as the
    /// allocator does.
    pub fn heap_bytes(&self) -> u64 {
        (24 + self.data.slice.len() as u64).div_ceil(8) * 8
    }

    /// Whether `self` and `other` are the same allocation (not merely equal).
    pub(crate) fn same(&self, other: &Data) -> bool {
        self.data.as_ptr() == other.as_ptr()
    }

    /// Compare this entry's key with `key`, whose 8-byte prefix is `prefix`.
    #[inline]
    pub(crate) fn cmp_key(&self, prefix: u64, key: &[u8]) -> Ordering {
        self.prefix.cmp(&prefix).then_with(|| self.key().cmp(key))
    }
}
