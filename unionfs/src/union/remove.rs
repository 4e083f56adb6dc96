//! Removing names: `unlink` and `rmdir`, leaving whiteouts where lower layers still hold
//! the name.
//!
//! `rmdir` counts the merged view, not the upper directory, so a directory whose lower
//! contents are all deleted is empty even though its upper copy is full of whiteouts.
//! Replacing an upper entry by a whiteout is one atomic step (staged in the work
//! directory, then swapped in), so a crash can never make deleted lower files reappear.

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::{OFlag, RenameFlags};
use nix::unistd::UnlinkatFlags;

use super::Union;
use super::dirindex::{DirIndex, MergedEntry};
use super::node::{Node, NodeId};
use crate::layer::LayerIdx;
use crate::sys::SysResult;
use crate::whiteout::{self, WhiteoutFormat};

impl Union {
    /// Removes a non-directory.
    pub fn unlink(&self, parent: NodeId, name: &OsStr) -> SysResult<()> {
        self.remove(parent, name, false)
    }

    /// Removes an empty (in the merged view) directory.
    pub fn rmdir(&self, parent: NodeId, name: &OsStr) -> SysResult<()> {
        self.remove(parent, name, true)
    }

    fn remove(&self, parent: NodeId, name: &OsStr, dir: bool) -> SysResult<()> {
        let upper = self.upper_idx()?;
        let pnode = self.node(parent)?;
        let entry = {
            let guard = self.index(&pnode)?;
            guard
                .as_ref()
                .ok_or(Errno::EIO)?
                .entries
                .get(name)
                .ok_or(Errno::ENOENT)?
        };
        match (dir, entry.kind == libc::S_IFDIR) {
            (true, false) => return Err(Errno::ENOTDIR),
            (false, true) => return Err(Errno::EISDIR),
            _ => {}
        }
        if dir {
            self.check_empty(&pnode, name, &entry)?;
        }
        self.copy_up(&pnode, super::copyup::Data::Full)?;
        self.lower_name_going(&pnode, name, &entry)?;
        let mut guard = self.index_mut(&pnode)?;
        let index = guard.as_mut().ok_or(Errno::EIO)?;
        let entry = index.entries.get(name).ok_or(Errno::ENOENT)?;
        let ppath = self.path_of(&pnode);
        let pfd = self.open_in(upper, &ppath, OFlag::O_PATH | OFlag::O_DIRECTORY)?;
        let needs_whiteout = entry.has_lower() || index.whited.contains(name);
        let going = self.mark_going(&pnode, name);
        self.remove_upper_entry(pfd.as_fd(), name, &entry, needs_whiteout)?;
        going.done();
        index.entries.remove(name);
        if needs_whiteout {
            index.whited.insert(name.to_os_string());
            index.upper_whiteouts.insert(name.to_os_string());
        }
        drop(guard);
        self.unbind_name(&pnode, name);
        Ok(())
    }

    /// Makes `parent/name` the name a node's location state describes (for a hard-link
    /// group: which name is in upper, below, or reached through the index).
    pub(crate) fn retarget(
        &self,
        node: &Node,
        st: &mut super::node::NodeState,
        parent: NodeId,
        name: std::ffi::OsString,
    ) {
        let found = self.nodes.get(parent).and_then(|p| {
            let lower_path = p.read_state().child_lower_path(&name, false);
            let (upper, top_lower) = self.entry_without_locking(&p, &name)?;
            Some((upper, top_lower, lower_path))
        });
        st.rename(parent, &name);
        st.prebuilt = None;
        if let Some((upper, top_lower, lower_path)) = found {
            st.upper = upper;
            if !node.is_dir() {
                st.lower = top_lower;
                st.set_lower_path(lower_path);
            }
            st.metacopy &= upper;
            st.indexed = match (upper, st.lower) {
                (false, Some(layer)) if node.kind() == libc::S_IFREG => self
                    .group_of(layer, &st.lower_path())
                    .filter(|g| self.group_indexed(g))
                    .map(Into::into),
                _ => None,
            };
        }
    }

    /// Where `dir/name` lives (in upper; its topmost lower layer), read without waiting
    /// for the directory: from its index when that is free, else from a fresh build. The
    /// caller holds a node's state, and whoever holds the directory's index may be
    /// waiting for that very state.
    fn entry_without_locking(&self, dir: &Node, name: &OsStr) -> Option<(bool, Option<LayerIdx>)> {
        let found = |index: &DirIndex| index.entries.get(name).map(|e| (e.upper, e.top_lower));
        if let Ok(guard) = dir.dir_part().index.try_read()
            && let Some(index) = guard.as_ref()
        {
            return found(index);
        }
        found(&self.build_index(dir).ok()?)
    }

    /// Makes `parent/name` (one of the node's names) the one its state describes, so a
    /// rename or copy-up acts on that very name.
    pub(crate) fn focus_name(&self, node: &Node, parent: NodeId, name: &OsStr) {
        let mut st = node.state_mut();
        if st.parent() == parent && st.name() == name {
            return;
        }
        let Some(pos) = st
            .aliases
            .iter()
            .position(|(p, n)| *p == parent && n == name)
        else {
            return;
        };
        let (p, n) = st.aliases.remove(pos);
        let old = (st.parent(), st.name().to_os_string());
        self.retarget(node, &mut st, p, n);
        st.aliases.push(old);
    }

    /// Marks the node of `parent/name` unlinked *before* that name leaves the upper
    /// layer, when it is the node's only name. The upper filesystem may hand the freed
    /// inode number to a file created meanwhile in another directory; [`NodeTable::bind`]
    /// must then find the old node dead and start a new generation, not take the new
    /// file for a hard link of the old one (the kernel would give both one inode and
    /// one page cache). Dropping the mark without [`Going::done`] undoes it.
    ///
    /// [`NodeTable::bind`]: super::node::NodeTable::bind
    pub(crate) fn mark_going(&self, pnode: &Node, name: &OsStr) -> Going {
        let Some(node) = self.nodes.existing_child(pnode, name) else {
            return Going(None);
        };
        let mut st = node.state_mut();
        if st.parent() != pnode.id || st.name() != name || !st.aliases.is_empty() || st.unlinked {
            return Going(None);
        }
        st.unlinked = true;
        drop(st);
        Going(Some(node))
    }

    /// A name of a node is gone: another name (hard link) takes over, or the node is
    /// marked unlinked (it may still be open).
    pub(crate) fn unbind_name(&self, pnode: &Node, name: &OsStr) {
        let Some(id) = self.nodes.detach_child(pnode, name) else {
            return;
        };
        let Some(node) = self.nodes.get(id) else {
            return;
        };
        let mut st = node.state_mut();
        if st.parent() == pnode.id && st.name() == name {
            if st.aliases.is_empty() {
                st.unlinked = true;
            } else {
                let (p, n) = st.aliases.remove(0);
                self.retarget(&node, &mut st, p, n);
            }
        } else {
            st.aliases.retain(|(p, n)| !(*p == pnode.id && n == name));
        }
    }

    /// A merged name is about to go (unlink, or replaced by a rename): when it is a
    /// lower-only name of a hard-link group, the group's other names must learn of it.
    pub(crate) fn lower_name_going(
        &self,
        pnode: &Node,
        name: &OsStr,
        entry: &MergedEntry,
    ) -> SysResult<()> {
        if entry.upper || entry.kind != libc::S_IFREG || self.layers.index_idx().is_none() {
            return Ok(());
        }
        let Some(layer) = entry.top_lower else {
            return Ok(());
        };
        let path = pnode.read_state().lower_path().join(name);
        let st = self.stat_in(layer, &path)?;
        if st.st_nlink > 1 {
            self.group_name_deleted(layer, &path)?;
        }
        Ok(())
    }

    /// Fails with `ENOTEMPTY` unless the merged directory `parent/name` has no entries.
    fn check_empty(&self, pnode: &Node, name: &OsStr, entry: &MergedEntry) -> SysResult<()> {
        let (child, _) = self.node_for_entry(pnode, name, entry)?;
        let result = self.ensure_empty_dir(&child);
        self.nodes.forget(child.id, 1);
        result
    }

    /// Fails with `ENOTEMPTY` unless the merged directory `dir` has no entries: whiteouts
    /// and lower entries they hide do not count, as for overlayfs.
    pub(crate) fn ensure_empty_dir(&self, dir: &Node) -> SysResult<()> {
        let guard = self.index(dir)?;
        if guard.as_ref().ok_or(Errno::EIO)?.entries.is_empty() {
            Ok(())
        } else {
            Err(Errno::ENOTEMPTY)
        }
    }

    /// Takes `name` out of the upper directory `pdir`, leaving a whiteout when asked.
    fn remove_upper_entry(
        &self,
        pdir: BorrowedFd<'_>,
        name: &OsStr,
        entry: &MergedEntry,
        needs_whiteout: bool,
    ) -> SysResult<()> {
        let work = self.work()?;
        let is_dir = entry.kind == libc::S_IFDIR;
        match (entry.upper, needs_whiteout, self.cfg.whiteout) {
            (false, false, _) => Ok(()),
            (false, true, format) => whiteout::create_whiteout_at(pdir, name, format),
            (true, false, _) => {
                if is_dir {
                    // The upper copy may still hold whiteouts: move it aside whole, then
                    // delete it at leisure.
                    let tmp = work.temp_name();
                    nix::fcntl::renameat(pdir, name, work.fd(), tmp.as_os_str())?;
                    work.remove(&tmp)
                } else {
                    nix::unistd::unlinkat(pdir, name, UnlinkatFlags::NoRemoveDir)
                }
            }
            (true, true, WhiteoutFormat::Kernel) => {
                let tmp = work.temp_name();
                whiteout::create_whiteout_at(work.fd(), &tmp, WhiteoutFormat::Kernel)?;
                if is_dir {
                    if let Err(e) = nix::fcntl::renameat2(
                        work.fd(),
                        tmp.as_os_str(),
                        pdir,
                        name,
                        RenameFlags::RENAME_EXCHANGE,
                    ) {
                        let _ = work.remove(&tmp);
                        return Err(e);
                    }
                    work.remove(&tmp)
                } else {
                    nix::fcntl::renameat(work.fd(), tmp.as_os_str(), pdir, name).inspect_err(|_| {
                        let _ = work.remove(&tmp);
                    })
                }
            }
            (true, true, WhiteoutFormat::Oci) => {
                whiteout::create_whiteout_at(pdir, name, WhiteoutFormat::Oci)?;
                if is_dir {
                    let tmp = work.temp_name();
                    nix::fcntl::renameat(pdir, name, work.fd(), tmp.as_os_str())?;
                    work.remove(&tmp)
                } else {
                    nix::unistd::unlinkat(pdir, name, UnlinkatFlags::NoRemoveDir)
                }
            }
        }
    }
}

/// A node marked unlinked ahead of its removal (see [`Union::mark_going`]): the mark
/// is taken back on drop unless the removal went through.
#[must_use]
pub(crate) struct Going(Option<Arc<Node>>);

impl Going {
    /// The name is gone from the upper layer: the mark stays.
    pub(crate) fn done(mut self) {
        self.0 = None;
    }
}

impl Drop for Going {
    fn drop(&mut self) {
        if let Some(node) = self.0.take() {
            node.state_mut().unlinked = false;
        }
    }
}

#[cfg(test)]
#[path = "remove_tests.rs"]
mod tests;
