//! The monitor: one process per container, outside it, that outlives the command
//! which created the container. It creates the cgroups, clones PID 1 into the new
//! namespaces, waits on the start fifo, and — being PID 1's parent — is the one that
//! learns the exit code and records it in the state file, so a detached container's
//! exit code survives every CLI process.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sched::CloneFlags;

use crate::error::{Error, Result};
use crate::linux::namespaces;
use crate::process::channel::{self, Channel, Msg};
use crate::process::fork::{pidfd_open, wait_code};
use crate::process::init::{self, ContainerCtx};
use crate::state::{self, State, Status, files};

/// What the monitor does with the pty master when the process has a terminal.
pub enum TerminalSink {
    /// Hand it to the caller over the report channel (foreground `run -t`).
    Caller,
    /// Send it to a runc-style console socket.
    ConsoleSocket(PathBuf),
    /// Copy everything the process writes to the monitor's stdout (the log file).
    Log,
}

/// Monitor settings beyond the container itself.
pub struct MonitorOpts {
    /// Start the process right after setup (`run`), instead of waiting for `start`.
    pub auto_start: bool,
    /// Where a terminal's master goes.
    pub terminal: TerminalSink,
}

/// The monitor's main function (in a freshly forked process); returns its exit code,
/// which is the container's.
pub fn run(ctx: ContainerCtx, mut st: State, opts: MonitorOpts, report: Channel) -> i32 {
    match monitor(&ctx, &mut st, &opts, &report) {
        Ok(code) => code,
        Err(e) => {
            let _ = report.send(&Msg::Error(e.to_string()));
            st.status = Status::Stopped;
            st.error = Some(e.to_string());
            st.finished = Some(state::now());
            let _ = st.save(&ctx.dir);
            1
        }
    }
}

fn monitor(
    ctx: &ContainerCtx,
    st: &mut State,
    opts: &MonitorOpts,
    report: &Channel,
) -> Result<i32> {
    let me = std::process::id() as i32;
    st.monitor_pid = Some(me);
    st.monitor_start_time = state::process_start_time(me);
    let resources = ctx
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().clone());
    let devices = ctx
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().clone())
        .unwrap_or_default();
    ctx.cgroups.create(resources.as_ref(), &devices)?;
    for (flag, path) in &ctx.plan.join {
        if *flag == CloneFlags::CLONE_NEWPID {
            namespaces::join(*flag, path)?;
        }
    }
    let (mon_end, init_end) = channel::pair()?;
    crate::process::fork::flush_std();
    // SAFETY: the monitor is single-threaded; the child only runs init code and exits.
    let pid = unsafe { namespaces::clone_fork(ctx.plan.new)? };
    if pid == 0 {
        drop(mon_end);
        // PID 1 must not hold the caller's end open: the caller waits for it to close.
        // SAFETY: closing an fd this forked child owns a copy of.
        unsafe { libc::close(report.raw()) };
        let code = init::run(ctx, init_end);
        // SAFETY: leave without running the parent's destructors.
        unsafe { libc::_exit(code) }
    }
    drop(init_end);
    let pidfd = pidfd_open(pid)?;
    st.pid = Some(pid);
    st.pid_start_time = state::process_start_time(pid);
    st.save(&ctx.dir)?;
    if let Err(e) = ctx.cgroups.add(pid) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = wait_code(pid);
        return Err(e);
    }
    mon_end.send(&Msg::Go)?;
    let master = match mon_end.recv()? {
        Some((Msg::Ready { .. }, fd)) => fd,
        Some((Msg::Error(e), _)) => {
            let _ = wait_code(pid);
            return Err(Error::Setup(e));
        }
        _ => {
            let code = wait_code(pid)?;
            return Err(Error::Setup(format!(
                "the container's init exited during setup (code {code})"
            )));
        }
    };
    let fifo = if opts.auto_start {
        None
    } else {
        Some(open_start_fifo(ctx)?)
    };
    st.status = Status::Created;
    st.save(&ctx.dir)?;

    let mut pump = None;
    match (&master, &opts.terminal) {
        (Some(m), TerminalSink::Caller) => {
            report.send_with_fd(&Msg::Ready { pid }, Some(m.as_raw_fd()))?
        }
        (Some(m), TerminalSink::ConsoleSocket(path)) => {
            let sock = std::os::unix::net::UnixStream::connect(path).map_err(Error::io(
                format!("connect to console socket {}", path.display()),
            ))?;
            crate::linux::pty::send_fd(&sock, m.as_raw_fd(), "/dev/console")?;
            report.send(&Msg::Ready { pid })?;
        }
        (Some(_), TerminalSink::Log) => report.send(&Msg::Ready { pid })?,
        (None, _) => report.send(&Msg::Ready { pid })?,
    }
    if let (Some(_), TerminalSink::Log) = (&master, &opts.terminal) {
        pump = master;
    } else {
        drop(master);
    }

    if let Some(f) = &fifo
        && !wait_for_start(f, &pidfd, pump.as_ref())?
    {
        // PID 1 died (killed) before start.
        return finish(ctx, st, pid, pump);
    }
    mon_end.send(&Msg::Start)?;
    match mon_end.recv() {
        Ok(Some((Msg::Started { .. }, _))) => {
            st.status = Status::Running;
            st.started = Some(state::now());
            st.save(&ctx.dir)?;
            let _ = report.send(&Msg::Started { pid });
        }
        Ok(Some((Msg::Error(e), _))) => st.error = Some(e),
        _ => {}
    }
    drop(mon_end);
    let _ = std::fs::remove_file(ctx.dir.join(files::START_FIFO));
    finish(ctx, st, pid, pump)
}

/// Opens the start fifo; done before reporting "created" so `start` always finds a reader.
fn open_start_fifo(ctx: &ContainerCtx) -> Result<std::fs::File> {
    let fifo_path = ctx.dir.join(files::START_FIFO);
    // O_RDWR never blocks on a fifo and keeps it from reporting hang-ups.
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo_path)
        .map_err(Error::io(format!("open {}", fifo_path.display())))
}

/// Waits until `start` writes to the fifo (true) or PID 1 dies (false).
fn wait_for_start(fifo: &std::fs::File, pidfd: &OwnedFd, pump: Option<&OwnedFd>) -> Result<bool> {
    loop {
        let mut fds = vec![
            PollFd::new(fifo.as_fd(), PollFlags::POLLIN),
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
        ];
        if let Some(p) = pump {
            fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(Error::sys("poll")(e)),
            Ok(_) => {}
        }
        let ready = |i: usize| {
            fds.get(i)
                .and_then(|f| f.revents())
                .is_some_and(|r| !r.is_empty())
        };
        if ready(1) {
            return Ok(false);
        }
        if ready(2)
            && let Some(p) = pump
        {
            copy_once(p);
        }
        if ready(0) {
            let mut b = [0u8; 1];
            let _ = nix::unistd::read(fifo, &mut b);
            return Ok(true);
        }
    }
}

/// Copies one chunk from the pty master to stdout; false at end of output.
fn copy_once(master: &OwnedFd) -> bool {
    let mut buf = [0u8; 8192];
    match nix::unistd::read(master, &mut buf) {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            let _ = nix::unistd::write(std::io::stdout(), &buf[..n]);
            true
        }
    }
}

/// Waits for PID 1 to exit (copying terminal output meanwhile) and records the exit.
fn finish(ctx: &ContainerCtx, st: &mut State, pid: i32, pump: Option<OwnedFd>) -> Result<i32> {
    if let Some(p) = &pump {
        while copy_once(p) {}
    }
    let code = wait_code(pid)?;
    st.status = Status::Stopped;
    st.exit_code = Some(code);
    st.finished = Some(state::now());
    st.save(&ctx.dir)?;
    let _ = pump;
    Ok(code)
}
