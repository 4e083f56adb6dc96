//! Extended attributes by descriptor, and by name inside a directory descriptor.
//!
//! Symlinks, devices and whiteouts cannot be opened for `fgetxattr`, so the `*_child`
//! forms use the `*xattrat` calls (Linux 6.13) with `AT_SYMLINK_NOFOLLOW`: one call, no
//! path walk. Where the kernel (or a seccomp filter) lacks them, they go through
//! `/proc/self/fd/N/name` with the `l*` calls, which never follow the last component.

use std::ffi::{CStr, OsStr, OsString};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::sync::OnceLock;

use nix::errno::Errno;

use super::{SysResult, cstr, proc_child_path};

/// Where an attribute call is aimed: an open descriptor, or an entry inside a directory.
#[derive(Clone, Copy, Debug)]
pub enum Target<'a> {
    /// An open descriptor (not `O_PATH`).
    Fd(BorrowedFd<'a>),
    /// `name` inside the directory `dir`, never following a final symlink.
    Child(BorrowedFd<'a>, &'a OsStr),
}

/// System call numbers of the `*xattrat` family: the same on every architecture with
/// the unified syscall table (all Linux ones but alpha); `libc` doesn't name them yet.
mod nr {
    pub const SETXATTRAT: libc::c_long = 463;
    pub const GETXATTRAT: libc::c_long = 464;
    pub const LISTXATTRAT: libc::c_long = 465;
    pub const REMOVEXATTRAT: libc::c_long = 466;
}

/// The kernel's `struct xattr_args`: the value buffer and, for `setxattrat`, the flags.
#[repr(C)]
struct XattrArgs {
    value: u64,
    size: u32,
    flags: u32,
}

/// `getxattrat` or `setxattrat` (`nr`) on `path` inside `dfd`, never following a final
/// symlink: both take the value buffer through a `struct xattr_args`.
///
/// # Safety
/// `value` must point to `size` bytes, writable for `getxattrat`, or be null with 0.
unsafe fn xattrat_with_args(
    nr: libc::c_long,
    dfd: libc::c_int,
    path: &CStr,
    name: &CStr,
    value: *const libc::c_void,
    size: usize,
    flags: u32,
) -> libc::c_long {
    let mut args = XattrArgs {
        value: value as u64,
        size: size as u32,
        flags,
    };
    // SAFETY: valid C strings; `args` describes the caller's buffer, and its size is passed.
    unsafe {
        libc::syscall(
            nr,
            dfd,
            path.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
            name.as_ptr(),
            &mut args as *mut XattrArgs,
            std::mem::size_of::<XattrArgs>(),
        )
    }
}

/// Whether the `*xattrat` calls work here, found once by asking for an attribute of `/`:
/// `ENOSYS` (older kernel) or `EPERM` (a seccomp filter that predates them) mean no.
fn have_xattrat() -> bool {
    static HAVE: OnceLock<bool> = OnceLock::new();
    *HAVE.get_or_init(|| {
        // SAFETY: no buffer, size 0.
        let r = unsafe {
            xattrat_with_args(
                nr::GETXATTRAT,
                libc::AT_FDCWD,
                c"/",
                c"user.unionfs.probe",
                std::ptr::null(),
                0,
                0,
            )
        };
        r >= 0 || !matches!(Errno::last(), Errno::ENOSYS | Errno::EPERM)
    })
}

/// Runs `at` (given the directory's descriptor and the child's name) where the
/// `*xattrat` calls exist, else `proc` on the child's procfs path.
fn on_child(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    at: impl FnOnce(libc::c_int, &CStr) -> libc::c_long,
    proc: impl FnOnce(&CStr) -> isize,
) -> SysResult<usize> {
    if have_xattrat() && !procfs_forced() {
        // An empty name means the directory itself, as `/proc/self/fd/N/` does.
        let name = cstr(if name.is_empty() {
            OsStr::new(".")
        } else {
            name
        })?;
        return rc(at(dir.as_raw_fd(), &name) as isize);
    }
    let path = proc_child_path(dir, name)?;
    rc(proc(&path))
}

fn rc(rc: isize) -> SysResult<usize> {
    if rc < 0 {
        Err(Errno::last())
    } else {
        Ok(rc as usize)
    }
}

/// Reads attribute `name`; `Ok(None)` when it is absent.
pub fn get(target: Target<'_>, name: &str) -> SysResult<Option<Vec<u8>>> {
    let name_c = cstr(OsStr::new(name))?;
    match get_raw(target, &name_c) {
        Ok(v) => Ok(Some(v)),
        Err(Errno::ENODATA) | Err(Errno::ENOTSUP) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads an attribute named by raw bytes, growing the buffer as needed.
pub fn get_raw(target: Target<'_>, name: &CStr) -> SysResult<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    loop {
        let n = call_get(target, name, &mut buf);
        match n {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(Errno::ERANGE) => {
                let size = call_get(target, name, &mut [])?;
                buf.resize(size.max(buf.len() * 2), 0);
            }
            Err(e) => return Err(e),
        }
    }
}

fn call_get(target: Target<'_>, name: &CStr, buf: &mut [u8]) -> SysResult<usize> {
    let (ptr, len) = if buf.is_empty() {
        (std::ptr::null_mut(), 0)
    } else {
        (buf.as_mut_ptr() as *mut libc::c_void, buf.len())
    };
    match target {
        // SAFETY: buffer pointer/length describe valid writable memory (or null/0 to query).
        Target::Fd(fd) => rc(unsafe { libc::fgetxattr(fd.as_raw_fd(), name.as_ptr(), ptr, len) }),
        Target::Child(dir, child) => on_child(
            dir,
            child,
            // SAFETY: pointer/length describe the writable buffer (or null/0 to query).
            |dfd, c| unsafe { xattrat_with_args(nr::GETXATTRAT, dfd, c, name, ptr, len, 0) },
            // SAFETY: as above, through the procfs path.
            |p| unsafe { libc::lgetxattr(p.as_ptr(), name.as_ptr(), ptr, len) },
        ),
    }
}

/// Sets attribute `name` to `value` with `flags` (`XATTR_CREATE`/`XATTR_REPLACE`).
pub fn set(target: Target<'_>, name: &OsStr, value: &[u8], flags: i32) -> SysResult<()> {
    let name_c = cstr(name)?;
    let ptr = value.as_ptr() as *const libc::c_void;
    match target {
        // SAFETY: value pointer/length describe valid memory for the call.
        Target::Fd(fd) => rc(unsafe {
            libc::fsetxattr(fd.as_raw_fd(), name_c.as_ptr(), ptr, value.len(), flags) as isize
        }),
        Target::Child(dir, child) => on_child(
            dir,
            child,
            // SAFETY: pointer/length describe the value's memory.
            |dfd, c| unsafe {
                xattrat_with_args(
                    nr::SETXATTRAT,
                    dfd,
                    c,
                    &name_c,
                    ptr,
                    value.len(),
                    flags as u32,
                )
            },
            // SAFETY: as above, through the procfs path.
            |p| unsafe {
                libc::lsetxattr(p.as_ptr(), name_c.as_ptr(), ptr, value.len(), flags) as isize
            },
        ),
    }
    .map(drop)
}

/// Removes attribute `name`.
pub fn remove(target: Target<'_>, name: &OsStr) -> SysResult<()> {
    let name_c = cstr(name)?;
    match target {
        // SAFETY: plain call with a valid C string.
        Target::Fd(fd) => {
            rc(unsafe { libc::fremovexattr(fd.as_raw_fd(), name_c.as_ptr()) as isize })
        }
        Target::Child(dir, child) => on_child(
            dir,
            child,
            // SAFETY: valid C strings.
            |dfd, c| unsafe {
                libc::syscall(
                    nr::REMOVEXATTRAT,
                    dfd,
                    c.as_ptr(),
                    libc::AT_SYMLINK_NOFOLLOW,
                    name_c.as_ptr(),
                )
            },
            // SAFETY: as above, through the procfs path.
            |p| unsafe { libc::lremovexattr(p.as_ptr(), name_c.as_ptr()) as isize },
        ),
    }
    .map(drop)
}

/// Lists attribute names.
pub fn list(target: Target<'_>) -> SysResult<Vec<OsString>> {
    let mut buf = vec![0u8; 1024];
    let n = loop {
        let (ptr, len) = (buf.as_mut_ptr() as *mut libc::c_char, buf.len());
        let res = match target {
            // SAFETY: buffer pointer/length describe valid writable memory.
            Target::Fd(fd) => rc(unsafe { libc::flistxattr(fd.as_raw_fd(), ptr, len) }),
            Target::Child(dir, child) => on_child(
                dir,
                child,
                // SAFETY: valid C string; pointer/length describe writable memory.
                |dfd, c| unsafe {
                    libc::syscall(
                        nr::LISTXATTRAT,
                        dfd,
                        c.as_ptr(),
                        libc::AT_SYMLINK_NOFOLLOW,
                        ptr,
                        len,
                    )
                },
                // SAFETY: as above, through the procfs path.
                |p| unsafe { libc::llistxattr(p.as_ptr(), ptr, len) },
            ),
        };
        match res {
            Ok(n) => break n,
            Err(Errno::ERANGE) => buf.resize(buf.len() * 4, 0),
            Err(Errno::ENOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        }
    };
    Ok(buf[..n]
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| OsString::from_vec(s.to_vec()))
        .collect())
}

/// True when `name` is one of the attribute names an overlay keeps for itself and that
/// must never show through the merged view.
pub fn is_private(name: &OsStr) -> bool {
    let b = name.as_bytes();
    b.starts_with(b"trusted.overlay.")
        || b.starts_with(b"user.overlay.")
        || b.starts_with(b"trusted.unionfs.")
        || b.starts_with(b"user.unionfs.")
}

/// Only the tests below take the procfs route on a kernel that has `*xattrat`.
#[cfg(not(test))]
fn procfs_forced() -> bool {
    false
}

#[cfg(test)]
fn procfs_forced() -> bool {
    tests::FORCE_PROCFS.with(std::cell::Cell::get)
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::os::fd::AsFd;

    use super::*;

    thread_local! {
        pub(super) static FORCE_PROCFS: Cell<bool> = const { Cell::new(false) };
    }

    /// Both routes (the `*xattrat` calls and the procfs paths) act on the entry itself,
    /// never on a symlink's target, and on the directory for an empty name.
    #[test]
    fn both_routes_act_on_the_entry_itself() {
        if !nix::unistd::geteuid().is_root() {
            return; // trusted.* on a symlink needs CAP_SYS_ADMIN
        }
        for procfs in [false, true] {
            FORCE_PROCFS.with(|f| f.set(procfs));
            let dir = tempfile::tempdir().expect("tempdir");
            std::fs::write(dir.path().join("file"), b"x").expect("file");
            std::os::unix::fs::symlink("file", dir.path().join("link")).expect("symlink");
            let d = std::fs::File::open(dir.path()).expect("open dir");
            let link = Target::Child(d.as_fd(), OsStr::new("link"));
            set(link, OsStr::new("trusted.t"), b"on-link", 0).expect("set on the link");
            assert_eq!(
                get(link, "trusted.t").expect("get"),
                Some(b"on-link".to_vec())
            );
            let file = Target::Child(d.as_fd(), OsStr::new("file"));
            assert_eq!(
                get(file, "trusted.t").expect("get"),
                None,
                "procfs={procfs}"
            );
            assert!(
                list(link)
                    .expect("list")
                    .contains(&OsString::from("trusted.t"))
            );
            remove(link, OsStr::new("trusted.t")).expect("remove");
            assert_eq!(get(link, "trusted.t").expect("get"), None);
            let itself = Target::Child(d.as_fd(), OsStr::new(""));
            set(itself, OsStr::new("user.d"), b"dir", 0).expect("set on the dir");
            assert_eq!(
                get(Target::Fd(d.as_fd()), "user.d").expect("get"),
                Some(b"dir".to_vec()),
                "procfs={procfs}"
            );
        }
    }
}
