//! The foreground side of `run` and `exec`: pass the caller's signals on to the
//! container process, relay a pty between the caller's terminal and the container,
//! and return the exit code when the waited-for child ends.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::error::{Error, Result};
use crate::linux::pty;
use crate::process::fork::exit_code;

/// Signals a foreground caller passes on to the container.
const FORWARDED: &[Signal] = &[
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGCONT,
];

/// The signal set handled through the signalfd.
fn handled() -> SigSet {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(*s);
    }
    set.add(Signal::SIGCHLD);
    set.add(Signal::SIGWINCH);
    set
}

/// Blocks the relayed signals in the caller; do it before forking the child so none
/// is lost in between. The child side must call `reset_signals` (exec does).
pub fn block_signals() -> Result<()> {
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&handled()), None)
        .map_err(Error::sys("block signals"))
}

/// Restores the caller's signal mask.
fn unblock_signals() {
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&handled()), None);
}

/// Puts the caller's terminal in raw mode while a pty is relayed; restores it on drop.
struct RawMode {
    saved: Option<termios::Termios>,
}

impl RawMode {
    fn enter() -> RawMode {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            termios::cfmakeraw(&mut raw);
            let _ = termios::tcsetattr(stdin.as_fd(), termios::SetArg::TCSANOW, &raw);
        }
        RawMode { saved }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), termios::SetArg::TCSANOW, t);
        }
    }
}

/// Runs the foreground loop until our child `child` exits; signals go to `target`
/// (the container process's host pid). With `master`, the pty is relayed to the
/// caller's stdin/stdout. Expects [`block_signals`] to have been called.
pub fn foreground(child: i32, target: i32, master: Option<OwnedFd>) -> Result<i32> {
    let result = foreground_loop(child, target, master);
    unblock_signals();
    result
}

fn foreground_loop(child: i32, target: i32, master: Option<OwnedFd>) -> Result<i32> {
    let sfd = SignalFd::with_flags(&handled(), SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(Error::sys("signalfd"))?;
    let _raw = master.as_ref().map(|m| {
        pty::copy_winsize(std::io::stdin().as_raw_fd(), m.as_raw_fd());
        RawMode::enter()
    });
    let stdin = std::io::stdin();
    let mut stdin_open = master.is_some();
    let mut master_open = master.is_some();
    loop {
        // The child may have exited before the signalfd existed.
        if let Some(code) = try_reap(child)? {
            if let Some(m) = &master {
                drain(m);
            }
            return Ok(code);
        }
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        let mut idx_stdin = None;
        let mut idx_master = None;
        if let Some(m) = &master {
            if master_open {
                idx_master = Some(fds.len());
                fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
            }
            if stdin_open {
                idx_stdin = Some(fds.len());
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(Error::sys("poll")(e)),
            Ok(_) => {}
        }
        let ready = |i: Option<usize>| {
            i.and_then(|i| fds.get(i))
                .and_then(|f| f.revents())
                .is_some_and(|r| !r.is_empty())
        };
        let (m_ready, s_ready, sig_ready) = (ready(idx_master), ready(idx_stdin), ready(Some(0)));
        drop(fds);
        if let (true, Some(m)) = (m_ready, &master) {
            let mut buf = [0u8; 8192];
            match nix::unistd::read(m, &mut buf) {
                Ok(0) | Err(_) => master_open = false,
                Ok(n) => write_all(std::io::stdout().as_raw_fd(), &buf[..n]),
            }
        }
        if let (true, Some(m)) = (s_ready, &master) {
            let mut buf = [0u8; 8192];
            match nix::unistd::read(&stdin, &mut buf) {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(n) => write_all(m.as_raw_fd(), &buf[..n]),
            }
        }
        if sig_ready {
            while let Ok(Some(info)) = sfd.read_signal() {
                let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else {
                    continue;
                };
                match sig {
                    Signal::SIGCHLD => {}
                    Signal::SIGWINCH => {
                        if let Some(m) = &master {
                            pty::copy_winsize(std::io::stdin().as_raw_fd(), m.as_raw_fd());
                        }
                    }
                    s => {
                        let _ = nix::sys::signal::kill(Pid::from_raw(target), s);
                    }
                }
            }
        }
    }
}

/// Reaps `child` if it exited.
fn try_reap(child: i32) -> Result<Option<i32>> {
    match waitpid(Pid::from_raw(child), Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::StillAlive) => Ok(None),
        Ok(st) => Ok(exit_code(st)),
        Err(nix::Error::EINTR) => Ok(None),
        Err(e) => Err(Error::sys(format!("wait for {child}"))(e)),
    }
}

/// Copies what is left in the pty after the process exited.
fn drain(master: &OwnedFd) {
    let _ = nix::fcntl::fcntl(
        master,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    );
    let mut buf = [0u8; 8192];
    while let Ok(n) = nix::unistd::read(master, &mut buf) {
        if n == 0 {
            break;
        }
        write_all(std::io::stdout().as_raw_fd(), &buf[..n]);
    }
}

fn write_all(fd: i32, mut data: &[u8]) {
    while !data.is_empty() {
        // SAFETY: writing from a buffer we own to an fd we hold.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n <= 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        data = &data[n as usize..];
    }
}
