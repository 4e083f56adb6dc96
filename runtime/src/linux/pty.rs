//! Pseudo-terminals: opened inside the container (from its own devpts instance, so
//! `tty` names a device that exists there), made the process's controlling terminal,
//! and the master handed to whoever relays it, over a unix socket.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use nix::fcntl::OFlag;
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};

use crate::error::{Error, Result};

/// A freshly opened pty: the master and the path and fd of its slave.
pub struct Pty {
    /// The master side (relayed by the caller).
    pub master: OwnedFd,
    /// The slave side (the container process's stdio).
    pub slave: OwnedFd,
    /// The slave's path, e.g. `/dev/pts/0`.
    pub slave_path: String,
}

/// Opens a pty pair from `/dev/ptmx` of the current mount namespace.
pub fn open() -> Result<Pty> {
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(Error::sys("open /dev/ptmx"))?;
    nix::pty::grantpt(&master).map_err(Error::sys("grantpt"))?;
    nix::pty::unlockpt(&master).map_err(Error::sys("unlockpt"))?;
    let slave_path = nix::pty::ptsname_r(&master).map_err(Error::sys("ptsname"))?;
    let slave = nix::fcntl::open(
        slave_path.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(Error::sys(format!("open {slave_path}")))?;
    // SAFETY: master's fd is owned by the PtyMaster we consume here.
    let master = unsafe { OwnedFd::from_raw_fd(master_into_raw(master)) };
    Ok(Pty {
        master,
        slave,
        slave_path,
    })
}

fn master_into_raw(m: nix::pty::PtyMaster) -> RawFd {
    use std::os::fd::IntoRawFd;
    m.into_raw_fd()
}

/// Makes `slave` the controlling terminal and stdin/stdout/stderr of the calling
/// process, which must be a session leader (after `setsid`).
pub fn make_controlling(slave: &OwnedFd) -> Result<()> {
    // SAFETY: TIOCSCTTY takes an int argument.
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } < 0 {
        return Err(Error::io("make the pty the controlling terminal")(
            std::io::Error::last_os_error(),
        ));
    }
    for target in 0..3 {
        // SAFETY: dup2 onto the standard fds.
        if unsafe { libc::dup2(slave.as_raw_fd(), target) } < 0 {
            return Err(Error::io("dup2 pty")(std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// Copies the window size of terminal `from` to `to`.
pub fn copy_winsize(from: RawFd, to: RawFd) {
    // SAFETY: winsize is plain data; the ioctls only read/write it.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(from, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(to, libc::TIOCSWINSZ, &ws);
        }
    }
}

/// Sets the window size of a pty.
pub fn set_winsize(fd: RawFd, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize we own.
    unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) };
}

/// Sends `fd` over a unix socket with a one-line tag (the runc console-socket protocol
/// sends the pty master with its name the same way).
pub fn send_fd(sock: &UnixStream, fd: RawFd, tag: &str) -> Result<()> {
    let fds = [fd];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(tag.as_bytes())],
        &cmsg,
        MsgFlags::empty(),
        None,
    )
    .map_err(Error::sys("send pty master"))?;
    Ok(())
}

/// Receives one fd sent with [`send_fd`].
pub fn recv_fd(sock: &UnixStream) -> Result<OwnedFd> {
    let mut buf = [0u8; 256];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(Error::sys("receive pty master"))?;
    for c in msg.cmsgs().map_err(Error::sys("read control message"))? {
        if let ControlMessageOwned::ScmRights(fds) = c
            && let Some(fd) = fds.first()
        {
            // SAFETY: the kernel just installed this fd for us.
            return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
        }
    }
    Err(Error::Setup("no pty master received".into()))
}
