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
        let table = std::fs::read_to_string("/proc/self/mountinfo")?;
        let device = device_of_mount(&table, mountpoint).ok_or_else(|| {
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

/// The `major:minor` of the last mount at `mountpoint` in a mountinfo table.
fn device_of_mount(table: &str, mountpoint: &Path) -> Option<String> {
    let wanted = mountpoint.to_str()?;
    table.lines().rev().find_map(|line| {
        let mut fields = line.split(' ');
        let device = fields.nth(2)?;
        let point = fields.nth(1)?;
        (unescape_octal(point) == wanted).then(|| device.to_string())
    })
}

/// Undoes mountinfo's `\ooo` escapes (of space, tab, newline and backslash).
fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let digits = bytes.get(i + 1..i + 4);
        let code = digits
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)))
            .and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok());
        match code {
            Some(c) => {
                out.push(c);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\
22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
98 22 0:51 / /tmp/m rw,nosuid shared:50 - fuse.unionfsd unionfsd rw,user_id=0
99 22 0:52 / /tmp/a\\040b rw shared:51 - fuse.unionfsd unionfsd rw,user_id=0
100 98 0:53 / /tmp/m rw shared:52 - fuse.unionfsd unionfsd rw,user_id=0
";

    #[test]
    fn the_last_mount_at_a_path_names_the_device() {
        assert_eq!(
            device_of_mount(TABLE, Path::new("/tmp/m")).as_deref(),
            Some("0:53")
        );
        assert_eq!(
            device_of_mount(TABLE, Path::new("/tmp/a b")).as_deref(),
            Some("0:52")
        );
        assert_eq!(device_of_mount(TABLE, Path::new("/tmp/none")), None);
    }

    #[test]
    fn octal_escapes_are_undone_and_stray_backslashes_kept() {
        assert_eq!(unescape_octal("/a\\040b\\011c\\134d"), "/a b\tc\\d");
        assert_eq!(unescape_octal("/x\\9y\\"), "/x\\9y\\");
    }
}
