//! The work directory: where copy-ups and replacements are staged before an atomic rename.
//!
//! Everything that must appear in the upper layer whole — a copied-up file, a directory
//! replacing a whiteout, a whiteout replacing a directory — is built here first and moved
//! into place with one `rename`, so a crash leaves either the old entry or the new one,
//! never half of one. Leftovers of a crash are swept out at mount.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::unistd::UnlinkatFlags;

use crate::sys::{self, SysResult};

/// Why a work directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum WorkDirError {
    /// The directory could not be opened or prepared.
    #[error("workdir {path}: {source}")]
    Io {
        /// The work directory.
        path: std::path::PathBuf,
        /// What failed.
        source: Errno,
    },
    /// Another union already uses it.
    #[error(
        "workdir {0} is in use by another mount (one upperdir/workdir pair serves one mount at a time)"
    )]
    Busy(std::path::PathBuf),
}

/// Name of the hard-link index inside the workdir: one hard link per copied-up lower
/// hard-link group, named by the hex of the lower file's origin handle, so every name of
/// the group finds the one upper copy, also after a remount. Same place and format as
/// kernel overlayfs' `index=on`.
pub const INDEX_DIR: &str = "index";

/// The staging area inside the user's workdir.
#[derive(Debug)]
pub struct WorkDir {
    /// `W/work`, the staging directory proper.
    staging: OwnedFd,
    /// Held for the life of the mount: an exclusive `flock` on `W`.
    _lock: File,
    counter: AtomicU64,
}

fn io(path: &Path) -> impl Fn(Errno) -> WorkDirError + '_ {
    move |source| WorkDirError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl WorkDir {
    /// Opens `path`, takes its lock, creates `work/` inside and empties it.
    pub fn open(path: &Path) -> Result<Self, WorkDirError> {
        let root = nix::fcntl::open(
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(io(path))?;
        let lock_file = File::from(root);
        // The lock lives exactly as long as this descriptor: the mount's lifetime.
        // SAFETY: flock on a descriptor we own.
        if unsafe {
            libc::flock(
                std::os::fd::AsRawFd::as_raw_fd(&lock_file),
                libc::LOCK_EX | libc::LOCK_NB,
            )
        } != 0
        {
            let e = Errno::last();
            return Err(if e == Errno::EWOULDBLOCK {
                WorkDirError::Busy(path.to_path_buf())
            } else {
                io(path)(e)
            });
        }
        match nix::sys::stat::mkdirat(lock_file.as_fd(), "work", Mode::from_bits_truncate(0o700)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(io(path)(e)),
        }
        let staging = sys::open_child(
            lock_file.as_fd(),
            OsStr::new("work"),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY,
            0,
        )
        .map_err(io(path))?;
        clear_dir(staging.as_fd()).map_err(io(path))?;
        match nix::sys::stat::mkdirat(
            lock_file.as_fd(),
            INDEX_DIR,
            Mode::from_bits_truncate(0o700),
        ) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(io(path)(e)),
        }
        Ok(WorkDir {
            staging,
            _lock: lock_file,
            counter: AtomicU64::new(0),
        })
    }

    /// The staging directory.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.staging.as_fd()
    }

    /// A fresh name for a staged entry.
    pub fn temp_name(&self) -> OsString {
        OsString::from(format!(
            "#{:x}",
            self.counter.fetch_add(1, Ordering::Relaxed)
        ))
    }

    /// Removes a staged entry, a whole tree if it is a directory.
    pub fn remove(&self, name: &OsStr) -> SysResult<()> {
        remove_tree_at(self.fd(), name)
    }
}

/// Removes every entry of the directory open at `dir`.
pub fn clear_dir(dir: BorrowedFd<'_>) -> SysResult<()> {
    let names = list_names(dir)?;
    for name in names {
        remove_tree_at(dir, &name)?;
    }
    Ok(())
}

fn list_names(dir: BorrowedFd<'_>) -> SysResult<Vec<OsString>> {
    let fd = sys::open_child(
        dir,
        OsStr::new("."),
        OFlag::O_RDONLY | OFlag::O_DIRECTORY,
        0,
    )?;
    let mut d = nix::dir::Dir::from_fd(fd)?;
    let mut names = Vec::new();
    for e in d.iter() {
        let e = e?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(<OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(n).to_os_string());
        }
    }
    Ok(names)
}

/// Removes `name` in `dir`, recursing into directories, without following symlinks.
pub fn remove_tree_at(dir: BorrowedFd<'_>, name: &OsStr) -> SysResult<()> {
    match nix::unistd::unlinkat(dir, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) => return Ok(()),
        Err(Errno::EISDIR) | Err(Errno::EPERM) => {}
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    }
    let sub: OwnedFd = sys::open_child(dir, name, OFlag::O_RDONLY | OFlag::O_DIRECTORY, 0)?;
    clear_dir(sub.as_fd())?;
    drop(sub);
    match nix::unistd::unlinkat(dir, name, UnlinkatFlags::RemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(e),
    }
}
