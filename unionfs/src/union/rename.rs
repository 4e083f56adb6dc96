//! Rename, of files and of directories, including directories with lower contents.
//!
//! A renamed directory keeps its lower contents by carrying a redirect xattr (the kernel's
//! `redirect_dir` format) naming where they are, so `mv` of a lower directory works and
//! survives a remount instead of failing with `EXDEV`. The source name is replaced by a
//! whiteout in the same atomic `renameat2(RENAME_WHITEOUT)` where the filesystem allows.

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::fcntl::{OFlag, RenameFlags};
use nix::unistd::UnlinkatFlags;

use super::Union;
use super::copyup::Data;
use super::dirindex::{DirIndex, MergedEntry};
use super::node::{Node, NodeId};
use crate::layer::LayerIdx;
use crate::sys::xattr::{self, Target};
use crate::sys::{self, SysResult};
use crate::whiteout::{self, WhiteoutFormat};

/// `RENAME_NOREPLACE`, as the kernel passes it.
pub const RENAME_NOREPLACE: u32 = libc::RENAME_NOREPLACE;
/// `RENAME_EXCHANGE`, as the kernel passes it.
pub const RENAME_EXCHANGE: u32 = libc::RENAME_EXCHANGE;

impl Union {
    /// Renames `parent/name` to `newparent/newname` with `flags` as `renameat2(2)` takes.
    pub fn rename(
        &self,
        parent: NodeId,
        name: &OsStr,
        newparent: NodeId,
        newname: &OsStr,
        flags: u32,
    ) -> SysResult<()> {
        super::create::check_name(newname)?;
        if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE) != 0 {
            return Err(Errno::EINVAL);
        }
        let exchange = flags & RENAME_EXCHANGE != 0;
        let noreplace = flags & RENAME_NOREPLACE != 0;
        let upper = self.upper_idx()?;
        let sp = self.node(parent)?;
        let dp = self.node(newparent)?;
        if parent == newparent && name == newname {
            return Ok(());
        }

        // Copy-ups first, with no directory locked (copy-up updates the parents' indexes).
        let src_entry = self.entry_of(&sp, name)?.ok_or(Errno::ENOENT)?;
        let (src, _) = self.node_for_entry(&sp, name, &src_entry)?;
        let dst_entry = self.entry_of(&dp, newname)?;
        let dst = match &dst_entry {
            Some(e) => Some(self.node_for_entry(&dp, newname, e)?.0),
            None => None,
        };
        self.focus_name(&src, parent, name);
        if let Some(d) = &dst {
            self.focus_name(d, newparent, newname);
        }
        let result = (|| {
            if noreplace && dst_entry.is_some() {
                return Err(Errno::EEXIST);
            }
            if exchange && dst_entry.is_none() {
                return Err(Errno::ENOENT);
            }
            if let (Some(d), false) = (&dst_entry, exchange) {
                match (src.is_dir(), d.kind == libc::S_IFDIR) {
                    (true, false) => return Err(Errno::ENOTDIR),
                    (false, true) => return Err(Errno::EISDIR),
                    (true, true) => self.ensure_empty_dir(dst.as_ref().ok_or(Errno::EIO)?)?,
                    (false, false) => {}
                }
            }
            self.copy_up(&src, Data::Full)?;
            self.copy_up(&dp, Data::Full)?;
            if !exchange && let Some(d) = &dst_entry {
                self.lower_name_going(&dp, newname, d)?;
            }
            if exchange && let Some(d) = &dst {
                self.copy_up(d, Data::Full)?;
            }
            self.rename_locked(
                &sp,
                name,
                &dp,
                newname,
                &src,
                dst.as_deref(),
                exchange,
                upper,
            )
        })();
        self.nodes.forget(src.id, 1);
        if let Some(d) = &dst {
            self.nodes.forget(d.id, 1);
        }
        result
    }

    fn entry_of(&self, dir: &Node, name: &OsStr) -> SysResult<Option<MergedEntry>> {
        let guard = self.index(dir)?;
        Ok(guard.as_ref().ok_or(Errno::EIO)?.entries.get(name))
    }

    /// Writes the redirect that keeps a moved directory's lower contents, if it has any.
    fn set_redirect(&self, dir: &Node, at: BorrowedFd<'_>, name: &OsStr) -> SysResult<()> {
        let state = dir.snapshot();
        if state.lower_dirs.is_empty() {
            return Ok(());
        }
        let mut value = b"/".to_vec();
        value.extend_from_slice(state.lower_path().as_os_str().as_bytes());
        xattr::set(
            Target::Child(at, name),
            OsStr::new(self.cfg.redirect_xattr()),
            &value,
            0,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn rename_locked(
        &self,
        sp: &Node,
        name: &OsStr,
        dp: &Node,
        newname: &OsStr,
        src: &Node,
        dst: Option<&Node>,
        exchange: bool,
        upper: LayerIdx,
    ) -> SysResult<()> {
        // Lock the two directories' indexes in node-id order.
        let same = sp.id == dp.id;
        let (first, second) = if sp.id <= dp.id { (sp, dp) } else { (dp, sp) };
        let mut g1 = self.index_mut(first)?;
        let mut g2 = if same {
            None
        } else {
            Some(self.index_mut(second)?)
        };
        let (sidx, didx) = match (&mut g2, sp.id <= dp.id) {
            (None, _) => {
                let i: *mut DirIndex = &mut **g1.as_mut().ok_or(Errno::EIO)?;
                (i, i)
            }
            (Some(g2), true) => (
                &mut **g1.as_mut().ok_or(Errno::EIO)? as *mut DirIndex,
                &mut **g2.as_mut().ok_or(Errno::EIO)? as *mut DirIndex,
            ),
            (Some(g2), false) => (
                &mut **g2.as_mut().ok_or(Errno::EIO)? as *mut DirIndex,
                &mut **g1.as_mut().ok_or(Errno::EIO)? as *mut DirIndex,
            ),
        };
        // SAFETY: both pointers come from write guards held until the end of this
        // function; when the directories are the same they alias the one index, and every
        // use below goes through one of them at a time.
        let (sidx, didx) = unsafe { (&mut *sidx, &mut *didx) };
        let src_entry = sidx.entries.get(name).ok_or(Errno::ENOENT)?;
        let dst_entry = didx.entries.get(newname);

        let sfd = self.open_in(upper, &self.path_of(sp), OFlag::O_PATH | OFlag::O_DIRECTORY)?;
        let dfd = self.open_in(upper, &self.path_of(dp), OFlag::O_PATH | OFlag::O_DIRECTORY)?;
        let work = self.work()?;
        let kernel = self.cfg.whiteout == WhiteoutFormat::Kernel;

        if exchange {
            let dst = dst.ok_or(Errno::ENOENT)?;
            let dst_entry = dst_entry.ok_or(Errno::ENOENT)?;
            if src.is_dir() {
                self.set_redirect(src, sfd.as_fd(), name)?;
            }
            if dst.is_dir() {
                self.set_redirect(dst, dfd.as_fd(), newname)?;
            }
            nix::fcntl::renameat2(
                sfd.as_fd(),
                name,
                dfd.as_fd(),
                newname,
                RenameFlags::RENAME_EXCHANGE,
            )?;
            let mut s_new = dst_entry.clone();
            let mut d_new = src_entry.clone();
            s_new.top_lower = src_entry.top_lower;
            d_new.top_lower = dst_entry.top_lower;
            s_new.upper = true;
            d_new.upper = true;
            sidx.entries.insert(name, s_new);
            didx.entries.insert(newname, d_new);
            drop(g2);
            drop(g1);
            self.move_node(src, (sp, name), dp, newname);
            self.move_node(dst, (dp, newname), sp, name);
            self.mark_impure(&self.path_of(sp));
            self.mark_impure(&self.path_of(dp));
            return Ok(());
        }

        let src_needs_wh = src_entry.has_lower() || sidx.whited.contains(name);
        let dst_hides_lower =
            dst_entry.as_ref().is_some_and(|e| e.has_lower()) || didx.whited.contains(newname);
        let dst_is_wh = didx.upper_whiteouts.contains(newname);
        // The replaced name's inode number may be freed and reused from here on.
        let going = dst.map(|_| self.mark_going(dp, newname));
        // An upper directory in the way (empty in the merged view, maybe full of
        // whiteouts) is moved aside first.
        if let Some(d) = &dst_entry
            && d.upper
            && d.kind == libc::S_IFDIR
        {
            let tmp = work.temp_name();
            nix::fcntl::renameat(dfd.as_fd(), newname, work.fd(), tmp.as_os_str())?;
            work.remove(&tmp)?;
        }
        if src.is_dir() {
            let state = src.snapshot();
            if !state.lower_dirs.is_empty() {
                self.set_redirect(src, sfd.as_fd(), name)?;
            } else if dst_hides_lower {
                let fd = sys::open_beneath(
                    sfd.as_fd(),
                    std::path::Path::new(name),
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY,
                )?;
                whiteout::mark_opaque_fd(fd.as_fd(), self.cfg.whiteout)?;
            }
        }
        if kernel {
            if src.is_dir() && dst_is_wh {
                nix::fcntl::renameat2(
                    sfd.as_fd(),
                    name,
                    dfd.as_fd(),
                    newname,
                    RenameFlags::RENAME_EXCHANGE,
                )?;
                if !src_needs_wh {
                    nix::unistd::unlinkat(sfd.as_fd(), name, UnlinkatFlags::NoRemoveDir)?;
                }
            } else if src_needs_wh {
                match nix::fcntl::renameat2(
                    sfd.as_fd(),
                    name,
                    dfd.as_fd(),
                    newname,
                    RenameFlags::RENAME_WHITEOUT,
                ) {
                    Ok(()) => {}
                    Err(Errno::EINVAL) | Err(Errno::EOPNOTSUPP) => {
                        nix::fcntl::renameat(sfd.as_fd(), name, dfd.as_fd(), newname)?;
                        whiteout::create_whiteout_at(sfd.as_fd(), name, WhiteoutFormat::Kernel)?;
                    }
                    Err(e) => return Err(e),
                }
            } else {
                nix::fcntl::renameat(sfd.as_fd(), name, dfd.as_fd(), newname)?;
            }
        } else {
            nix::fcntl::renameat(sfd.as_fd(), name, dfd.as_fd(), newname)?;
            if dst_is_wh {
                let wh = whiteout::whiteout_name(newname, WhiteoutFormat::Oci);
                let _ =
                    nix::unistd::unlinkat(dfd.as_fd(), wh.as_os_str(), UnlinkatFlags::NoRemoveDir);
            }
            if src_needs_wh {
                whiteout::create_whiteout_at(sfd.as_fd(), name, WhiteoutFormat::Oci)?;
            }
        }

        if let Some(going) = going {
            going.done();
        }

        // Indexes.
        sidx.entries.remove(name);
        if src_needs_wh {
            sidx.whited.insert(name.to_os_string());
            sidx.upper_whiteouts.insert(name.to_os_string());
        }
        let mut moved = src_entry.clone();
        moved.upper = true;
        moved.layer = upper;
        moved.top_lower = if dst_hides_lower {
            self.layers.lower_indexes().next()
        } else {
            None
        };
        if src.is_dir() && src.read_state().lower_dirs.is_empty() {
            moved.lower_dirs.clear();
        }
        didx.upper_whiteouts.remove(newname);
        didx.entries.insert(newname, moved);
        didx.impure = true;
        drop(g2);
        drop(g1);

        if dst.is_some() {
            self.unbind_name(dp, newname);
        }
        self.move_node(src, (sp, name), dp, newname);
        self.mark_impure(&self.path_of(dp));
        Ok(())
    }

    /// Points a node at its new name after a rename of its name `old`.
    fn move_node(&self, node: &Node, old: (&Node, &OsStr), newparent: &Node, newname: &OsStr) {
        let (op, old_name) = old;
        if self
            .nodes
            .existing_child(op, old_name)
            .is_some_and(|n| n.id == node.id)
        {
            self.nodes.detach_child(op, old_name);
        }
        {
            let mut s = node.state_mut();
            if s.parent() == op.id && s.name() == old_name {
                s.rename(newparent.id, newname);
            } else if let Some(alias) = s
                .aliases
                .iter_mut()
                .find(|(p, n)| *p == op.id && n == old_name)
            {
                *alias = (newparent.id, newname.to_os_string());
            }
            if !node.is_dir() {
                s.lower = None;
            }
        }
        self.nodes.attach_child(newparent, newname, node.id);
    }
}
