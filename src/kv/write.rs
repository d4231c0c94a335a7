//! The write path: validation, group commit (the leader writes the
//! group's records, then applies them to the index in LSN order), and
//! keyspace creation and drop.

use super::{Inner, Queued};
use crate::engine::metrics::OpKind;
use crate::error::{Error, Result};
use crate::format::record::RecordType;
use crate::index::PayloadAt;
use crate::kv::batch::WriteBatch;
use crate::kv::keyspace::{self, Keyspace};
use crate::kv::transaction::ReadSet;
use crate::options::WriteOptions;
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl Inner {
    pub(super) fn check_not_read_only(&self) -> Result<()> {
        if self.opts.read_only {
            return Err(Error::InvalidArgument(
                "the store is open read-only (Options::read_only)".into(),
            ));
        }
        Ok(())
    }

    pub(crate) fn check_key(&self, key: &[u8]) -> Result<()> {
        if key.is_empty() {
            return Err(Error::InvalidArgument("empty key".into()));
        }
        if key.len() > self.opts.max_key_size as usize {
            return Err(Error::InvalidArgument(format!(
                "key of {} bytes exceeds max_key_size {}",
                key.len(),
                self.opts.max_key_size
            )));
        }
        Ok(())
    }

    /// Delete `key` from keyspace `id` (0: the default one). An absent key
    /// writes nothing, after the same checks as a write; the delete is then
    /// ordered at the moment it found the key absent.
    pub(crate) fn delete_in(
        self: &Arc<Self>,
        id: u32,
        key: &[u8],
        opts: &WriteOptions,
    ) -> Result<()> {
        self.check_key(key)?;
        self.core.check_writable()?;
        self.check_not_read_only()?;
        if !self.read_in(id, |t| t.get(id, key).is_some())? {
            return Ok(());
        }
        let mut b = WriteBatch::new();
        if id == 0 {
            b.delete(key);
        } else {
            b.delete_in_id(id, key);
        }
        self.write(b, opts)
    }

    /// Validate and commit `batch` at the durability `opts` ask for, with
    /// metrics. Errors as [`Db::write`].
    pub(crate) fn write(self: &Arc<Self>, batch: WriteBatch, opts: &WriteOptions) -> Result<()> {
        let m = &self.metrics;
        let t0 = m.start();
        let bytes = batch.encoded_len() as u64;
        let r = self.validate(&batch).and_then(|(puts, deletes)| {
            self.write_validated(batch, opts)?;
            m.wrote(puts, deletes, bytes);
            Ok(())
        });
        m.finish(OpKind::Write, t0, &r);
        r
    }

    /// One pass over `batch`: every key and value within the limits.
    /// Returns the numbers of puts and deletes.
    ///
    /// Errors: `InvalidArgument`.
    pub(super) fn validate(&self, batch: &WriteBatch) -> Result<(u64, u64)> {
        let (mut puts, mut deletes) = (0, 0);
        let mut spaces: Vec<u32> = Vec::new();
        for op in batch.ops() {
            self.check_key(op.key())?;
            if let crate::format::batch::Op::PutIn(0, ..)
            | crate::format::batch::Op::DeleteIn(0, _) = op
            {
                // Id 0 in the named table is the catalog; the default
                // keyspace is written with kinds 1 and 2.
                return Err(Error::InvalidArgument(
                    "keyspace id 0 in a put-in or delete-in operation (the default keyspace uses put and delete)".into(),
                ));
            }
            match op {
                crate::format::batch::Op::Put(_, v) | crate::format::batch::Op::PutIn(_, _, v) => {
                    if let crate::format::batch::Op::PutIn(id, _, _) = op {
                        if spaces.last() != Some(&id) {
                            spaces.push(id);
                        }
                    }
                    if v.len() > self.opts.max_value_size as usize {
                        return Err(Error::InvalidArgument(format!(
                            "value of {} bytes exceeds max_value_size {}",
                            v.len(),
                            self.opts.max_value_size
                        )));
                    }
                    puts += 1;
                }
                crate::format::batch::Op::Delete(_) => deletes += 1,
                crate::format::batch::Op::DeleteIn(id, _) => {
                    if spaces.last() != Some(&id) {
                        spaces.push(id);
                    }
                    deletes += 1;
                }
                crate::format::batch::Op::Relocate { .. } => {
                    return Err(Error::InvalidArgument(
                        "relocation operations are written by reclaim only".into(),
                    ));
                }
                crate::format::batch::Op::CreateKeyspace(..)
                | crate::format::batch::Op::DropKeyspace(..) => {
                    return Err(Error::InvalidArgument(
                        "keyspaces are created and dropped with Db::create_keyspace and Db::drop_keyspace, not in a batch".into(),
                    ));
                }
            }
        }
        if !spaces.is_empty() {
            let m = self.mem.read();
            if let Some(id) = spaces.iter().find(|id| !m.table.is_live(**id)) {
                return Err(Error::NotFound(format!(
                    "keyspace id {id} does not exist (it was dropped)"
                )));
            }
        }
        if batch.encoded_len() > (u32::MAX as usize) - 64 {
            return Err(Error::InvalidArgument("batch larger than 4 GiB".into()));
        }
        Ok((puts, deletes))
    }

    pub(super) fn write_validated(
        self: &Arc<Self>,
        batch: WriteBatch,
        opts: &WriteOptions,
    ) -> Result<()> {
        self.submit(batch, opts, None)
    }

    /// A transaction's commit: [`Inner::write`] whose batch the leader
    /// first validates against `check` (see `kv::transaction`); a batch
    /// that fails is not written and `check.rejected` is set.
    pub(crate) fn write_checked(
        self: &Arc<Self>,
        batch: WriteBatch,
        opts: &WriteOptions,
        check: Option<Box<ReadSet>>,
    ) -> Result<()> {
        let m = &self.metrics;
        let t0 = m.start();
        let bytes = batch.encoded_len() as u64;
        let rejected = check.as_ref().map(|c| Arc::clone(&c.rejected));
        let r = self.validate(&batch).and_then(|(puts, deletes)| {
            self.submit(batch, opts, check)?;
            if !rejected.is_some_and(|r| r.load(Ordering::Acquire)) {
                m.wrote(puts, deletes, bytes);
            }
            Ok(())
        });
        m.finish(OpKind::Write, t0, &r);
        r
    }

    fn submit(
        self: &Arc<Self>,
        batch: WriteBatch,
        opts: &WriteOptions,
        check: Option<Box<ReadSet>>,
    ) -> Result<()> {
        let inner = self;
        let durability = opts.durability.unwrap_or(inner.opts.durability);
        inner.core.check_writable()?;
        inner.check_not_read_only()?;
        if batch.is_empty() {
            return Ok(());
        }
        if !batch.is_relocation() {
            inner.pace_for_space();
        }
        inner.core.commit.submit(
            Queued {
                payload: batch.into_payload(),
                durability,
                check,
            },
            |group| inner.lead(group),
        )?;
        inner.maybe_auto_checkpoint();
        Ok(())
    }

    /// Open keyspace `name`, creating it if `create` is set.
    pub(crate) fn keyspace(self: &Arc<Self>, name: &str, create: bool) -> Result<Keyspace> {
        keyspace::check_name(name)?;
        let handle = |id| Keyspace {
            inner: Arc::clone(self),
            id,
            name: name.into(),
        };
        if let Some(id) = self.read(|t| t.lookup(name))? {
            return Ok(handle(id));
        }
        if !create {
            return Err(Error::NotFound(format!("no keyspace named {name:?}")));
        }
        let _ddl = self.ddl.lock();
        // Another thread may have created it before we took the lock.
        let (existing, id) = self.read(|t| (t.lookup(name), t.next_id()))?;
        if let Some(id) = existing {
            return Ok(handle(id));
        }
        if id == u32::MAX {
            return Err(Error::InvalidArgument("keyspace ids exhausted".into()));
        }
        let mut b = WriteBatch::new();
        b.keyspace_op(true, id, name);
        self.write_validated(b, &WriteOptions::default())?;
        Ok(handle(id))
    }

    pub(crate) fn drop_keyspace(self: &Arc<Self>, name: &str) -> Result<bool> {
        keyspace::check_name(name)?;
        let _ddl = self.ddl.lock();
        let Some(id) = self.read(|t| t.lookup(name))? else {
            return Ok(false);
        };
        let mut b = WriteBatch::new();
        b.keyspace_op(false, id, name);
        self.write_validated(b, &WriteOptions::default())?;
        Ok(true)
    }

    /// Leader of a commit group: validate its transactions in log order,
    /// write the batches that pass, bring the group to the strongest
    /// durability level any member asked for, apply in LSN order, and keep
    /// the write sets open transactions will be validated against.
    pub(super) fn lead(&self, group: Vec<Queued>) -> Result<()> {
        self.core.poison.check()?;
        self.metrics.group(group.len());
        let accepted = self.validate_group(&group);
        let durability = group
            .iter()
            .map(|q| q.durability)
            .max()
            .unwrap_or(self.opts.durability);
        let mut wal = self.core.wal.lock();
        let records: Vec<(RecordType, &[u8])> = group
            .iter()
            .zip(&accepted)
            .filter(|(_, ok)| **ok)
            .map(|(q, _)| (RecordType::KvBatch, &q.payload[..]))
            .collect();
        if records.is_empty() {
            return Ok(());
        }
        let mut at = Vec::with_capacity(records.len());
        let first = self
            .core
            .poison_on_err(wal.append_at(&records, Some(&mut at), durability))?;
        let bytes: u64 = records
            .iter()
            .map(|(_, p)| crate::format::record::encoded_len(p.len()) as u64)
            .sum();
        let written = records.len() as u64;
        drop(records);
        // The group's records end at the writer's last LSN (a rotation may
        // have put a segment-link record between two of them).
        let last = wal.next_lsn() - 1;
        debug_assert!(last >= first + written - 1);
        let mut m = self.mem.write();
        let members = group.iter().zip(&accepted).filter(|(_, ok)| **ok);
        for ((q, _), &(segment, header)) in members.zip(&at) {
            let place = PayloadAt {
                segment,
                offset: header + crate::format::record::HEADER_SIZE as u64,
            };
            // Built by WriteBatch and validated by Db::write: always decodes.
            let r = m.table.apply_batch(&q.payload, Some(place)).map_err(|why| {
                Error::corruption(
                    &self.core.dir,
                    None,
                    format!("a queued batch is malformed in memory: {why}"),
                )
            });
            self.core.poison_on_err(r)?;
        }
        m.table.set_applied_lsn(last);
        self.separated_bytes
            .store(m.table.separated_bytes(), Ordering::Relaxed);
        drop(m);
        self.disk_bytes.store(
            wal.segments().iter().map(|s| s.size).sum(),
            Ordering::Relaxed,
        );
        drop(wal);
        self.registry.lock().applied(
            last,
            group
                .into_iter()
                .zip(accepted)
                .filter(|(_, ok)| *ok)
                .map(|(q, _)| q.payload),
        );
        self.wal_bytes_since_checkpoint
            .fetch_add(bytes, Ordering::Relaxed);
        self.groups.fetch_add(1, Ordering::Relaxed);
        self.writes.fetch_add(written, Ordering::Relaxed);
        Ok(())
    }

    /// Which members of `group` may be written: every plain batch, and
    /// each transaction that no batch applied after its snapshot, and no
    /// accepted member ahead of it, wrote a key or range it read. A
    /// rejected transaction's flag is set.
    fn validate_group(&self, group: &[Queued]) -> Vec<bool> {
        let mut accepted = Vec::with_capacity(group.len());
        if group.iter().all(|q| q.check.is_none()) {
            accepted.resize(group.len(), true);
            return accepted;
        }
        let reg = self.registry.lock();
        for (i, q) in group.iter().enumerate() {
            let ok = match &q.check {
                None => true,
                Some(c) => {
                    let applied = reg
                        .log
                        .iter()
                        .rev()
                        .take_while(|(lsn, _)| *lsn > c.lsn)
                        .any(|(_, p)| c.hit_by(p));
                    let ahead = group[..i]
                        .iter()
                        .zip(&accepted)
                        .any(|(a, ok): (&Queued, &bool)| *ok && c.hit_by(&a.payload));
                    let ok = !applied && !ahead;
                    if !ok {
                        c.rejected.store(true, Ordering::Release);
                    }
                    ok
                }
            };
            accepted.push(ok);
        }
        accepted
    }
}
