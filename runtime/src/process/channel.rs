//! The little protocol between the runtime's processes (caller, monitor, container
//! PID 1, exec helper): JSON messages over a SOCK_SEQPACKET socketpair, so every
//! read returns exactly one message, with an optional file descriptor attached
//! (the pty master).

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg,
    sendmsg, socketpair,
};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Every message the runtime's processes exchange.
#[derive(Debug, Serialize, Deserialize)]
pub enum Msg {
    /// monitor -> init: you are in your cgroups, set the container up.
    Go,
    /// init -> monitor -> caller: setup done; `pid` is PID 1's host pid.
    Ready {
        /// Host pid of the container's PID 1.
        pid: i32,
    },
    /// monitor -> init: start the user process.
    Start,
    /// init -> monitor, exec helper -> caller: the process runs with this host pid.
    Started {
        /// Host pid of the process.
        pid: i32,
    },
    /// Any direction: the sender failed and will exit.
    Error(String),
}

/// One end of a channel.
pub struct Channel {
    fd: OwnedFd,
}

/// Creates a connected pair of channels (close-on-exec, so an exec'd container
/// process never inherits one).
pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(Error::sys("socketpair"))?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    /// Sends a message.
    pub fn send(&self, msg: &Msg) -> Result<()> {
        self.send_with_fd(msg, None)
    }

    /// Sends a message with a file descriptor attached.
    pub fn send_with_fd(&self, msg: &Msg, fd: Option<RawFd>) -> Result<()> {
        let data = serde_json::to_vec(msg).map_err(|e| Error::Setup(e.to_string()))?;
        let fds: Vec<RawFd> = fd.into_iter().collect();
        let cmsg = [ControlMessage::ScmRights(&fds)];
        let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &cmsg };
        sendmsg::<()>(
            self.fd.as_raw_fd(),
            &[IoSlice::new(&data)],
            cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .map_err(Error::sys("send message"))?;
        Ok(())
    }

    /// Receives one message and any fd sent with it; `None` when the peer is gone
    /// (it exited or closed its end).
    pub fn recv(&self) -> Result<Option<(Msg, Option<OwnedFd>)>> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut space = nix::cmsg_space!([RawFd; 2]);
        let (len, fd) = loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            match recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(msg) => {
                    let mut fd = None;
                    if let Ok(cmsgs) = msg.cmsgs() {
                        for c in cmsgs {
                            if let ControlMessageOwned::ScmRights(fds) = c {
                                for f in fds {
                                    // SAFETY: the kernel installed these fds for us.
                                    let owned = unsafe { OwnedFd::from_raw_fd(f) };
                                    if fd.is_none() {
                                        fd = Some(owned);
                                    }
                                }
                            }
                        }
                    }
                    break (msg.bytes, fd);
                }
                Err(nix::Error::EINTR) => continue,
                Err(nix::Error::ECONNRESET) => return Ok(None),
                Err(e) => return Err(Error::sys("receive message")(e)),
            }
        };
        if len == 0 {
            return Ok(None);
        }
        let msg = serde_json::from_slice(&buf[..len])
            .map_err(|e| Error::Setup(format!("bad message from a runtime process: {e}")))?;
        Ok(Some((msg, fd)))
    }

    /// The raw fd, for poll.
    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
