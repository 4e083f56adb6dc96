//! Safe extraction of a layer tar into a layer directory in the overlay on-disk format.
//!
//! Every name is resolved one component at a time from a descriptor on the layer root,
//! with `O_NOFOLLOW`, so neither `..`, an absolute name, nor a symlink planted by an
//! earlier entry can make a write land outside the layer. Hardlinks may only point at
//! entries written earlier by the same tar. OCI whiteouts (`.wh.NAME`) and opaque
//! markers (`.wh..wh..opq`) become the on-disk forms of `unionfs::whiteout`.
//! The caller extracts into a fresh directory and deletes it on error, so a refused tar
//! stores nothing.

use std::collections::{HashMap, HashSet};
use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid};
use tar::EntryType;
use unionfs::whiteout::{self, WhiteoutFormat};

use crate::digest::{Digest, HashingReader};
use crate::error::{Error, Result};

/// How to write what the tar describes.
#[derive(Clone, Copy, Debug)]
pub struct ExtractOptions {
    /// On-disk form of whiteouts and opaque directories.
    pub whiteout: WhiteoutFormat,
    /// Apply the tar's uid/gid (only root may).
    pub preserve_owner: bool,
}

impl ExtractOptions {
    /// The kernel format and real ownership as root; OCI-named whiteouts and the
    /// caller's own ownership otherwise (device nodes and trusted xattrs need root).
    pub fn for_current_user() -> Self {
        let root = nix::unistd::geteuid().is_root();
        ExtractOptions {
            whiteout: if root {
                WhiteoutFormat::Kernel
            } else {
                WhiteoutFormat::Oci
            },
            preserve_owner: root,
        }
    }
}

/// What an extraction measured.
#[derive(Clone, Debug)]
pub struct ExtractStats {
    /// SHA-256 of the whole uncompressed tar stream: the layer's DiffID.
    pub diff_id: Digest,
    /// Length of the uncompressed tar stream.
    pub tar_size: u64,
    /// Sum of regular file sizes: what `images` and `history` report.
    pub content_size: u64,
    /// Number of entries extracted.
    pub entries: u64,
}

#[derive(Clone, Debug)]
struct Meta {
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: i64,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

struct Extractor {
    root: OwnedFd,
    opts: ExtractOptions,
    /// Non-directory entries written so far (hardlink targets must be among them).
    written: HashSet<Vec<OsString>>,
    /// Directories whose metadata is applied last (children change their mtime).
    dirs: Vec<Vec<OsString>>,
    dir_meta: HashMap<Vec<OsString>, Meta>,
    cache: Option<(Vec<OsString>, OwnedFd)>,
}

/// Extracts the uncompressed layer tar `reader` into the existing, empty directory `dest`.
///
/// Returns the DiffID computed over the whole stream. On error `dest` holds a partial
/// tree that the caller must remove.
pub fn extract_layer<R: Read>(
    reader: R,
    dest: &Path,
    opts: &ExtractOptions,
) -> Result<ExtractStats> {
    let root = nix::fcntl::open(
        dest,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::Io {
        path: dest.to_path_buf(),
        source: e.into(),
    })?;
    let mut ex = Extractor {
        root,
        opts: *opts,
        written: HashSet::new(),
        dirs: Vec::new(),
        dir_meta: HashMap::new(),
        cache: None,
    };
    let mut archive = tar::Archive::new(HashingReader::new(reader));
    let mut content_size = 0u64;
    let mut count = 0u64;
    {
        let entries = archive
            .entries()
            .map_err(|e| Error::Other(format!("reading layer tar: {e}")))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| Error::Other(format!("reading layer tar: {e}")))?;
            let raw = entry.path_bytes().into_owned();
            let shown = String::from_utf8_lossy(&raw).into_owned();
            let size = ex.entry(&mut entry, &raw).map_err(|e| match e {
                EntryError::Refused(reason) => Error::UnsafeEntry {
                    entry: shown.clone(),
                    reason,
                },
                EntryError::Io(err) => {
                    Error::Other(format!("extracting layer entry {shown:?}: {err}"))
                }
            })?;
            content_size += size;
            count += 1;
        }
    }
    ex.finish_dirs()
        .map_err(|e| Error::Other(format!("setting directory metadata: {e}")))?;
    let (diff_id, tar_size) = archive
        .into_inner()
        .finish()
        .map_err(|e| Error::Other(format!("reading layer tar: {e}")))?;
    Ok(ExtractStats {
        diff_id,
        tar_size,
        content_size,
        entries: count,
    })
}

enum EntryError {
    Refused(String),
    Io(io::Error),
}

impl From<io::Error> for EntryError {
    fn from(e: io::Error) -> Self {
        EntryError::Io(e)
    }
}

impl From<Errno> for EntryError {
    fn from(e: Errno) -> Self {
        EntryError::Io(e.into())
    }
}

type EResult<T> = std::result::Result<T, EntryError>;

/// Splits a tar name into checked components; `..` and absolute names are refused.
fn split_name(raw: &[u8]) -> EResult<Vec<OsString>> {
    if raw.first() == Some(&b'/') {
        return Err(EntryError::Refused("absolute path".into()));
    }
    let mut out = Vec::new();
    for c in raw.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err(EntryError::Refused("path contains \"..\"".into())),
            _ => out.push(OsStr::from_bytes(c).to_os_string()),
        }
    }
    Ok(out)
}

fn meta_of<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Meta> {
    let h = entry.header();
    let mut meta = Meta {
        mode: h.mode().unwrap_or(0o644) & 0o7777,
        // Empty numeric fields (some writers leave them blank) read as 0, as Go's
        // archive/tar does.
        uid: h.uid().unwrap_or(0),
        gid: h.gid().unwrap_or(0),
        mtime: h.mtime().unwrap_or(0) as i64,
        xattrs: Vec::new(),
    };
    if let Some(exts) = entry.pax_extensions()? {
        for ext in exts {
            let ext = ext?;
            let Ok(key) = ext.key() else { continue };
            let value = ext.value_bytes();
            let num = || {
                std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok())
            };
            match key {
                "uid" => meta.uid = num().unwrap_or(meta.uid),
                "gid" => meta.gid = num().unwrap_or(meta.gid),
                "mtime" => {
                    if let Some(secs) = std::str::from_utf8(value)
                        .ok()
                        .and_then(|v| v.split('.').next())
                        .and_then(|v| v.parse::<i64>().ok())
                    {
                        meta.mtime = secs;
                    }
                }
                _ => {
                    if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                        // Overlay's own xattrs are never taken from a tar: whiteouts and
                        // opacity come only from .wh. entries.
                        if !name.starts_with("trusted.overlay.")
                            && !name.starts_with("user.overlay.")
                        {
                            meta.xattrs.push((name.as_bytes().to_vec(), value.to_vec()));
                        }
                    }
                }
            }
        }
    }
    Ok(meta)
}

fn proc_path(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<CString> {
    let mut p = format!("/proc/self/fd/{}", dir.as_raw_fd()).into_bytes();
    if !name.is_empty() {
        p.push(b'/');
        p.extend_from_slice(name.as_bytes());
    }
    CString::new(p).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

fn set_xattr_fd(fd: BorrowedFd<'_>, name: &[u8], value: &[u8]) -> io::Result<()> {
    let cname = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: valid fd, NUL-terminated name, value slice with its length.
    let r = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            cname.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn set_xattr_nofollow(
    dir: BorrowedFd<'_>,
    child: &OsStr,
    name: &[u8],
    value: &[u8],
) -> io::Result<()> {
    let path = proc_path(dir, child)?;
    let cname = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: NUL-terminated strings, value slice with its length.
    let r = unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            cname.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn ts(secs: i64) -> TimeSpec {
    TimeSpec::new(secs, 0)
}

impl Extractor {
    /// Opens the directory `comps` under the root, creating missing ones (mode 0755) when
    /// `create`, never following a symlink.
    fn open_dir(&mut self, comps: &[OsString], create: bool) -> EResult<BorrowedFd<'_>> {
        let cached = matches!(&self.cache, Some((p, _)) if p.as_slice() == comps);
        if !cached {
            let mut cur: Option<OwnedFd> = None;
            for (i, c) in comps.iter().enumerate() {
                let base = cur.as_ref().map(|f| f.as_fd()).unwrap_or(self.root.as_fd());
                let flags =
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
                let next = match nix::fcntl::openat(base, c.as_os_str(), flags, Mode::empty()) {
                    Ok(fd) => fd,
                    Err(Errno::ENOENT) if create => {
                        nix::sys::stat::mkdirat(
                            base,
                            c.as_os_str(),
                            Mode::from_bits_truncate(0o755),
                        )?;
                        nix::fcntl::openat(base, c.as_os_str(), flags, Mode::empty())?
                    }
                    Err(Errno::ELOOP) | Err(Errno::ENOTDIR) => {
                        let shown: Vec<_> =
                            comps[..=i].iter().map(|c| c.to_string_lossy()).collect();
                        return Err(EntryError::Refused(format!(
                            "{} is a symlink or not a directory",
                            shown.join("/")
                        )));
                    }
                    Err(e) => return Err(e.into()),
                };
                cur = Some(next);
            }
            let fd = match cur {
                Some(fd) => fd,
                None => nix::fcntl::openat(
                    self.root.as_fd(),
                    ".",
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )?,
            };
            self.cache = Some((comps.to_vec(), fd));
        }
        match &self.cache {
            Some((_, fd)) => Ok(fd.as_fd()),
            None => Err(EntryError::Io(io::Error::other("directory cache empty"))),
        }
    }

    /// Removes whatever is at `name` in `parent` unless it is a directory and `keep_dir`.
    /// Returns true when a directory was kept.
    fn clear(&mut self, parent: BorrowedFd<'_>, name: &OsStr, keep_dir: bool) -> EResult<bool> {
        match nix::sys::stat::fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Err(Errno::ENOENT) => Ok(false),
            Err(e) => Err(e.into()),
            Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {
                if keep_dir {
                    return Ok(true);
                }
                let path = proc_path(parent, name)?;
                std::fs::remove_dir_all(OsStr::from_bytes(path.as_bytes()))?;
                Ok(false)
            }
            Ok(_) => {
                nix::unistd::unlinkat(parent, name, nix::unistd::UnlinkatFlags::NoRemoveDir)?;
                Ok(false)
            }
        }
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>, raw: &[u8]) -> EResult<u64> {
        let comps = split_name(raw)?;
        let kind = entry.header().entry_type();
        let Some((name, parent_comps)) = comps.split_last() else {
            // The layer root itself ("./"): its metadata is not part of the layer.
            return Ok(0);
        };
        let name = name.clone();
        let parent_comps = parent_comps.to_vec();
        let meta = meta_of(entry)?;
        let opts = self.opts;

        // Whiteouts and opaque markers.
        let nb = name.as_bytes();
        if nb == whiteout::OCI_OPAQUE_NAME.as_bytes() {
            let dir = self.open_dir(&parent_comps, true)?;
            whiteout::mark_opaque_fd(dir, opts.whiteout)?;
            return Ok(0);
        }
        if let Some(target) = nb.strip_prefix(whiteout::OCI_WHITEOUT_PREFIX.as_bytes()) {
            if target.is_empty() || target == b"." || target == b".." {
                return Err(EntryError::Refused("invalid whiteout name".into()));
            }
            let target = OsStr::from_bytes(target).to_os_string();
            let dir_fd = self.dir_fd(&parent_comps)?;
            self.clear(dir_fd.as_fd(), &target, false)?;
            let stored = whiteout::whiteout_name(&target, opts.whiteout);
            if stored != target {
                self.clear(dir_fd.as_fd(), &stored, false)?;
            }
            whiteout::create_whiteout_at(dir_fd.as_fd(), &target, opts.whiteout)?;
            return Ok(0);
        }

        let dir_fd = self.dir_fd(&parent_comps)?;
        let parent = dir_fd.as_fd();
        let is_dir = kind == EntryType::Directory;
        let kept = self.clear(parent, &name, is_dir)?;
        if !is_dir {
            self.written.insert(comps.clone());
        }
        match kind {
            EntryType::Directory => {
                if !kept {
                    nix::sys::stat::mkdirat(
                        parent,
                        name.as_os_str(),
                        Mode::from_bits_truncate(0o700),
                    )?;
                    self.cache = None;
                }
                if !self.dir_meta.contains_key(&comps) {
                    self.dirs.push(comps.clone());
                }
                self.dir_meta.insert(comps, meta);
                Ok(0)
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let fd = nix::fcntl::openat(
                    parent,
                    name.as_os_str(),
                    OFlag::O_WRONLY
                        | OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )?;
                let mut file = File::from(fd);
                let n = io::copy(entry, &mut file)?;
                if opts.preserve_owner {
                    nix::unistd::fchown(
                        &file,
                        Some(Uid::from_raw(meta.uid as u32)),
                        Some(Gid::from_raw(meta.gid as u32)),
                    )?;
                }
                nix::sys::stat::fchmod(&file, Mode::from_bits_truncate(meta.mode))?;
                for (k, v) in &meta.xattrs {
                    set_xattr_fd(file.as_fd(), k, v)?;
                }
                nix::sys::stat::futimens(&file, &ts(meta.mtime), &ts(meta.mtime))?;
                Ok(n)
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| EntryError::Refused("symlink without a target".into()))?
                    .into_owned();
                nix::unistd::symlinkat(OsStr::from_bytes(&target), parent, name.as_os_str())?;
                self.finish_special(parent, &name, &meta, true)?;
                Ok(0)
            }
            EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| EntryError::Refused("hardlink without a target".into()))?
                    .into_owned();
                let tcomps = split_name(&target)?;
                if tcomps == comps || !self.written.contains(&tcomps) {
                    return Err(EntryError::Refused(format!(
                        "hardlink target {:?} is not an earlier entry of this layer",
                        String::from_utf8_lossy(&target)
                    )));
                }
                let Some((tname, tparent)) = tcomps.split_last() else {
                    return Err(EntryError::Refused("hardlink to the layer root".into()));
                };
                let tparent_fd = self.dir_fd_nocreate(tparent)?;
                nix::unistd::linkat(
                    tparent_fd.as_fd(),
                    tname.as_os_str(),
                    parent,
                    name.as_os_str(),
                    AtFlags::empty(),
                )?;
                Ok(0)
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let h = entry.header();
                let major = h.device_major().ok().flatten().unwrap_or(0) as u64;
                let minor = h.device_minor().ok().flatten().unwrap_or(0) as u64;
                let sflag = match kind {
                    EntryType::Char => SFlag::S_IFCHR,
                    EntryType::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                if kind == EntryType::Char && major == 0 && minor == 0 {
                    return Err(EntryError::Refused(
                        "character device 0/0 is the on-disk whiteout; layers must use .wh. names"
                            .into(),
                    ));
                }
                nix::sys::stat::mknodat(
                    parent,
                    name.as_os_str(),
                    sflag,
                    Mode::from_bits_truncate(0o600),
                    nix::sys::stat::makedev(major, minor),
                )?;
                self.finish_special(parent, &name, &meta, false)?;
                Ok(0)
            }
            other => Err(EntryError::Refused(format!(
                "unsupported tar entry type {other:?}"
            ))),
        }
    }

    /// An owned descriptor on a parent directory, created if missing.
    fn dir_fd(&mut self, comps: &[OsString]) -> EResult<OwnedFd> {
        let fd = self.open_dir(comps, true)?;
        Ok(fd.try_clone_to_owned()?)
    }

    fn dir_fd_nocreate(&mut self, comps: &[OsString]) -> EResult<OwnedFd> {
        let fd = self.open_dir(comps, false)?;
        Ok(fd.try_clone_to_owned()?)
    }

    /// Owner, mode, xattrs and mtime for entries that can not be opened (symlinks, nodes).
    fn finish_special(
        &self,
        parent: BorrowedFd<'_>,
        name: &OsStr,
        meta: &Meta,
        symlink: bool,
    ) -> EResult<()> {
        if self.opts.preserve_owner {
            nix::unistd::fchownat(
                parent,
                name,
                Some(Uid::from_raw(meta.uid as u32)),
                Some(Gid::from_raw(meta.gid as u32)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )?;
        }
        if !symlink {
            nix::sys::stat::fchmodat(
                parent,
                name,
                Mode::from_bits_truncate(meta.mode),
                nix::sys::stat::FchmodatFlags::FollowSymlink,
            )?;
        }
        for (k, v) in &meta.xattrs {
            match set_xattr_nofollow(parent, name, k, v) {
                // user.* xattrs are not allowed on symlinks by the kernel.
                Err(e) if symlink && e.raw_os_error() == Some(libc::EPERM) => {}
                r => r?,
            }
        }
        nix::sys::stat::utimensat(
            parent,
            name,
            &ts(meta.mtime),
            &ts(meta.mtime),
            UtimensatFlags::NoFollowSymlink,
        )?;
        Ok(())
    }

    /// Applies directory metadata, deepest last-listed first, once all children exist.
    fn finish_dirs(&mut self) -> io::Result<()> {
        self.cache = None;
        let dirs = std::mem::take(&mut self.dirs);
        for comps in dirs.iter().rev() {
            let Some(meta) = self.dir_meta.get(comps).cloned() else {
                continue;
            };
            let fd = match self.open_dir(comps, false) {
                Ok(fd) => fd.try_clone_to_owned()?,
                // Replaced by a later non-directory entry.
                Err(_) => continue,
            };
            self.cache = None;
            if self.opts.preserve_owner {
                nix::unistd::fchown(
                    &fd,
                    Some(Uid::from_raw(meta.uid as u32)),
                    Some(Gid::from_raw(meta.gid as u32)),
                )?;
            }
            nix::sys::stat::fchmod(&fd, Mode::from_bits_truncate(meta.mode))?;
            for (k, v) in &meta.xattrs {
                set_xattr_fd(fd.as_fd(), k, v)?;
            }
            nix::sys::stat::futimens(&fd, &ts(meta.mtime), &ts(meta.mtime))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    fn header(name: &str, kind: EntryType, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        let raw = name.as_bytes();
        h.as_old_mut().name[..raw.len()].copy_from_slice(raw);
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o644);
        h.set_mtime(1_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        h
    }

    fn link(name: &str, kind: EntryType, target: &str) -> tar::Header {
        let mut h = header(name, kind, 0);
        let raw = target.as_bytes();
        h.as_old_mut().linkname[..raw.len()].copy_from_slice(raw);
        h.set_cksum();
        h
    }

    fn tar_of(entries: Vec<(tar::Header, Vec<u8>)>) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (h, data) in entries {
            b.append(&h, &data[..]).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn run(t: &[u8]) -> (tempfile::TempDir, Result<ExtractStats>) {
        let dir = tempfile::tempdir().unwrap();
        let r = extract_layer(t, dir.path(), &ExtractOptions::for_current_user());
        (dir, r)
    }

    fn refused(t: &[u8], entry: &str) {
        let (_d, r) = run(t);
        match r {
            Err(Error::UnsafeEntry { entry: e, .. }) => assert_eq!(e, entry),
            other => panic!("expected refusal of {entry}, got {other:?}"),
        }
    }

    #[test]
    fn refuses_dotdot_and_absolute() {
        refused(
            &tar_of(vec![(header("../evil", EntryType::Regular, 0), vec![])]),
            "../evil",
        );
        refused(
            &tar_of(vec![(
                header("a/../../evil", EntryType::Regular, 0),
                vec![],
            )]),
            "a/../../evil",
        );
        refused(
            &tar_of(vec![(header("/etc/evil", EntryType::Regular, 0), vec![])]),
            "/etc/evil",
        );
    }

    #[test]
    fn refuses_writing_through_symlink() {
        let outside = tempfile::tempdir().unwrap();
        let t = tar_of(vec![
            (
                link(
                    "escape",
                    EntryType::Symlink,
                    outside.path().to_str().unwrap(),
                ),
                vec![],
            ),
            (header("escape/pwned", EntryType::Regular, 1), b"x".to_vec()),
        ]);
        refused(&t, "escape/pwned");
        assert!(!outside.path().join("pwned").exists());
    }

    #[test]
    fn hardlinks_only_within_layer() {
        refused(
            &tar_of(vec![(link("l", EntryType::Link, "etc/passwd"), vec![])]),
            "l",
        );
        let t = tar_of(vec![
            (header("f", EntryType::Regular, 2), b"hi".to_vec()),
            (link("g", EntryType::Link, "f"), vec![]),
        ]);
        let (d, r) = run(&t);
        r.unwrap();
        let a = std::fs::metadata(d.path().join("f")).unwrap();
        let b = std::fs::metadata(d.path().join("g")).unwrap();
        assert_eq!(a.ino(), b.ino());
    }

    #[test]
    fn whiteouts_duplicates_and_diff_id() {
        let t = tar_of(vec![
            (header("d/", EntryType::Directory, 0), vec![]),
            (header("d/.wh..wh..opq", EntryType::Regular, 0), vec![]),
            (header("d/.wh.gone", EntryType::Regular, 0), vec![]),
            (header("d/f", EntryType::Regular, 3), b"one".to_vec()),
            (header("d/f", EntryType::Regular, 3), b"two".to_vec()),
            (link("d/f2", EntryType::Symlink, "f"), vec![]),
            (link("d/f2", EntryType::Symlink, "other"), vec![]),
        ]);
        let (d, r) = run(&t);
        let stats = r.unwrap();
        assert_eq!(stats.diff_id, Digest::of(&t));
        assert_eq!(std::fs::read(d.path().join("d/f")).unwrap(), b"two");
        assert_eq!(
            std::fs::read_link(d.path().join("d/f2")).unwrap().to_str(),
            Some("other")
        );
        assert!(whiteout::is_whiteout(&d.path().join("d"), OsStr::new("gone")).unwrap());
        assert!(whiteout::is_opaque(&d.path().join("d")).unwrap());
        if nix::unistd::geteuid().is_root() {
            let md = std::fs::symlink_metadata(d.path().join("d/gone")).unwrap();
            assert!(md.file_type().is_char_device());
            assert_eq!(md.rdev(), 0);
        }
    }

    #[test]
    fn keeps_owner_mode_mtime_xattrs_and_device_nodes() {
        if !nix::unistd::geteuid().is_root() {
            return; // ownership and device nodes need root
        }
        let mut b = tar::Builder::new(Vec::new());
        // A PAX header carrying an xattr for the next entry.
        let rec = b"SCHILY.xattr.user.test=hello\n";
        let body = format!("{} ", rec.len() + 3).into_bytes();
        let mut data = body.clone();
        data.extend_from_slice(rec);
        assert_eq!(data.len(), rec.len() + 3);
        let mut x = tar::Header::new_ustar();
        x.set_entry_type(EntryType::XHeader);
        x.set_path("PaxHeaders/f").unwrap();
        x.set_size(data.len() as u64);
        x.set_mode(0o644);
        x.set_cksum();
        b.append(&x, &data[..]).unwrap();
        let mut f = header("f", EntryType::Regular, 2);
        f.set_uid(1234);
        f.set_gid(5678);
        f.set_mode(0o4750);
        f.set_mtime(1_234_567);
        f.set_cksum();
        b.append(&f, &b"hi"[..]).unwrap();
        let mut c = header("null", EntryType::Char, 0);
        c.set_device_major(1).unwrap();
        c.set_device_minor(3).unwrap();
        c.set_cksum();
        b.append(&c, &b""[..]).unwrap();
        b.append(&header("fifo", EntryType::Fifo, 0), &b""[..])
            .unwrap();
        let t = b.into_inner().unwrap();
        let (d, r) = run(&t);
        r.unwrap();
        let md = std::fs::metadata(d.path().join("f")).unwrap();
        assert_eq!((md.uid(), md.gid()), (1234, 5678));
        assert_eq!(md.mode() & 0o7777, 0o4750);
        assert_eq!(md.mtime(), 1_234_567);
        let mut buf = [0u8; 16];
        let p = std::ffi::CString::new(d.path().join("f").to_str().unwrap()).unwrap();
        let n = std::ffi::CString::new("user.test").unwrap();
        let len =
            unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        assert_eq!(&buf[..len.max(0) as usize], b"hello");
        let null = std::fs::symlink_metadata(d.path().join("null")).unwrap();
        assert!(null.file_type().is_char_device());
        assert_eq!(null.rdev(), nix::sys::stat::makedev(1, 3));
        assert!(
            std::fs::symlink_metadata(d.path().join("fifo"))
                .unwrap()
                .file_type()
                .is_fifo()
        );
    }
}
