//! Building layer directories by hand: files with fixed metadata, and every on-disk
//! form of whiteout and opaque marker that overlay filesystems use.
//!
//! Tests plant these in lower (or upper) directories before mounting, so they can check
//! that the daemon reads each form and that the kernel agrees where it has an opinion.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::xattr;

/// The xattr that marks a directory opaque in kernel format.
pub const TRUSTED_OPAQUE: &str = "trusted.overlay.opaque";
/// The unprivileged-mount variant of the opaque marker.
pub const USER_OPAQUE: &str = "user.overlay.opaque";
/// The xattr-whiteout marker (a zero-size file carrying it is a whiteout).
pub const TRUSTED_WHITEOUT: &str = "trusted.overlay.whiteout";
/// Kernel's redirect xattr for renamed directories.
pub const TRUSTED_REDIRECT: &str = "trusted.overlay.redirect";

fn cpath(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))
}

/// `mknod(path, mode, dev)`: fifos, sockets' cousins and device nodes.
pub fn mknod(path: &Path, mode: libc::mode_t, dev: libc::dev_t) -> io::Result<()> {
    let p = cpath(path)?;
    // SAFETY: valid NUL-terminated path.
    let r = unsafe { libc::mknod(p.as_ptr(), mode, dev) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A kernel whiteout: character device 0/0.
pub fn whiteout_chardev(path: &Path) -> io::Result<()> {
    mknod(path, libc::S_IFCHR, libc::makedev(0, 0))
}

/// An xattr whiteout: a zero-size file with `trusted.overlay.whiteout`; the kernel only
/// honours it when its parent carries `trusted.overlay.opaque=x` (set here too).
pub fn whiteout_xattr(path: &Path) -> io::Result<()> {
    fs::write(path, b"")?;
    xattr::set(path, TRUSTED_WHITEOUT, b"")?;
    if let Some(parent) = path.parent()
        && xattr::get(parent, TRUSTED_OPAQUE)?.is_none()
    {
        xattr::set(parent, TRUSTED_OPAQUE, b"x")?;
    }
    Ok(())
}

/// An OCI whiteout: an empty file named `.wh.NAME` next to where NAME would be.
pub fn whiteout_oci(path: &Path) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other("no file name"))?;
    let parent = path.parent().ok_or_else(|| io::Error::other("no parent"))?;
    let mut wh = std::ffi::OsString::from(".wh.");
    wh.push(name);
    fs::write(parent.join(wh), b"")
}

/// Kernel opaque dir: `trusted.overlay.opaque=y`.
pub fn opaque_trusted(dir: &Path) -> io::Result<()> {
    xattr::set(dir, TRUSTED_OPAQUE, b"y")
}

/// Unprivileged opaque dir: `user.overlay.opaque=y`.
pub fn opaque_user(dir: &Path) -> io::Result<()> {
    xattr::set(dir, USER_OPAQUE, b"y")
}

/// OCI opaque dir: an empty `.wh..wh..opq` file inside it.
pub fn opaque_oci(dir: &Path) -> io::Result<()> {
    fs::write(dir.join(".wh..wh..opq"), b"")
}

/// Writes a file (creating parents) with the given mode and an old, fixed mtime, so
/// snapshots can compare its times.
pub fn file(path: &Path, content: &[u8], mode: u32) -> io::Result<()> {
    if let Some(p) = path.parent() {
        fs::create_dir_all(p)?;
    }
    fs::write(path, content)?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    set_old_times(path, 500_000_000)
}

/// Creates a directory (and parents) with the given mode.
pub fn dir(path: &Path, mode: u32) -> io::Result<()> {
    fs::create_dir_all(path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

/// Sets atime and mtime (not following symlinks) to `secs` seconds past the epoch.
pub fn set_old_times(path: &Path, secs: i64) -> io::Result<()> {
    let p = cpath(path)?;
    let ts = [
        libc::timespec {
            tv_sec: secs,
            tv_nsec: 0,
        },
        libc::timespec {
            tv_sec: secs,
            tv_nsec: 0,
        },
    ];
    // SAFETY: valid path and a two-element timespec array.
    let r = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            p.as_ptr(),
            ts.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `lchown`.
pub fn lchown(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
}

/// Copies a tree with everything (`cp -a`: modes, owners, times, xattrs incl. trusted.*,
/// device nodes, hardlinks), so two stacks can start from byte-identical layers.
pub fn copy_tree(src: &Path, dst: &Path) -> io::Result<()> {
    // Reading a file or directory moves its atime (relatime), which would make a second
    // copy of the same template differ from the first: put the source's times back.
    let mut times = Vec::new();
    record_times(src, &mut times)?;
    let result = cp_a(src, dst);
    for (path, atime, mtime) in times.iter().rev() {
        set_times(path, *atime, *mtime)?;
    }
    result
}

/// A path with its (atime, mtime), each as (seconds, nanoseconds).
type Times = (std::path::PathBuf, (i64, i64), (i64, i64));

fn record_times(path: &Path, out: &mut Vec<Times>) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::symlink_metadata(path)?;
    out.push((
        path.to_path_buf(),
        (md.atime(), md.atime_nsec()),
        (md.mtime(), md.mtime_nsec()),
    ));
    if md.is_dir() {
        for entry in std::fs::read_dir(path)? {
            record_times(&entry?.path(), out)?;
        }
    }
    Ok(())
}

fn set_times(path: &Path, atime: (i64, i64), mtime: (i64, i64)) -> io::Result<()> {
    let c = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()))
        .map_err(io::Error::other)?;
    let ts = [
        libc::timespec {
            tv_sec: atime.0,
            tv_nsec: atime.1,
        },
        libc::timespec {
            tv_sec: mtime.0,
            tv_nsec: mtime.1,
        },
    ];
    // SAFETY: valid C string and two timespecs.
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            ts.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn cp_a(src: &Path, dst: &Path) -> io::Result<()> {
    let out = std::process::Command::new("cp")
        .arg("-a")
        .arg("--no-target-directory")
        .arg(src)
        .arg(dst)
        .output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "cp -a {} {}: {}",
            src.display(),
            dst.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}
