//! Group commit: concurrent writers queue their records, and whichever
//! writer finds no write in progress becomes the leader of everything
//! queued so far. The leader writes the whole group with one `pwrite`, makes
//! it durable with one `fdatasync`, applies it to memory in queue (= LSN)
//! order, and wakes the group. Under `Sync`, N concurrent writers therefore
//! share fsyncs instead of queueing behind one fsync each.
//!
//! Gathering: on a machine with few cores, the members of a finished group
//! need a moment to wake up and queue their next write, so a new leader that
//! started at once would lead only the writers that arrived during the last
//! fsync: groups settle at about half the writers. So a new leader whose
//! predecessor led `k > 1` writers waits until `k` writers are queued, or
//! until half of the last group's write time has passed, whichever comes
//! first. A single writer never waits. (Compare MySQL's
//! `binlog_group_commit_sync_delay`, which is a fixed delay.)
//!
//! Per-write durability: the store's leader brings its whole group to the
//! strongest level any member asked for (`WriteOptions`), so a member is
//! never made less durable than it asked, and a `Buffered` member that
//! shares a group with a `Sync` one waits for that group's fsync.
//!
//! Failures are sticky: the leader's closure poisons the store on any error,
//! so once a group has failed, every later group fails too, and no writer is
//! ever told "success" for a group whose fsync did not return OK.

use crate::error::{Error, Result};
use parking_lot::{Condvar, Mutex};

#[derive(Debug)]
struct State<T> {
    queue: Vec<T>,
    /// Ticket of the next submitted item.
    next_ticket: u64,
    /// Every ticket below this has been processed by a leader.
    done_ticket: u64,
    leader: bool,
    closed: bool,
    /// The first failed group: tickets `[lo, hi)` and its error.
    failure: Option<(u64, u64, Error)>,
    /// Size of the last group and how long its leader took.
    last_group: usize,
    last_duration: std::time::Duration,
}

impl<T> State<T> {
    fn result_for(&self, ticket: u64) -> Result<()> {
        match &self.failure {
            Some((lo, hi, e)) if ticket >= *lo && ticket < *hi => Err(e.clone()),
            Some((_, hi, e)) if ticket >= *hi => Err(Error::Poisoned(e.to_string())),
            _ => Ok(()),
        }
    }
}

/// The queue. Thread-safe.
#[derive(Debug)]
pub struct GroupCommit<T> {
    state: Mutex<State<T>>,
    cv: Condvar,
}

impl<T> Default for GroupCommit<T> {
    fn default() -> Self {
        GroupCommit {
            state: Mutex::new(State {
                queue: Vec::new(),
                next_ticket: 0,
                done_ticket: 0,
                leader: false,
                closed: false,
                failure: None,
                last_group: 0,
                last_duration: std::time::Duration::ZERO,
            }),
            cv: Condvar::new(),
        }
    }
}

impl<T> GroupCommit<T> {
    /// Queue `item` and return once the group holding it has been processed.
    /// If this caller becomes the leader, it runs `lead` on the whole group
    /// (its own item included), in submission order.
    ///
    /// Errors: [`Error::Closed`] after [`GroupCommit::close`]; the leader's
    /// error for every member of a failed group; [`Error::Poisoned`] for
    /// later groups.
    pub fn submit(&self, item: T, lead: impl FnOnce(Vec<T>) -> Result<()>) -> Result<()> {
        self.submit_with(|| Ok(item), lead)
    }

    /// Like [`GroupCommit::submit`], but the item is built by `prepare`
    /// under the queue's lock, so whatever `prepare` checks or reserves
    /// happens in exactly the order the items are written (used by the Raft
    /// log to check that appends are contiguous). An error from `prepare`
    /// is returned without queueing anything.
    pub fn submit_with(
        &self,
        prepare: impl FnOnce() -> Result<T>,
        lead: impl FnOnce(Vec<T>) -> Result<()>,
    ) -> Result<()> {
        let mut lead = Some(lead);
        let mut st = self.state.lock();
        if st.closed {
            return Err(Error::Closed);
        }
        let item = prepare()?;
        let ticket = st.next_ticket;
        st.next_ticket += 1;
        st.queue.push(item);
        loop {
            if ticket < st.done_ticket {
                return st.result_for(ticket);
            }
            if !st.leader {
                if let Some(f) = lead.take() {
                    st.leader = true;
                    if st.last_group > 1 && st.queue.len() < st.last_group {
                        let deadline = std::time::Instant::now() + st.last_duration / 2;
                        while st.queue.len() < st.last_group && std::time::Instant::now() < deadline
                        {
                            parking_lot::MutexGuard::unlocked(&mut st, std::thread::yield_now);
                        }
                    }
                    let group = std::mem::take(&mut st.queue);
                    let started = std::time::Instant::now();
                    let (lo, hi) = (st.done_ticket, st.next_ticket);
                    drop(st);
                    let r = f(group);
                    st = self.state.lock();
                    st.leader = false;
                    st.done_ticket = hi;
                    st.last_group = (hi - lo) as usize;
                    st.last_duration = started.elapsed();
                    if let Err(e) = r {
                        if st.failure.is_none() {
                            st.failure = Some((lo, hi, e));
                        }
                    }
                    self.cv.notify_all();
                    return st.result_for(ticket);
                }
            }
            self.cv.wait(&mut st);
        }
    }

    /// Refuse new submissions and wait until every queued group has been
    /// processed. Idempotent.
    pub fn close(&self) {
        let mut st = self.state.lock();
        st.closed = true;
        while st.leader || st.done_ticket < st.next_ticket {
            self.cv.wait(&mut st);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn every_item_is_processed_once_and_groups_form() {
        let gc = Arc::new(GroupCommit::<usize>::default());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let groups = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let (gc, seen, groups) = (gc.clone(), seen.clone(), groups.clone());
                std::thread::spawn(move || {
                    for i in 0..200 {
                        gc.submit(t * 1000 + i, |g| {
                            groups.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_micros(50));
                            seen.lock().extend(g);
                            Ok(())
                        })
                        .expect("submit");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("join");
        }
        let mut s = seen.lock().clone();
        s.sort();
        let mut want: Vec<usize> = (0..8)
            .flat_map(|t| (0..200).map(move |i| t * 1000 + i))
            .collect();
        want.sort();
        assert_eq!(s, want);
        assert!(groups.load(Ordering::SeqCst) <= 1600);
    }

    #[test]
    fn failure_is_sticky_and_close_refuses() {
        let gc = GroupCommit::<u8>::default();
        let e = gc.submit(1, |_| {
            Err(Error::Io {
                path: None,
                errno: Some(5),
                message: "EIO".into(),
            })
        });
        assert!(matches!(e, Err(Error::Io { .. })));
        assert!(matches!(gc.submit(2, |_| Ok(())), Err(Error::Poisoned(_))));
        gc.close();
        assert_eq!(gc.submit(3, |_| Ok(())), Err(Error::Closed));
    }
}
