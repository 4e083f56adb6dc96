//! How many serving threads wait on `/dev/fuse`: one, and more only while requests are stuck.
//!
//! The kernel hands each request to the thread that has waited longest for one. With
//! every serving thread waiting, a program that does one thing at a time (`find`, `cat`,
//! `tar`: most of them) has each of its requests taken by a different, sleeping thread,
//! and every request costs a wake-up. With one thread waiting, the thread that answered
//! often finds the next request already queued: a `close` queues its RELEASE and goes on
//! to the next `open`. Reading every file of the bench stack warm took 46k context
//! switches and 505 ms of daemon CPU with four threads waiting, 30k and 405 ms with one
//! (fuse-overlayfs, which serves from a single thread, took 30k and 397 ms).
//!
//! A single thread, though, would stall every caller behind one request that blocks: a
//! cold read, the copy-up of a big file, an fsync. So the threads `fuser` runs stay, but
//! a thread that has answered parks instead of going back for more while another thread
//! is already waiting for requests; and a watchdog wakes a parked thread when every
//! unparked one has been busy for a whole tick without finishing a request. Requests
//! behind a blocked one then wait one to two ticks, not for the blocked one.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// How long every unparked thread must be busy, with no request finished, before a
/// parked one is woken. Requests served from memory take microseconds; a tick means
/// the threads are waiting on a disk or a big copy.
const TICK: Duration = Duration::from_millis(1);

/// Ticks with no request running or finished before the watchdog stops ticking and
/// sleeps until the next request, so an idle mount costs no wake-ups.
const QUIET_TICKS: u32 = 50;

/// The serving threads' bookkeeping, shared by every request handler and the watchdog.
#[derive(Debug)]
pub struct Workers {
    /// Threads `fuser` runs, parked or not.
    threads: usize,
    /// Threads inside a request handler.
    busy: AtomicUsize,
    /// Requests finished since the start: the watchdog's sign of progress.
    finished: AtomicU64,
    /// Parked threads not yet told to wake, mirrored from `parking` for lock-free reads.
    parked: AtomicUsize,
    parking: Mutex<Parking>,
    wake: Condvar,
}

/// The parked threads, under one lock so that the last unparked thread never parks.
#[derive(Debug, Default)]
struct Parking {
    /// Threads parked and not yet told to wake.
    parked: usize,
    /// Wake-ups handed out and not yet taken by a parked thread.
    wakeups: usize,
    /// The connection has ended: nobody parks, every parked thread goes back to `fuser`
    /// (which then sees the end and returns).
    closed: bool,
}

/// A request being handled; dropping it (after the reply is sent) may park the thread.
#[must_use = "the turn ends, and the thread may park, when this is dropped"]
pub(crate) struct Turn<'a>(&'a Workers);

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.0.finish();
    }
}

impl Workers {
    /// Bookkeeping for `threads` serving threads.
    pub(crate) fn new(threads: usize) -> Self {
        Workers {
            threads: threads.max(1),
            busy: AtomicUsize::new(0),
            finished: AtomicU64::new(0),
            parked: AtomicUsize::new(0),
            parking: Mutex::new(Parking::default()),
            wake: Condvar::new(),
        }
    }

    /// Threads `fuser` must run for this bookkeeping to hold.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Marks the calling thread busy with a request until the turn is dropped.
    pub(crate) fn turn(&self) -> Turn<'_> {
        self.busy.fetch_add(1, SeqCst);
        Turn(self)
    }

    /// Threads parked and not told to wake.
    #[cfg(test)]
    pub(crate) fn parked(&self) -> usize {
        self.parked.load(SeqCst)
    }

    /// Starts the watchdog on a duplicate of the session's `/dev/fuse` descriptor, which
    /// tells it when requests arrive after a quiet spell and when the connection ends.
    /// With one thread there is nothing to wake, and no watchdog. If it can't start,
    /// threads stop parking (as if every one were needed) and the error is returned.
    pub fn watch(
        self: &Arc<Self>,
        fuse: BorrowedFd<'_>,
    ) -> std::io::Result<Option<JoinHandle<()>>> {
        if self.threads < 2 {
            return Ok(None);
        }
        let workers = Arc::clone(self);
        let started = fuse.try_clone_to_owned().and_then(|fuse| {
            std::thread::Builder::new()
                .name("fuse-watchdog".into())
                .spawn(move || workers.watchdog(&fuse))
        });
        match started {
            Ok(handle) => Ok(Some(handle)),
            Err(e) => {
                self.close();
                Err(e)
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Parking> {
        self.parking.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ends a request: parks the thread if another one is already waiting for requests.
    fn finish(&self) {
        self.finished.fetch_add(1, SeqCst);
        let busy = self.busy.fetch_sub(1, SeqCst) - 1;
        if self.waiting_besides(busy, self.parked.load(SeqCst)) > 0 {
            self.park();
        }
    }

    /// Threads in `fuser`'s loop (waiting for a request, or about to handle one) other
    /// than the calling thread, which is neither busy nor parked yet.
    fn waiting_besides(&self, busy: usize, parked: usize) -> usize {
        self.threads.saturating_sub(busy + parked + 1)
    }

    fn park(&self) {
        let mut parking = self.lock();
        // Checked again under the lock: of two threads finishing together, one stays.
        if parking.closed
            || self.waiting_besides(self.busy.load(SeqCst), parking.parked) == 0
            || parking.parked + 1 >= self.threads
        {
            return;
        }
        parking.parked += 1;
        self.parked.store(parking.parked, SeqCst);
        while !parking.closed && parking.wakeups == 0 {
            parking = self.wake.wait(parking).unwrap_or_else(|e| e.into_inner());
        }
        if !parking.closed {
            parking.wakeups -= 1;
        }
    }

    /// Sends one parked thread back to wait for requests. It counts as unparked from
    /// here, so the next tick does not wake a second one for the same stall.
    fn wake_one(&self) {
        let mut parking = self.lock();
        if parking.closed || parking.parked == 0 {
            return;
        }
        parking.parked -= 1;
        parking.wakeups += 1;
        self.parked.store(parking.parked, SeqCst);
        self.wake.notify_one();
    }

    /// Releases every parked thread for good: the connection is gone.
    fn close(&self) {
        let mut parking = self.lock();
        parking.closed = true;
        parking.parked = 0;
        parking.wakeups = 0;
        self.parked.store(0, SeqCst);
        self.wake.notify_all();
    }

    /// Ticks while requests run, wakes a parked thread when all unparked ones are stuck,
    /// sleeps on the descriptor when quiet, and releases everyone when it closes.
    fn watchdog(&self, fuse: &OwnedFd) {
        let mut last_finished = self.finished.load(SeqCst);
        let mut quiet = 0;
        loop {
            if quiet >= QUIET_TICKS {
                // Polling the descriptor wakes on every request, so only while idle.
                if poll_closed(fuse, PollFlags::POLLIN, PollTimeout::NONE) {
                    break;
                }
                quiet = 0;
                last_finished = self.finished.load(SeqCst);
                continue;
            }
            std::thread::sleep(TICK);
            if poll_closed(fuse, PollFlags::empty(), PollTimeout::ZERO) {
                break;
            }
            let finished = self.finished.load(SeqCst);
            let busy = self.busy.load(SeqCst);
            let parked = self.parked.load(SeqCst);
            let progressed = finished != last_finished;
            if busy > 0 && !progressed && self.threads.saturating_sub(busy + parked) == 0 {
                log::debug!("{busy} serving thread(s) busy for a tick; waking another");
                self.wake_one();
            }
            quiet = if busy == 0 && !progressed {
                quiet + 1
            } else {
                0
            };
            last_finished = finished;
        }
        self.close();
    }
}

/// Polls `fd` for `events` (none: only for its end); true when the descriptor reports
/// that it has closed (the FUSE connection ended: `POLLERR`; a pipe's writer went
/// away: `POLLHUP`).
fn poll_closed(fd: &OwnedFd, events: PollFlags, timeout: PollTimeout) -> bool {
    let mut fds = [PollFd::new(fd.as_fd(), events)];
    match poll(&mut fds, timeout) {
        Ok(_) => fds[0].revents().is_some_and(|r| {
            r.intersects(PollFlags::POLLERR | PollFlags::POLLHUP | PollFlags::POLLNVAL)
        }),
        Err(nix::errno::Errno::EINTR) => false,
        Err(e) => {
            log::error!("watching the FUSE connection: {e}; parked threads released");
            true
        }
    }
}

#[cfg(test)]
#[path = "workers_tests.rs"]
mod tests;
