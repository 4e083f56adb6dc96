//! Thin, fd-relative wrappers over the system calls the union filesystem needs.
//!
//! Everything here works relative to an open directory descriptor and never follows a
//! symlink in the last component unless asked: the layers are trees we serve, not trees
//! we trust, and paths may be deeper than `PATH_MAX`.

pub mod handle;
pub mod mountinfo;
pub mod xattr;

use std::ffi::{CString, OsStr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode};

/// Result of a system call: the errno is what the FUSE caller gets back.
pub type SysResult<T> = Result<T, Errno>;

/// Longest chunk of a relative path handed to one `openat` call; longer paths are walked
/// in pieces so trees deeper than `PATH_MAX` still resolve.
const PATH_CHUNK: usize = 3072;

/// Turns a name or path into a C string, refusing interior NULs with `EINVAL`.
pub fn cstr(s: &OsStr) -> SysResult<CString> {
    CString::new(s.as_bytes()).map_err(|_| Errno::EINVAL)
}

/// Opens `rel` (relative, no `..`) beneath `dir` without following any symlink on the way.
///
/// `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` is what keeps a hostile layer from pointing
/// us outside itself; long paths are split at `/` boundaries into several calls.
pub fn open_beneath(dir: BorrowedFd<'_>, rel: &Path, flags: OFlag) -> SysResult<OwnedFd> {
    let bytes = rel.as_os_str().as_bytes();
    if bytes.is_empty() || bytes == b"." {
        return openat2_beneath(dir, OsStr::new("."), flags);
    }
    if bytes.len() <= PATH_CHUNK {
        return openat2_beneath(dir, rel.as_os_str(), flags);
    }
    // Walk directory chunks, then open the last piece with the caller's flags.
    let mut current: Option<OwnedFd> = None;
    let mut rest = bytes;
    while rest.len() > PATH_CHUNK {
        let cut = rest[..PATH_CHUNK]
            .iter()
            .rposition(|&b| b == b'/')
            .ok_or(Errno::ENAMETOOLONG)?;
        let piece = OsStr::from_bytes(&rest[..cut]);
        let base = current.as_ref().map(|f| f.as_fd()).unwrap_or(dir);
        let next = openat2_beneath(base, piece, OFlag::O_PATH | OFlag::O_DIRECTORY)?;
        current = Some(next);
        rest = &rest[cut + 1..];
    }
    let base = current.as_ref().map(|f| f.as_fd()).unwrap_or(dir);
    openat2_beneath(base, OsStr::from_bytes(rest), flags)
}

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_NO_SYMLINKS: u64 = 0x04;
const RESOLVE_BENEATH: u64 = 0x08;

fn openat2_beneath(dir: BorrowedFd<'_>, rel: &OsStr, flags: OFlag) -> SysResult<OwnedFd> {
    let path = cstr(rel)?;
    let how = OpenHow {
        flags: (flags | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW).bits() as u64,
        mode: 0,
        resolve: RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    };
    loop {
        // SAFETY: openat2 reads `how` and `path` for the duration of the call only.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                path.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if fd >= 0 {
            // SAFETY: the kernel just handed us this descriptor.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) });
        }
        match Errno::last() {
            Errno::EAGAIN | Errno::EINTR => continue,
            // RESOLVE_NO_SYMLINKS reports a symlink in the path as ELOOP; with O_NOFOLLOW on
            // the last component that is also what a plain open would say.
            e => return Err(e),
        }
    }
}

/// Opens a single entry `name` of directory `dir` without following a final symlink.
pub fn open_child(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    flags: OFlag,
    mode: u32,
) -> SysResult<OwnedFd> {
    nix::fcntl::openat(
        dir,
        name,
        flags | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::from_bits_truncate(mode),
    )
}

/// `lstat` of `name` inside `dir`.
pub fn stat_child(dir: BorrowedFd<'_>, name: &OsStr) -> SysResult<FileStat> {
    nix::sys::stat::fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
}

/// `fstat` of an open descriptor (also of an `O_PATH` one).
pub fn stat_fd(fd: BorrowedFd<'_>) -> SysResult<FileStat> {
    nix::sys::stat::fstatat(
        fd,
        "",
        AtFlags::AT_EMPTY_PATH | AtFlags::AT_SYMLINK_NOFOLLOW,
    )
}

/// The file-type bits of a mode.
pub fn file_type(mode: u32) -> u32 {
    mode & libc::S_IFMT
}

/// True when `st` is a directory.
pub fn is_dir(st: &FileStat) -> bool {
    file_type(st.st_mode) == libc::S_IFDIR
}

/// A path that names the file behind `fd` through procfs, for the few calls (`l*xattr`
/// on symlinks and devices, `utimensat` on O_PATH fds) that have no fd-based form.
pub fn proc_fd_path(fd: BorrowedFd<'_>) -> CString {
    // The string only holds ASCII digits, so it can never contain a NUL.
    CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap_or_default()
}

/// A path naming `name` inside the directory behind `dir` through procfs.
pub fn proc_child_path(dir: BorrowedFd<'_>, name: &OsStr) -> SysResult<CString> {
    let mut bytes = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    bytes.extend_from_slice(name.as_bytes());
    CString::new(bytes).map_err(|_| Errno::EINVAL)
}

/// Runs an open with `O_NOATIME` added, as overlayfs opens its real files: reading
/// through the union must not touch the layers' access times. Where the caller may not
/// use the flag (not the owner, no `CAP_FOWNER`), it retries without.
pub fn open_noatime(
    flags: OFlag,
    open: impl Fn(OFlag) -> SysResult<OwnedFd>,
) -> SysResult<OwnedFd> {
    match open(flags | OFlag::O_NOATIME) {
        Err(Errno::EPERM) => open(flags),
        other => other,
    }
}
