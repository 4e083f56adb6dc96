//! FUSE passthrough: open files whose data the kernel reads and writes directly.
//!
//! The kernel gives an inode one I/O mode at a time: while any handle on it passes
//! through, every new handle must pass through to the *same* backing file, and while a
//! handle is served through the page cache, none may pass through; a handle breaking
//! the rule fails its open with EIO. So each inode's mode is tracked here.
//! - Under [`PassthroughScope::Stable`] a file passes through only when its backing file
//!   can not change while open: an upper file (copy-up is behind it), or any file of a
//!   read-only union. A lower file of a writable union is served through the daemon,
//!   whose reads follow a copy-up made through another handle, as overlayfs' do.
//! - Under [`PassthroughScope::All`] lower files opened for reading pass through too.
//!   A copy-up could not move such a handle to the copy, and the copy could not be
//!   opened beside it, so while a lower file is held this way its data must not change:
//!   opening it for writing or truncating it fails with ETXTBSY, as for a running
//!   program, and changes that keep the data (rename, link, chmod...) go ahead.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use fuser::BackingId;

/// Which open files may pass through (`-o passthrough=off|on|all`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PassthroughScope {
    /// None: every read and write goes through the daemon.
    Off,
    /// Files whose backing can't change while open: upper files, and every file of a
    /// read-only union. The default as root.
    Stable,
    /// Lower files opened for reading too; see the module documentation for what that
    /// costs writers.
    All,
}

/// How an inode's open handles do I/O.
#[derive(Debug)]
enum Mode<B> {
    /// Through the daemon; `usize` handles open.
    Served(usize),
    /// Passed through to one backing file.
    Passthrough {
        id: Arc<B>,
        handles: usize,
        /// The backing file is in a lower layer: its data must not change while held.
        lower: bool,
    },
}

/// What is known of one inode with open handles or a data change under way.
#[derive(Debug)]
struct InodeIo<B> {
    mode: Option<Mode<B>>,
    /// Opens for writing and truncations under way: a lower file is not passed through
    /// meanwhile, since its data is about to move.
    changing: usize,
}

impl<B> Default for InodeIo<B> {
    fn default() -> Self {
        InodeIo {
            mode: None,
            changing: 0,
        }
    }
}

impl<B> InodeIo<B> {
    /// Nothing open and no change under way: nothing left to remember.
    fn idle(&self) -> bool {
        self.mode.is_none() && self.changing == 0
    }

    fn holds_lower(&self) -> bool {
        matches!(self.mode, Some(Mode::Passthrough { lower: true, .. }))
    }
}

/// Per-inode I/O modes and the file handles that hold them. `B` is the kernel's handle
/// on a registered backing file (generic so the rules can be tested without a mount).
#[derive(Debug)]
pub struct Passthrough<B = BackingId> {
    scope: PassthroughScope,
    inodes: Mutex<HashMap<u64, InodeIo<B>>>,
    /// Signalled when a lower file's last passed-through handle closes.
    lower_released: Condvar,
    handles: Mutex<HashMap<u64, u64>>,
}

/// Where a new handle's data lives, as far as passthrough is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backing {
    /// A file whose data stays put while open: an upper file, or any file of a
    /// read-only union.
    Stable,
    /// A lower file, which a copy-up would replace. Under `All`, `large` ones pass
    /// through: a small one is read faster from the page cache the daemon's handles
    /// share than through a backing file opened and registered for every open.
    Lower {
        /// At least [`LOWER_PASSTHROUGH_MIN_SIZE`] bytes.
        large: bool,
    },
}

/// The smallest lower file passed through under `All`. Registering a backing file costs
/// the daemon two ioctls and the kernel one more open per open, about 7 µs on the bench
/// machine, which is what copying 100 KiB more out of FUSE's page cache costs
/// (a warm 1 GiB read took 0.15 s served against 0.08 s passed through); and a cold
/// read of a file this large is at least one READ round trip saved.
pub const LOWER_PASSTHROUGH_MIN_SIZE: u64 = 128 << 10;

/// What an open should do.
#[derive(Debug)]
pub enum Decision<B = BackingId> {
    /// Reply with passthrough on this backing id.
    Pass(Arc<B>),
    /// Reply plainly: served by the daemon, through the kernel's page cache.
    Serve,
}

/// The file is held open for reading through its lower copy: it can't be written now.
#[derive(Debug, PartialEq, Eq)]
pub struct Busy;

/// A data change (open for writing, truncation) under way on an inode; ends when dropped.
#[must_use]
pub struct DataChange<'a, B> {
    owner: Option<(&'a Passthrough<B>, u64)>,
}

impl<B> Drop for DataChange<'_, B> {
    fn drop(&mut self) {
        if let Some((pt, ino)) = self.owner.take() {
            let mut inodes = pt.lock();
            if let Some(io) = inodes.get_mut(&ino) {
                io.changing = io.changing.saturating_sub(1);
                if io.idle() {
                    inodes.remove(&ino);
                }
            }
        }
    }
}

/// How long a writer waits for readers of the lower file to go before it gets ETXTBSY.
/// The kernel lets go of a handle when it is closed, but tells the daemon (RELEASE) in
/// the background, so `cat f; echo x >> f` can bring the OPEN before the RELEASE.
const RELEASE_GRACE: Duration = Duration::from_millis(200);

impl<B> Passthrough<B> {
    /// Tracks the I/O modes of files opened under `scope`.
    pub fn new(scope: PassthroughScope) -> Self {
        Passthrough {
            scope,
            inodes: Mutex::default(),
            lower_released: Condvar::new(),
            handles: Mutex::default(),
        }
    }

    /// The files this tracker passes through.
    pub fn scope(&self) -> PassthroughScope {
        self.scope
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, InodeIo<B>>> {
        self.inodes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Announces a change to inode `ino`'s data (an open for writing or truncating, a
    /// truncation), to be held until the change is made. Fails with [`Busy`] while a
    /// handle passes through to the inode's lower file, after a short wait for handles
    /// closed but not yet released.
    pub fn begin_data_change(&self, ino: u64) -> Result<DataChange<'_, B>, Busy> {
        if self.scope != PassthroughScope::All {
            return Ok(DataChange { owner: None });
        }
        let deadline = Instant::now() + RELEASE_GRACE;
        let mut inodes = self.lock();
        while inodes.get(&ino).is_some_and(InodeIo::holds_lower) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Busy);
            }
            inodes = self
                .lower_released
                .wait_timeout(inodes, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        inodes.entry(ino).or_default().changing += 1;
        Ok(DataChange {
            owner: Some((self, ino)),
        })
    }

    /// Decides the I/O mode of a new handle `fh` on inode `ino`, whose data is where
    /// `backing` says. If the handle is the inode's first to pass through,
    /// `open_backing` registers its backing file with the kernel.
    pub fn open(
        &self,
        ino: u64,
        fh: u64,
        backing: Backing,
        open_backing: impl FnOnce() -> std::io::Result<B>,
    ) -> Decision<B> {
        let mut inodes = self.lock();
        let io = inodes.entry(ino).or_default();
        let wanted = match (self.scope, backing) {
            (PassthroughScope::Off, _) => false,
            (_, Backing::Stable) => true,
            (PassthroughScope::Stable, Backing::Lower { .. }) => false,
            (PassthroughScope::All, Backing::Lower { large }) => large && io.changing == 0,
        };
        let decision = match &mut io.mode {
            // Every handle beside a passed-through one passes through to the same file,
            // wanted or not (a plain open would be refused). Under `Stable` it is this
            // handle's own backing file; under `All` it may be the lower file of a copy
            // made since (by a rename or a link), whose data is the same: it can't
            // change while the lower file is held.
            Some(Mode::Passthrough { id, handles, .. }) => {
                *handles += 1;
                Decision::Pass(id.clone())
            }
            Some(Mode::Served(n)) => {
                *n += 1;
                Decision::Serve
            }
            None if wanted => match open_backing() {
                Ok(id) => {
                    let id = Arc::new(id);
                    io.mode = Some(Mode::Passthrough {
                        id: id.clone(),
                        handles: 1,
                        lower: backing != Backing::Stable,
                    });
                    Decision::Pass(id)
                }
                Err(e) => {
                    log::debug!("passthrough refused for inode {ino}: {e}");
                    io.mode = Some(Mode::Served(1));
                    Decision::Serve
                }
            },
            None => {
                io.mode = Some(Mode::Served(1));
                Decision::Serve
            }
        };
        drop(inodes);
        self.handles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(fh, ino);
        decision
    }

    /// A handle closed: the inode's mode ends with its last handle.
    pub fn release(&self, fh: u64) {
        let Some(ino) = self
            .handles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&fh)
        else {
            return;
        };
        let mut inodes = self.lock();
        let Some(io) = inodes.get_mut(&ino) else {
            return;
        };
        let (left, lower) = match &mut io.mode {
            Some(Mode::Served(n)) => {
                *n = n.saturating_sub(1);
                (*n, false)
            }
            Some(Mode::Passthrough { handles, lower, .. }) => {
                *handles = handles.saturating_sub(1);
                (*handles, *lower)
            }
            None => return,
        };
        if left > 0 {
            return;
        }
        io.mode = None;
        if io.idle() {
            inodes.remove(&ino);
        }
        if lower {
            self.lower_released.notify_all();
        }
    }
}

#[cfg(test)]
#[path = "passthrough_tests.rs"]
mod tests;
