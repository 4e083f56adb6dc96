//! Reading `/proc/self/mountinfo`: the kernel's own word on what is mounted where.
//!
//! Tests use it to wait until a daemon's mount is live, to check that nothing stays
//! mounted after a guard is dropped, and to tell a FUSE mount from a kernel overlay.

use std::fs;
use std::path::{Path, PathBuf};

/// One line of mountinfo, reduced to what the tests look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// Where it is mounted (octal escapes decoded).
    pub mount_point: PathBuf,
    /// Filesystem type, e.g. `overlay`, `fuse.unionfsd`, `fuse.fuse-overlayfs`.
    pub fstype: String,
    /// The per-mount options (`rw,nosuid,...`).
    pub mount_options: String,
    /// The superblock options (`rw,lowerdir=...` for overlay, `user_id=0,...` for FUSE).
    pub super_options: String,
}

/// Decodes the `\040`-style escapes the kernel uses for spaces, tabs and newlines.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let oct = &bytes[i + 1..i + 4];
            if oct.iter().all(|b| (b'0'..=b'7').contains(b)) {
                let oct = std::str::from_utf8(oct).unwrap_or("");
                if let Ok(v) = u8::from_str_radix(oct, 8) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every mount this process can see, in mount order.
pub fn mounts() -> Vec<MountEntry> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<MountEntry> {
    // id parent major:minor root mount_point mount_options [optional...] - fstype source super_options
    let (left, right) = line.split_once(" - ")?;
    let left: Vec<&str> = left.split(' ').collect();
    let right: Vec<&str> = right.split(' ').collect();
    Some(MountEntry {
        mount_point: PathBuf::from(unescape(left.get(4)?)),
        mount_options: left.get(5)?.to_string(),
        fstype: right.first()?.to_string(),
        super_options: right.get(2).map(|s| s.to_string()).unwrap_or_default(),
    })
}

/// The mounts stacked on `path`, bottom first (empty when nothing is mounted there).
pub fn mounts_at(path: &Path) -> Vec<MountEntry> {
    let want = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    mounts()
        .into_iter()
        .filter(|m| m.mount_point == want)
        .collect()
}

/// Whether anything is mounted exactly on `path`.
pub fn is_mounted(path: &Path) -> bool {
    !mounts_at(path).is_empty()
}

/// Whether anything is mounted on `path` or below it: used to prove a test left no
/// mount behind anywhere in its temporary directory.
pub fn any_mount_under(path: &Path) -> Vec<MountEntry> {
    let want = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    mounts()
        .into_iter()
        .filter(|m| m.mount_point.starts_with(&want))
        .collect()
}

/// The filesystem type of the top mount on `path`, if any.
pub fn fstype_at(path: &Path) -> Option<String> {
    mounts_at(path).pop().map(|m| m.fstype)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_escaped_mount_point() {
        let line =
            "36 35 98:0 / /mnt/a\\040b rw,noatime master:1 - fuse.unionfsd unionfsd rw,user_id=0";
        let e = parse_line(line).unwrap();
        assert_eq!(e.mount_point, PathBuf::from("/mnt/a b"));
        assert_eq!(e.fstype, "fuse.unionfsd");
        assert_eq!(e.super_options, "rw,user_id=0");
    }
}
