//! The mount's readahead, raised once the kernel has taken INIT's answer.
//!
//! The kernel reads a FUSE file ahead by at most its bdi's `read_ahead_kb`, 128 KiB by
//! default, and it caps the readahead a daemon may ask for in INIT at that same value.
//! So a sequential read of a big file arrives as one READ round trip per 128 KiB, where
//! the daemon would take up to 1 MiB at a time (`max_write` sets `max_pages`). Root can
//! raise the value in sysfs, but processing INIT's reply sets it again: it must be
//! written after INIT, which the daemon knows has happened when the first file is
//! opened.
//!
//! It is an option (`readahead=KB`), not the default. Measured on the bench stack, cold
//! 1 GiB read, six runs each: by hand, 1,024 KiB took a median 0.43 s against 0.53 s
//! (fuse-overlayfs 0.47 s); in a bench run the host's cache made both too noisy to tell
//! (0.41–1.08 s against 0.54–1.42 s). What it costs is sure: READs of up to 1 MiB are
//! each mapped while answered, and the peak RSS of reading every file of the stack rose
//! from 7.1 to 8.9 MiB.
//!
//! Only this mount's own bdi is touched (each FUSE mount has one, gone at unmount), and
//! only the readahead of sequential reads grows: the kernel reads random ones as asked.

use std::path::{Path, PathBuf};
use std::sync::Once;

use crate::sys::mountinfo;

/// A pending write of `read_ahead_kb` for one mount's bdi.
#[derive(Debug)]
pub struct ReadaheadTuning {
    sysfs_file: PathBuf,
    kb: u32,
    done: Once,
}

impl ReadaheadTuning {
    /// The tuning for the FUSE mount at `mountpoint`, found in `/proc/self/mountinfo`
    /// (the last mount there: the one just made). Reading the table, unlike a `stat` of
    /// the mount, doesn't wait for the daemon that hasn't started serving yet.
    pub fn for_mount(mountpoint: &Path, kb: u32) -> std::io::Result<Self> {
        let device = mountinfo::device_of_mount(mountpoint)?.ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{} is not in /proc/self/mountinfo", mountpoint.display()),
            )
        })?;
        Ok(ReadaheadTuning {
            sysfs_file: PathBuf::from(format!("/sys/class/bdi/{device}/read_ahead_kb")),
            kb,
            done: Once::new(),
        })
    }

    /// Writes the readahead, the first time only; call it once INIT has been answered.
    /// A failure is logged and changes nothing else: reads work at any readahead.
    pub fn apply_once(&self) {
        self.done.call_once(|| {
            if let Err(e) = std::fs::write(&self.sysfs_file, format!("{}\n", self.kb)) {
                log::warn!(
                    "readahead left as the kernel set it ({}: {e})",
                    self.sysfs_file.display()
                );
            }
        });
    }
}
