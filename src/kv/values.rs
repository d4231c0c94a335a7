//! Reading separated values (see [`crate::vlog`]): from the writer's
//! buffer while they are only there (`Buffered` durability), else from the
//! value cache or with one positioned read of their segment; and, for a
//! read of the latest state, again at the new place when reclaim moved
//! the value meanwhile.

use super::Inner;
use crate::error::{Error, Result};
use crate::index::{OwnedVal, Val, ValuePtr};
use crate::vlog::Bytes;

/// A value that a read found: in the index, or where it is in the log.
pub(crate) enum Found<'a> {
    /// Borrowed from the index.
    Inline(&'a [u8]),
    /// Read from the log.
    Loaded(Bytes),
}

impl Found<'_> {
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Found::Inline(b) => b,
            Found::Loaded(b) => b,
        }
    }
}

impl Inner {
    /// The bytes `p` points at, verified against its CRC.
    ///
    /// Errors: [`Error::Corruption`] (missing or damaged segment, naming
    /// file and offset), [`Error::Io`].
    pub(crate) fn load(&self, p: &ValuePtr) -> Result<Bytes> {
        if !self.tail.in_file(p.segment, p.offset, u64::from(p.len)) {
            let buffered = self
                .core
                .wal
                .lock()
                .read_unflushed(p.segment, p.offset, p.len as usize);
            if let Some(b) = buffered {
                if crc32fast::hash(&b) != p.crc {
                    return Err(Error::corruption(
                        self.core
                            .dir
                            .join(crate::wal::segment::file_name(p.segment)),
                        Some(p.offset),
                        format!(
                            "separated value CRC mismatch in the write buffer (segment {})",
                            p.segment
                        ),
                    ));
                }
                return Ok(b.into());
            }
        }
        self.vlog.read(p)
    }

    /// Announce that `p` will be read soon (a value already in the file).
    pub(crate) fn prefetch(&self, p: &ValuePtr) {
        if self.tail.in_file(p.segment, p.offset, u64::from(p.len)) {
            self.vlog.prefetch(p);
        }
    }

    /// A view's value: inline, or loaded from the log. A registered
    /// snapshot keeps every segment it points into (see
    /// `kv::reclaim`).
    pub(crate) fn found<'a>(&self, v: Val<'a>) -> Result<Found<'a>> {
        match v {
            Val::Inline(b) => Ok(Found::Inline(b)),
            Val::At(p) => self.load(&p).map(Found::Loaded),
        }
    }

    /// The latest value of `key` in keyspace `id`, which pointed at `p`
    /// when the index was read: if that read fails because reclaim moved
    /// the value and deleted its old segment in between, the index is read
    /// again and the value read at its new place. `None`: the key was
    /// deleted in between.
    ///
    /// Errors: as [`Inner::load`] when the index still points there.
    pub(crate) fn load_latest(&self, id: u32, key: &[u8], p: ValuePtr) -> Result<Option<Bytes>> {
        let mut cur = OwnedVal::At(p);
        for attempt in 0.. {
            let p = match cur {
                OwnedVal::Inline(b) => return Ok(Some(b.into())),
                OwnedVal::At(p) => p,
            };
            match self.load(&p) {
                Ok(b) => return Ok(Some(b)),
                Err(e) => {
                    let now = self.read_in(id, |t| t.get(id, key).map(|v| v.into_owned()))?;
                    match now {
                        None => return Ok(None),
                        Some(OwnedVal::At(q)) if q == p || attempt >= 8 => return Err(e),
                        Some(v) => cur = v,
                    }
                }
            }
        }
        unreachable!("the loop returns")
    }
}
