//! A comparable picture of a directory tree: what a user of a merged view can observe.
//!
//! Two views (kernel overlayfs and the daemon under test) are equal when every name has
//! the same type, mode, owner, size, content hash, link target, xattrs, nlink and
//! hardlink grouping. Inode numbers and device ids differ between filesystems, so they
//! are compared only through the grouping (which names share an inode). Directory sizes
//! and directory link counts are filesystem-specific (overlayfs reports nlink 1 for
//! merged directories), so they are left out. Times are compared only when they are
//! old (set explicitly by a test or a layer generator): "now" differs between runs.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use super::xattr;

/// Times before this (2001-09-09) are "set on purpose" and compared; later ones are "now".
pub const OLD_TIME_LIMIT: i64 = 1_000_000_000;

/// The type of a directory entry, with device numbers for device nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link.
    Symlink,
    /// Named pipe.
    Fifo,
    /// Unix socket.
    Socket,
    /// Character device (major, minor).
    Char(u64, u64),
    /// Block device (major, minor).
    Block(u64, u64),
}

/// Everything compared about one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Type of the entry.
    pub kind: Kind,
    /// Permission bits including setuid/setgid/sticky.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes (files and symlinks only).
    pub size: Option<u64>,
    /// Content fingerprint (regular files only), see [`hash_file`].
    pub content: Option<String>,
    /// Symlink target.
    pub target: Option<String>,
    /// All xattrs, values shown as escaped text.
    pub xattrs: BTreeMap<String, String>,
    /// Link count (not for directories).
    pub nlink: Option<u64>,
    /// mtime in seconds when older than [`OLD_TIME_LIMIT`], otherwise `None` ("recent").
    pub old_mtime: Option<(i64, i64)>,
    /// For names with nlink > 1: the first name (in sorted order) of the same inode.
    pub link_group: Option<String>,
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} {:o} {}:{}",
            self.kind, self.mode, self.uid, self.gid
        )?;
        if let Some(s) = self.size {
            write!(f, " size={s}")?;
        }
        if let Some(h) = &self.content {
            write!(f, " content={h}")?;
        }
        if let Some(t) = &self.target {
            write!(f, " -> {t}")?;
        }
        if let Some(n) = self.nlink {
            write!(f, " nlink={n}")?;
        }
        if let Some(g) = &self.link_group {
            write!(f, " group={g}")?;
        }
        if let Some((s, ns)) = self.old_mtime {
            write!(f, " mtime={s}.{ns:09}")?;
        }
        if !self.xattrs.is_empty() {
            write!(f, " xattrs={:?}", self.xattrs)?;
        }
        Ok(())
    }
}

/// A whole tree: relative path (`""` is the root, `"a/b"` below it) to entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// The entries, sorted by path.
    pub entries: BTreeMap<String, Entry>,
}

fn escape(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

/// A 128-bit content fingerprint (two SipHash streams from std). Not sha256: std's
/// hasher is compiled optimized even in debug test builds, where a sha256 of every file
/// after every differential step dominated the run time (3x slower). Collisions would
/// need an adversary; these tests only compare two filesystems' honest answers.
fn hash_file(path: &Path) -> io::Result<String> {
    use std::hash::Hasher;
    let mut f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    let mut a = std::hash::DefaultHasher::new();
    let mut b = std::hash::DefaultHasher::new();
    b.write_u8(0x5a);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        a.write(&buf[..n]);
        b.write(&buf[..n]);
    }
    Ok(format!("{:016x}{:016x}", a.finish(), b.finish()))
}

fn entry_of(path: &Path, md: &fs::Metadata) -> io::Result<Entry> {
    let ft = md.file_type();
    let rdev = md.rdev();
    let (maj, min) = (libc::major(rdev) as u64, libc::minor(rdev) as u64);
    let kind = if ft.is_file() {
        Kind::File
    } else if ft.is_dir() {
        Kind::Dir
    } else if ft.is_symlink() {
        Kind::Symlink
    } else if ft.is_fifo() {
        Kind::Fifo
    } else if ft.is_socket() {
        Kind::Socket
    } else if ft.is_char_device() {
        Kind::Char(maj, min)
    } else {
        Kind::Block(maj, min)
    };
    let mut xattrs = BTreeMap::new();
    for name in xattr::list(path)? {
        let value = xattr::get(path, &name)?.unwrap_or_default();
        xattrs.insert(name, escape(&value));
    }
    Ok(Entry {
        size: matches!(kind, Kind::File | Kind::Symlink).then(|| md.size()),
        content: if kind == Kind::File {
            Some(hash_file(path)?)
        } else {
            None
        },
        target: if kind == Kind::Symlink {
            Some(escape(fs::read_link(path)?.as_os_str().as_encoded_bytes()))
        } else {
            None
        },
        nlink: (kind != Kind::Dir).then(|| md.nlink()),
        old_mtime: (md.mtime() < OLD_TIME_LIMIT).then(|| (md.mtime(), md.mtime_nsec())),
        kind,
        mode: md.mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
        xattrs,
        link_group: None,
    })
}

/// Walks `root` (not following symlinks) and records every entry below it.
pub fn snapshot(root: &Path) -> io::Result<Snapshot> {
    let mut entries = BTreeMap::new();
    let mut inodes: HashMap<u64, Vec<String>> = HashMap::new();
    let mut stack = vec![String::new()];
    while let Some(rel) = stack.pop() {
        let path = if rel.is_empty() {
            root.to_path_buf()
        } else {
            root.join(&rel)
        };
        let md = fs::symlink_metadata(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("lstat {}: {e}", path.display())))?;
        let entry = entry_of(&path, &md)
            .map_err(|e| io::Error::new(e.kind(), format!("reading {}: {e}", path.display())))?;
        if entry.kind == Kind::Dir {
            let rd = fs::read_dir(&path).map_err(|e| {
                io::Error::new(e.kind(), format!("readdir {}: {e}", path.display()))
            })?;
            for child in rd {
                let child = child?;
                let name = child.file_name().to_string_lossy().into_owned();
                stack.push(if rel.is_empty() {
                    name
                } else {
                    format!("{rel}/{name}")
                });
            }
        } else if md.nlink() > 1 {
            inodes.entry(md.ino()).or_default().push(rel.clone());
        }
        entries.insert(rel, entry);
    }
    for names in inodes.into_values() {
        if names.len() < 2 {
            continue;
        }
        let first = names.iter().min().cloned().unwrap_or_default();
        for n in names {
            if let Some(e) = entries.get_mut(&n) {
                e.link_group = Some(first.clone());
            }
        }
    }
    Ok(Snapshot { entries })
}

impl Snapshot {
    /// Human-readable differences, one line each (empty when equal).
    pub fn diff(&self, left_name: &str, other: &Snapshot, right_name: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut keys: Vec<&String> = self.entries.keys().chain(other.entries.keys()).collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            let shown = if k.is_empty() { "/" } else { k.as_str() };
            match (self.entries.get(k), other.entries.get(k)) {
                (Some(a), None) => out.push(format!("only in {left_name}: {shown}  [{a}]")),
                (None, Some(b)) => out.push(format!("only in {right_name}: {shown}  [{b}]")),
                (Some(a), Some(b)) if a != b => out.push(format!(
                    "{shown}:\n    {left_name:>10}: {a}\n    {right_name:>10}: {b}"
                )),
                _ => {}
            }
        }
        out
    }

    /// Names and xattrs that must never appear in a merged view: whiteout and opaque
    /// markers and overlay-private xattrs.
    pub fn leaked_markers(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (path, e) in &self.entries {
            let base = path.rsplit('/').next().unwrap_or(path);
            if base.starts_with(".wh.") {
                out.push(format!("name {path}"));
            }
            if e.kind == Kind::Char(0, 0) {
                out.push(format!("whiteout device {path}"));
            }
            for x in e.xattrs.keys() {
                if x.starts_with("trusted.overlay.")
                    || x.starts_with("user.overlay.")
                    || x.starts_with("user.fuseoverlayfs.")
                {
                    out.push(format!("xattr {x} on {path}"));
                }
            }
        }
        out
    }

    /// The sorted paths, for quick "which names exist" assertions.
    pub fn paths(&self) -> Vec<String> {
        self.entries
            .keys()
            .filter(|k| !k.is_empty())
            .cloned()
            .collect()
    }
}

/// Panics with a readable diff unless the two snapshots are equal.
#[track_caller]
pub fn assert_same_view(
    left_name: &str,
    left: &Snapshot,
    right_name: &str,
    right: &Snapshot,
    context: &str,
) {
    let d = left.diff(left_name, right, right_name);
    if !d.is_empty() {
        panic!(
            "views differ ({context}), {} difference(s):\n{}",
            d.len(),
            d.join("\n")
        );
    }
}
