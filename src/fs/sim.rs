//! [`SimFs`]: an in-memory file system that models what survives a power
//! cut, for crash-consistency tests.
//!
//! - Each file has a *live* image (what reads see) and a *durable* image
//!   (what survives a crash), plus the writes made since its last sync.
//!   `sync_data`/`sync_all` make the live image durable.
//! - A directory entry (create, rename, remove) becomes durable only when
//!   its directory is synced with `sync_dir`.
//! - Every mutating call is one *step*. With [`SimFs::crash_at`] set, the
//!   call at that step fails and so does every later one: the process is
//!   dead. [`SimFs::crash_image`] then builds the disk a reboot would find,
//!   in one of the [`CrashMode`]s, as a fresh `SimFs` to recover from.
//!
//! Data is never shared between a `SimFs` and its crash images.

use super::{DirLock, FileHandle, FileSystem, OpenMode};
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What a crash does to data that was not synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    /// Every unsynced write and directory change is lost.
    DropAll,
    /// Each unsynced 512-byte sector write survives or not at random
    /// (writes may land out of order); unsynced directory changes are lost.
    RandomSectors,
    /// Unsynced writes survive in order, but the last one is torn at a
    /// 512-byte boundary.
    TornLast,
    /// Unsynced writes are lost, and any part of the file that grew since
    /// its last sync is filled with zeros or garbage.
    GarbageTail,
    /// Unsynced writes survive at random like `RandomSectors`, and each
    /// unsynced create, rename or remove independently survives or not.
    RandomDirOps,
}

impl CrashMode {
    /// Every mode.
    pub const ALL: [CrashMode; 5] = [
        CrashMode::DropAll,
        CrashMode::RandomSectors,
        CrashMode::TornLast,
        CrashMode::GarbageTail,
        CrashMode::RandomDirOps,
    ];
}

#[derive(Debug, Clone, Default)]
struct Inode {
    live: Vec<u8>,
    durable: Vec<u8>,
    /// Writes since the last sync, in order: (offset, bytes).
    pending: Vec<(u64, Vec<u8>)>,
}

#[derive(Debug, Default)]
struct State {
    inodes: Vec<Inode>,
    live: BTreeMap<PathBuf, usize>,
    durable: BTreeMap<PathBuf, usize>,
    /// Unsynced directory changes, in order: (path, new inode or None).
    dir_pending: Vec<(PathBuf, Option<usize>)>,
    dirs: BTreeSet<PathBuf>,
    locks: BTreeSet<PathBuf>,
    step: u64,
    crash_at: Option<u64>,
    crashed: bool,
    /// Ask the engine to run no background threads (see
    /// [`SimFs::deterministic`]).
    deterministic: bool,
}

/// The simulated file system. Cheap to clone (shared state).
#[derive(Debug, Clone, Default)]
pub struct SimFs {
    st: Arc<Mutex<State>>,
}

fn dead() -> io::Error {
    io::Error::other("simulated crash: the process is dead")
}

fn parent(p: &Path) -> PathBuf {
    p.parent().map(Path::to_path_buf).unwrap_or_default()
}

impl State {
    /// Count a mutating step; fail it (and all later ones) at the crash.
    fn step(&mut self) -> io::Result<()> {
        if self.crashed {
            return Err(dead());
        }
        self.step += 1;
        if Some(self.step) == self.crash_at {
            self.crashed = true;
            return Err(dead());
        }
        Ok(())
    }
}

/// A seeded xorshift64* generator (Marsaglia's xorshift with Vigna's
/// multiplier): the same seed gives the same stream, so simulated crashes,
/// tests and benchmarks replay by seed. The seed must not be 0 (the stream
/// would stay 0). Not for anything that needs unpredictability.
/// Not thread-safe to share; each user owns one.
pub struct Rng(pub u64);
impl Rng {
    /// The next 64 random bits.
    // Not `Iterator::next`: the stream never ends, so no `Option`.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }
    /// A number in `0..n` (`n` > 0; slightly biased for huge `n`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// A fair coin.
    pub fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }
    /// Fill `b` with random bytes.
    pub fn fill(&mut self, b: &mut [u8]) {
        for c in b.chunks_mut(8) {
            let x = self.next().to_le_bytes();
            c.copy_from_slice(&x[..c.len()]);
        }
    }
}

fn apply(buf: &mut Vec<u8>, off: u64, data: &[u8]) {
    let end = off as usize + data.len();
    if buf.len() < end {
        buf.resize(end, 0);
    }
    buf[off as usize..end].copy_from_slice(data);
}

impl SimFs {
    /// A new, empty file system.
    pub fn new() -> SimFs {
        SimFs::default()
    }

    /// A new, empty file system on which the engine runs no work in
    /// background threads ([`FileSystem::background_threads`] is false):
    /// spare segments are prepared and automatic checkpoints run in the
    /// calling thread. A single-threaded workload then makes the same calls
    /// in the same order every time, so its step numbers (and any crash at
    /// one of them) replay exactly from the workload's seed. Crash images
    /// of it are deterministic too.
    pub fn deterministic() -> SimFs {
        let fs = SimFs::default();
        fs.st.lock().deterministic = true;
        fs
    }

    /// Fail the `step`-th mutating call from now on (1-based, counted since
    /// the file system was created), and every call after it.
    pub fn crash_at(&self, step: u64) {
        self.st.lock().crash_at = Some(step);
    }

    /// Mutating calls made so far.
    pub fn steps(&self) -> u64 {
        self.st.lock().step
    }

    /// Whether the simulated crash has happened.
    pub fn crashed(&self) -> bool {
        self.st.lock().crashed
    }

    /// The disk a reboot would find after a crash now, as a new file system.
    /// `seed` drives the random choices of the mode.
    pub fn crash_image(&self, mode: CrashMode, seed: u64) -> SimFs {
        let st = self.st.lock();
        let mut rng = Rng(seed | 1);
        // Directory entries: the durable ones, plus (RandomDirOps) a random
        // subset of the unsynced changes, applied in order.
        let mut entries = st.durable.clone();
        if mode == CrashMode::RandomDirOps {
            for (path, ino) in &st.dir_pending {
                if rng.coin() {
                    match ino {
                        Some(i) => {
                            entries.insert(path.clone(), *i);
                        }
                        None => {
                            entries.remove(path);
                        }
                    }
                }
            }
        }
        let mut out = State {
            dirs: st.dirs.clone(),
            deterministic: st.deterministic,
            ..State::default()
        };
        let mut remap = BTreeMap::new();
        for (path, &ino) in &entries {
            let new = *remap.entry(ino).or_insert_with(|| {
                let f = &st.inodes[ino];
                let mut data = f.durable.clone();
                match mode {
                    CrashMode::DropAll => {}
                    CrashMode::RandomSectors | CrashMode::RandomDirOps => {
                        for (off, bytes) in &f.pending {
                            let mut at = 0usize;
                            while at < bytes.len() {
                                let abs = *off as usize + at;
                                let sector_end = ((abs / 512) + 1) * 512;
                                let n = (sector_end - abs).min(bytes.len() - at);
                                if rng.coin() {
                                    apply(&mut data, (abs) as u64, &bytes[at..at + n]);
                                }
                                at += n;
                            }
                        }
                    }
                    CrashMode::TornLast => {
                        let last = f.pending.len().saturating_sub(1);
                        for (i, (off, bytes)) in f.pending.iter().enumerate() {
                            if i == last {
                                let sectors = bytes.len().div_ceil(512) as u64;
                                let keep = ((rng.next() % sectors.max(1)) * 512) as usize;
                                apply(&mut data, *off, &bytes[..keep.min(bytes.len())]);
                            } else {
                                apply(&mut data, *off, bytes);
                            }
                        }
                    }
                    CrashMode::GarbageTail => {
                        if f.live.len() > data.len() {
                            let grown = f.live.len() - data.len();
                            let zeros = rng.coin();
                            data.extend(
                                (0..grown).map(|_| if zeros { 0 } else { rng.next() as u8 }),
                            );
                        }
                    }
                }
                out.inodes.push(Inode {
                    live: data.clone(),
                    durable: data,
                    pending: Vec::new(),
                });
                out.inodes.len() - 1
            });
            out.live.insert(path.clone(), new);
            out.durable.insert(path.clone(), new);
        }
        SimFs {
            st: Arc::new(Mutex::new(out)),
        }
    }

    /// The live bytes of `path`, if it exists (for tests that damage files).
    pub fn read_file(&self, path: &Path) -> Option<Vec<u8>> {
        let st = self.st.lock();
        st.live.get(path).map(|&i| st.inodes[i].live.clone())
    }

    /// Replace the contents of `path` durably (for tests that damage files).
    pub fn write_file(&self, path: &Path, data: Vec<u8>) {
        let mut st = self.st.lock();
        let ino = match st.live.get(path) {
            Some(&i) => i,
            None => {
                st.inodes.push(Inode::default());
                let i = st.inodes.len() - 1;
                st.live.insert(path.to_path_buf(), i);
                st.durable.insert(path.to_path_buf(), i);
                i
            }
        };
        st.inodes[ino] = Inode {
            live: data.clone(),
            durable: data,
            pending: Vec::new(),
        };
    }
}

#[derive(Debug)]
struct SimFile {
    fs: SimFs,
    ino: usize,
    writable: bool,
}

impl FileHandle for SimFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let st = self.fs.st.lock();
        let data = &st.inodes[self.ino].live;
        if offset as usize >= data.len() {
            return Ok(0);
        }
        let n = buf.len().min(data.len() - offset as usize);
        buf[..n].copy_from_slice(&data[offset as usize..offset as usize + n]);
        Ok(n)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        if !self.writable {
            return Err(io::Error::from_raw_os_error(9)); // EBADF
        }
        let mut st = self.fs.st.lock();
        st.step()?;
        let f = &mut st.inodes[self.ino];
        apply(&mut f.live, offset, buf);
        f.pending.push((offset, buf.to_vec()));
        Ok(())
    }
    fn sync_data(&self) -> io::Result<()> {
        let mut st = self.fs.st.lock();
        st.step()?;
        let f = &mut st.inodes[self.ino];
        f.durable = f.live.clone();
        f.pending.clear();
        Ok(())
    }
    fn sync_all(&self) -> io::Result<()> {
        self.sync_data()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut st = self.fs.st.lock();
        st.step()?;
        let f = &mut st.inodes[self.ino];
        f.live.resize(len as usize, 0);
        // Model a size change as a write of the new tail (zeros) so that a
        // crash may or may not keep it.
        f.pending.push((len, Vec::new()));
        Ok(())
    }
    fn len(&self) -> io::Result<u64> {
        let st = self.fs.st.lock();
        Ok(st.inodes[self.ino].live.len() as u64)
    }
}

#[derive(Debug)]
struct SimLock {
    fs: SimFs,
    path: PathBuf,
}

impl DirLock for SimLock {}

impl Drop for SimLock {
    fn drop(&mut self) {
        self.fs.st.lock().locks.remove(&self.path);
    }
}

impl FileSystem for SimFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.st.lock();
        if st.crashed {
            return Err(dead());
        }
        let mut p = dir.to_path_buf();
        loop {
            st.dirs.insert(p.clone());
            if !p.pop() || p.as_os_str().is_empty() {
                break;
            }
        }
        Ok(())
    }

    fn is_dir(&self, path: &Path) -> io::Result<bool> {
        Ok(self.st.lock().dirs.contains(path))
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        let st = self.st.lock();
        Ok(st.dirs.contains(path) || st.live.contains_key(path))
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn FileHandle>> {
        let mut st = self.st.lock();
        if !st.dirs.contains(&parent(path)) {
            return Err(io::ErrorKind::NotFound.into());
        }
        let existing = st.live.get(path).copied();
        let (ino, writable) = match (mode, existing) {
            (OpenMode::Read, Some(i)) => (i, false),
            (OpenMode::ReadWrite, Some(i)) => (i, true),
            (OpenMode::Read | OpenMode::ReadWrite, None) => {
                return Err(io::ErrorKind::NotFound.into())
            }
            (OpenMode::CreateNew, Some(_)) => return Err(io::ErrorKind::AlreadyExists.into()),
            (OpenMode::CreateTruncate, Some(i)) => {
                st.step()?;
                let f = &mut st.inodes[i];
                f.live.clear();
                f.pending.push((0, Vec::new()));
                (i, true)
            }
            (OpenMode::CreateNew | OpenMode::CreateTruncate, None) => {
                st.step()?;
                st.inodes.push(Inode::default());
                let i = st.inodes.len() - 1;
                st.live.insert(path.to_path_buf(), i);
                st.dir_pending.push((path.to_path_buf(), Some(i)));
                (i, true)
            }
        };
        Ok(Arc::new(SimFile {
            fs: self.clone(),
            ino,
            writable,
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.st.lock();
        st.step()?;
        let ino = st
            .live
            .remove(from)
            .ok_or(io::Error::from(io::ErrorKind::NotFound))?;
        st.live.insert(to.to_path_buf(), ino);
        st.dir_pending.push((from.to_path_buf(), None));
        st.dir_pending.push((to.to_path_buf(), Some(ino)));
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut st = self.st.lock();
        st.step()?;
        st.live
            .remove(path)
            .ok_or(io::Error::from(io::ErrorKind::NotFound))?;
        st.dir_pending.push((path.to_path_buf(), None));
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.st.lock();
        st.step()?;
        let st = &mut *st;
        st.durable.retain(|p, _| parent(p) != dir);
        for (p, &i) in &st.live {
            if parent(p) == dir {
                st.durable.insert(p.clone(), i);
            }
        }
        st.dir_pending.retain(|(p, _)| parent(p) != dir);
        Ok(())
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let st = self.st.lock();
        if !st.dirs.contains(dir) {
            return Err(io::ErrorKind::NotFound.into());
        }
        Ok(st
            .live
            .keys()
            .filter(|p| parent(p) == dir)
            .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_owned))
            .collect())
    }

    fn background_threads(&self) -> bool {
        !self.st.lock().deterministic
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn DirLock>> {
        let mut st = self.st.lock();
        if !st.locks.insert(path.to_path_buf()) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(Box::new(SimLock {
            fs: self.clone(),
            path: path.to_path_buf(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsynced_data_and_entries_are_lost_synced_ones_survive() {
        let fs = SimFs::new();
        let d = Path::new("/d");
        fs.create_dir_all(d).expect("mkdir");
        let a = fs
            .open(&d.join("a"), OpenMode::CreateNew)
            .expect("create a");
        a.write_all_at(b"hello", 0).expect("write");
        a.sync_data().expect("sync");
        fs.sync_dir(d).expect("sync dir");
        a.write_all_at(b"HELLO world", 0).expect("write 2");
        let b = fs
            .open(&d.join("b"), OpenMode::CreateNew)
            .expect("create b");
        b.write_all_at(b"x", 0).expect("write b");
        b.sync_data().expect("sync b"); // data synced, entry not
        let img = fs.crash_image(CrashMode::DropAll, 1);
        assert_eq!(img.read_file(&d.join("a")).as_deref(), Some(&b"hello"[..]));
        assert_eq!(img.read_file(&d.join("b")), None);
        let torn = fs.crash_image(CrashMode::TornLast, 1);
        assert_eq!(
            torn.read_file(&d.join("a")).as_deref(),
            Some(&b"hello"[..]),
            "an 11-byte write tears to 0 sectors"
        );
    }

    #[test]
    fn rename_is_durable_only_after_dir_sync() {
        let fs = SimFs::new();
        let d = Path::new("/d");
        fs.create_dir_all(d).expect("mkdir");
        let f = fs
            .open(&d.join("tmp"), OpenMode::CreateNew)
            .expect("create");
        f.write_all_at(b"data", 0).expect("write");
        f.sync_all().expect("fsync");
        fs.sync_dir(d).expect("dir");
        fs.rename(&d.join("tmp"), &d.join("final")).expect("rename");
        let before = fs.crash_image(CrashMode::DropAll, 1);
        assert!(before.read_file(&d.join("final")).is_none());
        assert!(before.read_file(&d.join("tmp")).is_some());
        fs.sync_dir(d).expect("dir");
        let after = fs.crash_image(CrashMode::DropAll, 1);
        assert_eq!(
            after.read_file(&d.join("final")).as_deref(),
            Some(&b"data"[..])
        );
    }

    #[test]
    fn crash_step_fails_this_and_every_later_call() {
        let fs = SimFs::new();
        let d = Path::new("/d");
        fs.create_dir_all(d).expect("mkdir");
        fs.crash_at(2);
        let f = fs.open(&d.join("a"), OpenMode::CreateNew).expect("step 1");
        assert!(f.write_all_at(b"x", 0).is_err());
        assert!(f.sync_data().is_err());
        assert!(fs.crashed());
    }
}
