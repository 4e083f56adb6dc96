//! Process plumbing shared by the runtime's processes: fork variants, exit codes
//! from wait statuses, and pidfds to wait for processes that are not our children.

use std::os::fd::{FromRawFd, OwnedFd};

use nix::sys::wait::WaitStatus;
use nix::unistd::{ForkResult, fork};

use crate::error::{Error, Result};

/// The shell's exit code for a wait status: the code, or 128+N for signal N.
pub fn exit_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, c) => Some(c),
        WaitStatus::Signaled(_, s, _) => Some(128 + s as i32),
        _ => None,
    }
}

/// Waits for our child `pid` and returns its exit code.
pub fn wait_code(pid: i32) -> Result<i32> {
    loop {
        match nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None) {
            Ok(st) => {
                if let Some(c) = exit_code(st) {
                    return Ok(c);
                }
            }
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(Error::sys(format!("wait for process {pid}"))(e)),
        }
    }
}

/// Runs `f` in a grandchild that is not our child (double fork), so a long-lived
/// caller never accumulates zombies of detached processes. `f` must not return.
pub fn spawn_detached(f: impl FnOnce() -> i32) -> Result<()> {
    flush_std();
    // SAFETY: the runtime is single-threaded when it forks.
    match unsafe { fork() }.map_err(Error::sys("fork"))? {
        ForkResult::Parent { child } => {
            wait_code(child.as_raw())?;
            Ok(())
        }
        ForkResult::Child => {
            // SAFETY: see above.
            let code = match unsafe { fork() } {
                Ok(ForkResult::Child) => {
                    let _ = nix::unistd::setsid();
                    f()
                }
                Ok(ForkResult::Parent { .. }) => 0,
                Err(_) => 1,
            };
            // SAFETY: leaving a forked child without running the parent's destructors.
            unsafe { libc::_exit(code) }
        }
    }
}

/// Flushes Rust's stdout/stderr buffers, so a fork does not print them twice.
pub fn flush_std() {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
}

/// A pidfd for `pid`: readable once the process exits, whoever its parent is.
pub fn pidfd_open(pid: i32) -> Result<OwnedFd> {
    // SAFETY: pidfd_open(2) with no flags.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(Error::io(format!("pidfd_open {pid}"))(
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: the kernel just returned this fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Waits until the process behind `pidfd` exits, or `timeout_ms` passes (-1: forever).
/// Returns whether it exited.
pub fn wait_pidfd(pidfd: &OwnedFd, timeout_ms: i32) -> bool {
    use std::os::fd::AsFd;
    let mut fds = [nix::poll::PollFd::new(
        pidfd.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    let timeout = if timeout_ms < 0 {
        nix::poll::PollTimeout::NONE
    } else {
        nix::poll::PollTimeout::try_from(timeout_ms).unwrap_or(nix::poll::PollTimeout::MAX)
    };
    loop {
        match nix::poll::poll(&mut fds, timeout) {
            Ok(0) => return false,
            Ok(_) => return true,
            Err(nix::Error::EINTR) => continue,
            Err(_) => return true,
        }
    }
}
