//! inotify on layer directories: lets a test see what the daemon does to the layers
//! (whether it read a lower file, whether a copy-up appeared in upper by rename).
//!
//! Events are queued in the syscall that causes them, so once an operation on the
//! mount has returned, everything the daemon did for it is already in the queue.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// One inotify event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The watch it belongs to.
    pub wd: i32,
    /// `IN_*` bits.
    pub mask: u32,
    /// The name inside a watched directory (empty for the watched object itself).
    pub name: String,
}

/// A non-blocking inotify instance.
pub struct Inotify {
    fd: OwnedFd,
}

impl Inotify {
    /// A new instance.
    pub fn new() -> io::Result<Self> {
        // SAFETY: plain syscall; the fd is owned below.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor we own.
        Ok(Inotify {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Watches `path` for the `IN_*` events in `mask`; returns the watch descriptor.
    pub fn watch(&self, path: &Path, mask: u32) -> io::Result<i32> {
        let p = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))?;
        // SAFETY: valid fd and path.
        let wd = unsafe { libc::inotify_add_watch(self.fd.as_raw_fd(), p.as_ptr(), mask) };
        if wd < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(wd)
        }
    }

    /// Everything queued so far (empties the queue).
    pub fn drain(&self) -> Vec<Event> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // SAFETY: reading into a buffer of the given size.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                break;
            }
            let mut off = 0usize;
            let hdr = std::mem::size_of::<libc::inotify_event>();
            while off + hdr <= n as usize {
                // SAFETY: the kernel wrote a whole event at `off`; read it unaligned.
                let ev: libc::inotify_event =
                    unsafe { std::ptr::read_unaligned(buf[off..].as_ptr().cast()) };
                let name_bytes = &buf[off + hdr..off + hdr + ev.len as usize];
                let name = String::from_utf8_lossy(name_bytes)
                    .trim_end_matches('\0')
                    .to_string();
                out.push(Event {
                    wd: ev.wd,
                    mask: ev.mask,
                    name,
                });
                off += hdr + ev.len as usize;
            }
        }
        out
    }
}
