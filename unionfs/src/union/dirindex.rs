//! The merged index of one directory: which layer holds each name.
//!
//! Built once per directory, the first time the directory is looked into, by reading each
//! contributing layer directory top-down; after that a lookup is one hash probe, however
//! deep the stack. Namespace changes made through the union edit the index in place, so
//! it never needs rebuilding while mounted.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::dir::{Dir, Type};
use nix::fcntl::OFlag;

use super::entrymap::EntryMap;
use crate::layer::{LayerIdx, LayerStack};
use crate::sys::{self, SysResult};
use crate::whiteout::{self, EntryRole, Opacity};

/// One merged name of a directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergedEntry {
    /// `S_IFMT` bits of the visible (topmost) entry.
    pub kind: u32,
    /// The visible entry is in the upper layer.
    pub upper: bool,
    /// Topmost read-only layer holding the name (the visible one when not in upper).
    pub top_lower: Option<LayerIdx>,
    /// For directories: the read-only layers where the name is a directory that merges in,
    /// top first (trimmed further by opaque markers when the child is looked up).
    pub lower_dirs: Vec<LayerIdx>,
    /// Real inode number of the visible entry, as `readdir` reported it.
    pub raw_ino: u64,
    /// Layer the visible entry is in.
    pub layer: LayerIdx,
    /// Its record in the persistent index, when the directory was served from there.
    pub prebuilt: Option<u32>,
}

impl MergedEntry {
    /// An entry that exists only in the upper layer (just created there).
    pub fn upper_only(kind: u32, raw_ino: u64, upper: LayerIdx) -> Self {
        MergedEntry {
            kind,
            upper: true,
            top_lower: None,
            lower_dirs: Vec::new(),
            raw_ino,
            layer: upper,
            prebuilt: None,
        }
    }

    /// True when some read-only layer holds this name (so removing it needs a whiteout).
    pub fn has_lower(&self) -> bool {
        self.top_lower.is_some()
    }
}

/// The merged entries of one directory.
#[derive(Clone, Debug, Default)]
pub struct DirIndex {
    /// Visible names.
    pub entries: EntryMap,
    /// The upper directory is marked impure: some entries carry an origin inode number.
    pub impure: bool,
    /// Names hidden by a whiteout in some layer: something below may still hold them, so
    /// a name created there and later removed needs a whiteout again.
    pub whited: HashSet<OsString>,
    /// Names that have a whiteout entry in the upper directory itself, which creating the
    /// name must replace.
    pub upper_whiteouts: HashSet<OsString>,
}

/// One layer directory that contributes to a merged directory.
#[derive(Clone, Debug)]
pub struct Source<'a> {
    /// The layer.
    pub layer: LayerIdx,
    /// The directory's path inside that layer.
    pub path: &'a Path,
}

fn dtype_to_mode(t: Type) -> u32 {
    match t {
        Type::Fifo => libc::S_IFIFO,
        Type::CharacterDevice => libc::S_IFCHR,
        Type::Directory => libc::S_IFDIR,
        Type::BlockDevice => libc::S_IFBLK,
        Type::File => libc::S_IFREG,
        Type::Symlink => libc::S_IFLNK,
        Type::Socket => libc::S_IFSOCK,
    }
}

/// Opens a layer directory for reading its entries.
pub fn open_layer_dir(layers: &LayerStack, layer: LayerIdx, path: &Path) -> SysResult<OwnedFd> {
    sys::open_beneath(
        layers.get(layer).fd(),
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY,
    )
}

/// True when the layer directory open at `fd` hides everything below it.
pub fn layer_dir_opaque(fd: std::os::fd::BorrowedFd<'_>) -> SysResult<bool> {
    if whiteout::opacity(fd)? == Opacity::Opaque {
        return Ok(true);
    }
    match sys::stat_child(fd, OsStr::new(whiteout::OCI_OPAQUE_NAME)) {
        Ok(_) => Ok(true),
        Err(nix::errno::Errno::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Builds the index of a directory from its contributing layer directories, top first.
pub fn build(layers: &LayerStack, sources: &[Source<'_>]) -> SysResult<DirIndex> {
    let mut index = DirIndex::default();
    // Names whose directory chain is cut (by a whiteout or a non-directory) below a layer.
    let mut closed: HashSet<OsString> = HashSet::new();
    for source in sources {
        let fd = match open_layer_dir(layers, source.layer, source.path) {
            Ok(fd) => fd,
            // A lower directory that vanished or turned into something else adds nothing.
            Err(nix::errno::Errno::ENOENT) | Err(nix::errno::Errno::ENOTDIR)
                if !layers.is_upper(source.layer) =>
            {
                continue;
            }
            Err(e) => return Err(e),
        };
        let opacity = whiteout::opacity(fd.as_fd())?;
        let is_upper = layers.is_upper(source.layer);
        if is_upper {
            index.impure = crate::sys::xattr::get(
                crate::sys::xattr::Target::Child(fd.as_fd(), OsStr::new("")),
                "trusted.overlay.impure",
            )
            .ok()
            .flatten()
            .is_some()
                || crate::sys::xattr::get(
                    crate::sys::xattr::Target::Child(fd.as_fd(), OsStr::new("")),
                    "user.overlay.impure",
                )
                .ok()
                .flatten()
                .is_some();
        }
        let mut stop = opacity == Opacity::Opaque;
        let dup = nix::unistd::dup(fd.as_fd())?;
        let mut dir = Dir::from_fd(dup)?;
        let mut layer_whiteouts = Vec::new();
        for entry in dir.iter() {
            let entry = entry?;
            let name_c = entry.file_name();
            let name = OsStr::from_bytes_compat(name_c.to_bytes());
            if name == "." || name == ".." {
                continue;
            }
            let d_type = entry.file_type().map(dtype_to_mode);
            match whiteout::classify_entry(fd.as_fd(), name, d_type, opacity)? {
                EntryRole::OpaqueMarker => stop = true,
                EntryRole::Whiteout(target) => layer_whiteouts.push(target),
                EntryRole::Plain => {
                    let kind = match d_type {
                        Some(k) => k,
                        None => sys::file_type(sys::stat_child(fd.as_fd(), name)?.st_mode),
                    };
                    let seen_above = index.entries.update(name, |existing| {
                        if existing.top_lower.is_none() {
                            existing.top_lower = Some(source.layer);
                        }
                        if existing.kind == libc::S_IFDIR
                            && kind == libc::S_IFDIR
                            && !closed.contains(name)
                        {
                            existing.lower_dirs.push(source.layer);
                        } else {
                            closed.insert(name.to_os_string());
                        }
                    });
                    if !seen_above && !index.whited.contains(name) {
                        let mut e = MergedEntry {
                            kind,
                            upper: is_upper,
                            top_lower: None,
                            lower_dirs: Vec::new(),
                            raw_ino: entry.ino(),
                            layer: source.layer,
                            prebuilt: None,
                        };
                        if !is_upper {
                            e.top_lower = Some(source.layer);
                            if kind == libc::S_IFDIR {
                                e.lower_dirs.push(source.layer);
                            }
                        }
                        if kind != libc::S_IFDIR {
                            closed.insert(name.to_os_string());
                        }
                        index.entries.insert(name, e);
                    }
                }
            }
        }
        for target in layer_whiteouts {
            if is_upper {
                index.upper_whiteouts.insert(target.clone());
            }
            if index.entries.contains_key(&target) {
                // Below a higher entry a whiteout only cuts that entry's directory chain.
                closed.insert(target);
            } else {
                index.whited.insert(target);
            }
        }
        if stop {
            break;
        }
    }
    index.entries.shrink_to_fit();
    Ok(index)
}

/// `OsStr::from_bytes` under a name that reads well at the call site.
trait FromBytesCompat {
    fn from_bytes_compat(b: &[u8]) -> &OsStr;
}

impl FromBytesCompat for OsStr {
    fn from_bytes_compat(b: &[u8]) -> &OsStr {
        std::os::unix::ffi::OsStrExt::from_bytes(b)
    }
}
