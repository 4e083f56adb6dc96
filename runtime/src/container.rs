//! The typed API over everything else: a [`Runtime`] rooted at a state directory
//! creates, starts, runs, signals, pauses, execs into and deletes containers. The
//! `ctr-runtime` CLI and imagectl's container commands are thin layers on top.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;
use oci_spec::runtime::{Process, Spec};

use crate::cgroups::Cgroups;
use crate::config::load_bundle;
use crate::error::{Error, Result};
use crate::linux::{mounts, namespaces};
use crate::process::channel::{self, Msg};
use crate::process::fork::{flush_std, pidfd_open, spawn_detached, wait_pidfd};
use crate::process::init::ContainerCtx;
use crate::process::monitor::{self, MonitorOpts, TerminalSink};
use crate::process::{exec as exec_mod, relay};
use crate::state::{self, State, Status, files};

/// How long `start` waits for the monitor to record that the process started. Far
/// above the usual milliseconds: the record is fsynced, which a busy disk can stall.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The default state directory (runc uses /run/runc).
pub const DEFAULT_ROOT: &str = "/run/ctr-runtime";

/// Where a detached container's stdout and stderr go.
#[derive(Debug, Clone, Default)]
pub enum Output {
    /// `<state dir>/<id>/container.log`.
    #[default]
    DefaultLog,
    /// Append to this file.
    Log(PathBuf),
    /// Discard.
    Null,
}

/// Options of [`Runtime::create`] and [`Runtime::run`].
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// The bundle directory (config.json + rootfs).
    pub bundle: PathBuf,
    /// Write PID 1's host pid here.
    pub pid_file: Option<PathBuf>,
    /// Where output goes when detached (ignored by a foreground `run`, which
    /// inherits the caller's stdio).
    pub output: Output,
    /// runc's console socket: the pty master is sent there when the process has a terminal.
    pub console_socket: Option<PathBuf>,
    /// Overrides `process.terminal` of config.json (`run -t`).
    pub terminal: Option<bool>,
}

/// Options of [`Runtime::exec`].
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// The command.
    pub args: Vec<String>,
    /// Extra `KEY=VALUE` variables, on top of the container's environment.
    pub env: Vec<String>,
    /// Working directory; the container's when unset.
    pub cwd: Option<PathBuf>,
    /// A `USER` string resolved against the container's rootfs; the container's user when unset.
    pub user: Option<String>,
    /// Allocate a pseudo-terminal (relayed to the caller's stdin/stdout).
    pub tty: bool,
    /// Return as soon as the process runs.
    pub detach: bool,
}

/// A container runtime whose state lives under one directory.
#[derive(Debug, Clone)]
pub struct Runtime {
    root: PathBuf,
}

/// Container ids become directory names: keep them to a safe alphabet.
fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidId(id.to_string()))
    }
}

impl Runtime {
    /// A runtime keeping its state under `root` (created on demand).
    pub fn new(root: impl Into<PathBuf>) -> Runtime {
        Runtime { root: root.into() }
    }

    /// The state directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn dir(&self, id: &str) -> Result<PathBuf> {
        check_id(id)?;
        Ok(self.root.join(id))
    }

    /// Creates a container from a bundle: namespaces, cgroups and mounts are set up and
    /// PID 1 waits for [`Runtime::start`]. Output goes to the log (see [`Output`]).
    pub fn create(&self, id: &str, opts: &CreateOptions) -> Result<State> {
        let (ctx, st) = self.prepare(id, opts)?;
        let (caller, mon) = channel::pair()?;
        let sink = match &opts.console_socket {
            Some(p) => TerminalSink::ConsoleSocket(p.clone()),
            None => TerminalSink::Log,
        };
        let log = st.log_path.clone();
        let ctx2 = ctx.clone();
        let st2 = st.clone();
        let caller_fd = caller.raw();
        let spawned = spawn_detached(move || {
            // SAFETY: the monitor closes its copy of the caller's end.
            unsafe { libc::close(caller_fd) };
            if redirect_output(log.as_deref()).is_err() {
                return 1;
            }
            monitor::run(
                ctx2,
                st2,
                MonitorOpts {
                    auto_start: false,
                    terminal: sink,
                },
                mon,
            )
        });
        if let Err(e) = spawned {
            let _ = std::fs::remove_dir_all(&ctx.dir);
            return Err(e);
        }
        self.await_ready(&ctx, &caller, opts).map(|_| ())?;
        self.state(id)
    }

    /// Writes the state dir and the initial state; shared by create and run.
    fn prepare(&self, id: &str, opts: &CreateOptions) -> Result<(ContainerCtx, State)> {
        let dir = self.dir(id)?;
        let bundle = load_bundle(&opts.bundle)?;
        let plan = namespaces::plan(&bundle.spec)?;
        let uid = bundle
            .spec
            .process()
            .as_ref()
            .map(|p| p.user().uid())
            .unwrap_or(0);
        mounts::check_fuse_access(&bundle.rootfs, uid)?;
        let cgroups = Cgroups::resolve(
            bundle
                .spec
                .linux()
                .as_ref()
                .and_then(|l| l.cgroups_path().as_deref()),
            id,
        )?;
        std::fs::create_dir_all(&self.root).map_err(Error::io(format!(
            "create state root {}",
            self.root.display()
        )))?;
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::AlreadyExists(id.to_string()));
            }
            Err(e) => return Err(Error::io(format!("create {}", dir.display()))(e)),
        }
        let mut bundle = bundle;
        if let (Some(t), Some(mut p)) = (opts.terminal, bundle.spec.process().clone()) {
            p.set_terminal(Some(t));
            bundle.spec.set_process(Some(p));
        }
        let mut snapshot = bundle.spec.clone();
        if let Some(mut root) = snapshot.root().clone() {
            root.set_path(bundle.rootfs.clone());
            snapshot.set_root(Some(root));
        }
        let json = serde_json::to_vec_pretty(&snapshot).map_err(|e| Error::Setup(e.to_string()))?;
        state::write_atomic(&dir.join(files::CONFIG), &json)?;
        let log_path = match &opts.output {
            Output::DefaultLog => Some(dir.join(files::LOG)),
            Output::Log(p) => Some(p.clone()),
            Output::Null => None,
        };
        let st = State {
            oci_version: state::OCI_VERSION.into(),
            id: id.to_string(),
            status: Status::Creating,
            pid: None,
            pid_start_time: None,
            monitor_pid: None,
            monitor_start_time: None,
            bundle: bundle.dir.clone(),
            rootfs: bundle.rootfs.clone(),
            created: state::now(),
            started: None,
            finished: None,
            exit_code: None,
            cgroups: cgroups.clone(),
            log_path,
            annotations: bundle
                .spec
                .annotations()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect::<BTreeMap<_, _>>(),
            error: None,
        };
        st.save(&dir)?;
        // The fifo exists before the monitor reports "created", so `start` never misses it.
        let fifo = dir.join(files::START_FIFO);
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .map_err(Error::sys(format!("mkfifo {}", fifo.display())))?;
        let ctx = ContainerCtx {
            id: id.to_string(),
            dir,
            bundle: bundle.dir,
            rootfs: bundle.rootfs,
            spec: bundle.spec,
            plan,
            cgroups,
        };
        Ok((ctx, st))
    }

    /// Waits for the monitor's first report; cleans up on failure.
    fn await_ready(
        &self,
        ctx: &ContainerCtx,
        caller: &channel::Channel,
        opts: &CreateOptions,
    ) -> Result<(i32, Option<std::os::fd::OwnedFd>)> {
        let fail = |e: Error| {
            let _ = ctx.cgroups.destroy();
            let _ = std::fs::remove_dir_all(&ctx.dir);
            Err(e)
        };
        match caller.recv() {
            Ok(Some((Msg::Ready { pid }, fd))) => {
                if let Some(p) = &opts.pid_file {
                    state::write_atomic(p, pid.to_string().as_bytes())?;
                }
                Ok((pid, fd))
            }
            Ok(Some((Msg::Error(e), _))) => fail(Error::Setup(e)),
            Ok(_) => fail(Error::Setup(
                "the monitor process exited during setup".into(),
            )),
            Err(e) => fail(e),
        }
    }

    /// Starts a created container's process.
    pub fn start(&self, id: &str) -> Result<()> {
        let dir = self.dir(id)?;
        let st = self.state(id)?;
        if st.status != Status::Created {
            return Err(Error::InvalidState {
                id: id.into(),
                status: st.status.to_string(),
                reason: "only a created container can be started".into(),
            });
        }
        let fifo = dir.join(files::START_FIFO);
        // Non-blocking: ENXIO means nobody reads, i.e. the monitor is gone.
        let f = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags_nonblock()
            .open(&fifo)
            .map_err(Error::io(format!("open {}", fifo.display())))?;
        nix::unistd::write(&f, b"s").map_err(Error::sys("write start fifo"))?;
        drop(f);
        // The monitor records "running" once the process is forked. A process that
        // exits at once can be gone before that record lands (its fsync can take
        // seconds under I/O load): until the monitor has written an exit code or an
        // error, its record is awaited.
        let deadline = std::time::Instant::now() + START_TIMEOUT;
        while std::time::Instant::now() < deadline {
            let st = self.state(id)?;
            if st.started.is_some() {
                return Ok(());
            }
            let settled = st.error.is_some() || st.exit_code.is_some();
            match st.status {
                Status::Running | Status::Paused => return Ok(()),
                _ if !settled => std::thread::sleep(Duration::from_millis(1)),
                _ => {
                    return Err(Error::Setup(st.error.unwrap_or_else(|| {
                        "the container stopped before it started".into()
                    })));
                }
            }
        }
        Err(Error::Setup(format!(
            "the container did not start within {}s",
            START_TIMEOUT.as_secs()
        )))
    }

    /// Creates and starts a container in the foreground: the process shares the
    /// caller's stdin/stdout/stderr (or a relayed pty when config.json asks for a
    /// terminal), the caller's signals are passed on, and the exit code is returned.
    /// The container stays in the stopped state until [`Runtime::delete`].
    pub fn run(&self, id: &str, opts: &CreateOptions) -> Result<i32> {
        let (ctx, st) = self.prepare(id, opts)?;
        let (caller, mon) = channel::pair()?;
        relay::block_signals()?;
        flush_std();
        // SAFETY: the runtime is single-threaded when it forks.
        let child = match unsafe { nix::unistd::fork() }.map_err(Error::sys("fork"))? {
            nix::unistd::ForkResult::Child => {
                drop(caller);
                let _ = nix::unistd::setsid();
                let code = monitor::run(
                    ctx.clone(),
                    st,
                    MonitorOpts {
                        auto_start: true,
                        terminal: TerminalSink::Caller,
                    },
                    mon,
                );
                // SAFETY: leave the forked monitor without the parent's destructors.
                unsafe { libc::_exit(code) }
            }
            nix::unistd::ForkResult::Parent { child } => child.as_raw(),
        };
        drop(mon);
        let (pid, master) = match self.await_ready(&ctx, &caller, opts) {
            Ok(r) => r,
            Err(e) => {
                let _ = crate::process::fork::wait_code(child);
                return Err(e);
            }
        };
        relay::foreground(child, pid, master)
    }

    /// Creates and starts a detached container (output to its log).
    pub fn run_detached(&self, id: &str, opts: &CreateOptions) -> Result<State> {
        self.create(id, opts)?;
        if let Err(e) = self.start(id) {
            let _ = self.delete(id, true);
            return Err(e);
        }
        self.state(id)
    }

    /// The container's state, with the live status.
    pub fn state(&self, id: &str) -> Result<State> {
        let dir = self.dir(id)?;
        if !dir.join(files::STATE).exists() {
            return Err(Error::NotFound(id.to_string()));
        }
        let mut st = State::load(&dir)?;
        let mut monitor_was_alive = true;
        if st.status != Status::Stopped && st.pid.is_some() && !st.init_alive() {
            // PID 1 has exited. If its monitor is still recording the exit, let it
            // finish, rather than report a stopped container without an exit code.
            if st.monitor_alive()
                && let Some(fd) = st.monitor_pid.and_then(|p| pidfd_open(p).ok())
            {
                wait_pidfd(&fd, 5_000);
            }
            // Read again even if the monitor is already gone: the copy loaded above
            // may predate its last writes ("running", then "stopped" with the code).
            monitor_was_alive = st.monitor_alive();
            st = State::load(&dir)?;
        }
        st.refresh(monitor_was_alive, |s| s.cgroups.is_frozen());
        Ok(st)
    }

    /// Every container under the state directory.
    pub fn list(&self) -> Result<Vec<State>> {
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(Error::io(format!("read {}", self.root.display()))(e)),
        };
        for e in entries.flatten() {
            if let Some(id) = e.file_name().to_str()
                && let Ok(st) = self.state(id)
            {
                out.push(st);
            }
        }
        out.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// The config.json snapshot taken at create time.
    pub fn config(&self, id: &str) -> Result<Spec> {
        let p = self.dir(id)?.join(files::CONFIG);
        Spec::load(&p).map_err(|e| Error::Config {
            path: p,
            reason: e.to_string(),
        })
    }

    /// Sends `signal` to PID 1 (which passes it on), or with `all` to every process.
    pub fn kill(&self, id: &str, signal: Signal, all: bool) -> Result<()> {
        let st = self.state(id)?;
        let pid = match (st.status, st.pid) {
            (Status::Created | Status::Running | Status::Paused, Some(pid)) => pid,
            _ => {
                return Err(Error::InvalidState {
                    id: id.into(),
                    status: st.status.to_string(),
                    reason: "container not running".into(),
                });
            }
        };
        if all {
            for p in st.cgroups.pids()? {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), signal);
            }
            return Ok(());
        }
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal)
            .map_err(Error::sys(format!("kill {pid}")))
    }

    /// Waits for the container to stop and returns its exit code.
    pub fn wait(&self, id: &str) -> Result<i32> {
        match self.wait_timeout(id, None)? {
            Some(code) => Ok(code),
            None => Err(Error::Setup("the container did not stop".into())),
        }
    }

    /// Waits at most `timeout` (forever with `None`) for the container to stop; `None`
    /// when it still runs. Waits for the monitor, which records the exit code, or for
    /// PID 1 itself when the monitor is gone.
    pub fn wait_timeout(&self, id: &str, timeout: Option<Duration>) -> Result<Option<i32>> {
        let st = self.state(id)?;
        let ms = timeout
            .map(|d| d.as_millis().min(i32::MAX as u128) as i32)
            .unwrap_or(-1);
        let target = if st.monitor_alive() {
            st.monitor_pid
        } else if st.init_alive() {
            st.pid
        } else {
            None
        };
        if let Some(fd) = target.and_then(|p| pidfd_open(p).ok())
            && !wait_pidfd(&fd, ms)
        {
            return Ok(None);
        }
        let st = self.state(id)?;
        match (st.status, st.exit_code) {
            (Status::Stopped, Some(code)) => Ok(Some(code)),
            (Status::Stopped, None) => Err(Error::Setup(
                st.error
                    .unwrap_or_else(|| "the exit code was not recorded".into()),
            )),
            _ => Ok(None),
        }
    }

    /// Stops a container the way `docker stop` does: `signal` (the image's STOPSIGNAL,
    /// usually SIGTERM) to PID 1, which passes it on; after `timeout` SIGKILL to every
    /// process. A paused container is thawed first so it can handle the signal; a
    /// created one is killed at once. Returns the exit code.
    pub fn stop(&self, id: &str, signal: Signal, timeout: Duration) -> Result<i32> {
        let st = self.state(id)?;
        match st.status {
            Status::Stopped => return self.wait(id),
            Status::Paused => self.resume(id)?,
            _ => {}
        }
        let first = if st.status == Status::Created {
            Signal::SIGKILL
        } else {
            signal
        };
        match self.kill(id, first, false) {
            Ok(()) | Err(Error::InvalidState { .. }) => {}
            Err(e) => return Err(e),
        }
        if let Some(code) = self.wait_timeout(id, Some(timeout))? {
            return Ok(code);
        }
        match self.kill(id, Signal::SIGKILL, true) {
            Ok(()) | Err(Error::InvalidState { .. }) => {}
            Err(e) => return Err(e),
        }
        self.wait(id)
    }

    /// Deletes a stopped container (with `force`, kills it first): its cgroups and its
    /// state directory (including the log) go away.
    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        let dir = self.dir(id)?;
        let st = self.state(id)?;
        if st.status != Status::Stopped {
            if !force {
                return Err(Error::InvalidState {
                    id: id.into(),
                    status: st.status.to_string(),
                    reason:
                        "cannot delete a container that is not stopped (stop it or use --force)"
                            .into(),
                });
            }
            for p in st.cgroups.pids().unwrap_or_default() {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), Signal::SIGKILL);
            }
            if let Some(pid) = st.pid {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
            }
            if st.status == Status::Paused {
                let _ = st.cgroups.set_frozen(false);
            }
        }
        // Let the monitor record the exit before the directory disappears.
        if st.monitor_alive()
            && let Some(pid) = st.monitor_pid
            && let Ok(fd) = pidfd_open(pid)
        {
            wait_pidfd(&fd, 10_000);
        }
        st.cgroups.destroy()?;
        std::fs::remove_dir_all(&dir).map_err(Error::io(format!("remove {}", dir.display())))?;
        Ok(())
    }

    /// Copies a detached container's output (its log) to `out`; with `follow`, keeps
    /// copying new output until the container has stopped (`logs -f`).
    pub fn logs(&self, id: &str, follow: bool, out: &mut dyn std::io::Write) -> Result<()> {
        use std::io::Read;
        let st = self.state(id)?;
        let Some(path) = st.log_path.clone() else {
            return Err(Error::Setup(format!("container {id} has no log")));
        };
        let mut f = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !follow => return Ok(()),
            Err(e) => return Err(Error::io(format!("open {}", path.display()))(e)),
        };
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // Read what is there; the check for "stopped" comes before the final read so
            // output written just before the exit is not lost.
            let running = follow && self.state(id).is_ok_and(|s| s.status != Status::Stopped);
            loop {
                let n = f
                    .read(&mut buf)
                    .map_err(Error::io(format!("read {}", path.display())))?;
                if n == 0 {
                    break;
                }
                out.write_all(&buf[..n])
                    .and_then(|_| out.flush())
                    .map_err(Error::io("write log output"))?;
            }
            if !running {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Freezes every process of a running container.
    pub fn pause(&self, id: &str) -> Result<()> {
        let st = self.state(id)?;
        if st.status != Status::Running {
            return Err(Error::InvalidState {
                id: id.into(),
                status: st.status.to_string(),
                reason: "only a running container can be paused".into(),
            });
        }
        st.cgroups.set_frozen(true)
    }

    /// Thaws a paused container.
    pub fn resume(&self, id: &str) -> Result<()> {
        let st = self.state(id)?;
        if st.status != Status::Paused {
            return Err(Error::InvalidState {
                id: id.into(),
                status: st.status.to_string(),
                reason: "only a paused container can be resumed".into(),
            });
        }
        st.cgroups.set_frozen(false)
    }

    /// Host pids of every process in the container.
    pub fn ps(&self, id: &str) -> Result<Vec<i32>> {
        self.state(id)?.cgroups.pids()
    }

    /// Runs another process in a running container (same namespaces, cgroups,
    /// capabilities and rlimits; environment, cwd and user default to the container's).
    pub fn exec(&self, id: &str, opts: &ExecOptions) -> Result<i32> {
        let st = self.state(id)?;
        let pid = match (st.status, st.pid) {
            (Status::Running, Some(pid)) => pid,
            _ => {
                return Err(Error::InvalidState {
                    id: id.into(),
                    status: st.status.to_string(),
                    reason: "exec needs a running container".into(),
                });
            }
        };
        let spec = self.config(id)?;
        let plan = namespaces::plan(&spec)?;
        let mut process: Process = spec.process().clone().unwrap_or_default();
        if opts.args.is_empty() {
            return Err(Error::Setup("exec needs a command".into()));
        }
        process.set_args(Some(opts.args.clone()));
        let mut env = process.env().clone().unwrap_or_default();
        for e in &opts.env {
            let key = e.split('=').next().unwrap_or("");
            env.retain(|x| x.split('=').next() != Some(key));
            env.push(e.clone());
        }
        if opts.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
            env.push("TERM=xterm".into());
        }
        process.set_env(Some(env));
        if let Some(cwd) = &opts.cwd {
            process.set_cwd(cwd.clone());
        }
        if let Some(u) = &opts.user {
            let r = crate::user::resolve_user(
                &Path::new("/proc").join(pid.to_string()).join("root"),
                u,
            )?;
            let mut user = process.user().clone();
            user.set_uid(r.uid);
            user.set_gid(r.gid);
            user.set_additional_gids(Some(r.additional_gids));
            process.set_user(user);
        }
        process.set_terminal(Some(opts.tty));
        exec_mod::exec(pid, &plan, &st.cgroups, &process, opts.detach)
    }
}

/// Points stdout/stderr at the log (or /dev/null) and stdin at /dev/null, in the monitor.
fn redirect_output(log: Option<&Path>) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    let out = match log {
        Some(p) => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)?,
        None => null.try_clone()?,
    };
    // SAFETY: dup2 onto the standard fds of this (forked) process.
    unsafe {
        libc::dup2(null.as_raw_fd(), 0);
        libc::dup2(out.as_raw_fd(), 1);
        libc::dup2(out.as_raw_fd(), 2);
    }
    Ok(())
}

/// `O_NONBLOCK` for `OpenOptions`.
trait NonBlock {
    fn custom_flags_nonblock(&mut self) -> &mut Self;
}

impl NonBlock for std::fs::OpenOptions {
    fn custom_flags_nonblock(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_NONBLOCK)
    }
}

#[cfg(test)]
#[path = "container_tests.rs"]
mod tests;
