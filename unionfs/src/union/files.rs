//! Open files: handles, reads and writes, and the calls that act on an open descriptor.
//!
//! A handle opened read-only on a lower file follows the file when it is copied up
//! through another handle: reads check where the node lives now and reopen, so no reader
//! keeps seeing the old lower copy after a write elsewhere.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use dashmap::DashMap;
use nix::errno::Errno;
use nix::fcntl::OFlag;

use super::node::{Node, NodeId};
use super::{Attr, Union};
use crate::sys::{self, SysResult};

/// One open file of the union.
#[derive(Debug)]
pub struct OpenFile {
    /// The node it was opened on.
    pub node: Arc<Node>,
    /// The backing descriptor and whether it is the upper copy.
    fd: RwLock<(Arc<OwnedFd>, bool)>,
    /// The open flags (access mode, append, ...).
    pub flags: i32,
}

impl OpenFile {
    /// The backing descriptor (for passthrough and `fstat`).
    pub fn backing(&self) -> Arc<OwnedFd> {
        self.fd.read().unwrap_or_else(|e| e.into_inner()).0.clone()
    }

    /// The backing descriptor and whether it is the upper copy, unless the node's data
    /// was copied up since the handle was opened on the lower copy: then the descriptor
    /// no longer reads the file's current data.
    fn current_fd(&self) -> Option<(Arc<OwnedFd>, bool)> {
        let guard = self.fd.read().unwrap_or_else(|e| e.into_inner());
        let current = guard.1 || !self.node.read_state().data_upper();
        current.then(|| (guard.0.clone(), guard.1))
    }
}

/// The table of open files, by handle number.
#[derive(Debug, Default)]
pub struct FileTable {
    files: DashMap<u64, Arc<OpenFile>>,
    next: AtomicU64,
}

/// `__FMODE_EXEC`: the kernel marks the open that `execve` makes with it, and the
/// handle stays open while the program runs.
const FMODE_EXEC: i32 = 0x20;

fn is_write(flags: i32) -> bool {
    let acc = flags & libc::O_ACCMODE;
    acc == libc::O_WRONLY || acc == libc::O_RDWR
}

/// The flags of a caller's open that the daemon's own descriptor on the backing file
/// takes. Creation and truncation are done by the union itself. `O_DIRECT` is dropped:
/// the kernel already keeps such a handle out of the FUSE page cache and sends each read
/// and write to the daemon as asked, while the daemon's buffers have none of the
/// alignment a backing filesystem demands of direct I/O, so with it every served
/// `O_DIRECT` read or write failed with EINVAL, aligned or not. (Passed-through handles
/// do direct I/O all the same: the kernel gives the backing file the caller's request.)
pub(crate) fn backing_open_flags(flags: i32) -> i32 {
    flags & !(libc::O_CREAT | libc::O_EXCL | libc::O_NOCTTY | libc::O_TRUNC | libc::O_DIRECT)
}

/// Whether an open with `flags` may change the file's data (opened for writing, or
/// truncated): such an open copies a lower file up.
pub fn open_changes_data(flags: i32) -> bool {
    is_write(flags) || flags & libc::O_TRUNC != 0
}

impl Union {
    fn file(&self, fh: u64) -> SysResult<Arc<OpenFile>> {
        self.files
            .files
            .get(&fh)
            .map(|f| f.clone())
            .ok_or(Errno::EBADF)
    }

    /// Some open handle on node `id`, if any: how an unlinked but open file is reached.
    pub(crate) fn any_open_file(&self, id: NodeId) -> Option<Arc<OpenFile>> {
        self.files
            .files
            .iter()
            .find(|f| f.node.id == id)
            .map(|f| f.clone())
    }

    /// Whether node `id` is the image of a running program (some handle on it is an
    /// `execve`'s). The kernel refuses to open such a file for writing before asking the
    /// daemon, but `O_RDONLY|O_TRUNC` reaches the daemon first: with atomic truncation
    /// the OPEN truncates, and the kernel's ETXTBSY comes only after. Truncating then
    /// would pull the pages from under the program (SIGBUS) and still fail the open.
    fn is_executing(&self, id: NodeId) -> bool {
        self.files
            .files
            .iter()
            .any(|f| f.node.id == id && f.flags & FMODE_EXEC != 0)
    }

    /// The open file behind a handle.
    pub fn open_file(&self, fh: u64) -> SysResult<Arc<OpenFile>> {
        self.file(fh)
    }

    /// Opens a node; opening for writing (or truncating) copies it up first.
    pub fn open(&self, id: NodeId, flags: i32) -> SysResult<u64> {
        let node = self.node(id)?;
        self.open_node(node, flags)
    }

    pub(crate) fn open_node(&self, node: Arc<Node>, flags: i32) -> SysResult<u64> {
        let truncate = flags & libc::O_TRUNC != 0;
        let writing = open_changes_data(flags);
        if truncate && self.is_executing(node.id) {
            return Err(Errno::ETXTBSY);
        }
        if writing {
            if self.read_only() {
                return Err(Errno::EROFS);
            }
            self.copy_up(
                &node,
                if truncate {
                    super::copyup::Data::Skip
                } else {
                    super::copyup::Data::Full
                },
            )?;
        }
        let (fd, on_upper) = self.open_backing(&node, flags)?;
        let fh = self.files.next.fetch_add(1, Ordering::Relaxed) + 1;
        let file = OpenFile {
            node,
            fd: RwLock::new((Arc::new(fd), on_upper)),
            flags,
        };
        self.files.files.insert(fh, Arc::new(file));
        Ok(fh)
    }

    /// Registers an already open upper descriptor (from `create`) as a handle.
    pub fn register_open(&self, node: Arc<Node>, fd: OwnedFd, flags: i32) -> u64 {
        let fh = self.files.next.fetch_add(1, Ordering::Relaxed) + 1;
        let file = OpenFile {
            node,
            fd: RwLock::new((Arc::new(fd), true)),
            flags,
        };
        self.files.files.insert(fh, Arc::new(file));
        fh
    }

    fn open_backing(&self, node: &Node, flags: i32) -> SysResult<(OwnedFd, bool)> {
        let state = node.snapshot();
        let (layer, path) = self.data_location(node, &state)?;
        let mut oflags = OFlag::from_bits_truncate(backing_open_flags(flags));
        if !self.layers.is_upper(layer) {
            oflags = (oflags & !OFlag::O_ACCMODE) | OFlag::O_RDONLY;
        }
        if flags & libc::O_TRUNC != 0 && self.layers.is_upper(layer) {
            oflags |= OFlag::O_TRUNC;
        }
        let fd = sys::open_noatime(oflags, |f| self.open_in(layer, &path, f))?;
        Ok((fd, self.layers.is_upper(layer)))
    }

    /// The descriptor to read through, reopened on the upper copy if the node was copied
    /// up since this handle was opened.
    fn read_fd(&self, file: &OpenFile) -> SysResult<Arc<OwnedFd>> {
        if let Some((fd, _)) = file.current_fd() {
            return Ok(fd);
        }
        let (fd, on_upper) = self.open_backing(&file.node, libc::O_RDONLY)?;
        let fd = Arc::new(fd);
        *file.fd.write().unwrap_or_else(|e| e.into_inner()) = (fd.clone(), on_upper);
        Ok(fd)
    }

    /// The handle's lower descriptor, if reads through it still see the file's current
    /// data: the handle was opened on a lower copy and the node has not been copied up
    /// since (a metadata-only copy-up leaves the data below). `None` sends the caller to
    /// [`Union::read_into`], which follows the copy-up.
    pub(super) fn lower_read_fd(&self, fh: u64) -> SysResult<Option<Arc<OwnedFd>>> {
        let current = self.file(fh)?.current_fd();
        Ok(current.and_then(|(fd, on_upper)| (!on_upper).then_some(fd)))
    }

    /// Reads into `buf` from `offset` until it is full or the file ends; returns the
    /// bytes read. (The caller owns the buffer so that a serving thread can reuse one:
    /// a fresh 128 KiB buffer per READ was a zero-filled allocation every time.)
    pub fn read_into(&self, fh: u64, offset: u64, buf: &mut [u8]) -> SysResult<usize> {
        let file = self.file(fh)?;
        let fd = self.read_fd(&file)?;
        let mut done = 0;
        while done < buf.len() {
            let n =
                nix::sys::uio::pread(fd.as_fd(), &mut buf[done..], (offset + done as u64) as i64)?;
            if n == 0 {
                break;
            }
            done += n;
        }
        Ok(done)
    }

    /// Writes `data` at `offset` (appends when the file was opened `O_APPEND`).
    pub fn write(&self, fh: u64, offset: u64, data: &[u8]) -> SysResult<usize> {
        let file = self.file(fh)?;
        let fd = file.backing();
        let n = nix::sys::uio::pwrite(fd.as_fd(), data, offset as i64)?;
        Ok(n)
    }

    /// Closes a handle.
    pub fn release(&self, fh: u64) {
        self.files.files.remove(&fh);
    }

    /// `fsync`/`fdatasync` of an open file.
    pub fn fsync(&self, fh: u64, datasync: bool) -> SysResult<()> {
        let file = self.file(fh)?;
        let fd = file.backing();
        if datasync {
            nix::unistd::fdatasync(fd.as_fd())
        } else {
            nix::unistd::fsync(fd.as_fd())
        }
    }

    /// `fallocate` on an open file.
    pub fn fallocate(&self, fh: u64, mode: i32, offset: u64, length: u64) -> SysResult<()> {
        let file = self.file(fh)?;
        let fd = file.backing();
        // SAFETY: plain syscall on a descriptor we own.
        let rc = unsafe { libc::fallocate(fd.as_raw_fd(), mode, offset as i64, length as i64) };
        if rc < 0 { Err(Errno::last()) } else { Ok(()) }
    }

    /// `lseek` for `SEEK_DATA`/`SEEK_HOLE` (plain seeks never reach a filesystem).
    pub fn lseek(&self, fh: u64, offset: i64, whence: i32) -> SysResult<i64> {
        let file = self.file(fh)?;
        let fd = self.read_fd(&file)?;
        // SAFETY: plain syscall on a descriptor we own.
        let rc = unsafe { libc::lseek(fd.as_raw_fd(), offset, whence) };
        if rc < 0 { Err(Errno::last()) } else { Ok(rc) }
    }

    /// Attributes through an open handle: works after the name is gone.
    ///
    /// While the node still has a name, its current location answers, not the handle's
    /// descriptor: that may be the lower file behind a metadata-only copy, or a lower file
    /// copied up since it was opened, and either would report the lower attributes.
    pub fn getattr_fh(&self, id: NodeId, fh: u64) -> SysResult<Attr> {
        let file = self.file(fh)?;
        let node = self.node(id).unwrap_or_else(|_| file.node.clone());
        let state = node.snapshot();
        if !state.unlinked {
            return self.getattr_node(&node);
        }
        let fd = self.read_fd(&file)?;
        let st = crate::sys::stat_fd(fd.as_fd())?;
        let mut attr = self.attr_of(&node, &state, &st);
        if state.unlinked && !state.upper {
            attr.nlink = 0;
        }
        Ok(attr)
    }
}
