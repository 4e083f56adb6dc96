//! Lower hard-link groups: one file, however many names, also after copy-up — in kernel
//! overlayfs' `index=on` format, so the kernel reads the result the same way.
//!
//! Copying up one name of a lower hard-link group also links the copy into the work
//! directory's `index/`, under the hex of the lower file's origin handle. Every other
//! name of the group then reads that copy, and copying it up only links the index entry.
//! The merged link count is kept in `overlay.nlink` as "U±N": the upper copy's own link
//! count (which includes the index link) plus N.

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::unistd::UnlinkatFlags;

use super::Union;
use crate::layer::LayerIdx;
use crate::sys::handle;
use crate::sys::xattr::{self, Target};
use crate::sys::{self, SysResult};

/// `overlay.nlink`: "U±N" (relative to the upper inode) or "L±N" (to the lower one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NlinkRecord {
    Upper(i64),
    Lower(i64),
}

impl NlinkRecord {
    fn parse(v: &[u8]) -> Option<Self> {
        let s = std::str::from_utf8(v).ok()?;
        let n: i64 = s.get(1..)?.parse().ok()?;
        match s.as_bytes().first()? {
            b'U' => Some(NlinkRecord::Upper(n)),
            b'L' => Some(NlinkRecord::Lower(n)),
            _ => None,
        }
    }
}

impl Union {
    /// The index directory (pseudo-layer), if the union has one.
    fn index_dir(&self) -> Option<(LayerIdx, BorrowedFd<'_>)> {
        let idx = self.layers.index_idx()?;
        Some((idx, self.layers.get(idx).fd()))
    }

    /// The origin handle of the entry `path` of `layer`, in overlayfs' format.
    pub(crate) fn origin_of(&self, layer: LayerIdx, path: &Path) -> SysResult<Vec<u8>> {
        let (dir, name) = self.open_parent(layer, path)?;
        handle::origin_of(dir.as_fd(), &name, &self.layers.get(layer).uuid)
    }

    /// The index entry name of the hard-link group a lower file belongs to.
    pub(crate) fn group_of(&self, layer: LayerIdx, path: &Path) -> Option<String> {
        self.origin_of(layer, path).ok().map(|fb| handle::hex(&fb))
    }

    /// True when `group` has an index entry.
    pub(crate) fn group_indexed(&self, group: &str) -> bool {
        self.index_dir()
            .is_some_and(|(_, dir)| sys::stat_child(dir, OsStr::new(group)).is_ok())
    }

    fn write_nlink(&self, target: Target<'_>, adjust: i64) -> SysResult<()> {
        let value = format!("U{adjust:+}");
        xattr::set(
            target,
            OsStr::new(self.cfg.nlink_xattr()),
            value.as_bytes(),
            0,
        )
    }

    /// One lower name of `group` no longer counts below (copied up by linking, or deleted).
    fn consume(&self, group: &str) -> SysResult<()> {
        let (_, dir) = self.index_dir().ok_or(Errno::EIO)?;
        let target = Target::Child(dir, OsStr::new(group));
        let st = sys::stat_child(dir, OsStr::new(group))?;
        let merged = self
            .group_nlink(dir, OsStr::new(group), st.st_nlink)
            .ok_or(Errno::EIO)?;
        self.write_nlink(target, merged as i64 - 1 - st.st_nlink as i64)
    }

    /// Records a staged copy of a lower group member (`lower_nlink` names below) as the
    /// group's index entry; `placed` says whether the copy will also get a name in upper.
    pub(crate) fn index_staged_copy(
        &self,
        work: BorrowedFd<'_>,
        tmp: &OsStr,
        group: &str,
        lower_nlink: u64,
        placed: bool,
    ) -> SysResult<()> {
        let (_, dir) = self.index_dir().ok_or(Errno::EIO)?;
        // Once in place the copy has the index link (+ its upper name when placed); the
        // group still has all its lower names (less the one being deleted when not placed).
        let upper_links: i64 = if placed { 2 } else { 1 };
        let merged = lower_nlink as i64 - if placed { 0 } else { 1 };
        self.write_nlink(Target::Child(work, tmp), merged - upper_links)?;
        match nix::unistd::unlinkat(dir, group, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
        nix::unistd::linkat(work, tmp, dir, group, AtFlags::empty())
    }

    /// Links the group's index entry to `dest_name` in the upper directory `dest_dir`:
    /// the copy-up of a further name of an indexed group.
    pub(crate) fn link_from_index(
        &self,
        group: &str,
        dest_dir: BorrowedFd<'_>,
        dest_name: &OsStr,
    ) -> SysResult<()> {
        let (_, dir) = self.index_dir().ok_or(Errno::EIO)?;
        // The new upper link and the lost lower name cancel out: adjust first, then link.
        self.consume(group)?;
        nix::unistd::linkat(dir, group, dest_dir, dest_name, AtFlags::empty())
    }

    /// A lower-only name of a hard-link group is being deleted: make sure the group has
    /// an index entry (so its other names keep one identity and a right link count) and
    /// count the name as gone.
    pub(crate) fn group_name_deleted(&self, layer: LayerIdx, path: &Path) -> SysResult<()> {
        let Some(group) = self.group_of(layer, path) else {
            return Ok(());
        };
        if self.group_indexed(&group) {
            return self.consume(&group);
        }
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
            self.stamp_origin(
                work.fd(),
                &tmp,
                layer,
                path,
                self.layers.map_ino(st.st_dev, st.st_ino),
            )?;
            self.index_staged_copy(work.fd(), &tmp, &group, st.st_nlink, false)
        })();
        let _ = work.remove(&tmp);
        result?;
        let ino = self.layers.map_ino(st.st_dev, st.st_ino);
        if let Some(node) = self.nodes.get(ino) {
            let mut s = node.state_mut();
            if !s.upper {
                s.indexed = Some(group.into());
            }
        }
        Ok(())
    }

    /// Writes the origin record on a staged copy of `layer`'s `path`, so `stat` keeps the
    /// inode number across remounts and the kernel reads the copy as its own would be.
    pub(crate) fn stamp_origin(
        &self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        layer: LayerIdx,
        path: &Path,
        ino: u64,
    ) -> SysResult<()> {
        let target = Target::Child(dir, name);
        // Overlayfs' handle where the lower filesystem gives one (the inode number is read
        // back through it); the bare number only where it can't.
        match self.origin_of(layer, path) {
            Ok(fb) => xattr::set(target, OsStr::new(self.cfg.kernel_origin_xattr()), &fb, 0),
            Err(_) => xattr::set(
                target,
                OsStr::new(self.cfg.origin_xattr()),
                &ino.to_le_bytes(),
                0,
            ),
        }
    }

    /// The merged link count of a regular file whose top copy is `dir/name` with `nlink`
    /// links, when it carries a group record.
    pub(crate) fn group_nlink(&self, dir: BorrowedFd<'_>, name: &OsStr, nlink: u64) -> Option<u64> {
        let target = Target::Child(dir, name);
        let record = NlinkRecord::parse(&xattr::get(target, self.cfg.nlink_xattr()).ok()??)?;
        let n = match record {
            NlinkRecord::Upper(adj) => nlink as i64 + adj,
            NlinkRecord::Lower(adj) => {
                let fb = xattr::get(target, self.cfg.kernel_origin_xattr()).ok()??;
                let uuid = handle::origin_uuid(&fb)?;
                let lower = self
                    .layers
                    .lower_indexes()
                    .filter(|&l| self.layers.get(l).uuid == uuid)
                    .find_map(|l| handle::open_origin(self.layers.get(l).real.as_fd(), &fb).ok())?;
                sys::stat_fd(lower.as_fd()).ok()?.st_nlink as i64 + adj
            }
        };
        (n > 0).then_some(n as u64)
    }
}
