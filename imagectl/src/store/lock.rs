//! Inter-process locks on the store (flock via fs2).
//!
//! Two locks: `content.lock` is held *shared* by everything that adds content (pull,
//! import, load, build) and *exclusively* by garbage collection, so GC never deletes a
//! blob a running pull has written but not yet tagged. `index.lock` is held exclusively
//! around each read-modify-write of `index.json` and the holds.

use std::fs::{File, OpenOptions};
use std::path::Path;

use fs2::FileExt;

use crate::error::{IoContext, Result};

/// A held lock; released on drop.
#[derive(Debug)]
pub struct LockGuard {
    file: File,
}

impl LockGuard {
    /// Takes a shared lock on `path`, waiting for exclusive holders.
    pub fn shared(path: &Path) -> Result<Self> {
        let file = open(path)?;
        file.lock_shared().at(path)?;
        Ok(LockGuard { file })
    }

    /// Takes an exclusive lock on `path` if nobody holds it; `None` otherwise.
    pub fn try_exclusive(path: &Path) -> Result<Option<Self>> {
        let file = open(path)?;
        match file.try_lock_exclusive() {
            Ok(()) => Ok(Some(LockGuard { file })),
            Err(_) => Ok(None),
        }
    }

    /// Takes an exclusive lock on `path`, waiting for every other holder.
    pub fn exclusive(path: &Path) -> Result<Self> {
        let file = open(path)?;
        file.lock_exclusive().at(path)?;
        Ok(LockGuard { file })
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let _ = FileExt::unlock(&self.file);
    }
}

fn open(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .at(path)
}
