//! `diff`: what a container changed, read from its writable layer only (never by
//! walking the whole merged tree), in docker's A/C/D form.
//!
//! - a whiteout (kernel-style 0/0 character device, or an OCI `.wh.NAME` file) is `D`;
//! - any other entry is `A` when no lower layer has the path, else `C` (directories
//!   that only hold changes are `C`, as docker and podman print them);
//! - an opaque directory that hides a lower directory is `C`, and each entry of the
//!   lower directories that the opaque directory hides (and does not itself contain)
//!   is `D`: only those lower directories are read.

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
        out.push(Change {
            path: slash(&rel_path),
            kind: if below { Kind::Changed } else { Kind::Added },
        });
        if ft.is_dir() {
            if below && whiteout::is_opaque(&path).at(&path)? {
                hidden_by_opaque(&path, &rel_path, lowers, out)?;
                // Everything inside an opaque directory is new.
                walk(upper, &rel_path, &[], out)?;
            } else {
                walk(upper, &rel_path, lowers, out)?;
            }
        }
    }
    Ok(())
}

/// `D` for the lower entries an opaque directory hides (and does not replace).
fn hidden_by_opaque(
    upper_dir: &Path,
    rel: &Path,
    lowers: &[PathBuf],
    out: &mut Vec<Change>,
) -> Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    for l in lowers {
        let d = l.join(rel);
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let n = e.file_name();
            if n.as_bytes()
                .starts_with(whiteout::OCI_WHITEOUT_PREFIX.as_bytes())
            {
                continue;
            }
            if fs::symlink_metadata(upper_dir.join(&n)).is_err() && seen.insert(n.clone()) {
                out.push(Change {
                    path: Path::new("/").join(rel).join(&n),
                    kind: Kind::Deleted,
                });
            }
        }
        if whiteout::is_opaque(&d).unwrap_or(false) {
            break;
        }
    }
    Ok(())
}
