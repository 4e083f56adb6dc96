//! Extended attributes by descriptor, and by name inside a directory descriptor.
//!
//! Symlinks, devices and whiteouts cannot be opened for `fgetxattr`, so the `*_child`
//! forms go through `/proc/self/fd/N/name` with the `l*` calls, which never follow the
//! last component.

use std::ffi::{CStr, OsStr, OsString};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

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

fn with_path(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    f: impl FnOnce(&CStr) -> isize,
) -> SysResult<usize> {
    let path = proc_child_path(dir, name)?;
    rc(f(&path))
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
        Target::Child(dir, child) => with_path(dir, child, |p| unsafe {
            libc::lgetxattr(p.as_ptr(), name.as_ptr(), ptr, len)
        }),
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
        Target::Child(dir, child) => with_path(dir, child, |p| unsafe {
            libc::lsetxattr(p.as_ptr(), name_c.as_ptr(), ptr, value.len(), flags) as isize
        }),
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
        Target::Child(dir, child) => with_path(dir, child, |p| unsafe {
            libc::lremovexattr(p.as_ptr(), name_c.as_ptr()) as isize
        }),
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
            Target::Child(dir, child) => with_path(dir, child, |p| unsafe {
                libc::llistxattr(p.as_ptr(), ptr, len)
            }),
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
