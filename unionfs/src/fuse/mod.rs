//! The FUSE adapter: serves a [`Union`] to the kernel through `fuser`.
//!
//! Only translation lives here — request arguments in, errnos and attributes out. A
//! panic inside a handler is caught and answered with `EIO` (the reply object does that
//! when dropped unanswered), so one bad request never hangs its caller or the mount.

mod convert;
mod passthrough;
mod readahead;
mod workers;

pub use passthrough::PassthroughScope;
pub use readahead::ReadaheadTuning;
pub use workers::Workers;

use std::ffi::OsStr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::time::Duration;

use fuser::{
    AccessFlags, Errno, FileHandle, Filesystem, FopenFlags, Generation, INodeNo, KernelConfig,
    LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyLseek, ReplyOpen, ReplyStatfs, ReplyWrite,
    ReplyXattr, Request, TimeOrNow, WriteFlags,
};

use crate::union::{Caller, NewEntry, SetAttr, SetTime, Union, open_changes_data};
use convert::{errno, file_attr, file_type};

/// How long the kernel may cache entries and attributes. Every change goes through this
/// mount (layers must not change underneath, as with overlayfs), so caching is safe; the
/// upper layer gets a shorter time because hard links there share data across names.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// For entries that live only in read-only layers.
    pub lower: Duration,
    /// For entries with an upper copy.
    pub upper: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            lower: Duration::from_secs(86400),
            upper: Duration::from_secs(1),
        }
    }
}

/// READs of at least this size from lower files are answered from a mapping of the
/// range (`union::MappedRange`): one copy instead of two. Smaller ones, the whole of most
/// small files, cost less through the buffer than an `mmap` and `munmap` each.
const MAPPED_READ_MIN: u32 = 64 * 1024;

thread_local! {
    /// Each serving thread's buffer for READ replies, grown to the largest read asked
    /// (the kernel's readahead window: 128 KiB for `dd bs=1M`, 256 KiB for `cat` of the
    /// bench's big file) and reused: allocating it per request meant a
    /// zero-filled 128 KiB block, or a fresh mapping, for every READ.
    static READ_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The `fuser::Filesystem` over a union.
///
/// Files served through the daemon keep the kernel's page cache across opens
/// (`FOPEN_KEEP_CACHE`): every write reaches a file through this mount, so the cache can
/// only go stale when the data moves, and copy-up moves it unchanged.
#[derive(Debug)]
pub struct UnionFs {
    union: Union,
    timeouts: Timeouts,
    passthrough: Option<passthrough::Passthrough>,
    workers: std::sync::Arc<Workers>,
    readdirplus_always: bool,
    readahead: Option<ReadaheadTuning>,
}

impl UnionFs {
    /// Wraps a union for serving.
    pub fn new(union: Union, timeouts: Timeouts) -> Self {
        UnionFs {
            union,
            timeouts,
            passthrough: None,
            workers: std::sync::Arc::new(Workers::new(1)),
            readdirplus_always: false,
            readahead: None,
        }
    }

    /// Has every directory read answered with the entries' attributes (READDIRPLUS)
    /// rather than leaving the choice to the kernel. The kernel's own choice asks for
    /// them on a directory's first read and after lookups in it, but `find` and `ls -l`
    /// read a whole directory before they stat any of it, so every entry of a big
    /// directory past the first few dozen costs a LOOKUP. Measured on the bench stack,
    /// cold: a stat-ing walk 0.58 → 0.41 s (14.3k → 4.0k context switches); but a
    /// plain `ls` of the 10,000-entry directory 0.03 → 0.16 s and `find -name`
    /// 0.21 → 0.37 s, since every entry is then looked up in the layers. So not the
    /// default, except over an index file, which holds those attributes already (see
    /// `MountArgs::wants_readdirplus_always`).
    pub fn with_readdirplus(mut self, always: bool) -> Self {
        self.readdirplus_always = always;
        self
    }

    /// Raises the mount's readahead when the first file is opened, INIT being answered
    /// by then (see [`ReadaheadTuning`]).
    pub fn set_readahead(&mut self, tuning: ReadaheadTuning) {
        self.readahead = Some(tuning);
    }

    /// Sets how many threads `fuser` serves with (the daemon gives `fuser` the
    /// number [`Workers::threads`] reports); all but one of them park while requests
    /// come one at a time (see [`Workers`]).
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.workers = std::sync::Arc::new(Workers::new(threads));
        self
    }

    /// The serving threads' bookkeeping, whose watchdog the daemon starts once the
    /// session (and its `/dev/fuse` descriptor) exists.
    pub fn workers(&self) -> std::sync::Arc<Workers> {
        std::sync::Arc::clone(&self.workers)
    }

    /// Asks the kernel for FUSE passthrough (Linux 6.9+, root): the open files `scope`
    /// names are then read and written by the kernel directly, with no request to the
    /// daemon and no second page cache (see [`PassthroughScope`]).
    pub fn with_passthrough(mut self, scope: PassthroughScope) -> Self {
        self.passthrough =
            (scope != PassthroughScope::Off).then(|| passthrough::Passthrough::new(scope));
        self
    }

    /// Decides whether new handle `fh` on inode `ino` passes through (registering its
    /// backing file with `open_backing`) or is served by the daemon.
    fn io_mode(
        &self,
        ino: u64,
        fh: u64,
        open_backing: impl FnOnce(std::os::fd::BorrowedFd<'_>) -> std::io::Result<fuser::BackingId>,
    ) -> passthrough::Decision {
        let Some(pt) = &self.passthrough else {
            return passthrough::Decision::Serve;
        };
        let Ok(file) = self.union.open_file(fh) else {
            return passthrough::Decision::Serve;
        };
        let fd = file.backing();
        let data_upper = file.node.read_state().data_upper();
        let where_ = if data_upper || self.union.read_only() {
            passthrough::Backing::Stable
        } else {
            // Only `All` passes lower files through, so only it needs the size.
            let large = pt.scope() == PassthroughScope::All
                && crate::sys::stat_fd(std::os::fd::AsFd::as_fd(&*fd))
                    .is_ok_and(|st| st.st_size as u64 >= passthrough::LOWER_PASSTHROUGH_MIN_SIZE);
            passthrough::Backing::Lower { large }
        };
        pt.open(ino, fh, where_, || {
            open_backing(std::os::fd::AsFd::as_fd(&*fd))
        })
    }

    /// For a request that `changes` inode `ino`'s data, announces the change (see
    /// [`passthrough::Passthrough::begin_data_change`]), to be held until it is made:
    /// ETXTBSY while a reader holds the inode's lower file through passthrough.
    fn begin_data_change(
        &self,
        ino: u64,
        changes: bool,
    ) -> Result<Option<passthrough::DataChange<'_, fuser::BackingId>>, Errno> {
        match &self.passthrough {
            Some(pt) if changes => pt
                .begin_data_change(ino)
                .map(Some)
                .map_err(|_| Errno::ETXTBSY),
            _ => Ok(None),
        }
    }

    /// Creates a non-file entry and answers with it (mknod, mkdir, symlink).
    fn make(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        spec: NewEntry<'_>,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let r = self
            .union
            .create_entry(parent.0, name, spec, caller(req, umask))
            .map(|(n, a, _)| (n, a));
        self.entry(reply, r)
    }

    fn ttl(&self, upper: bool) -> Duration {
        if upper {
            self.timeouts.upper
        } else {
            self.timeouts.lower
        }
    }

    fn entry(
        &self,
        reply: ReplyEntry,
        result: crate::sys::SysResult<(std::sync::Arc<crate::union::Node>, crate::union::Attr)>,
    ) {
        match result {
            Ok((node, attr)) => {
                let ttl = self.ttl(node.read_state().upper);
                reply.entry(&ttl, &file_attr(&attr), Generation(node.generation()));
            }
            Err(e) => reply.error(errno(e)),
        }
    }
}

fn caller(req: &Request, umask: u32) -> Caller {
    Caller {
        uid: req.uid(),
        gid: req.gid(),
        umask: umask & 0o777,
    }
}

fn set_time(t: Option<TimeOrNow>) -> Option<SetTime> {
    t.map(|t| match t {
        TimeOrNow::Now => SetTime::Now,
        TimeOrNow::SpecificTime(st) => {
            let (s, ns) = convert::split_time(st);
            SetTime::At(s, ns)
        }
    })
}

/// Runs a handler, turning a panic into an `EIO` reply (by dropping the unsent reply).
/// The handler's thread counts as busy until the reply is sent, and may then park (see
/// [`workers`]).
macro_rules! guarded {
    ($fs:expr, $body:expr) => {{
        let _turn = $fs.workers.turn();
        if catch_unwind(AssertUnwindSafe(|| $body)).is_err() {
            log::error!("a request handler panicked; answered EIO");
        }
    }};
}

impl Filesystem for UnionFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        use fuser::InitFlags;
        if !self.readdirplus_always {
            let _ = config.add_capabilities(InitFlags::FUSE_READDIRPLUS_AUTO);
        }
        for flag in [
            InitFlags::FUSE_DO_READDIRPLUS,
            InitFlags::FUSE_PARALLEL_DIROPS,
            InitFlags::FUSE_EXPORT_SUPPORT,
            InitFlags::FUSE_ATOMIC_O_TRUNC,
            InitFlags::FUSE_CACHE_SYMLINKS,
            InitFlags::FUSE_DONT_MASK,
            // The kernel then enforces ACLs, as overlayfs does (without it, an ACL granting
            // access is stored but ignored), and caches them per inode.
            InitFlags::FUSE_POSIX_ACL,
        ] {
            let _ = config.add_capabilities(flag);
        }
        let _ = config.set_max_write(1 << 20);
        if self.passthrough.is_some() {
            let granted = config.add_capabilities(InitFlags::FUSE_PASSTHROUGH).is_ok()
                && config.set_max_stack_depth(1).is_ok();
            if !granted {
                let why = "the kernel offers no FUSE passthrough: all I/O goes through the daemon";
                // Asked for by name, its absence is worth a warning; as the default of
                // every root mount on older kernels, it is not.
                match self.passthrough.as_ref().map(|p| p.scope()) {
                    Some(PassthroughScope::All) => log::warn!("{why}"),
                    _ => log::info!("{why}"),
                }
                self.passthrough = None;
            }
        }
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        guarded!(self, self.entry(reply, self.union.lookup(parent.0, name)))
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        guarded!(self, self.union.forget(ino.0, nlookup))
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        guarded!(self, {
            let result = match fh {
                Some(fh) => self
                    .union
                    .getattr_fh(ino.0, fh.0)
                    .or_else(|_| self.union.getattr(ino.0)),
                None => self.union.getattr(ino.0),
            };
            match result {
                Ok(attr) => reply.attr(&self.timeouts.upper, &file_attr(&attr)),
                Err(e) => reply.error(errno(e)),
            }
        })
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<std::time::SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<std::time::SystemTime>,
        _chgtime: Option<std::time::SystemTime>,
        _bkuptime: Option<std::time::SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        guarded!(self, {
            let set = SetAttr {
                mode,
                uid,
                gid,
                size,
                atime: set_time(atime),
                mtime: set_time(mtime),
            };
            let change = match self.begin_data_change(ino.0, size.is_some()) {
                Ok(change) => change,
                Err(e) => return reply.error(e),
            };
            match self.union.setattr(ino.0, set, fh.map(|f| f.0)) {
                Ok(attr) => reply.attr(&self.timeouts.upper, &file_attr(&attr)),
                Err(e) => reply.error(errno(e)),
            }
            drop(change);
        })
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        guarded!(
            self,
            match self.union.readlink(ino.0) {
                Ok(target) =>
                    reply.data(std::os::unix::ffi::OsStrExt::as_bytes(target.as_os_str())),
                Err(e) => reply.error(errno(e)),
            }
        )
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        guarded!(self, {
            let spec = NewEntry::Special {
                mode,
                rdev: rdev as u64,
            };
            self.make(req, parent, name, spec, umask, reply)
        })
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        guarded!(self, {
            let spec = NewEntry::Dir { mode };
            self.make(req, parent, name, spec, umask, reply)
        })
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        guarded!(
            self,
            match self.union.unlink(parent.0, name) {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno(e)),
            }
        )
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        guarded!(
            self,
            match self.union.rmdir(parent.0, name) {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno(e)),
            }
        )
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        guarded!(self, {
            let spec = NewEntry::Symlink { target };
            self.make(req, parent, link_name, spec, 0, reply)
        })
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        guarded!(
            self,
            match self
                .union
                .rename(parent.0, name, newparent.0, newname, flags.bits())
            {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno(e)),
            }
        )
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        guarded!(
            self,
            self.entry(reply, self.union.link(ino.0, newparent.0, newname))
        )
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        guarded!(self, {
            if let Some(readahead) = &self.readahead {
                readahead.apply_once();
            }
            let change = match self.begin_data_change(ino.0, open_changes_data(flags.0)) {
                Ok(change) => change,
                Err(e) => return reply.error(e),
            };
            match self.union.open(ino.0, flags.0) {
                Ok(fh) => match self.io_mode(ino.0, fh, |fd| reply.open_backing(fd)) {
                    passthrough::Decision::Pass(id) => {
                        reply.opened_passthrough(FileHandle(fh), FopenFlags::empty(), &id)
                    }
                    passthrough::Decision::Serve => {
                        reply.opened(FileHandle(fh), FopenFlags::FOPEN_KEEP_CACHE)
                    }
                },
                Err(e) => reply.error(errno(e)),
            }
            drop(change);
        })
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        guarded!(self, {
            if size >= MAPPED_READ_MIN {
                match self.union.map_lower_range(fh.0, offset, size as usize) {
                    Ok(Some(range)) => return reply.data(&range),
                    Ok(None) => {}
                    Err(e) => return reply.error(errno(e)),
                }
            }
            READ_BUFFER.with_borrow_mut(|buf| {
                if buf.len() < size as usize {
                    buf.resize(size as usize, 0);
                }
                let buf = &mut buf[..size as usize];
                match self.union.read_into(fh.0, offset, buf) {
                    Ok(n) => reply.data(&buf[..n]),
                    Err(e) => reply.error(errno(e)),
                }
            })
        })
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        guarded!(
            self,
            match self.union.write(fh.0, offset, data) {
                Ok(n) => reply.written(n as u32),
                Err(e) => reply.error(errno(e)),
            }
        )
    }

    /// Answered `ENOSYS`, on purpose: the kernel then stops sending FLUSH (one request
    /// per `close()` and per `dup2()` over an open file, two of the seven requests of a
    /// shell's `printf > file`). There is nothing to flush — every write already reached
    /// the layer file — and no POSIX locks are held here for a close to release.
    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::ENOSYS)
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        guarded!(self, {
            if let Some(pt) = &self.passthrough {
                pt.release(fh.0);
            }
            self.union.release(fh.0);
            reply.ok()
        })
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        guarded!(
            self,
            match self.union.fsync(fh.0, datasync) {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno(e)),
            }
        )
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        guarded!(
            self,
            match self.union.opendir(ino.0) {
                // The kernel keeps the listing in the directory's page cache and serves later
                // listings from it (dropping it when the directory's mtime moves or a change
                // goes through this mount), as fuse-overlayfs does: a warm `find` or `ls -l`
                // then sends no READDIRPLUS, which would also drop each entry's cached ACLs.
                Ok(fh) => reply.opened(
                    FileHandle(fh),
                    FopenFlags::FOPEN_KEEP_CACHE | FopenFlags::FOPEN_CACHE_DIR,
                ),
                Err(e) => reply.error(errno(e)),
            }
        )
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        guarded!(
            self,
            match self.union.readdir(fh.0, offset) {
                Ok(entries) => {
                    for (i, e) in entries.iter().enumerate().skip(offset as usize) {
                        if reply.add(INodeNo(e.ino), (i + 1) as u64, file_type(e.kind), &e.name) {
                            break;
                        }
                    }
                    reply.ok()
                }
                Err(e) => reply.error(errno(e)),
            }
        )
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        guarded!(
            self,
            match self.union.readdir(fh.0, offset) {
                Ok(entries) => {
                    for (i, e) in entries.iter().enumerate().skip(offset as usize) {
                        let next = (i + 1) as u64;
                        let full = if e.name == "." || e.name == ".." {
                            let attr = self.union.getattr(ino.0).map(|a| file_attr(&a));
                            match attr {
                                Ok(mut a) => {
                                    a.ino = INodeNo(e.ino);
                                    reply.add(
                                        INodeNo(e.ino),
                                        next,
                                        &e.name,
                                        &Duration::ZERO,
                                        &a,
                                        Generation(0),
                                    )
                                }
                                Err(_) => continue,
                            }
                        } else {
                            match self.union.lookup(ino.0, &e.name) {
                                Ok((node, attr)) => {
                                    let ttl = self.ttl(node.read_state().upper);
                                    let full = reply.add(
                                        INodeNo(attr.ino),
                                        next,
                                        &e.name,
                                        &ttl,
                                        &file_attr(&attr),
                                        Generation(node.generation()),
                                    );
                                    if full {
                                        // Not sent: the kernel won't count this lookup.
                                        self.union.forget(node.id, 1);
                                    }
                                    full
                                }
                                Err(_) => continue,
                            }
                        };
                        if full {
                            break;
                        }
                    }
                    reply.ok()
                }
                Err(e) => reply.error(errno(e)),
            }
        )
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        guarded!(self, {
            self.union.releasedir(fh.0);
            reply.ok()
        })
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply.ok()
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        guarded!(
            self,
            match self.union.statfs() {
                Ok(s) => reply.statfs(
                    s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.bsize, s.namelen, s.frsize
                ),
                Err(e) => reply.error(errno(e)),
            }
        )
    }

    fn setxattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        guarded!(
            self,
            match self.union.setxattr(ino.0, name, value, flags) {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno(e)),
            }
        )
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        guarded!(
            self,
            match self.union.getxattr(ino.0, name) {
                Ok(value) => convert::reply_xattr(reply, size, &value),
                Err(e) => reply.error(errno(e)),
            }
        )
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        guarded!(
            self,
            match self.union.listxattr(ino.0) {
                Ok(names) => {
                    let mut buf = Vec::new();
                    for n in names {
                        buf.extend_from_slice(std::os::unix::ffi::OsStrExt::as_bytes(
                            n.as_os_str(),
                        ));
                        buf.push(0);
                    }
                    convert::reply_xattr(reply, size, &buf)
                }
                Err(e) => reply.error(errno(e)),
            }
        )
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        guarded!(
            self,
            match self.union.removexattr(ino.0, name) {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno(e)),
            }
        )
    }

    fn access(&self, _req: &Request, ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        guarded!(
            self,
            match self.union.getattr(ino.0) {
                Ok(_) => reply.ok(),
                Err(e) => reply.error(errno(e)),
            }
        )
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        guarded!(self, {
            let spec = NewEntry::File { mode, flags };
            match self
                .union
                .create_entry(parent.0, name, spec, caller(req, umask))
            {
                Ok((node, attr, Some(fd))) => {
                    let generation = Generation(node.generation());
                    let ino = node.id;
                    let fh = self.union.register_open(node, fd, flags);
                    let attr = file_attr(&attr);
                    let ttl = self.timeouts.upper;
                    match self.io_mode(ino, fh, |fd| reply.open_backing(fd)) {
                        passthrough::Decision::Pass(id) => reply.created_passthrough(
                            &ttl,
                            &attr,
                            generation,
                            FileHandle(fh),
                            FopenFlags::empty(),
                            &id,
                        ),
                        passthrough::Decision::Serve => reply.created(
                            &ttl,
                            &attr,
                            generation,
                            FileHandle(fh),
                            FopenFlags::FOPEN_KEEP_CACHE,
                        ),
                    }
                }
                Ok((_, _, None)) => reply.error(Errno::EIO),
                Err(e) => reply.error(errno(e)),
            }
        })
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        guarded!(
            self,
            match self.union.fallocate(fh.0, mode, offset, length) {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno(e)),
            }
        )
    }

    fn lseek(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: ReplyLseek,
    ) {
        guarded!(
            self,
            match self.union.lseek(fh.0, offset, whence) {
                Ok(off) => reply.offset(off),
                Err(e) => reply.error(errno(e)),
            }
        )
    }
}
