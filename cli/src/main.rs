//! `keyval`: command-line access to a KeyVal database directory.
//!
//! Exit codes: 0 success; 1 error (I/O, locked, invalid argument, ...);
//! 2 usage error; 3 key not found (`get`, `del`); 4 corruption (`verify`, or on
//! open); 5 `verify` found only a torn tail, which open would truncate.

use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use keyval::fs::RealFs;
use keyval::internals::tools::dump::escape as show;
use keyval::internals::wal::segment;
use keyval::{Db, Durability, Error, Options, WriteBatch};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const EXIT_ERROR: u8 = 1;
/// errno of a write to a closed pipe (Linux).
const EPIPE: i32 = 32;
const EXIT_USAGE: u8 = 2;
const EXIT_NOT_FOUND: u8 = 3;
const EXIT_CORRUPTION: u8 = 4;
const EXIT_TORN_TAIL: u8 = 5;

/// Inspect and modify a KeyVal database directory.
#[derive(Parser, Debug)]
#[command(
    name = "keyval",
    version,
    about = "Inspect and modify a KeyVal database directory",
    long_about = "Inspect and modify a KeyVal database directory: a durable key-value store on a \
                  checksummed write-ahead log.\n\nKeys and values are taken and printed as text \
                  (UTF-8; unprintable bytes are escaped as \\xNN on output) or, with --hex, as hex.",
    after_help = "EXIT STATUS:\n  0  success\n  1  error (I/O, locked by another process, invalid argument, ...)\n  \
                  2  usage error\n  3  key not found (get, del)\n  4  corruption found\n  5  verify found only a torn \
                  tail of unacknowledged writes (open truncates it)\n\nEXAMPLES:\n  keyval ./db set user:1 alice\n  \
                  keyval ./db scan --prefix user: --limit 10\n  keyval ./db load notes.txt todo.txt\n  \
                  keyval ./db verify\n  keyval ./db backup ./db-copy"
)]
struct Cli {
    /// Database directory (created by writing commands if missing; its
    /// parent must exist).
    dir: PathBuf,
    /// Keys and values are hex on input and output.
    #[arg(long, global = true)]
    hex: bool,
    /// When writes are acknowledged.
    #[arg(long, global = true, value_enum, default_value_t = Level::Sync)]
    durability: Level,
    /// get, set, del, scan and count work on this named keyspace instead of
    /// the default one (set creates it).
    #[arg(long, global = true)]
    keyspace: Option<String>,
    /// Largest value the store accepts, in bytes (Options::max_value_size;
    /// default 64 MiB, at most 1 GiB). Also bounds the lines `restore` and
    /// `docs C load` read.
    #[arg(long, global = true, default_value_t = Options::default().max_value_size)]
    max_value_size: u32,
    /// Bytes of the value cache for values kept in the WAL segments
    /// (Options::memory_budget; default 256 MiB).
    #[arg(long, global = true, default_value_t = Options::default().memory_budget)]
    memory_budget: u64,
    /// Values of at least this many bytes stay in the WAL segments
    /// (Options::value_separation_threshold; default 1024, at least 64; 0
    /// keeps every value in memory).
    #[arg(long, global = true, default_value_t = 1024)]
    value_separation_threshold: u32,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Level {
    /// fdatasync before acknowledging (survives power loss).
    Sync,
    /// Written to the OS before acknowledging (survives a process crash).
    Os,
    /// Acknowledged from an in-process buffer.
    Buffered,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Print the value of KEY.
    Get { key: String },
    /// Set KEY to VALUE.
    Set { key: String, value: String },
    /// Delete KEY.
    #[command(alias = "delete")]
    Del { key: String },
    /// Print pairs in key order, one "key<TAB>value" per line.
    Scan(ScanArgs),
    /// Print the number of keys.
    Count,
    /// Print statistics and the last recovery's facts (of a key-value
    /// store or a Raft log directory; read-only, beside a writer).
    Stats {
        /// As JSON.
        #[arg(long, conflicts_with = "prometheus")]
        json: bool,
        /// As Prometheus text exposition format (metrics of this open:
        /// recovery, memory and disk gauges), for scrapers and textfile
        /// collectors.
        #[arg(long)]
        prometheus: bool,
    },
    /// Check every CRC32 and SHA-256, and that every document collection's
    /// indexes agree with its documents, without modifying anything (a
    /// key-value store or a Raft log directory; beside a writer, a problem
    /// must show in 5 reads in a row).
    Verify,
    /// Print every WAL record in readable form (key-value or Raft).
    DumpWal,
    /// Write a snapshot now and drop the WAL it covers.
    Checkpoint,
    /// Move live values out of mostly-dead WAL segments, then checkpoint,
    /// so those segments are deleted (Db::reclaim).
    Reclaim,
    /// Load files: one record per line (key FILE:LINE) or one per file.
    Load(LoadArgs),
    /// Document collections: JSON in, JSON out (see docs/documents.md).
    Docs {
        /// The collection.
        collection: String,
        #[command(subcommand)]
        op: DocOp,
    },
    /// List the named keyspaces.
    Keyspaces,
    /// Write the keyspace (the default one, or --keyspace) to FILE ("-":
    /// stdout) as a portable dump: JSON Lines, keys and values in base64,
    /// with a header and a checksummed trailer (docs/format.md, "Dump
    /// format"). Opens read-only: works beside a writer.
    Dump { file: PathBuf },
    /// Load a dump into the keyspace it names (or --keyspace), in atomic
    /// batches of BATCH pairs. The whole file is checked first (header,
    /// every line, the trailer's count and CRC-32): a damaged or truncated
    /// dump loads nothing.
    Restore {
        file: PathBuf,
        /// Pairs per durable batch.
        #[arg(long, default_value_t = 1000)]
        batch: usize,
    },
    /// Online backup into the new directory DEST: a consistent copy that
    /// opens as a store, holding every write acknowledged before it began.
    /// A key-value store is opened read-only (works beside a writer); a
    /// Raft log directory is opened by its lock (stop its writer first).
    /// An interrupted backup leaves DEST missing or refusing to open.
    Backup { dest: PathBuf },
}

#[derive(Subcommand, Debug)]
enum DocOp {
    /// Insert a document (a JSON object) or an array of them; prints the ids.
    Insert { json: String },
    /// Insert the documents of a JSON Lines file (one object per line;
    /// "-" reads stdin), BATCH per atomic, durable insert_many.
    Load {
        file: PathBuf,
        /// Documents per batch.
        #[arg(long, default_value_t = 500)]
        batch: usize,
        /// Print "ACK <documents>" on stdout after each durable batch.
        #[arg(long)]
        acks: bool,
    },
    /// Print the document ID.
    Get { id: String },
    /// Apply a JSON merge patch (or, with --ops, update operators) to ID.
    Update {
        id: String,
        json: String,
        /// JSON is update operators ({"$inc": {"n": 1}}).
        #[arg(long)]
        ops: bool,
    },
    /// Delete ID.
    Delete { id: String },
    /// Print one page of matches as JSON.
    Find {
        /// The filter (JSON); all documents if omitted.
        filter: Option<String>,
        /// Sort field ("age", "-age" descending); repeatable.
        #[arg(long, allow_hyphen_values = true)]
        sort: Vec<String>,
        /// Page size (default 50, at most 1000).
        #[arg(long)]
        limit: Option<i64>,
        /// Matches to skip.
        #[arg(long)]
        offset: Option<i64>,
        /// Continue after this cursor (a next_cursor).
        #[arg(long)]
        after: Option<String>,
        /// Projection (JSON), e.g. {"name": 1}.
        #[arg(long)]
        projection: Option<String>,
    },
    /// Print the number of matches.
    Count { filter: Option<String> },
    /// Create (or with --drop, drop) the index on PATH.
    Index {
        path: String,
        /// A unique index.
        #[arg(long)]
        unique: bool,
        /// Drop the index instead.
        #[arg(long, conflicts_with = "unique")]
        drop: bool,
    },
    /// List the indexes as JSON.
    Indexes,
    /// Print how find would run FILTER (index or collection scan).
    Explain { filter: Option<String> },
    /// Check that every index agrees with the documents (exit 4 if not).
    Check,
}

#[derive(Args, Debug)]
struct ScanArgs {
    /// Only keys starting with P.
    #[arg(long, conflicts_with_all = ["start", "end"])]
    prefix: Option<String>,
    /// First key (inclusive).
    #[arg(long)]
    start: Option<String>,
    /// End key (exclusive).
    #[arg(long)]
    end: Option<String>,
    /// At most N pairs.
    #[arg(long)]
    limit: Option<usize>,
    /// Print keys only.
    #[arg(long)]
    keys_only: bool,
}

#[derive(Args, Debug)]
struct LoadArgs {
    /// Files to load, in order.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// One record per file (key = path) instead of one per line.
    #[arg(long)]
    whole: bool,
    /// Records per durable batch.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Print "ACK <records>" on stdout after each durable batch.
    #[arg(long)]
    acks: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => ExitCode::from(code),
        // A closed pipe (`keyval DIR scan | head`) is not an error.
        Err(Error::Io {
            errno: Some(EPIPE), ..
        }) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keyval: {}: {e}", cli.dir.display());
            ExitCode::from(match e {
                Error::Corruption { .. } => EXIT_CORRUPTION,
                _ => EXIT_ERROR,
            })
        }
    }
}

fn decode_arg(hex: bool, s: &str) -> Result<Vec<u8>, Error> {
    if !hex {
        return Ok(s.as_bytes().to_vec());
    }
    if s.len() % 2 != 0 {
        return Err(Error::InvalidArgument(format!(
            "hex string {s:?} has an odd length"
        )));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&s[i..i + 2], 16)
                .map_err(|_| Error::InvalidArgument(format!("{s:?} is not hex")))
        })
        .collect()
}
/// `--value-separation-threshold` as the option (0: off).
fn separation(cli: &Cli) -> Option<u32> {
    (cli.value_separation_threshold != 0).then_some(cli.value_separation_threshold)
}

fn open(cli: &Cli, create: bool) -> Result<Db, Error> {
    let durability = match cli.durability {
        Level::Sync => Durability::Sync,
        Level::Os => Durability::Os,
        Level::Buffered => Durability::Buffered,
    };
    let missing = create && !cli.dir.exists();
    let db = Db::open(
        &cli.dir,
        Options {
            durability,
            create_if_missing: create,
            max_value_size: cli.max_value_size,
            memory_budget: cli.memory_budget,
            value_separation_threshold: separation(cli),
            ..Options::default()
        },
    )?;
    if missing {
        eprintln!("keyval: created {}", cli.dir.display());
    }
    Ok(db)
}

/// Open for a command that only reads: read-only (Options::read_only), so
/// it changes nothing on disk (not even a torn tail) and works while
/// another process has the store open.
fn open_read_only(cli: &Cli) -> Result<Db, Error> {
    Db::open(
        &cli.dir,
        Options {
            read_only: true,
            max_value_size: cli.max_value_size,
            memory_budget: cli.memory_budget,
            value_separation_threshold: separation(cli),
            ..Options::default()
        },
    )
}

/// Read one line (through its `\n`, kept) of at most `max` bytes into
/// `buf`, replacing what it held. `Ok(false)` at the end of the input. A
/// longer line is an error naming line `at` of `file`, after reading only
/// `max + 1` bytes of it: `load /dev/zero` fails instead of growing a
/// buffer until the allocator aborts.
fn read_line_bounded(
    input: &mut dyn std::io::BufRead,
    buf: &mut Vec<u8>,
    max: u64,
    file: &Path,
    at: usize,
) -> Result<bool, Error> {
    use std::io::{BufRead as _, Read as _};
    buf.clear();
    let n = input
        .take(max + 1)
        .read_until(b'\n', buf)
        .map_err(|e| Error::io(file, e))?;
    if n as u64 > max && buf.last() != Some(&b'\n') {
        return Err(Error::InvalidArgument(format!(
            "{} line {at}: longer than {max} bytes (raise --max-value-size for larger values)",
            file.display()
        )));
    }
    Ok(n > 0)
}

/// The longest dump line a store with these limits can need: base64 of
/// the largest key and value, and the JSON around them.
fn dump_line_max(max_key: u32, max_value: u32) -> u64 {
    (u64::from(max_key) + u64::from(max_value)).div_ceil(3) * 4 + 64
}

/// The keyspace named by `--keyspace` (created when `create`), or the
/// default keyspace.
fn keyspace(cli: &Cli, db: &Db, create: bool) -> Result<keyval::Keyspace, Error> {
    match cli.keyspace.as_deref() {
        Some(n) if create => db.keyspace(n),
        Some(n) => db.open_keyspace(n),
        None => Ok(keyval::Keyspace::clone(db)),
    }
}

/// Whether the command may create the store's directory.
fn creates(cmd: &Cmd) -> bool {
    match cmd {
        Cmd::Set { .. } | Cmd::Load(_) | Cmd::Restore { .. } => true,
        Cmd::Docs { op, .. } => matches!(
            op,
            DocOp::Insert { .. } | DocOp::Load { .. } | DocOp::Update { .. } | DocOp::Index { .. }
        ),
        _ => false,
    }
}

/// The key and value arguments a command reads (hex-decoded under --hex).
fn byte_args(cmd: &Cmd) -> Vec<&str> {
    match cmd {
        Cmd::Get { key } | Cmd::Del { key } => vec![key],
        Cmd::Set { key, value } => vec![key, value],
        Cmd::Scan(a) => [&a.prefix, &a.start, &a.end]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect(),
        _ => Vec::new(),
    }
}

/// The same mistake gets the same message whatever the command: a path
/// that is not a directory, a missing store for a command that only reads,
/// a missing parent (only the store's own directory is ever created).
/// A creating command creates a missing directory when it opens the store.
fn check_dir(dir: &Path, creates: bool) -> Result<(), Error> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Error::InvalidArgument(
            "exists and is not a directory".into(),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !creates {
                return Err(Error::InvalidArgument(
                    "no such store (the directory does not exist)".into(),
                ));
            }
            match dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                Some(p) if !p.is_dir() => Err(Error::InvalidArgument(format!(
                    "its parent {} does not exist (keyval creates only the store's own directory)",
                    p.display()
                ))),
                _ => Ok(()),
            }
        }
        Err(e) => Err(Error::io(dir, e)),
    }
}

fn run(cli: &Cli) -> Result<u8, Error> {
    let hex = cli.hex;
    // Usage errors first, before anything is opened: exit 2.
    if hex {
        for a in byte_args(&cli.cmd) {
            if let Err(e) = decode_arg(true, a) {
                eprintln!("keyval: {e}");
                return Ok(EXIT_USAGE);
            }
        }
    }
    check_dir(&cli.dir, creates(&cli.cmd))?;
    let mut out = std::io::stdout().lock();
    let w = |e: std::io::Error| Error::from(e);
    match &cli.cmd {
        Cmd::Get { key } => {
            let db = open_read_only(cli)?;
            let ks = keyspace(cli, &db, false)?;
            let k = decode_arg(hex, key)?;
            let got = ks.get(k)?;
            match got {
                Some(v) => {
                    if hex {
                        writeln!(out, "{}", show(true, &v)).map_err(w)?;
                    } else {
                        out.write_all(&v).map_err(w)?;
                        writeln!(out).map_err(w)?;
                    }
                }
                None => {
                    eprintln!("keyval: key {key:?} not found");
                    return Ok(EXIT_NOT_FOUND);
                }
            }
            db.close()?;
        }
        Cmd::Set { key, value } => {
            let db = open(cli, true)?;
            let (k, v) = (decode_arg(hex, key)?, decode_arg(hex, value)?);
            keyspace(cli, &db, true)?.set(k, v)?;
            db.close()?;
        }
        Cmd::Del { key } => {
            // A missing key is reported (exit 3, as `get`) and nothing is
            // written, like Python's `del store[k]`; the APIs' delete is
            // idempotent (see README, "Deleting a missing key").
            let db = open(cli, false)?;
            let k = decode_arg(hex, key)?;
            let ks = keyspace(cli, &db, false)?;
            let present = ks.contains(&k)?;
            if !present {
                eprintln!("keyval: key {key:?} not found; nothing deleted");
                db.close()?;
                return Ok(EXIT_NOT_FOUND);
            }
            ks.delete(k)?;
            db.close()?;
        }
        Cmd::Scan(a) => {
            let db = open_read_only(cli)?;
            let ks = keyspace(cli, &db, false)?;
            let iter = match (&a.prefix, &a.start, &a.end) {
                (Some(p), _, _) => ks.prefix(decode_arg(hex, p)?),
                (None, s, e) => {
                    let s = s.as_deref().map(|s| decode_arg(hex, s)).transpose()?;
                    let e = e.as_deref().map(|e| decode_arg(hex, e)).transpose()?;
                    use std::ops::Bound::*;
                    let lo = s.as_deref().map_or(Unbounded, Included);
                    let hi = e.as_deref().map_or(Unbounded, Excluded);
                    ks.range::<&[u8], _>((lo, hi))
                }
            };
            for pair in iter.take(a.limit.unwrap_or(usize::MAX)) {
                let (k, v) = pair?;
                if a.keys_only {
                    writeln!(out, "{}", show(hex, &k)).map_err(w)?;
                } else {
                    writeln!(out, "{}\t{}", show(hex, &k), show(hex, &v)).map_err(w)?;
                }
            }
            db.close()?;
        }
        Cmd::Count => {
            let db = open_read_only(cli)?;
            let n = keyspace(cli, &db, false)?.len()?;
            writeln!(out, "{n}").map_err(w)?;
            db.close()?;
        }
        Cmd::Stats { json, prometheus } if is_raft(&cli.dir)? => {
            if *prometheus {
                eprintln!("keyval: stats --prometheus is for key-value stores; a Raft log's metrics come from the process that has it open");
                return Ok(EXIT_USAGE);
            }
            let ins = live_read(&cli.dir, |d| keyval::raft::inspect(&RealFs, d))?;
            print_raft_stats(&mut out, &ins, *json).map_err(w)?;
        }
        Cmd::Stats { json, prometheus } => {
            let db = open_read_only(cli)?;
            let s = db.stats()?;
            let m = db.metrics()?;
            let collections = db.list_collections()?.len();
            db.close()?;
            if *prometheus {
                write!(out, "{}", m.to_prometheus(&cli.dir.to_string_lossy())).map_err(w)?;
            } else {
                print_stats(&mut out, &s, collections, *json).map_err(w)?;
            }
        }
        Cmd::Verify => return verify(&cli.dir, &mut out),
        Cmd::DumpWal => keyval::internals::tools::dump::dump_wal(&RealFs, &cli.dir, hex, &mut out)?,
        Cmd::Reclaim => {
            let db = open(cli, false)?;
            let r = db.reclaim()?;
            let s = db.stats()?;
            writeln!(
                out,
                "reclaimed {} segments ({} values, {} bytes moved); {} WAL bytes on disk for {} live separated bytes",
                r.segments, r.values, r.bytes, s.wal_bytes, s.separated_bytes
            )
            .map_err(w)?;
        }
        Cmd::Checkpoint => {
            let db = open(cli, false)?;
            db.checkpoint()?;
            let s = db.stats()?;
            writeln!(
                out,
                "checkpoint at LSN {} ({} keys, {} snapshot bytes)",
                s.snapshot_lsn, s.keys, s.snapshot_bytes
            )
            .map_err(w)?;
            db.close()?;
        }
        Cmd::Load(a) => load(cli, a, &mut out)?,
        Cmd::Docs { collection, op } => return docs(cli, collection, op, &mut out),
        Cmd::Dump { file } => dump(cli, file)?,
        Cmd::Restore { file, batch } => restore(cli, file, *batch, &mut out)?,
        Cmd::Backup { dest } => {
            let info = if keyval::internals::engine::log_kind(&RealFs, &cli.dir)?
                == Some(segment::KIND_RAFT)
            {
                let log = keyval::raft::RaftLog::open(
                    &cli.dir,
                    Options {
                        create_if_missing: false,
                        ..Options::default()
                    },
                )?;
                let info = log.backup(dest)?;
                log.close()?;
                info
            } else {
                let db = open_read_only(cli)?;
                let info = db.backup(dest)?;
                db.close()?;
                info
            };
            writeln!(
                out,
                "backup of {} at LSN {} in {} ({} bytes)",
                cli.dir.display(),
                info.lsn,
                dest.display(),
                info.bytes
            )
            .map_err(w)?;
        }
        Cmd::Keyspaces => {
            let db = open_read_only(cli)?;
            for n in db.list_keyspaces()? {
                writeln!(out, "{n}").map_err(w)?;
            }
            db.close()?;
        }
    }
    Ok(0)
}

fn json_arg(s: Option<&str>) -> Result<serde_json::Value, Error> {
    match s {
        None => Ok(serde_json::Value::Null),
        Some(s) => serde_json::from_str(s)
            .map_err(|e| Error::InvalidArgument(format!("not valid JSON: {e}: {s}"))),
    }
}

/// First line of a dump (docs/format.md, "Dump format").
const DUMP_FORMAT: &str = "keyval-dump";

/// `dump`: header, one line per pair, trailer with the count and the
/// CRC-32 of every pair line (bytes including its newline).
fn dump(cli: &Cli, file: &Path) -> Result<(), Error> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let db = open_read_only(cli)?;
    let ks = keyspace(cli, &db, false)?;
    let w = |e: std::io::Error| Error::io(file, e);
    let mut out: Box<dyn Write> = if file.as_os_str() == "-" {
        Box::new(std::io::BufWriter::new(std::io::stdout().lock()))
    } else {
        Box::new(std::io::BufWriter::new(
            std::fs::File::create(file).map_err(w)?,
        ))
    };
    let header = serde_json::json!({"format": DUMP_FORMAT, "version": 1,
        "keyspace": cli.keyspace});
    writeln!(out, "{header}").map_err(w)?;
    let (mut count, mut crc) = (0u64, crc32fast::Hasher::new());
    let iter = ks.iter();
    for pair in iter {
        let (k, v) = pair?;
        let line = format!(
            "{}\n",
            serde_json::json!({"k": b64.encode(&k), "v": b64.encode(&v)})
        );
        crc.update(line.as_bytes());
        out.write_all(line.as_bytes()).map_err(w)?;
        count += 1;
    }
    let trailer = serde_json::json!({"end": true, "count": count, "crc32": crc.finalize()});
    writeln!(out, "{trailer}").map_err(w)?;
    out.flush().map_err(w)?;
    db.close()?;
    eprintln!("keyval: dumped {count} pairs");
    Ok(())
}

/// One pair line of a dump, decoded.
fn dump_pair(line: &str, at: usize) -> Result<(Vec<u8>, Vec<u8>), Error> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let bad = |why: String| Error::InvalidArgument(format!("dump line {at}: {why}"));
    let v: serde_json::Value = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
    let field = |name: &str| -> Result<Vec<u8>, Error> {
        let s = v[name]
            .as_str()
            .ok_or_else(|| bad(format!("no \"{name}\" string")))?;
        b64.decode(s)
            .map_err(|e| bad(format!("\"{name}\" is not base64: {e}")))
    };
    Ok((field("k")?, field("v")?))
}

/// `restore`: check the whole dump, then load it in batches. The file is
/// read twice, line by line (each line bounded by `dump_line_max`), so a
/// dump larger than memory restores; the check refuses keys and values
/// the target store would refuse (empty or longer than max_key_size, or
/// longer than --max-value-size), so a restore never fails half-way on
/// one.
fn restore(cli: &Cli, file: &Path, batch: usize, out: &mut impl Write) -> Result<(), Error> {
    let limits = Options {
        max_value_size: cli.max_value_size,
        ..Options::default()
    };
    limits.validate()?;
    let line_max = dump_line_max(limits.max_key_size, limits.max_value_size);
    let bad = |why: &str| Error::InvalidArgument(format!("{}: {why}", file.display()));
    let reader = || -> Result<std::io::BufReader<std::fs::File>, Error> {
        let f = std::fs::File::open(file).map_err(|e| Error::io(file, e))?;
        Ok(std::io::BufReader::with_capacity(1 << 20, f))
    };
    // Pass 1: the header, every pair line, and the trailer.
    let mut input = reader()?;
    let mut line = Vec::new();
    if !read_line_bounded(&mut input, &mut line, line_max, file, 1)? {
        return Err(bad("no dump header"));
    }
    let header: serde_json::Value =
        serde_json::from_slice(&line).map_err(|_| bad("no dump header"))?;
    if header["format"] != DUMP_FORMAT || header["version"] != 1 {
        return Err(bad("not a version 1 keyval dump"));
    }
    let mut crc = crc32fast::Hasher::new();
    let mut pairs = 0u64;
    let mut trailer: Option<serde_json::Value> = None;
    let mut at = 1;
    loop {
        at += 1;
        if !read_line_bounded(&mut input, &mut line, line_max, file, at)? {
            break;
        }
        if trailer.is_some() {
            return Err(bad("lines after the trailer: damaged"));
        }
        let text =
            std::str::from_utf8(&line).map_err(|_| bad(&format!("line {at} is not UTF-8")))?;
        if let Ok(t) = serde_json::from_str::<serde_json::Value>(text) {
            if t["end"] == true && line.ends_with(b"\n") {
                trailer = Some(t);
                continue;
            }
        }
        crc.update(&line);
        let (k, v) = dump_pair(text, at)?;
        if k.is_empty() || k.len() > limits.max_key_size as usize {
            return Err(bad(&format!(
                "line {at}: a key of {} bytes (1 to {} allowed)",
                k.len(),
                limits.max_key_size
            )));
        }
        if v.len() > limits.max_value_size as usize {
            return Err(bad(&format!(
                "line {at}: a value of {} bytes (at most {}; raise --max-value-size)",
                v.len(),
                limits.max_value_size
            )));
        }
        pairs += 1;
    }
    let trailer = trailer.ok_or_else(|| bad("no trailer: the dump is truncated"))?;
    if trailer["count"] != pairs || trailer["crc32"] != crc.finalize() {
        return Err(bad(
            "the trailer's count or CRC-32 does not match the lines: damaged",
        ));
    }
    // The keyspace: --keyspace, else the dump's own.
    let name = cli
        .keyspace
        .clone()
        .or_else(|| header["keyspace"].as_str().map(String::from));
    let db = open(cli, true)?;
    let ks = match name.as_deref() {
        Some(n) => db.keyspace(n)?,
        None => keyval::Keyspace::clone(&db),
    };
    let bar = ProgressBar::new(pairs);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} pairs")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    // Pass 2: the pairs again, in batches (the file was checked whole; a
    // change to it meanwhile is caught line by line as in pass 1).
    let mut input = reader()?;
    read_line_bounded(&mut input, &mut line, line_max, file, 1)?;
    let (mut done, mut b, mut in_batch) = (0u64, WriteBatch::new(), 0usize);
    for at in 2.. {
        if done == pairs || !read_line_bounded(&mut input, &mut line, line_max, file, at)? {
            break;
        }
        let text = std::str::from_utf8(&line).map_err(|_| bad("changed while restoring"))?;
        let (k, v) = dump_pair(text, at)?;
        b.put_in(&ks, k, v);
        done += 1;
        in_batch += 1;
        if in_batch >= batch.max(1) {
            db.write(std::mem::take(&mut b))?;
            bar.inc(in_batch as u64);
            in_batch = 0;
        }
    }
    if in_batch > 0 {
        db.write(b)?;
        bar.inc(in_batch as u64);
    }
    bar.finish_and_clear();
    db.close()?;
    if done != pairs {
        return Err(bad("the dump changed while it was restored"));
    }
    writeln!(out, "restored {pairs} pairs").map_err(Error::from)?;
    Ok(())
}

/// `docs C load`: JSON Lines into `c`, `batch` documents per insert_many
/// (each atomic and acknowledged at the store's durability). Returns the
/// number loaded. A line that is not a JSON object fails the load there
/// (the batches before it stay).
fn load_docs(
    c: &keyval::Collection,
    file: &Path,
    batch: usize,
    acks: bool,
    line_max: u64,
    out: &mut impl Write,
) -> Result<u64, Error> {
    let w = |e: std::io::Error| Error::from(e);
    let mut input: Box<dyn std::io::BufRead> = if file.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let f = std::fs::File::open(file).map_err(|e| Error::io(file, e))?;
        Box::new(std::io::BufReader::new(f))
    };
    let (mut acked, mut pending) = (0u64, Vec::new());
    let mut flush = |pending: &mut Vec<serde_json::Value>, acked: &mut u64| -> Result<(), Error> {
        let n = pending.len() as u64;
        c.insert_many(std::mem::take(pending))?;
        *acked += n;
        if acks {
            writeln!(out, "ACK {acked}").map_err(w)?;
            out.flush().map_err(w)?;
        }
        Ok(())
    };
    let mut line = Vec::new();
    for at in 1.. {
        if !read_line_bounded(&mut *input, &mut line, line_max, file, at)? {
            break;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let doc = serde_json::from_slice(&line).map_err(|e| {
            Error::InvalidArgument(format!("{} line {at}: not JSON: {e}", file.display()))
        })?;
        pending.push(doc);
        if pending.len() >= batch.max(1) {
            flush(&mut pending, &mut acked)?;
        }
    }
    if !pending.is_empty() {
        flush(&mut pending, &mut acked)?;
    }
    Ok(acked)
}

fn docs(cli: &Cli, coll: &str, op: &DocOp, out: &mut impl Write) -> Result<u8, Error> {
    let writes = matches!(
        op,
        DocOp::Insert { .. } | DocOp::Load { .. } | DocOp::Update { .. } | DocOp::Index { .. }
    );
    let db = if writes {
        open(cli, true)?
    } else if matches!(op, DocOp::Delete { .. }) {
        open(cli, false)?
    } else {
        open_read_only(cli)?
    };
    let existed = db.list_collections()?.iter().any(|n| n == coll);
    if !writes && !existed {
        // A missing collection reads as an empty one (docs/documents.md),
        // and nothing here creates it.
        let v = match op {
            DocOp::Get { id } => {
                eprintln!("keyval: document {id:?} not found");
                db.close()?;
                return Ok(EXIT_NOT_FOUND);
            }
            DocOp::Find { filter, .. } | DocOp::Count { filter } | DocOp::Explain { filter } => {
                let f = json_arg(filter.as_deref())?;
                keyval::check_filter(&f)?;
                match op {
                    DocOp::Find { .. } => keyval::Page::empty().to_json(),
                    DocOp::Count { .. } => 0.into(),
                    _ => keyval::Plan::empty().to_json(),
                }
            }
            DocOp::Delete { .. } => false.into(),
            DocOp::Indexes => indexes_json(vec![keyval::IndexInfo::primary()]),
            DocOp::Check => check_json(&[]),
            _ => serde_json::json!({}),
        };
        writeln!(out, "{v}").map_err(Error::from)?;
        db.close()?;
        return Ok(0);
    }
    let c = if writes {
        db.collection(coll)?
    } else {
        db.open_collection(coll)?
    };
    let r = docs_op(&db, &c, cli, op, out);
    if r.is_err() && writes && !existed {
        // A failed write leaves no collection behind (best effort: the
        // write's error is the one to report).
        let _ = db.drop_collection_if_empty(coll);
    }
    r
}

fn docs_op(
    db: &Db,
    c: &keyval::Collection,
    cli: &Cli,
    op: &DocOp,
    out: &mut impl Write,
) -> Result<u8, Error> {
    let mut code = 0;
    let v: serde_json::Value = match op {
        DocOp::Insert { json } => match json_arg(Some(json))? {
            serde_json::Value::Array(list) => c.insert_many(list)?.into(),
            d => c.insert(d)?.into(),
        },
        DocOp::Load { file, batch, acks } => {
            let n = load_docs(c, file, *batch, *acks, u64::from(cli.max_value_size), out)?;
            serde_json::json!({ "loaded": n })
        }
        DocOp::Get { id } => match c.get(id)? {
            Some(d) => d,
            None => {
                eprintln!("keyval: document {id:?} not found");
                code = EXIT_NOT_FOUND;
                serde_json::Value::Null
            }
        },
        DocOp::Update { id, json, ops } => {
            let j = json_arg(Some(json))?;
            if *ops {
                c.update_with(id, &j)?
            } else {
                c.update(id, &j)?
            }
        }
        DocOp::Delete { id } => c.delete(id)?.into(),
        DocOp::Find {
            filter,
            sort,
            limit,
            offset,
            after,
            projection,
        } => {
            let mut o = keyval::FindOptions::from_json(&serde_json::json!({ "sort": sort }))?;
            o.limit = *limit;
            o.offset = *offset;
            o.after = after.clone();
            o.projection = projection
                .as_deref()
                .map(|p| json_arg(Some(p)))
                .transpose()?;
            c.find(&json_arg(filter.as_deref())?, &o)?.to_json()
        }
        DocOp::Count { filter } => c.count(&json_arg(filter.as_deref())?)?.into(),
        DocOp::Index { path, unique, drop } => {
            if *drop {
                c.drop_index(path)?.into()
            } else {
                c.create_index(path, *unique)?;
                true.into()
            }
        }
        DocOp::Indexes => indexes_json(c.list_indexes()?),
        DocOp::Explain { filter } => c
            .explain(
                &json_arg(filter.as_deref())?,
                &keyval::FindOptions::default(),
            )?
            .to_json(),
        DocOp::Check => {
            let problems = c.check()?;
            if !problems.is_empty() {
                code = EXIT_CORRUPTION;
            }
            check_json(&problems)
        }
    };
    if code != EXIT_NOT_FOUND {
        writeln!(out, "{v}").map_err(Error::from)?;
    }
    db.close()?;
    Ok(code)
}

/// `docs C indexes` output: `[{"path", "unique", "multikey"}, ...]`.
fn indexes_json(list: Vec<keyval::IndexInfo>) -> serde_json::Value {
    list.into_iter()
        .map(|i| serde_json::json!({"path": i.path, "unique": i.unique, "multikey": i.multikey}))
        .collect()
}

/// `docs C check` output: `{"consistent": bool, "problems": [...]}`.
fn check_json(problems: &[String]) -> serde_json::Value {
    serde_json::json!({ "consistent": problems.is_empty(), "problems": problems })
}

fn print_stats(
    out: &mut impl Write,
    s: &keyval::Stats,
    collections: usize,
    json: bool,
) -> std::io::Result<()> {
    let r = &s.recovery;
    if json {
        let v = serde_json::json!({
            "keys": s.keys, "key_bytes": s.key_bytes, "value_bytes": s.value_bytes,
            "memory_bytes": s.memory_bytes, "wal_segments": s.wal_segments, "wal_bytes": s.wal_bytes,
            "wal_bytes_since_checkpoint": s.wal_bytes_since_checkpoint, "snapshots": s.snapshots,
            "snapshot_bytes": s.snapshot_bytes, "disk_bytes": s.disk_bytes, "last_lsn": s.last_lsn,
            "synced_lsn": s.synced_lsn, "snapshot_lsn": s.snapshot_lsn, "poisoned": s.poisoned,
            "keyspaces": s.keyspaces, "collections": collections,
            "recovery": recovery_json(r),
        });
        return writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&v).unwrap_or_default()
        );
    }
    writeln!(out, "keys              {}", s.keys)?;
    writeln!(out, "key bytes         {}", s.key_bytes)?;
    writeln!(out, "value bytes       {}", s.value_bytes)?;
    writeln!(out, "memory (est.)     {} bytes", s.memory_bytes)?;
    writeln!(
        out,
        "WAL               {} segment(s), {} bytes",
        s.wal_segments, s.wal_bytes
    )?;
    writeln!(
        out,
        "snapshots         {}, {} bytes, newest at LSN {}",
        s.snapshots, s.snapshot_bytes, s.snapshot_lsn
    )?;
    writeln!(out, "last LSN          {}", s.last_lsn)?;
    print_recovery(out, r)
}

/// `first..=last` of a Raft log's entries, or "none (next N)".
fn raft_range(r: &keyval::raft::Inspection) -> String {
    match r.last_index {
        Some(l) => format!("{}..={l}", r.first_index),
        None => format!("none (next index {})", r.first_index),
    }
}

fn raft_hard_state(r: &keyval::raft::Inspection) -> String {
    match &r.hard_state {
        Some(h) => format!(
            "term {} commit {} vote {}",
            h.term,
            h.commit,
            if h.vote.is_empty() {
                "none".to_string()
            } else {
                format!("0x{}", hex_string(&h.vote))
            }
        ),
        None => "none".into(),
    }
}

fn raft_snapshot(r: &keyval::raft::Inspection) -> String {
    match (&r.snapshot, &r.snapshot_error) {
        (Some(m), _) => format!(
            "up to index {} (term {}), {} bytes",
            m.last_index, m.last_term, r.snapshot_bytes
        ),
        (None, Some(e)) => format!("DAMAGED: {e}"),
        (None, None) => "none".into(),
    }
}

fn hex_string(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `stats` of a Raft log directory (read without its lock).
fn print_raft_stats(
    out: &mut impl Write,
    r: &keyval::raft::Inspection,
    json: bool,
) -> std::io::Result<()> {
    if json {
        let v = serde_json::json!({
            "kind": "raft",
            "first_index": r.first_index, "last_index": r.last_index,
            "hard_state": r.hard_state.as_ref().map(|h| serde_json::json!({
                "term": h.term, "commit": h.commit, "vote_hex": hex_string(&h.vote) })),
            "last_purged": r.last_purged.map(|(i, t)| serde_json::json!({"index": i, "term": t})),
            "snapshot": r.snapshot.as_ref().map(|m| serde_json::json!({
                "last_index": m.last_index, "last_term": m.last_term,
                "config_bytes": m.config.len(), "bytes": r.snapshot_bytes })),
            "snapshot_error": r.snapshot_error,
            "wal_segments": r.segments, "wal_bytes": r.wal_bytes,
            "recovery": recovery_json(&r.recovery),
        });
        return writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&v).unwrap_or_default()
        );
    }
    writeln!(out, "Raft log")?;
    writeln!(out, "entries           {}", raft_range(r))?;
    writeln!(out, "hard state        {}", raft_hard_state(r))?;
    if let Some((i, t)) = r.last_purged {
        writeln!(out, "last purged       index {i} (term {t})")?;
    }
    writeln!(out, "snapshot          {}", raft_snapshot(r))?;
    writeln!(
        out,
        "WAL               {} segment(s), {} bytes",
        r.segments, r.wal_bytes
    )?;
    print_recovery(out, &r.recovery)
}

/// The recovery facts as JSON (the `recovery` member of `stats --json`).
fn recovery_json(r: &keyval::RecoveryStats) -> serde_json::Value {
    serde_json::json!({
        "snapshot_lsn": r.snapshot_lsn, "snapshot_entries": r.snapshot_entries,
        "snapshots_rejected": r.snapshots_rejected, "snapshot_error": r.snapshot_error,
        "segments_scanned": r.segments_scanned, "segments_skipped": r.segments_skipped,
        "records_replayed": r.records_replayed, "bytes_replayed": r.bytes_replayed,
        "truncation": r.truncation.as_ref().map(|t| serde_json::json!({
            "file": t.file.display().to_string(), "offset": t.offset, "bytes": t.bytes,
            "records": t.records, "reason": t.reason })),
        "records_skipped": r.records_skipped, "bytes_skipped": r.bytes_skipped,
        "last_lsn": r.last_lsn, "duration_micros": r.duration_micros,
    })
}

/// The recovery lines of `stats`.
fn print_recovery(out: &mut impl Write, r: &keyval::RecoveryStats) -> std::io::Result<()> {
    writeln!(
        out,
        "recovery          snapshot LSN {} ({} entries), {} record(s) / {} bytes replayed in {} us",
        r.snapshot_lsn, r.snapshot_entries, r.records_replayed, r.bytes_replayed, r.duration_micros
    )?;
    if r.snapshots_rejected > 0 {
        writeln!(
            out,
            "                  {} snapshot(s) rejected: {}",
            r.snapshots_rejected,
            r.snapshot_error.as_deref().unwrap_or("")
        )?;
    }
    match &r.truncation {
        Some(t) => writeln!(out, "                  torn tail truncated: {} at offset {} ({} bytes, {} unacknowledged record(s)): {}",
            t.file.display(), t.offset, t.bytes, t.records, t.reason)?,
        None => writeln!(out, "                  no torn tail")?,
    }
    Ok(())
}

/// Whether `dir` holds a Raft log (by its first segment's header).
fn is_raft(dir: &Path) -> Result<bool, Error> {
    Ok(keyval::internals::engine::log_kind(&RealFs, dir)? == Some(segment::KIND_RAFT))
}

/// How many times a read of a directory another process is writing is
/// tried before what it found is reported.
const LIVE_READS: u32 = 5;

/// Run `read` on `dir` (which must not change anything), retrying while it
/// fails with `Corruption` or a vanished file: a writer rotating, appending
/// or checkpointing under the reader makes both appear for a moment, as the
/// read-only open documents. Real damage persists and is returned.
fn live_read<T>(dir: &Path, mut read: impl FnMut(&Path) -> Result<T, Error>) -> Result<T, Error> {
    let mut attempt = 1;
    loop {
        match read(dir) {
            Err(Error::Corruption { .. })
            | Err(Error::Io {
                errno: Some(libc::ENOENT),
                ..
            }) if attempt < LIVE_READS => {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            r => return r,
        }
    }
}

fn verify(dir: &Path, out: &mut impl Write) -> Result<u8, Error> {
    // With the lock free, take it so no writer starts meanwhile. If a
    // writer holds it, verify beside it: what the writer is appending can
    // look torn for a moment, so a problem must show in LIVE_READS reads
    // in a row to be reported.
    // On a read-only mount no writer can run and the lock cannot be
    // taken (its file cannot be opened for writing): verify as if held.
    // Without permission to write the lock file, a writer may run: verify
    // as beside one.
    let mut read_only_fs = false;
    let lock = match keyval::fs::FileSystem::lock(
        &RealFs,
        &dir.join(keyval::internals::engine::LOCK_FILE),
    ) {
        Ok(l) => Some(l),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
        Err(e) if e.kind() == std::io::ErrorKind::ReadOnlyFilesystem => {
            read_only_fs = true;
            None
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => None,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::InvalidArgument(format!(
                "{} does not exist",
                dir.display()
            )))
        }
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut rep = keyval::internals::verify::verify_dir(&RealFs, dir)?;
    let mut reads = 1;
    while lock.is_none() && !read_only_fs && reads < LIVE_READS && !rep.problems.is_empty() {
        std::thread::sleep(std::time::Duration::from_millis(20));
        rep = keyval::internals::verify::verify_dir(&RealFs, dir)?;
        reads += 1;
    }
    let live = lock.is_none() && !read_only_fs;
    drop(lock);
    let w = |e: std::io::Error| Error::from(e);
    writeln!(
        out,
        "checked {} snapshot(s) ({} entries), {} segment(s) ({} records), {} bytes",
        rep.snapshots, rep.snapshot_entries, rep.segments, rep.records, rep.bytes
    )
    .map_err(w)?;
    if let Some((lo, hi)) = rep.lsn_range {
        writeln!(out, "WAL sequence numbers {lo}..={hi}").map_err(w)?;
    }
    if rep.separated_values > 0 {
        writeln!(
            out,
            "read back {} value(s) kept in the WAL segments (each against its CRC)",
            rep.separated_values
        )
        .map_err(w)?;
    }
    if live {
        writeln!(
            out,
            "note: another process has {} open; checked beside its writer ({reads} read(s))",
            dir.display()
        )
        .map_err(w)?;
    }
    if let Some(r) = &rep.raft {
        writeln!(
            out,
            "Raft log: entries {}, hard state {}, snapshot {}",
            raft_range(r),
            raft_hard_state(r),
            raft_snapshot(r)
        )
        .map_err(w)?;
    }
    if rep.collections > 0 {
        writeln!(
            out,
            "checked {} document collection(s) ({} documents) against their indexes",
            rep.collections, rep.documents
        )
        .map_err(w)?;
    }
    for (coll, p) in &rep.index_problems {
        writeln!(out, "INDEX: collection {coll:?}: {p}").map_err(w)?;
    }
    for p in &rep.problems {
        let at = p
            .offset
            .map(|o| format!(" at offset {o}"))
            .unwrap_or_default();
        writeln!(
            out,
            "{}: {}{at}: {}",
            match p.severity {
                keyval::internals::verify::Severity::Corruption => "CORRUPT",
                keyval::internals::verify::Severity::TornTail => "TORN",
                keyval::internals::verify::Severity::Harmless => "HARMLESS",
            },
            p.file.display(),
            p.detail
        )
        .map_err(w)?;
    }
    if rep.has_corruption() || rep.has_index_problems() {
        writeln!(out, "result: CORRUPTION").map_err(w)?;
        Ok(EXIT_CORRUPTION)
    } else if rep.has_torn_tail() {
        writeln!(out, "result: torn tail only (recoverable)").map_err(w)?;
        Ok(EXIT_TORN_TAIL)
    } else {
        writeln!(out, "result: OK").map_err(w)?;
        Ok(0)
    }
}
/// The records a file contributes: one per line (`\n`-separated; a final
/// newline does not start an extra line), or the whole file.
fn records_of(path: &Path, data: &[u8], whole: bool) -> Vec<(Vec<u8>, Vec<u8>)> {
    let name = path.display().to_string();
    if whole {
        return vec![(name.into_bytes(), data.to_vec())];
    }
    let mut lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    if data.ends_with(b"\n") {
        lines.pop();
    }
    lines
        .into_iter()
        .enumerate()
        .map(|(i, l)| (format!("{name}:{}", i + 1).into_bytes(), l.to_vec()))
        .collect()
}

fn load(cli: &Cli, a: &LoadArgs, out: &mut impl Write) -> Result<(), Error> {
    let w = |e: std::io::Error| Error::from(e);
    let db = open(cli, true)?;
    let total: u64 = a
        .files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let (mut acked, mut pending) = (0u64, 0usize);
    let mut b = WriteBatch::new();
    let max_value = db.options().max_value_size as usize;
    for f in &a.files {
        let data = std::fs::read(f).map_err(|e| Error::io(f, e))?;
        for (k, v) in records_of(f, &data, a.whole) {
            if v.len() > max_value {
                bar.suspend(|| {
                    eprintln!(
                        "keyval: skipping {}: {} bytes exceeds max_value_size",
                        show(false, &k),
                        v.len()
                    )
                });
                continue;
            }
            b.put(k, v);
            pending += 1;
            if pending >= a.batch.max(1) {
                db.write(std::mem::take(&mut b))?;
                acked += pending as u64;
                pending = 0;
                if a.acks {
                    writeln!(out, "ACK {acked}").map_err(w)?;
                    out.flush().map_err(w)?;
                }
                bar.set_message(format!("{acked} records"));
            }
        }
        bar.inc(data.len() as u64);
    }
    if pending > 0 {
        db.write(b)?;
        acked += pending as u64;
        if a.acks {
            writeln!(out, "ACK {acked}").map_err(w)?;
        }
    }
    bar.finish_and_clear();
    db.close()?;
    writeln!(out, "loaded {acked} records from {} file(s)", a.files.len()).map_err(w)?;
    Ok(())
}
