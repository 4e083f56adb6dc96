//! The container's PID 1. Cloned by the monitor into the new namespaces, it builds the
//! container's filesystem, waits for `start`, then forks the user process and stays
//! as a tiny init (like tini/catatonit): it passes every signal on to that process,
//! reaps orphaned zombies, and exits with the process's exit code (128+N when a
//! signal N killed it). Its exit takes every other process of the PID namespace down.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};
use oci_spec::runtime::Spec;

use crate::cgroups::Cgroups;
use crate::error::{Error, Result};
use crate::linux::namespaces::{self, NamespacePlan};
use crate::linux::{devices, mounts, net, process as proc_attrs, pty};
use crate::paths::secure_join;
use crate::process::channel::{Channel, Msg};
use crate::process::fork::exit_code;

/// Everything the monitor and PID 1 need to know about the container being made.
#[derive(Clone)]
pub struct ContainerCtx {
    /// Container id.
    pub id: String,
    /// Its state directory.
    pub dir: PathBuf,
    /// The bundle directory (relative bind sources resolve against it).
    pub bundle: PathBuf,
    /// Absolute rootfs path.
    pub rootfs: PathBuf,
    /// The parsed config.json.
    pub spec: Spec,
    /// Namespaces to create and join.
    pub plan: NamespacePlan,
    /// The container's cgroups.
    pub cgroups: Cgroups,
}

/// Signals PID 1 must not block: the synchronous ones, which the kernel forces anyway.
const SYNCHRONOUS: &[Signal] = &[
    Signal::SIGFPE,
    Signal::SIGILL,
    Signal::SIGSEGV,
    Signal::SIGBUS,
    Signal::SIGABRT,
    Signal::SIGTRAP,
    Signal::SIGSYS,
];

/// PID 1's main function; returns its exit code.
pub fn run(ctx: &ContainerCtx, chan: Channel) -> i32 {
    // Wait until the monitor has put us into our cgroups.
    match chan.recv() {
        Ok(Some((Msg::Go, _))) => {}
        _ => return 1,
    }
    let terminal = match setup(ctx) {
        Ok(t) => t,
        Err(e) => {
            let _ = chan.send(&Msg::Error(e.to_string()));
            return 1;
        }
    };
    let pid = std::process::id() as i32; // 1 in a new PID namespace; the monitor knows the host pid
    let sent = match &terminal {
        Some(p) => chan.send_with_fd(&Msg::Ready { pid }, Some(p.master.as_raw_fd())),
        None => chan.send(&Msg::Ready { pid }),
    };
    if sent.is_err() {
        return 1;
    }
    let slave = terminal.map(|p| {
        drop(p.master);
        p.slave
    });
    match chan.recv() {
        Ok(Some((Msg::Start, _))) => {}
        _ => return 1,
    }
    supervise(ctx, chan, slave)
}

/// Builds the container: mounts, devices, pivot_root, hostname, network, masks.
/// Returns the pty when the process wants a terminal.
fn setup(ctx: &ContainerCtx) -> Result<Option<pty::Pty>> {
    let spec = &ctx.spec;
    if ctx.plan.new_cgroup {
        nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP)
            .map_err(Error::sys("unshare cgroup namespace"))?;
    }
    for (flag, path) in &ctx.plan.join {
        if *flag != CloneFlags::CLONE_NEWPID {
            namespaces::join(*flag, path)?;
        }
    }
    let linux = spec.linux().clone().unwrap_or_default();
    let process = spec
        .process()
        .clone()
        .ok_or_else(|| Error::Setup("config.json has no process".into()))?;

    mounts::prepare_rootfs(spec, &ctx.rootfs)?;
    mounts::mount_all(spec, &ctx.bundle, &ctx.rootfs, &ctx.cgroups)?;
    let dev_is_tmpfs = spec
        .mounts()
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .any(|m| m.destination() == Path::new("/dev") && m.typ().as_deref() == Some("tmpfs"));
    if dev_is_tmpfs {
        devices::create_devices(&ctx.rootfs, linux.devices().as_deref().unwrap_or(&[]))?;
    }
    // Docker creates a missing working directory; so do we (as root, before the
    // user switch).
    let cwd = secure_join(&ctx.rootfs, process.cwd())?;
    if !cwd.exists() {
        std::fs::create_dir_all(&cwd)
            .map_err(Error::io(format!("create cwd {}", cwd.display())))?;
    }
    let console = if process.terminal().unwrap_or(false) {
        let p = secure_join(&ctx.rootfs, Path::new("/dev/console"))?;
        if !p.exists() {
            std::fs::File::create(&p).map_err(Error::io(format!("create {}", p.display())))?;
        }
        Some(p)
    } else {
        None
    };

    mounts::pivot_root(&ctx.rootfs)?;

    for (key, value) in linux.sysctl().clone().unwrap_or_default() {
        let p = PathBuf::from("/proc/sys").join(key.replace('.', "/"));
        std::fs::write(&p, value).map_err(Error::io(format!("sysctl {key}")))?;
    }
    if ctx.plan.new_net() {
        net::loopback_up()?;
    }
    if ctx.plan.new_uts() {
        if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
            nix::unistd::sethostname(h).map_err(Error::sys(format!("sethostname {h}")))?;
        }
        if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
            // SAFETY: setdomainname reads len bytes from a buffer we own.
            if unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) } != 0 {
                return Err(Error::io("setdomainname")(std::io::Error::last_os_error()));
            }
        }
    }
    let terminal = if console.is_some() {
        let p = pty::open()?;
        nix::mount::mount(
            Some(p.slave_path.as_str()),
            "/dev/console",
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(Error::sys("bind the pty to /dev/console"))?;
        Some(p)
    } else {
        None
    };
    mounts::readonly_paths(linux.readonly_paths().as_deref().unwrap_or(&[]))?;
    mounts::mask_paths(linux.masked_paths().as_deref().unwrap_or(&[]))?;
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        mounts::readonly_root()?;
    }
    if let Some(adj) = process.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .map_err(Error::io("write oom_score_adj"))?;
    }
    proc_attrs::set_rlimits(&process)?;
    Ok(terminal)
}

/// Forks the user process and acts as init until it exits.
fn supervise(ctx: &ContainerCtx, chan: Channel, slave: Option<OwnedFd>) -> i32 {
    let mut blocked = SigSet::all();
    for s in SYNCHRONOUS {
        blocked.remove(*s);
    }
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&blocked), None);
    let Some(process) = ctx.spec.process().clone() else {
        return 1;
    };
    // SAFETY: PID 1 is single-threaded.
    let child = match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            drop(chan);
            proc_attrs::exec_process(&process, slave)
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => {
            let _ = chan.send(&Msg::Error(format!("fork the container process: {e}")));
            return 1;
        }
    };
    drop(slave);
    let _ = chan.send(&Msg::Started {
        pid: child.as_raw(),
    });
    drop(chan);
    loop {
        let sig = match blocked.wait() {
            Ok(s) => s,
            Err(_) => continue,
        };
        if sig == Signal::SIGCHLD {
            if let Some(code) = reap(child) {
                return code;
            }
        } else {
            let _ = nix::sys::signal::kill(child, sig);
        }
    }
}

/// Reaps every exited child; returns the main child's exit code once it is among them.
fn reap(main: Pid) -> Option<i32> {
    let mut result = None;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return result,
            Ok(st) => {
                if st.pid() == Some(main) {
                    result = exit_code(st);
                }
            }
        }
    }
}
