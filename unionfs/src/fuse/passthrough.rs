//! FUSE passthrough: open files whose data the kernel reads and writes directly.
//!
//! The kernel allows one I/O mode per inode at a time — either every open handle passes
//! through to the *same* backing file, or none does — and refuses an open that breaks the
//! rule. So each inode's mode is tracked here, and a file is passed through only when its
//! backing file can not change while open: an upper file (copy-up is behind it), or any
//! file of a read-only union. A lower file of a writable union is served through the
//! daemon, since a writer may copy it up while a reader holds it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use fuser::BackingId;

/// How an inode's open handles do I/O.
#[derive(Debug)]
enum Mode {
    /// Through the daemon; `usize` handles open.
    Served(usize),
    /// Passed through to a backing file, shared by `usize` handles.
    Passthrough(Arc<BackingId>, (u64, u64), usize),
}

/// Per-inode I/O modes and the file handles that hold them.
#[derive(Debug, Default)]
pub struct Passthrough {
    modes: Mutex<HashMap<u64, Mode>>,
    handles: Mutex<HashMap<u64, u64>>,
}

/// What an open should do.
pub enum Decision {
    /// Reply with passthrough on this backing id.
    Pass(Arc<BackingId>),
    /// Reply plainly.
    Serve,
}

impl Passthrough {
    /// Decides the I/O mode of a new handle `fh` on inode `ino`. `identity` is the
    /// backing file's (dev, ino) when passthrough is wanted, `open_backing` registers it.
    pub fn open(
        &self,
        ino: u64,
        fh: u64,
        identity: Option<(u64, u64)>,
        open_backing: impl FnOnce() -> std::io::Result<BackingId>,
    ) -> Decision {
        let mut modes = self.modes.lock().unwrap_or_else(|e| e.into_inner());
        let decision = match (modes.get_mut(&ino), identity) {
            (Some(Mode::Passthrough(id, have, n)), Some(want)) if *have == want => {
                *n += 1;
                Decision::Pass(id.clone())
            }
            // An inode passed through stays so while open: its backing is its upper copy
            // (or a file of a read-only union), which is where this handle's I/O goes
            // too; a plain handle beside it would be refused by the kernel.
            (Some(Mode::Passthrough(id, _, n)), _) => {
                *n += 1;
                Decision::Pass(id.clone())
            }
            (Some(Mode::Served(n)), _) => {
                *n += 1;
                Decision::Serve
            }
            (None, Some(want)) => match open_backing() {
                Ok(id) => {
                    let id = Arc::new(id);
                    modes.insert(ino, Mode::Passthrough(id.clone(), want, 1));
                    Decision::Pass(id)
                }
                Err(e) => {
                    log::debug!("passthrough refused for inode {ino}: {e}");
                    modes.insert(ino, Mode::Served(1));
                    Decision::Serve
                }
            },
            (None, None) => {
                modes.insert(ino, Mode::Served(1));
                Decision::Serve
            }
        };
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
        let mut modes = self.modes.lock().unwrap_or_else(|e| e.into_inner());
        let done = match modes.get_mut(&ino) {
            Some(Mode::Served(n)) | Some(Mode::Passthrough(_, _, n)) => {
                *n = n.saturating_sub(1);
                *n == 0
            }
            None => false,
        };
        if done {
            modes.remove(&ino);
        }
    }
}
