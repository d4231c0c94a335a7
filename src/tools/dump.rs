//! `keyval DIR dump-wal`: every record of every WAL segment in readable
//! form, one per line, with what it holds (the operations of a key-value
//! batch, the meaning of a Raft record), then any damage the reader found.
//! It reads the files through the same layouts as recovery
//! ([`crate::format`]) and changes nothing.

use crate::engine;
use crate::error::{Error, Result};
use crate::format::batch::{self, Op};
use crate::format::raft::RaftRecord;
use crate::format::record::{Owner, RecordType};
use crate::fs::{FileSystem, OpenMode};
use crate::wal::{reader, segment};
use std::io::Write;
use std::path::Path;

/// `b` for a terminal: hex digits if `hex`, else UTF-8 with control
/// characters, backslashes and invalid bytes escaped (`\n`, `\\`, `\x00`).
pub fn escape(hex: bool, b: &[u8]) -> String {
    if hex {
        return b.iter().map(|x| format!("{x:02x}")).collect();
    }
    let mut out = String::with_capacity(b.len());
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
                c => out.push(c),
            }
        }
        for x in chunk.invalid() {
            out.push_str(&format!("\\x{x:02x}"));
        }
    }
    out
}

/// Write every record of the log in `dir` to `out` (format in the module
/// docs; `hex` shows keys and values as hex digits).
///
/// Errors: [`Error::Io`] (a file cannot be read, or `out` fails). Damage
/// is not an error: it is printed.
pub fn dump_wal(fs: &dyn FileSystem, dir: &Path, hex: bool, out: &mut dyn Write) -> Result<()> {
    let w = |e: std::io::Error| Error::from(e);
    let kind = engine::log_kind(fs, dir)?.unwrap_or(segment::KIND_KV);
    let listing = engine::list(fs, dir)?;
    for id in listing.segments {
        let path = dir.join(segment::file_name(id));
        let len = fs
            .open(&path, OpenMode::Read)
            .and_then(|f| f.len())
            .map_err(|e| Error::io(&path, e))?;
        writeln!(out, "# segment {id} ({}, {len} bytes)", path.display()).map_err(w)?;
        let buf = segment::read_file(fs, &path, kind, id, None)?;
        let db_id = match segment::check_header(&path, &buf, kind, id) {
            Ok(d) => d,
            Err(e) => {
                writeln!(out, "#   bad header: {e}").map_err(w)?;
                continue;
            }
        };
        let scan = reader::scan(
            &buf,
            Owner {
                db_id,
                segment_id: id,
            },
        );
        for r in &scan.records {
            let h = &r.header;
            let rtype = RecordType::from_u8(h.rtype);
            let name = rtype.map_or("?".to_string(), |t| format!("{t:?}"));
            write!(
                out,
                "lsn={} offset={} len={} synced={} type={name}",
                h.lsn, r.offset, h.len, h.synced_lsn
            )
            .map_err(w)?;
            let payload = &buf[r.payload.clone()];
            let text = match rtype {
                Some(RecordType::SegmentLink) => {
                    let next = crate::format::codec::u64_at(payload, 0);
                    format!("\n  the log continues in segment {next:?}")
                }
                Some(RecordType::KvBatch) => batch_text(payload, hex),
                Some(t) => format!("\n  {}", raft_text(t, payload, hex)),
                None => format!("\n  {} byte payload", payload.len()),
            };
            writeln!(out, "{text}").map_err(w)?;
        }
        if let Some(d) = &scan.damage {
            writeln!(
                out,
                "#   damage at offset {}: {} ({} valid record(s) after it)",
                d.offset,
                d.reason,
                d.later.len()
            )
            .map_err(w)?;
        }
    }
    Ok(())
}

/// The operations of a `KvBatch` payload, each on its own line.
fn batch_text(payload: &[u8], hex: bool) -> String {
    let mut s = String::new();
    for op in batch::decode(payload) {
        s += &match op {
            Ok(Op::Put(k, v)) => format!("\n  put {} ({} byte value)", escape(hex, k), v.len()),
            Ok(Op::Delete(k)) => format!("\n  del {}", escape(hex, k)),
            Ok(Op::Relocate {
                named, from, key, ..
            }) => format!(
                "\n  relocate {} of the {} table from segment {} offset {} ({} byte value)",
                escape(hex, key),
                if named { "named" } else { "default" },
                from.segment,
                from.offset,
                from.len
            ),
            Ok(Op::PutIn(id, k, v)) => format!(
                "\n  put {} in keyspace {id} ({} byte value)",
                escape(hex, k),
                v.len()
            ),
            Ok(Op::DeleteIn(id, k)) => format!("\n  del {} in keyspace {id}", escape(hex, k)),
            Ok(Op::CreateKeyspace(id, n)) => {
                format!("\n  create keyspace {} as id {id}", escape(hex, n))
            }
            Ok(Op::DropKeyspace(id, n)) => {
                format!("\n  drop keyspace {} (id {id})", escape(hex, n))
            }
            Err(e) => format!("\n  malformed payload: {e}"),
        };
    }
    s
}

/// A Raft record's payload in readable form.
fn raft_text(rtype: RecordType, p: &[u8], hex: bool) -> String {
    let rec = match RaftRecord::decode(rtype, p) {
        Some(Ok(r)) => r,
        Some(Err(_)) if rtype == RecordType::RaftRebase => {
            return format!("rebase: unknown phase ({} byte payload)", p.len())
        }
        Some(Err(_)) => return "malformed payload".into(),
        None => return format!("{} byte payload", p.len()),
    };
    match rec {
        RaftRecord::Entries { first, count, .. } => {
            let mut s = format!(
                "{count} entr{} from index {first}",
                if count == 1 { "y" } else { "ies" }
            );
            for (i, e) in rec.entries().enumerate() {
                let Ok(e) = e else {
                    return "malformed payload".into();
                };
                let shown = &e.data[..e.data.len().min(32)];
                s += &format!(
                    "\n    index {} term {}: {} byte(s) {}{}",
                    first + i as u64,
                    e.term,
                    e.data.len(),
                    escape(hex, shown),
                    if e.data.len() > 32 { "..." } else { "" }
                );
            }
            s
        }
        RaftRecord::HardState { term, commit, vote } => format!(
            "hard state: term {term} commit {commit} vote {}",
            escape(hex, vote)
        ),
        RaftRecord::TruncateSuffix { from } => {
            format!("truncate suffix: entries from index {from} removed")
        }
        RaftRecord::TruncatePrefix { upto, term } => {
            format!("truncate prefix: entries up to index {upto} (term {term}) removed")
        }
        RaftRecord::Reclaim { lsn } => {
            format!("reclaim: segments holding only records below LSN {lsn} may be deleted")
        }
        RaftRecord::Rebase { commit: false } => {
            "rebase: a rewrite of the whole log (after a salvage) begins".into()
        }
        RaftRecord::Rebase { commit: true } => {
            "rebase: the rewrite is complete and replaces the log before it".into()
        }
    }
}
