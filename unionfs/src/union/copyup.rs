//! Copy-up: giving a lower entry an upper copy before it is changed.
//!
//! Parents go first (directories with their metadata only); the entry is staged in the
//! work directory — data with its holes, owner, mode, times and every xattr — and moved
//! into the upper layer with one rename. A crash leaves no half-copied file in upper, only
//! a staged leftover that the next mount sweeps away.

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid};

use super::Union;
use super::node::Node;
use crate::sys::xattr::{self, Target};
use crate::sys::{self, SysResult};

/// How much of a regular file's data a copy-up brings along.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Data {
    /// All of it (opened for writing).
    Full,
    /// None: the file is about to be truncated to zero.
    Skip,
    /// Metadata only (chmod, chown, utimens, xattrs): the data stays below until the
    /// first write, as overlayfs' `metacopy=on` does.
    Meta,
}

impl Union {
    /// Makes sure `node` has an upper copy, copying its parents up first.
    pub(crate) fn copy_up(&self, node: &Node, data: Data) -> SysResult<()> {
        {
            let st = node.read_state();
            if st.upper && (!st.metacopy || data == Data::Meta) {
                return Ok(());
            }
        }
        let upper = self.upper_idx()?;
        let _guard = node.copy_lock.lock();
        let state = node.snapshot();
        if state.upper {
            if state.metacopy && data != Data::Meta {
                return self.complete_data(node, &state, data);
            }
            return Ok(());
        }
        if state.unlinked {
            return Err(Errno::ENOENT);
        }
        let parent = self.node(state.parent())?;
        self.copy_up(&parent, Data::Full)?;
        let work = self.work()?;
        let dest_path = self.path_of(node);
        let (dest_parent, dest_name) = self.open_parent(upper, &dest_path)?;
        // Adding an entry changes the parent's times; the merged view must not see that.
        let parent_times = sys::stat_fd(dest_parent.as_fd()).ok();
        self.mark_impure(&self.path_of(&parent));

        if let Some(group) = &state.indexed {
            // A further name of an indexed hard-link group: link the one copy.
            self.link_from_index(group, dest_parent.as_fd(), &dest_name)?;
        } else {
            let (src_layer, src_path) = self.top_location(node, &state)?;
            let (src_parent, src_name) = self.open_parent(src_layer, &src_path)?;
            let st = sys::stat_child(src_parent.as_fd(), &src_name)?;
            let group = if node.kind() == libc::S_IFREG
                && st.st_nlink > 1
                && self.layers.index_idx().is_some()
            {
                self.group_of(src_layer, &src_path)
            } else {
                None
            };
            // Only regular files outside hard-link groups defer their data.
            let data = if data == Data::Meta && (node.kind() != libc::S_IFREG || group.is_some()) {
                Data::Full
            } else {
                data
            };
            let tmp = work.temp_name();
            let staged = (|| {
                self.stage_copy(work.fd(), &tmp, src_parent.as_fd(), &src_name, &st, data)?;
                self.stamp_origin(work.fd(), &tmp, src_layer, &src_path, self.nodes.ino(node))?;
                if let Some(group) = &group {
                    self.index_staged_copy(work.fd(), &tmp, group, st.st_nlink, true)?;
                }
                nix::fcntl::renameat(
                    work.fd(),
                    tmp.as_os_str(),
                    dest_parent.as_fd(),
                    dest_name.as_os_str(),
                )
            })();
            if let Err(e) = staged {
                let _ = work.remove(&tmp);
                return Err(e);
            }
            node.state_mut().metacopy = data == Data::Meta;
        }
        if let Some(pst) = parent_times {
            restore_times(dest_parent.as_fd(), &pst);
        }
        {
            let mut s = node.state_mut();
            s.upper = true;
            s.indexed = None;
        }
        // The parent's index entry now says "in upper" too.
        if let Some(d) = parent.dir_part_if_any()
            && let Some(index) = d.index.write().unwrap_or_else(|e| e.into_inner()).as_mut()
        {
            index.entries.update(state.name(), |e| {
                e.upper = true;
                e.layer = upper;
            });
            index.impure = true;
        }
        Ok(())
    }

    /// Brings the data of a metadata-only copy up, in place: the marker goes last, so a
    /// crash midway leaves a file that still reads its data from below.
    fn complete_data(
        &self,
        node: &Node,
        state: &super::node::NodeState,
        data: Data,
    ) -> SysResult<()> {
        let upper = self.upper_idx()?;
        let path = self.path_of(node);
        let (dir, name) = self.open_parent(upper, &path)?;
        let dst = sys::open_child(dir.as_fd(), &name, OFlag::O_WRONLY, 0)?;
        if data == Data::Full {
            let layer = state.lower.ok_or(Errno::EIO)?;
            let src = sys::open_noatime(OFlag::O_RDONLY, |f| {
                self.open_in(layer, &state.lower_path(), f)
            })?;
            let size = sys::stat_fd(dst.as_fd())?.st_size as u64;
            let st = sys::stat_fd(dst.as_fd())?;
            copy_data(src.as_fd(), dst.as_fd(), size)?;
            // Writing data moved mtime; the metadata copy's times are the truth.
            nix::sys::stat::futimens(
                dst.as_fd(),
                &TimeSpec::new(st.st_atime, st.st_atime_nsec),
                &TimeSpec::new(st.st_mtime, st.st_mtime_nsec),
            )?;
        }
        if !self.cfg.volatile {
            nix::unistd::fsync(dst.as_fd())?;
        }
        match xattr::remove(Target::Fd(dst.as_fd()), OsStr::new(self.metacopy_xattr())) {
            Ok(()) | Err(Errno::ENODATA) => {}
            Err(e) => return Err(e),
        }
        node.state_mut().metacopy = false;
        Ok(())
    }

    /// Marks an upper directory impure (its entries may carry origins) once.
    pub(crate) fn mark_impure(&self, dir_path: &std::path::Path) {
        let upper = match self.upper_idx() {
            Ok(u) => u,
            Err(_) => return,
        };
        if let Ok(fd) = self.open_in(upper, dir_path, OFlag::O_PATH | OFlag::O_DIRECTORY) {
            let target = Target::Child(fd.as_fd(), OsStr::new(""));
            if xattr::get(target, self.cfg.impure_xattr())
                .ok()
                .flatten()
                .is_none()
            {
                let _ = xattr::set(target, OsStr::new(self.cfg.impure_xattr()), b"y", 0);
            }
        }
    }

    /// Builds the copy of `src_name` as `tmp` in the work directory.
    pub(crate) fn stage_copy(
        &self,
        work: BorrowedFd<'_>,
        tmp: &OsStr,
        src_dir: BorrowedFd<'_>,
        src_name: &OsStr,
        st: &FileStat,
        data: Data,
    ) -> SysResult<()> {
        let kind = sys::file_type(st.st_mode);
        match kind {
            libc::S_IFDIR => nix::sys::stat::mkdirat(work, tmp, Mode::from_bits_truncate(0o700))?,
            libc::S_IFREG => {
                let dst = sys::open_child(
                    work,
                    tmp,
                    OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY,
                    0o600,
                )?;
                match data {
                    Data::Full if st.st_size > 0 => {
                        let src = sys::open_noatime(OFlag::O_RDONLY, |f| {
                            sys::open_child(src_dir, src_name, f, 0)
                        })?;
                        copy_data(src.as_fd(), dst.as_fd(), st.st_size as u64)?;
                        // The data must be on disk before the rename publishes the copy
                        // (delayed allocation could otherwise leave an empty file after a
                        // crash). A copy without data needs no sync, as in overlayfs: its
                        // metadata reaches the journal in order with the rename.
                        if !self.cfg.volatile {
                            nix::unistd::fsync(dst.as_fd())?;
                        }
                    }
                    Data::Meta => {
                        nix::unistd::ftruncate(dst.as_fd(), st.st_size)?;
                        let name = OsStr::new(self.metacopy_xattr());
                        xattr::set(Target::Fd(dst.as_fd()), name, b"", 0)?;
                    }
                    _ => {}
                }
            }
            libc::S_IFLNK => {
                let target = nix::fcntl::readlinkat(src_dir, src_name)?;
                nix::unistd::symlinkat(target.as_os_str(), work, tmp)?;
            }
            _ => {
                let sflag = SFlag::from_bits_truncate(kind);
                nix::sys::stat::mknodat(
                    work,
                    tmp,
                    sflag,
                    Mode::from_bits_truncate(0o600),
                    st.st_rdev,
                )?;
            }
        }
        copy_xattrs(Target::Child(src_dir, src_name), Target::Child(work, tmp))?;
        apply_owner_mode_times(work, tmp, st)?;
        Ok(())
    }
}

/// Puts a directory's times back after an entry was added to it behind the user's back.
fn restore_times(dir: BorrowedFd<'_>, st: &FileStat) {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
    if let Ok(fd) = sys::open_child(dir, OsStr::new("."), flags, 0) {
        let _ = nix::sys::stat::futimens(
            fd.as_fd(),
            &TimeSpec::new(st.st_atime, st.st_atime_nsec),
            &TimeSpec::new(st.st_mtime, st.st_mtime_nsec),
        );
    }
}

/// Granularity of hole detection during copy-up, the kernel's `OVL_COPY_UP_CHUNK_SIZE`.
const COPY_CHUNK: i64 = 1 << 20;

/// Copies `len` bytes of data, keeping holes: only the data extents are copied, and the
/// length is set at the end so a trailing hole stays a hole.
pub(crate) fn copy_data(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, len: u64) -> SysResult<()> {
    let mut pos: i64 = 0;
    let end = len as i64;
    while pos < end {
        // SAFETY: lseek on descriptors we own.
        let data = unsafe { libc::lseek(src.as_raw_fd(), pos, libc::SEEK_DATA) };
        if data < 0 {
            match Errno::last() {
                Errno::ENXIO => break, // only a hole is left
                Errno::EINVAL | Errno::EOPNOTSUPP => {
                    copy_range(src, dst, pos, end)?;
                    break;
                }
                e => return Err(e),
            }
        }
        // Like overlayfs, copy whole 1 MiB chunks from each data start: holes survive
        // at that granularity and the copy needs few seeks.
        let chunk_end = (data + COPY_CHUNK).min(end);
        copy_range(src, dst, data, chunk_end)?;
        pos = chunk_end;
    }
    nix::unistd::ftruncate(dst, end)?;
    Ok(())
}

fn copy_range(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, from: i64, to: i64) -> SysResult<()> {
    let mut off_in = from;
    let mut off_out = from;
    while off_in < to {
        let want = (to - off_in).min(1 << 30) as usize;
        match nix::fcntl::copy_file_range(src, Some(&mut off_in), dst, Some(&mut off_out), want) {
            Ok(0) => break,
            Ok(_) => {}
            Err(Errno::EXDEV)
            | Err(Errno::EINVAL)
            | Err(Errno::EOPNOTSUPP)
            | Err(Errno::ENOSYS) => {
                return copy_by_hand(src, dst, off_in, to);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn copy_by_hand(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, mut off: i64, to: i64) -> SysResult<()> {
    let mut buf = vec![0u8; 1 << 20];
    while off < to {
        let want = ((to - off) as usize).min(buf.len());
        let n = nix::sys::uio::pread(src, &mut buf[..want], off)?;
        if n == 0 {
            break;
        }
        let mut written = 0;
        while written < n {
            written += nix::sys::uio::pwrite(dst, &buf[written..n], off + written as i64)?;
        }
        off += n as i64;
    }
    Ok(())
}

/// Copies every xattr but the union's own markers.
pub(crate) fn copy_xattrs(src: Target<'_>, dst: Target<'_>) -> SysResult<()> {
    for name in xattr::list(src)? {
        if xattr::is_private(&name) {
            continue;
        }
        let Ok(name_c) = sys::cstr(&name) else {
            continue;
        };
        let value = match xattr::get_raw(src, &name_c) {
            Ok(v) => v,
            Err(Errno::ENODATA) => continue,
            Err(e) => return Err(e),
        };
        match xattr::set(dst, &name, &value, 0) {
            Ok(()) => {}
            // Attributes the upper filesystem can't hold (e.g. security.* of another LSM)
            // are dropped, as overlayfs does.
            Err(Errno::EOPNOTSUPP) | Err(Errno::EPERM)
                if !name.to_string_lossy().starts_with("user.") => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Sets owner, then mode (chown clears set-id bits), then times, on a staged entry.
pub(crate) fn apply_owner_mode_times(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    st: &FileStat,
) -> SysResult<()> {
    nix::unistd::fchownat(
        dir,
        name,
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )?;
    if sys::file_type(st.st_mode) != libc::S_IFLNK {
        nix::sys::stat::fchmodat(
            dir,
            name,
            Mode::from_bits_truncate(st.st_mode & 0o7777),
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )?;
    }
    let atime = TimeSpec::new(st.st_atime, st.st_atime_nsec);
    let mtime = TimeSpec::new(st.st_mtime, st.st_mtime_nsec);
    nix::sys::stat::utimensat(dir, name, &atime, &mtime, UtimensatFlags::NoFollowSymlink)?;
    Ok(())
}
