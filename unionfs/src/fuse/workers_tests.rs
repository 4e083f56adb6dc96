//! The serving threads' parking, driven by a pipe standing in for `/dev/fuse`: each byte
//! written is one request, read by whichever thread the kernel picks.

use std::fs::File;
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

use super::Workers;

/// Generous: only a hang, never slowness, should fail these tests.
const LIVENESS: Duration = Duration::from_secs(30);

/// A request that blocks until the test releases it.
const BLOCK: u8 = b'B';

struct Pool {
    workers: Arc<Workers>,
    requests: File,
    answers: Receiver<u8>,
    release: Sender<()>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// `threads` serving threads reading one-byte requests from a pipe; the watchdog runs
/// when `watchdog` is set. Each request is answered by sending its byte back.
fn pool(threads: usize, watchdog: bool) -> (Pool, Option<std::thread::JoinHandle<()>>) {
    let (read_end, write_end) = nix::unistd::pipe().expect("pipe");
    let workers = Arc::new(Workers::new(threads));
    let watch = if watchdog {
        use std::os::fd::AsFd;
        workers.watch(read_end.as_fd()).expect("watchdog")
    } else {
        None
    };
    let requests = Arc::new(File::from(read_end));
    let (answer, answers) = channel();
    let (release, released) = channel::<()>();
    let released = Arc::new(std::sync::Mutex::new(released));
    let threads = (0..threads)
        .map(|_| {
            let (workers, requests) = (workers.clone(), requests.clone());
            let (answer, released) = (answer.clone(), released.clone());
            std::thread::spawn(move || {
                let mut byte = [0u8];
                while matches!((&*requests).read(&mut byte), Ok(1)) {
                    let _turn = workers.turn();
                    if byte[0] == BLOCK {
                        let _ = released.lock().expect("lock").recv();
                    }
                    let _ = answer.send(byte[0]);
                }
            })
        })
        .collect();
    let pool = Pool {
        workers,
        requests: File::from(write_end),
        answers,
        release,
        threads,
    };
    (pool, watch)
}

impl Pool {
    fn send(&mut self, byte: u8) {
        self.requests.write_all(&[byte]).expect("write request");
    }

    /// Waits until `n` threads are parked (the last to answer parks after replying).
    fn wait_parked(&self, n: usize) {
        let deadline = std::time::Instant::now() + LIVENESS;
        while self.workers.parked() != n && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert_eq!(self.workers.parked(), n);
    }

    /// Sends `n` quick requests, each after the previous one was answered.
    fn one_at_a_time(&mut self, n: u8) {
        for i in 0..n {
            self.send(i);
            assert_eq!(self.answer(), i);
        }
    }

    fn answer(&self) -> u8 {
        self.answers.recv_timeout(LIVENESS).expect("an answer")
    }

    /// Closes the request pipe and joins every thread (the watchdog releases parked ones).
    fn end(self, watch: Option<std::thread::JoinHandle<()>>) {
        drop(self.requests);
        if let Some(w) = watch {
            w.join().expect("watchdog");
        }
        for t in self.threads {
            t.join().expect("serving thread");
        }
    }
}

#[test]
fn one_request_at_a_time_leaves_one_thread_waiting() {
    let (mut pool, _) = pool(4, false);
    pool.one_at_a_time(16);
    // Every thread but one has answered a request while another waited, and parked;
    // with no watchdog here, nothing wakes them until `close`.
    pool.wait_parked(3);
    pool.workers.close();
    pool.end(None);
}

#[test]
fn a_blocked_request_does_not_hold_up_the_next() {
    let (mut pool, watch) = pool(3, true);
    // Park all but one thread first.
    pool.one_at_a_time(8);
    pool.wait_parked(2);
    pool.send(BLOCK);
    pool.send(b'q');
    // The quick request is answered while the blocked one still holds the only unparked
    // thread: the watchdog woke a parked one for it.
    assert_eq!(pool.answer(), b'q');
    assert!(pool.workers.parked() < 2);
    pool.release.send(()).expect("release");
    assert_eq!(pool.answer(), BLOCK);
    pool.end(watch);
}

#[test]
fn the_watchdog_releases_parked_threads_when_the_connection_ends() {
    let (mut pool, watch) = pool(4, true);
    pool.one_at_a_time(8);
    // Joins every thread, parked ones included: a hang here is the failure.
    pool.end(watch);
}

#[test]
fn a_single_thread_never_parks() {
    let (mut pool, watch) = pool(1, true);
    assert!(watch.is_none(), "no watchdog for one thread");
    pool.one_at_a_time(4);
    assert_eq!(pool.workers.parked(), 0);
    pool.end(None);
}
