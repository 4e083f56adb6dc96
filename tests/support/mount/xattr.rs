//! Extended attributes without following symlinks, through libc.
//!
//! The tests need `l*xattr` on layer files (to plant `trusted.overlay.*` markers) and on
//! merged views (to prove no marker leaks); std has no xattr API.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cpath(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))
}

fn cname(name: &str) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in name"))
}

/// `lsetxattr(path, name, value, 0)`.
pub fn set(path: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    let (p, n) = (cpath(path)?, cname(name)?);
    // SAFETY: valid NUL-terminated strings and a slice with its length.
    let r = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `lremovexattr(path, name)`.
pub fn remove(path: &Path, name: &str) -> io::Result<()> {
    let (p, n) = (cpath(path)?, cname(name)?);
    // SAFETY: valid NUL-terminated strings.
    let r = unsafe { libc::lremovexattr(p.as_ptr(), n.as_ptr()) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `lgetxattr(path, name)`; `Ok(None)` when the attribute is absent.
pub fn get(path: &Path, name: &str) -> io::Result<Option<Vec<u8>>> {
    let (p, n) = (cpath(path)?, cname(name)?);
    loop {
        // SAFETY: size query with a null buffer.
        let len = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), std::ptr::null_mut(), 0) };
        if len < 0 {
            let e = io::Error::last_os_error();
            return if e.raw_os_error() == Some(libc::ENODATA) {
                Ok(None)
            } else {
                Err(e)
            };
        }
        let mut buf = vec![0u8; len as usize];
        // SAFETY: buffer of the advertised size.
        let got =
            unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if got >= 0 {
            buf.truncate(got as usize);
            return Ok(Some(buf));
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ERANGE) => continue, // grew in between: ask again
            Some(libc::ENODATA) => return Ok(None),
            _ => return Err(e),
        }
    }
}

/// `llistxattr(path)`, sorted.
pub fn list(path: &Path) -> io::Result<Vec<String>> {
    let p = cpath(path)?;
    loop {
        // SAFETY: size query with a null buffer.
        let len = unsafe { libc::llistxattr(p.as_ptr(), std::ptr::null_mut(), 0) };
        if len < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = vec![0u8; len as usize];
        // SAFETY: buffer of the advertised size.
        let got = unsafe { libc::llistxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if got < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ERANGE) {
                continue;
            }
            return Err(e);
        }
        buf.truncate(got as usize);
        let mut names: Vec<String> = buf
            .split(|b| *b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect();
        names.sort();
        return Ok(names);
    }
}
