//! Lower hard-link groups: one file, however many names, also after copy-up.
//!
//! Copying up one name of a lower hard-link group puts the copy in the hard-link index
//! too (the work directory's `unionfs-index/`, one link named by the group's inode
//! number). Every other name of the group then reads that copy, and copying it up only
//! links the index entry, as overlayfs does with `index=on`. The merged link count is
//! derived from the index entry's link count and a small xattr that records how many lower
//! names no longer count below (copied up or deleted).

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::unistd::UnlinkatFlags;

use super::node::Node;
use super::{Union, index_name};
use crate::layer::LayerIdx;
use crate::sys::xattr::{self, Target};
use crate::sys::{self, SysResult};

/// The group bookkeeping kept on the upper copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct GroupCount {
    /// Link count of the lower file when the group was indexed.
    pub lower_nlink: u64,
    /// Lower names copied up or deleted since.
    pub consumed: u64,
}

impl GroupCount {
    fn parse(v: &[u8]) -> Option<Self> {
        let s = std::str::from_utf8(v).ok()?;
        let (a, b) = s.split_once(' ')?;
        Some(GroupCount {
            lower_nlink: a.parse().ok()?,
            consumed: b.parse().ok()?,
        })
    }

    fn encode(self) -> Vec<u8> {
        format!("{} {}", self.lower_nlink, self.consumed).into_bytes()
    }

    /// The merged link count, given the upper copy's own (which includes the index link).
    pub fn merged_nlink(self, upper_nlink: u64) -> u64 {
        (upper_nlink.saturating_sub(1) + self.lower_nlink).saturating_sub(self.consumed)
    }
}

impl Union {
    /// The index directory, if the union has one.
    fn index_dir(&self) -> Option<(LayerIdx, BorrowedFd<'_>)> {
        let idx = self.layers.index_idx()?;
        Some((idx, self.layers.get(idx).fd()))
    }

    /// True when the group of inode `ino` has an index entry.
    pub(crate) fn group_indexed(&self, ino: u64) -> bool {
        self.index_dir()
            .is_some_and(|(_, dir)| sys::stat_child(dir, OsStr::new(&index_name(ino))).is_ok())
    }

    /// Reads the group count stored on `name` in `dir`.
    pub(crate) fn group_count(&self, dir: BorrowedFd<'_>, name: &OsStr) -> Option<GroupCount> {
        let v = xattr::get(Target::Child(dir, name), self.cfg.nlink_xattr()).ok()??;
        GroupCount::parse(&v)
    }

    fn write_group_count(
        &self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        count: GroupCount,
    ) -> SysResult<()> {
        xattr::set(
            Target::Child(dir, name),
            OsStr::new(self.cfg.nlink_xattr()),
            &count.encode(),
            0,
        )
    }

    /// Adds `n` consumed lower names to the group of inode `ino`.
    pub(crate) fn consume_group_names(&self, ino: u64, n: u64) -> SysResult<()> {
        let (_, dir) = self.index_dir().ok_or(Errno::EIO)?;
        let name = index_name(ino);
        let name = OsStr::new(&name);
        let mut count = self.group_count(dir, name).ok_or(Errno::EIO)?;
        count.consumed += n;
        self.write_group_count(dir, name, count)
    }

    /// Records a staged copy of a lower group member as the group's index entry.
    pub(crate) fn index_staged_copy(
        &self,
        work: BorrowedFd<'_>,
        tmp: &OsStr,
        ino: u64,
        lower_nlink: u64,
        consumed: u64,
    ) -> SysResult<()> {
        let (_, dir) = self.index_dir().ok_or(Errno::EIO)?;
        let name = index_name(ino);
        self.write_group_count(
            work,
            tmp,
            GroupCount {
                lower_nlink,
                consumed,
            },
        )?;
        match nix::unistd::unlinkat(dir, name.as_str(), UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
        nix::unistd::linkat(work, tmp, dir, name.as_str(), AtFlags::empty())
    }

    /// Links the group's index entry to `dest_name` in the upper directory `dest_dir`:
    /// the copy-up of a further name of an indexed group.
    pub(crate) fn link_from_index(
        &self,
        node: &Node,
        dest_dir: BorrowedFd<'_>,
        dest_name: &OsStr,
    ) -> SysResult<()> {
        let (_, dir) = self.index_dir().ok_or(Errno::EIO)?;
        let name = index_name(node.ino());
        nix::unistd::linkat(dir, name.as_str(), dest_dir, dest_name, AtFlags::empty())?;
        self.consume_group_names(node.ino(), 1)
    }

    /// A lower-only name of a hard-link group is being deleted: make sure the group has
    /// an index entry (so its other names keep one identity and a right link count) and
    /// count the name as gone.
    pub(crate) fn group_name_deleted(
        &self,
        layer: LayerIdx,
        path: &Path,
        ino: u64,
    ) -> SysResult<()> {
        if !self.group_indexed(ino) {
            let (src_dir, src_name) = self.open_parent(layer, path)?;
            let st = sys::stat_child(src_dir.as_fd(), &src_name)?;
            let work = self.work()?;
            let tmp = work.temp_name();
            let result = (|| {
                self.stage_copy(
                    work.fd(),
                    &tmp,
                    src_dir.as_fd(),
                    &src_name,
                    &st,
                    super::copyup::Data::Full,
                )?;
                let origin = ino.to_le_bytes();
                xattr::set(
                    Target::Child(work.fd(), &tmp),
                    OsStr::new(self.cfg.origin_xattr()),
                    &origin,
                    0,
                )?;
                self.index_staged_copy(work.fd(), &tmp, ino, st.st_nlink, 0)
            })();
            let _ = work.remove(&tmp);
            result?;
            if let Some(node) = self.nodes.get(ino) {
                let mut s = node.state_mut();
                if !s.upper {
                    s.indexed = true;
                }
            }
        }
        self.consume_group_names(ino, 1)
    }

    /// The merged link count of a regular file whose top copy is `dir/name` with `nlink`
    /// links, when it belongs to an indexed group.
    pub(crate) fn group_nlink(&self, dir: BorrowedFd<'_>, name: &OsStr, nlink: u64) -> Option<u64> {
        Some(self.group_count(dir, name)?.merged_nlink(nlink))
    }
}
