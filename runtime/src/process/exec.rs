//! `exec`: a new process in a running container. A helper process joins the
//! container's cgroups and namespaces (`setns`), then forks the process itself so it
//! lands inside the PID namespace, and waits for it to pass its exit code on.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::unistd::{ForkResult, fork};
use oci_spec::runtime::Process;

use crate::cgroups::Cgroups;
use crate::error::{Error, Result};
use crate::linux::namespaces::{self, NamespacePlan};
use crate::linux::{process as proc_attrs, pty};
use crate::process::channel::{self, Channel, Msg};
use crate::process::fork::{flush_std, spawn_detached, wait_code};
use crate::process::relay;

/// Runs `process` inside the container whose PID 1 is `init_pid`. In the foreground
/// (default) it relays signals (and the pty) and returns the exit code; detached it
/// returns 0 once the process runs.
pub fn exec(
    init_pid: i32,
    plan: &NamespacePlan,
    cgroups: &Cgroups,
    process: &Process,
    detach: bool,
) -> Result<i32> {
    // Open every namespace first: after joining the mount namespace, /proc is the
    // container's.
    let mut ns = Vec::new();
    for (flag, path) in namespaces::of_process(init_pid, plan) {
        let f =
            std::fs::File::open(&path).map_err(Error::io(format!("open {}", path.display())))?;
        ns.push((flag, f));
    }
    let (caller_end, helper_end) = channel::pair()?;
    if detach {
        let caller_fd = caller_end.raw();
        spawn_detached(|| {
            // SAFETY: the helper closes its copy of the caller's end.
            unsafe { libc::close(caller_fd) };
            helper(&ns, cgroups, process, &helper_end)
        })?;
        drop(helper_end);
        return match caller_end.recv()? {
            Some((Msg::Started { .. }, _)) => Ok(0),
            Some((Msg::Error(e), _)) => Err(Error::Setup(e)),
            _ => Err(Error::Setup("the exec helper exited early".into())),
        };
    }
    relay::block_signals()?;
    flush_std();
    // SAFETY: the runtime is single-threaded when it forks.
    let child = match unsafe { fork() }.map_err(Error::sys("fork"))? {
        ForkResult::Child => {
            drop(caller_end);
            let code = helper(&ns, cgroups, process, &helper_end);
            // SAFETY: leave the forked helper without the parent's destructors.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => child.as_raw(),
    };
    drop(helper_end);
    let (target, master) = match caller_end.recv()? {
        Some((Msg::Started { pid }, fd)) => (pid, fd),
        Some((Msg::Error(e), _)) => {
            let _ = wait_code(child);
            return Err(Error::Setup(e));
        }
        _ => return wait_code(child),
    };
    relay::foreground(child, target, master)
}

/// The helper: joins, forks the process, reports its pid, waits for it.
fn helper(
    ns: &[(nix::sched::CloneFlags, std::fs::File)],
    cgroups: &Cgroups,
    process: &Process,
    chan: &Channel,
) -> i32 {
    let fail = |e: Error| {
        let _ = chan.send(&Msg::Error(e.to_string()));
        1
    };
    if let Err(e) = cgroups.add(std::process::id() as i32) {
        return fail(e);
    }
    for (flag, f) in ns {
        if let Err(e) = nix::sched::setns(f, *flag) {
            return fail(Error::sys(format!("setns {flag:?}"))(e));
        }
    }
    let (pty_master, slave) = if process.terminal().unwrap_or(false) {
        match pty::open() {
            Ok(p) => (Some(p.master), Some(p.slave)),
            Err(e) => return fail(e),
        }
    } else {
        (None, None)
    };
    if let Err(e) = proc_attrs::set_rlimits(process) {
        return fail(e);
    }
    // SAFETY: the helper is single-threaded.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            drop(pty_master);
            proc_attrs::exec_process(process, slave)
        }
        Ok(ForkResult::Parent { child }) => {
            drop(slave);
            let sent = chan.send_with_fd(
                &Msg::Started {
                    pid: child.as_raw(),
                },
                pty_master.as_ref().map(|m: &OwnedFd| m.as_raw_fd()),
            );
            drop(pty_master);
            let _ = sent;
            wait_code(child.as_raw()).unwrap_or(1)
        }
        Err(e) => fail(Error::sys("fork")(e)),
    }
}
