//! Creating names: files, directories, symlinks, device nodes, fifos, sockets, hard links.
//!
//! A new entry always goes to the upper layer, owned by the caller (with the group of a
//! set-gid parent). Where a whiteout holds the name, the entry is built in the work
//! directory and swapped in atomically; a directory made over a whiteout is opaque, so the
//! deleted lower contents stay deleted.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, RenameFlags};
use nix::sys::stat::{FileStat, Mode, SFlag};
use nix::unistd::{Gid, Uid, UnlinkatFlags};

use super::dirindex::MergedEntry;
use super::lookup::NAME_MAX;
use super::node::{Node, NodeId, NodeState};
use super::{Attr, Caller, Union};
use crate::sys::{self, SysResult, xattr};
use crate::whiteout::{self, WhiteoutFormat};

/// What kind of entry to create.
#[derive(Debug)]
pub enum NewEntry<'a> {
    /// A regular file, opened with `flags`.
    File {
        /// Permission bits.
        mode: u32,
        /// Open flags for the returned descriptor.
        flags: i32,
    },
    /// A directory.
    Dir {
        /// Permission bits.
        mode: u32,
    },
    /// A symbolic link.
    Symlink {
        /// What it points to.
        target: &'a Path,
    },
    /// A device node, fifo, socket or (via mknod) regular file.
    Special {
        /// Type and permission bits.
        mode: u32,
        /// Device number.
        rdev: u64,
    },
}

impl NewEntry<'_> {
    fn kind(&self) -> u32 {
        match self {
            NewEntry::File { .. } => libc::S_IFREG,
            NewEntry::Dir { .. } => libc::S_IFDIR,
            NewEntry::Symlink { .. } => libc::S_IFLNK,
            NewEntry::Special { mode, .. } => sys::file_type(*mode),
        }
    }
}

/// Names the union can not store: its own marker names.
pub(crate) fn check_name(name: &OsStr) -> SysResult<()> {
    if name.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    if name
        .as_bytes()
        .starts_with(whiteout::OCI_WHITEOUT_PREFIX.as_bytes())
    {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

impl Union {
    /// Creates `name` in `parent`; for files also returns the open descriptor.
    pub fn create_entry(
        &self,
        parent: NodeId,
        name: &OsStr,
        spec: NewEntry<'_>,
        caller: Caller,
    ) -> SysResult<(Arc<Node>, Attr, Option<OwnedFd>)> {
        check_name(name)?;
        if let NewEntry::Special { mode, rdev: 0 } = spec
            && sys::file_type(mode) == libc::S_IFCHR
        {
            // A 0/0 character device *is* the whiteout format: stored, it would read back
            // as a deletion. Kernel overlayfs refuses it the same way.
            return Err(Errno::EPERM);
        }
        let upper = self.upper_idx()?;
        let pnode = self.node(parent)?;
        if !pnode.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        self.copy_up(&pnode, super::copyup::Data::Full)?;
        let mut guard = self.index_mut(&pnode)?;
        let index = guard.as_mut().ok_or(Errno::EIO)?;
        if index.entries.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        let ppath = self.path_of(&pnode);
        let pfd = self.open_in(upper, &ppath, OFlag::O_PATH | OFlag::O_DIRECTORY)?;
        let pst = sys::stat_fd(pfd.as_fd())?;
        let gid = if pst.st_mode & libc::S_ISGID != 0 {
            pst.st_gid
        } else {
            caller.gid
        };
        let kernel_wh = self.cfg.whiteout == WhiteoutFormat::Kernel;
        let over_whiteout = index.upper_whiteouts.contains(name);
        let hides_lower = index.whited.contains(name);
        let kind = spec.kind();

        let work = self.work()?;
        let staged = over_whiteout && kernel_wh;
        let (tdir, tname): (BorrowedFd<'_>, OsString) = if staged {
            (work.fd(), work.temp_name())
        } else {
            (pfd.as_fd(), name.to_os_string())
        };
        let umask = if inherits_default_acl(pfd.as_fd())? {
            None
        } else {
            Some(caller.umask)
        };
        let result = self.make_at(
            tdir,
            &tname,
            &spec,
            Owner {
                uid: caller.uid,
                gid,
            },
            umask,
            pst.st_mode & libc::S_ISGID != 0,
        );
        let (fd, made) = match result {
            Ok(made) => made,
            Err(e) => {
                if staged {
                    let _ = work.remove(&tname);
                }
                return Err(e);
            }
        };
        let finish = (|| -> SysResult<()> {
            if kind == libc::S_IFDIR && hides_lower {
                let dfd = sys::open_child(tdir, &tname, OFlag::O_RDONLY | OFlag::O_DIRECTORY, 0)?;
                whiteout::mark_opaque_fd(dfd.as_fd(), self.cfg.whiteout)?;
            }
            if staged {
                if kind == libc::S_IFDIR {
                    nix::fcntl::renameat2(
                        work.fd(),
                        tname.as_os_str(),
                        pfd.as_fd(),
                        name,
                        RenameFlags::RENAME_EXCHANGE,
                    )?;
                    let _ = work.remove(&tname);
                } else {
                    nix::fcntl::renameat(work.fd(), tname.as_os_str(), pfd.as_fd(), name)?;
                }
            } else if over_whiteout {
                let wh = whiteout::whiteout_name(name, self.cfg.whiteout);
                match nix::unistd::unlinkat(pfd.as_fd(), wh.as_os_str(), UnlinkatFlags::NoRemoveDir)
                {
                    Ok(()) | Err(Errno::ENOENT) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        })();
        if let Err(e) = finish {
            if staged {
                let _ = work.remove(&tname);
            } else {
                let _ = crate::union::workdir::remove_tree_at(pfd.as_fd(), name);
            }
            return Err(e);
        }
        // Marking a directory opaque or moving the entry in changes its ctime.
        let st = if staged || (kind == libc::S_IFDIR && hides_lower) {
            sys::stat_child(pfd.as_fd(), name)?
        } else {
            made
        };
        index.upper_whiteouts.remove(name);
        let mut entry = MergedEntry::upper_only(kind, st.st_ino, upper);
        if hides_lower {
            entry.top_lower = self.layers.lower_indexes().next();
        }
        index.entries.insert(name, entry);
        let ino = self.layers.map_ino(st.st_dev, st.st_ino);
        let (node, attr) = self.bind_upper(&pnode, name, kind, ino, &st);
        Ok((node, attr, fd))
    }

    /// Binds `parent/name`, just made in the upper layer, to its node (a new one, or the
    /// file's own for a hard link) and gives its attributes.
    fn bind_upper(
        &self,
        parent: &Node,
        name: &OsStr,
        kind: u32,
        ino: u64,
        st: &FileStat,
    ) -> (Arc<Node>, Attr) {
        let lower_path = parent
            .read_state()
            .child_lower_path(name, kind == libc::S_IFDIR);
        let node = self.nodes.bind(parent, name, kind, ino, || {
            let mut state = NodeState::new(parent.id, name, lower_path);
            state.upper = true;
            state
        });
        let attr = self.attr_of(&node, &node.snapshot(), st);
        (node, attr)
    }

    /// Makes the entry itself, owned by `owner`, with its final mode; returns its
    /// descriptor (files) and its stat. `umask` is the caller's, or `None` when the
    /// directory's default ACL decides the permissions (the upper filesystem applies it).
    fn make_at(
        &self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        spec: &NewEntry<'_>,
        owner: Owner,
        umask: Option<u32>,
        parent_sgid: bool,
    ) -> SysResult<(Option<OwnedFd>, FileStat)> {
        let Owner { uid, gid } = owner;
        let masked = |mode: u32| mode & !umask.unwrap_or(0);
        let (fd, mode) = match spec {
            NewEntry::File { mode, flags } => {
                let keep = super::files::backing_open_flags(*flags);
                let fd = sys::open_child(
                    dir,
                    name,
                    OFlag::from_bits_truncate(keep) | OFlag::O_CREAT | OFlag::O_EXCL,
                    masked(*mode) & 0o7777,
                )?;
                (Some(fd), Some(masked(*mode)))
            }
            NewEntry::Dir { mode } => {
                let mode = masked(*mode);
                nix::sys::stat::mkdirat(dir, name, Mode::from_bits_truncate(mode & 0o7777))?;
                let mut m = mode & 0o7777;
                if parent_sgid {
                    m |= libc::S_ISGID;
                }
                (None, Some(m))
            }
            NewEntry::Symlink { target } => {
                nix::unistd::symlinkat(*target, dir, name)?;
                (None, None)
            }
            NewEntry::Special { mode, rdev } => {
                let sflag = SFlag::from_bits_truncate(sys::file_type(*mode));
                nix::sys::stat::mknodat(
                    dir,
                    name,
                    sflag,
                    Mode::from_bits_truncate(masked(*mode) & 0o7777),
                    *rdev,
                )?;
                (None, Some(masked(*mode)))
            }
        };
        // Under a default ACL the filesystem computed the mode from the ACL: that is final.
        let mode = mode.filter(|_| umask.is_some());
        // The new entry belongs to the daemon and has its umask applied; fix what differs
        // from what the caller gets. Usually nothing does (a root caller, a umask that
        // only clears bits the mode lacks), and then the stat is all it costs.
        let st = match &fd {
            Some(fd) => sys::stat_fd(fd.as_fd())?,
            None => sys::stat_child(dir, name)?,
        };
        let mut changed = false;
        if st.st_uid != uid || st.st_gid != gid {
            nix::unistd::fchownat(
                dir,
                name,
                Some(Uid::from_raw(uid)),
                Some(Gid::from_raw(gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )?;
            changed = true;
        }
        // A chown clears set-id bits, so the mode is checked against what it left.
        if let Some(mode) = mode
            && (changed || st.st_mode & 0o7777 != mode & 0o7777)
        {
            let mode = Mode::from_bits_truncate(mode & 0o7777);
            match &fd {
                Some(fd) => nix::sys::stat::fchmod(fd.as_fd(), mode)?,
                None => nix::sys::stat::fchmodat(
                    dir,
                    name,
                    mode,
                    nix::sys::stat::FchmodatFlags::FollowSymlink,
                )?,
            }
            changed = true;
        }
        let st = if changed {
            match &fd {
                Some(fd) => sys::stat_fd(fd.as_fd())?,
                None => sys::stat_child(dir, name)?,
            }
        } else {
            st
        };
        Ok((fd, st))
    }

    /// Makes `newname` in `newparent` another name of `id` (copying it up first).
    pub fn link(
        &self,
        id: NodeId,
        newparent: NodeId,
        newname: &OsStr,
    ) -> SysResult<(Arc<Node>, Attr)> {
        check_name(newname)?;
        let upper = self.upper_idx()?;
        let src = self.node(id)?;
        if src.is_dir() {
            return Err(Errno::EPERM);
        }
        self.copy_up(&src, super::copyup::Data::Full)?;
        let pnode = self.node(newparent)?;
        self.copy_up(&pnode, super::copyup::Data::Full)?;
        let src_path = self.path_of(&src);
        let (sdir, sname) = self.open_parent(upper, &src_path)?;
        let mut guard = self.index_mut(&pnode)?;
        let index = guard.as_mut().ok_or(Errno::EIO)?;
        if index.entries.contains_key(newname) {
            return Err(Errno::EEXIST);
        }
        let ppath = self.path_of(&pnode);
        let pfd = self.open_in(upper, &ppath, OFlag::O_PATH | OFlag::O_DIRECTORY)?;
        let over_whiteout = index.upper_whiteouts.contains(newname);
        if over_whiteout && self.cfg.whiteout == WhiteoutFormat::Kernel {
            let work = self.work()?;
            let tmp = work.temp_name();
            nix::unistd::linkat(
                sdir.as_fd(),
                sname.as_os_str(),
                work.fd(),
                tmp.as_os_str(),
                AtFlags::empty(),
            )?;
            if let Err(e) = nix::fcntl::renameat(work.fd(), tmp.as_os_str(), pfd.as_fd(), newname) {
                let _ = work.remove(&tmp);
                return Err(e);
            }
        } else {
            nix::unistd::linkat(
                sdir.as_fd(),
                sname.as_os_str(),
                pfd.as_fd(),
                newname,
                AtFlags::empty(),
            )?;
            if over_whiteout {
                let wh = whiteout::whiteout_name(newname, self.cfg.whiteout);
                let _ =
                    nix::unistd::unlinkat(pfd.as_fd(), wh.as_os_str(), UnlinkatFlags::NoRemoveDir);
            }
        }
        self.mark_impure(&ppath);
        index.impure = true;
        let st = sys::stat_child(pfd.as_fd(), newname)?;
        index.upper_whiteouts.remove(newname);
        let mut entry = MergedEntry::upper_only(src.kind(), st.st_ino, upper);
        if index.whited.contains(newname) {
            entry.top_lower = self.layers.lower_indexes().next();
        }
        index.entries.insert(newname, entry);
        let ino = self.nodes.ino(&src);
        Ok(self.bind_upper(&pnode, newname, src.kind(), ino, &st))
    }
}

/// Who a new entry belongs to.
#[derive(Clone, Copy, Debug)]
struct Owner {
    uid: u32,
    gid: u32,
}

/// Whether directory `dir` has a default ACL, which new entries inherit instead of
/// having the caller's umask applied.
fn inherits_default_acl(dir: BorrowedFd<'_>) -> SysResult<bool> {
    let target = xattr::Target::Child(dir, OsStr::new("."));
    Ok(xattr::get(target, "system.posix_acl_default")?.is_some())
}
