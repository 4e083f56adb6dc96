//! Attribute changes (`chmod`, `chown`, `truncate`, `utimens`), extended attributes and
//! `statfs`.
//!
//! Every change copies the entry up first; the union's own xattrs (`overlay.*`,
//! `unionfs.*`) are neither listed, read nor writable through the merged view.

use std::ffi::{OsStr, OsString};
use std::os::fd::AsFd;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid};

use super::copyup::Data;
use super::node::NodeId;
use super::{Attr, Union};
use crate::sys::xattr::{self, Target};
use crate::sys::{self, SysResult};

/// A time to set: a value, or "now".
#[derive(Clone, Copy, Debug)]
pub enum SetTime {
    /// This many (seconds, nanoseconds) since the epoch.
    At(i64, i64),
    /// The current time.
    Now,
}

/// The changes of one `setattr` request; `None` leaves a field alone.
#[derive(Clone, Copy, Debug, Default)]
pub struct SetAttr {
    /// New permission bits.
    pub mode: Option<u32>,
    /// New owner.
    pub uid: Option<u32>,
    /// New group.
    pub gid: Option<u32>,
    /// New size.
    pub size: Option<u64>,
    /// New access time.
    pub atime: Option<SetTime>,
    /// New modification time.
    pub mtime: Option<SetTime>,
}

fn timespec(t: Option<SetTime>) -> TimeSpec {
    match t {
        None => TimeSpec::new(0, libc::UTIME_OMIT),
        Some(SetTime::Now) => TimeSpec::new(0, libc::UTIME_NOW),
        Some(SetTime::At(s, ns)) => TimeSpec::new(s, ns),
    }
}

/// Statistics of the filesystem that holds the union's writes.
#[derive(Clone, Copy, Debug)]
pub struct FsStats {
    /// Total blocks.
    pub blocks: u64,
    /// Free blocks.
    pub bfree: u64,
    /// Blocks available to unprivileged users.
    pub bavail: u64,
    /// Total inodes.
    pub files: u64,
    /// Free inodes.
    pub ffree: u64,
    /// Block size.
    pub bsize: u32,
    /// Longest name.
    pub namelen: u32,
    /// Fragment size.
    pub frsize: u32,
}

impl Union {
    /// Applies `set` to a node (through the open handle `fh` for truncation if given).
    pub fn setattr(&self, id: NodeId, set: SetAttr, fh: Option<u64>) -> SysResult<Attr> {
        let node = self.node(id)?;
        let upper = self.upper_idx()?;
        if let (Some(size), Some(fh)) = (set.size, fh) {
            let file = self.open_file(fh)?;
            if file.node.read_state().upper {
                nix::unistd::ftruncate(file.backing().as_fd(), size as i64)?;
            }
        }
        let data = match set.size {
            Some(0) => Data::Skip,
            Some(_) => Data::Full,
            None => Data::Meta,
        };
        self.copy_up(&node, data)?;
        let path = self.path_of(&node);
        let (pfd, name) = self.open_parent(upper, &path)?;
        let dir = pfd.as_fd();
        if set.uid.is_some() || set.gid.is_some() {
            nix::unistd::fchownat(
                dir,
                name.as_os_str(),
                set.uid.map(Uid::from_raw),
                set.gid.map(Gid::from_raw),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )?;
        }
        if let Some(mode) = set.mode {
            if node.kind() == libc::S_IFLNK {
                return Err(Errno::EOPNOTSUPP);
            }
            nix::sys::stat::fchmodat(
                dir,
                name.as_os_str(),
                Mode::from_bits_truncate(mode & 0o7777),
                nix::sys::stat::FchmodatFlags::FollowSymlink,
            )?;
        }
        if let Some(size) = set.size
            && fh.is_none()
        {
            let fd = sys::open_child(dir, &name, OFlag::O_WRONLY, 0)?;
            nix::unistd::ftruncate(fd.as_fd(), size as i64)?;
        }
        if set.atime.is_some() || set.mtime.is_some() {
            nix::sys::stat::utimensat(
                dir,
                name.as_os_str(),
                &timespec(set.atime),
                &timespec(set.mtime),
                UtimensatFlags::NoFollowSymlink,
            )?;
        }
        let st = sys::stat_child(dir, &name)?;
        Ok(self.attr_of(&node, &node.snapshot(), &st))
    }

    /// Where xattr calls for a node go: its current top location.
    fn xattr_target(&self, id: NodeId) -> SysResult<(std::os::fd::OwnedFd, OsString)> {
        let node = self.node(id)?;
        let state = node.snapshot();
        let (layer, path) = self.top_location(&node, &state)?;
        self.open_parent(layer, &path)
    }

    /// Reads an xattr; the union's own are invisible.
    pub fn getxattr(&self, id: NodeId, name: &OsStr) -> SysResult<Vec<u8>> {
        if xattr::is_private(name) {
            return Err(Errno::ENODATA);
        }
        let name_c = sys::cstr(name)?;
        let node = self.node(id)?;
        let state = node.snapshot();
        let (layer, path) = self.top_location(&node, &state)?;
        if !state.upper && !path.is_absolute() {
            // Read-only layers never change under the mount, so the path inside the
            // layer resolves to what the union resolved: one lgetxattr through the layer
            // root instead of opening the parent beneath it. (`ls -l` asks this once or
            // twice per file.) The upper layer, which callers can rearrange meanwhile,
            // keeps the symlink-safe open below.
            let rel = if path.as_os_str().is_empty() {
                std::path::Path::new(".")
            } else {
                path.as_path()
            };
            let root = self.layers.get(layer).fd();
            return xattr::get_raw(Target::Child(root, rel.as_os_str()), &name_c);
        }
        let (dir, child) = self.open_parent(layer, &path)?;
        xattr::get_raw(Target::Child(dir.as_fd(), child_name(&child)), &name_c)
    }

    /// Lists xattrs, without the union's own.
    pub fn listxattr(&self, id: NodeId) -> SysResult<Vec<OsString>> {
        let (dir, child) = self.xattr_target(id)?;
        let names = xattr::list(Target::Child(dir.as_fd(), child_name(&child)))?;
        Ok(names
            .into_iter()
            .filter(|n| !xattr::is_private(n))
            .collect())
    }

    /// Sets an xattr (copying the entry up).
    pub fn setxattr(&self, id: NodeId, name: &OsStr, value: &[u8], flags: i32) -> SysResult<()> {
        if xattr::is_private(name) {
            return Err(Errno::EPERM);
        }
        let node = self.node(id)?;
        self.copy_up(&node, Data::Meta)?;
        let (dir, child) = self.xattr_target(id)?;
        xattr::set(
            Target::Child(dir.as_fd(), child_name(&child)),
            name,
            value,
            flags,
        )
    }

    /// Removes an xattr (copying the entry up).
    pub fn removexattr(&self, id: NodeId, name: &OsStr) -> SysResult<()> {
        if xattr::is_private(name) {
            return Err(Errno::ENODATA);
        }
        let node = self.node(id)?;
        // Removing what isn't there must not copy up.
        self.getxattr(id, name)?;
        self.copy_up(&node, Data::Meta)?;
        let (dir, child) = self.xattr_target(id)?;
        xattr::remove(Target::Child(dir.as_fd(), child_name(&child)), name)
    }

    /// Filesystem statistics: those of the upper layer (where writes go), else the top one.
    pub fn statfs(&self) -> SysResult<FsStats> {
        let layer = self.layers.get(0);
        let st = nix::sys::statvfs::fstatvfs(layer.fd())?;
        Ok(FsStats {
            blocks: st.blocks(),
            bfree: st.blocks_free(),
            bavail: st.blocks_available(),
            files: st.files(),
            ffree: st.files_free(),
            bsize: st.block_size() as u32,
            namelen: st.name_max() as u32,
            frsize: st.fragment_size() as u32,
        })
    }
}

/// The root comes back from `open_parent` as itself with name "."; xattr calls on it use
/// the directory path itself.
fn child_name(name: &OsStr) -> &OsStr {
    if name == "." { OsStr::new("") } else { name }
}
