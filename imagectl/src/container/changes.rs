//! `diff`: what a container changed, read from its writable layer only (never by
//! walking the whole merged tree), in docker's A/C/D form.
//!
//! - a whiteout (kernel-style 0/0 character device, or an OCI `.wh.NAME` file) is `D`;
//! - any other entry is `A` when no lower layer has the path, else `C` (directories
//!   that only hold changes are `C`, as docker and podman print them);
//! - an opaque directory that replaces a lower directory is `D` (the lower directory
//!   is gone as a whole) and its entries are `A`/`C` as above; the lower entries it
//!   hides are not listed one by one. This is what `podman diff` prints for
//!   `rm -rf /d && mkdir /d && touch /d/a` (checked against podman 4.3 with runc).

use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use unionfs::whiteout;

use crate::error::{IoContext, Result};

/// The kind of a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Changed (exists below and in the upper layer).
    Changed,
    /// Added (only in the upper layer).
    Added,
    /// Deleted (a whiteout).
    Deleted,
}

impl Kind {
    /// docker's letter.
    pub fn letter(self) -> char {
        match self {
            Kind::Changed => 'C',
            Kind::Added => 'A',
            Kind::Deleted => 'D',
        }
    }
}

/// One line of `diff`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Change {
    /// Absolute path inside the container.
    pub path: PathBuf,
    /// What happened to it.
    pub kind: Kind,
}

/// The changes in `upper` over `lowers` (top first), sorted by path.
pub fn changes(upper: &Path, lowers: &[PathBuf]) -> Result<Vec<Change>> {
    let mut out = Vec::new();
    walk(upper, Path::new(""), lowers, &mut out)?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Whether any lower layer has `rel`, stopping at a whiteout of it in a higher layer.
fn in_lowers(lowers: &[PathBuf], rel: &Path) -> bool {
    for l in lowers {
        let p = l.join(rel);
        if fs::symlink_metadata(&p).is_ok() {
            return true;
        }
        if let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) {
            let mut wh = OsString::from(whiteout::OCI_WHITEOUT_PREFIX);
            wh.push(name);
            if fs::symlink_metadata(l.join(parent).join(wh)).is_ok() {
                return false;
            }
        }
    }
    false
}

fn walk(upper: &Path, rel: &Path, lowers: &[PathBuf], out: &mut Vec<Change>) -> Result<()> {
    let abs = upper.join(rel);
    let mut names: Vec<OsString> = Vec::new();
    for e in fs::read_dir(&abs).at(&abs)? {
        names.push(e.at(&abs)?.file_name());
    }
    names.sort();
    let slash = |r: &Path| Path::new("/").join(r);
    for name in &names {
        let bytes = name.as_bytes();
        if bytes == whiteout::OCI_OPAQUE_NAME.as_bytes() {
            continue;
        }
        if let Some(hidden) = bytes.strip_prefix(whiteout::OCI_WHITEOUT_PREFIX.as_bytes()) {
            out.push(Change {
                path: slash(&rel.join(std::ffi::OsStr::from_bytes(hidden))),
                kind: Kind::Deleted,
            });
            continue;
        }
        let path = abs.join(name);
        let rel_path = rel.join(name);
        let md = fs::symlink_metadata(&path).at(&path)?;
        let ft = md.file_type();
        let maybe_whiteout =
            (ft.is_char_device() && md.rdev() == 0) || (ft.is_file() && md.len() == 0);
        if maybe_whiteout && whiteout::is_whiteout(&abs, name).at(&path)? {
            out.push(Change {
                path: slash(&rel_path),
                kind: Kind::Deleted,
            });
            continue;
        }
        let below = in_lowers(lowers, &rel_path);
        let replaced = below && ft.is_dir() && whiteout::is_opaque(&path).at(&path)?;
        out.push(Change {
            path: slash(&rel_path),
            kind: match (below, replaced) {
                (_, true) => Kind::Deleted,
                (true, false) => Kind::Changed,
                (false, _) => Kind::Added,
            },
        });
        if ft.is_dir() {
            walk(upper, &rel_path, lowers, out)?;
        }
    }
    Ok(())
}
