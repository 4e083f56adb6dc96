//! File handles (`name_to_handle_at`) in overlayfs' on-disk "origin" format.
//!
//! Kernel overlayfs records, on every copied-up entry, a handle of the lower file it came
//! from (`trusted.overlay.origin`), and names hard-link index entries after that handle.
//! Writing the same bytes lets the kernel read an upper layer made here as its own:
//! copied-up files keep their inode numbers and hard-link groups stay one file.

use std::ffi::OsStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

use super::{SysResult, cstr};

/// `FS_IOC_GETFSUUID`: `_IOR(0x15, 0, struct fsuuid2)`, with `sizeof(fsuuid2) == 17`.
const FS_IOC_GETFSUUID: libc::c_ulong = 0x8011_1500;
/// Largest handle the kernel hands out (`MAX_HANDLE_SZ`).
const MAX_HANDLE_SZ: usize = 128;
/// `struct ovl_fb` header: version, magic, len, flags, type, uuid[16].
const FB_HEADER: usize = 21;
const OVL_FH_VERSION: u8 = 0;
const OVL_FH_MAGIC: u8 = 0xfb;
/// `OVL_FH_FLAG_BIG_ENDIAN` on big-endian machines, 0 on little-endian ones.
const OVL_FH_FLAG_CPU_ENDIAN: u8 = if cfg!(target_endian = "big") { 1 } else { 0 };

/// The UUID of the filesystem holding `fd`.
pub fn fs_uuid(fd: BorrowedFd<'_>) -> SysResult<[u8; 16]> {
    let mut buf = [0u8; 17];
    // SAFETY: the ioctl writes at most 17 bytes into `buf`.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), FS_IOC_GETFSUUID, buf.as_mut_ptr()) };
    if rc < 0 {
        return Err(Errno::last());
    }
    let mut uuid = [0u8; 16];
    let len = (buf[0] as usize).min(16);
    uuid[..len].copy_from_slice(&buf[1..1 + len]);
    Ok(uuid)
}

/// The overlayfs origin bytes (`struct ovl_fb`) of `name` in directory `dir`, on a
/// filesystem with `uuid`.
pub fn origin_of(dir: BorrowedFd<'_>, name: &OsStr, uuid: &[u8; 16]) -> SysResult<Vec<u8>> {
    let path = cstr(name)?;
    // struct file_handle { u32 handle_bytes; i32 handle_type; u8 f_handle[]; }
    let mut buf = vec![0u8; 8 + MAX_HANDLE_SZ];
    buf[..4].copy_from_slice(&(MAX_HANDLE_SZ as u32).to_ne_bytes());
    let mut mount_id: libc::c_int = 0;
    let flags = if name.is_empty() {
        libc::AT_EMPTY_PATH
    } else {
        0
    };
    // SAFETY: `buf` is a file_handle with room for MAX_HANDLE_SZ bytes of handle.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_name_to_handle_at,
            dir.as_raw_fd(),
            path.as_ptr(),
            buf.as_mut_ptr(),
            &mut mount_id as *mut libc::c_int,
            flags,
        )
    };
    if rc < 0 {
        return Err(Errno::last());
    }
    let bytes = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    let kind = i32::from_ne_bytes([buf[4], buf[5], buf[6], buf[7]]);
    if bytes > MAX_HANDLE_SZ || FB_HEADER + bytes > u8::MAX as usize || !(0..=255).contains(&kind) {
        return Err(Errno::EOVERFLOW);
    }
    let mut fb = Vec::with_capacity(FB_HEADER + bytes);
    fb.extend_from_slice(&[
        OVL_FH_VERSION,
        OVL_FH_MAGIC,
        (FB_HEADER + bytes) as u8,
        OVL_FH_FLAG_CPU_ENDIAN,
        kind as u8,
    ]);
    fb.extend_from_slice(uuid);
    fb.extend_from_slice(&buf[8..8 + bytes]);
    Ok(fb)
}

/// Opens (`O_PATH`) the file an origin names, on the filesystem of `mount_fd`.
pub fn open_origin(mount_fd: BorrowedFd<'_>, fb: &[u8]) -> SysResult<OwnedFd> {
    if fb.len() < FB_HEADER || fb[1] != OVL_FH_MAGIC || fb[2] as usize != fb.len() {
        return Err(Errno::EINVAL);
    }
    let fid = &fb[FB_HEADER..];
    let mut buf = Vec::with_capacity(8 + fid.len());
    buf.extend_from_slice(&(fid.len() as u32).to_ne_bytes());
    buf.extend_from_slice(&(fb[4] as i32).to_ne_bytes());
    buf.extend_from_slice(fid);
    // SAFETY: `buf` is a well-formed file_handle.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_by_handle_at,
            mount_fd.as_raw_fd(),
            buf.as_ptr(),
            libc::O_PATH | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel just returned this descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// The UUID recorded in an origin.
pub fn origin_uuid(fb: &[u8]) -> Option<[u8; 16]> {
    fb.get(5..21)?.try_into().ok()
}

/// Lower-case hex, as overlayfs names index entries.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
