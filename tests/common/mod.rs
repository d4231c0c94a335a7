//! Helpers shared by the integration tests.
#![allow(dead_code)]

use keyval::fs::{DirLock, FileHandle, FileSystem, OpenMode, RealFs};
use keyval::{Durability, Options};
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Options with small segments so tests rotate often.
pub fn small_opts() -> Options {
    Options {
        segment_size: 64 << 10,
        max_wal_size: 0,
        ..Options::default()
    }
}

pub fn opts_with(durability: Durability) -> Options {
    Options {
        durability,
        ..small_opts()
    }
}

/// Which operation a [`FaultyFs`] fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Write,
    Sync,
    Rename,
    SetLen,
}

/// Real file system that fails the N-th call of one kind with EIO (and,
/// when `persistent`, every later one too).
#[derive(Debug)]
pub struct FaultyFs {
    pub fault: Fault,
    pub countdown: AtomicI64,
    pub persistent: bool,
    pub errno: i32,
}

impl FaultyFs {
    pub fn new(fault: Fault, nth: i64, persistent: bool) -> Arc<FaultyFs> {
        Arc::new(FaultyFs {
            fault,
            countdown: AtomicI64::new(nth),
            persistent,
            errno: libc::EIO,
        })
    }
    fn hit(&self, kind: Fault) -> io::Result<()> {
        if kind != self.fault {
            return Ok(());
        }
        let left = self.countdown.fetch_sub(1, Ordering::SeqCst);
        if left == 1 || (self.persistent && left <= 1) {
            return Err(io::Error::from_raw_os_error(self.errno));
        }
        Ok(())
    }
    pub fn fired(&self) -> bool {
        self.countdown.load(Ordering::SeqCst) <= 0
    }
}

#[derive(Debug)]
struct FaultyFile {
    inner: Arc<dyn FileHandle>,
    fs: Arc<FaultyFs>,
}

impl FileHandle for FaultyFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.fs.hit(Fault::Write)?;
        self.inner.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.fs.hit(Fault::Sync)?;
        self.inner.sync_data()
    }
    fn sync_all(&self) -> io::Result<()> {
        self.fs.hit(Fault::Sync)?;
        self.inner.sync_all()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.fs.hit(Fault::SetLen)?;
        self.inner.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
}

/// Wrapper so that `Arc<FaultyFs>` can be handed to `Db::open_with_fs`.
#[derive(Debug)]
pub struct FaultyFsHandle(pub Arc<FaultyFs>);

impl FileSystem for FaultyFsHandle {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        RealFs.create_dir_all(dir)
    }
    fn is_dir(&self, path: &Path) -> io::Result<bool> {
        RealFs.is_dir(path)
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        RealFs.exists(path)
    }
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn FileHandle>> {
        let inner = RealFs.open(path, mode)?;
        Ok(Arc::new(FaultyFile {
            inner,
            fs: Arc::clone(&self.0),
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.0.hit(Fault::Rename)?;
        RealFs.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        RealFs.remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.0.hit(Fault::Sync)?;
        RealFs.sync_dir(dir)
    }
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        RealFs.list_dir(dir)
    }
    fn lock(&self, path: &Path) -> io::Result<Box<dyn DirLock>> {
        RealFs.lock(path)
    }
    fn create_dir(&self, dir: &Path) -> io::Result<()> {
        RealFs.create_dir(dir)
    }
    fn is_own_dir(&self, path: &Path) -> io::Result<bool> {
        RealFs.is_own_dir(path)
    }
    fn remove_dir(&self, dir: &Path) -> io::Result<()> {
        RealFs.remove_dir(dir)
    }
}

/// Paths of the WAL segments in `dir`, oldest first.
pub fn segments(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    v.sort();
    v
}

/// Paths of the snapshots in `dir`, oldest first.
pub fn snapshots(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "kvs"))
        .collect();
    v.sort();
    v
}

/// Tiny deterministic RNG (xorshift64*), so failures replay by seed.
#[allow(unused_imports)] // not every test uses it
pub use keyval::fs::Rng;

/// The root-only tests (real power cuts, a full tmpfs) decide at run time
/// whether they can run: `why` is `None` when everything they need is
/// there. When it is not, the test is skipped with a line on stderr
/// (`SKIPPED <test>: <why>`), except under `CI=true`, where a missing
/// prerequisite fails the test: CI must run them.
pub fn root_test_can_run(test: &str, why: Option<String>) -> bool {
    let Some(why) = why else {
        return true;
    };
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("{test}: cannot run under CI=true: {why}");
    }
    eprintln!("SKIPPED {test}: {why}");
    false
}

/// Why a root-only test cannot run here: not root, or one of `tools`
/// (looked up in the usual system directories) is missing.
pub fn root_prerequisites(tools: &[&str], paths: &[&str]) -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap_or("?");
    if euid != "0" {
        return Some(format!("needs root (euid {euid})"));
    }
    for tool in tools {
        let found = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
            .iter()
            .any(|d| Path::new(d).join(tool).exists());
        if !found {
            return Some(format!("{tool} is not installed"));
        }
    }
    for p in paths {
        if !Path::new(p).exists() {
            return Some(format!("{p} is missing"));
        }
    }
    None
}

/// Run this test binary's ignored test `child` as a child process with
/// `envs`, SIGKILL it after `delay`, and return the `(writer, seq)` pairs of
/// the `ACK <run> <writer> <seq>` lines it printed before it died (each
/// printed only after its write was acknowledged).
pub fn run_and_kill_child(
    child: &str,
    envs: &[(&str, String)],
    delay: std::time::Duration,
) -> Vec<(u64, u64)> {
    use std::io::BufRead;
    let mut cmd = std::process::Command::new(std::env::current_exe().expect("exe"));
    cmd.args([
        "--exact",
        child,
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut proc = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let out = proc.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut acks = Vec::new();
        for line in std::io::BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() == 4 && f[0] == "ACK" {
                if let (Ok(w), Ok(seq)) = (f[2].parse(), f[3].parse()) {
                    acks.push((w, seq));
                }
            }
        }
        acks
    });
    let start = std::time::Instant::now();
    while start.elapsed() < delay {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    proc.kill().expect("SIGKILL");
    proc.wait().expect("wait");
    reader.join().expect("reader")
}
