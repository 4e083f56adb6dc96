//! The last steps before `execve` of a container process, shared by the container's
//! main process and by `exec`: signal state, rlimits, user and groups, capabilities,
//! no_new_privileges, working directory, and the `$PATH` lookup whose failure is the
//! familiar exit 127 "executable file not found".

use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::path::Path;

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal, sigaction};
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{PosixRlimitType, Process};

use crate::error::{Error, Result};
use crate::linux::{caps, pty};

/// The `PATH` used when the process's environment has none (Docker's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Exit code of a process whose executable does not exist (shell convention).
pub const EXIT_NOT_FOUND: i32 = 127;
/// Exit code of a process that could not be started for any other reason.
pub const EXIT_CANNOT_EXEC: i32 = 126;

/// Restores default signal dispositions and an empty mask: PID 1 blocks everything
/// and Rust ignores SIGPIPE, and both would otherwise leak into the container process.
pub fn reset_signals() {
    for n in 1..=31 {
        if let Ok(sig) = Signal::try_from(n) {
            if sig == Signal::SIGKILL || sig == Signal::SIGSTOP {
                continue;
            }
            // SAFETY: installing SIG_DFL is always sound.
            let _ = unsafe {
                sigaction(
                    sig,
                    &SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty()),
                )
            };
        }
    }
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}

/// Applies `process.rlimits`.
pub fn set_rlimits(process: &Process) -> Result<()> {
    for r in process.rlimits().as_deref().unwrap_or(&[]) {
        let resource = match r.typ() {
            PosixRlimitType::RlimitCpu => libc::RLIMIT_CPU,
            PosixRlimitType::RlimitFsize => libc::RLIMIT_FSIZE,
            PosixRlimitType::RlimitData => libc::RLIMIT_DATA,
            PosixRlimitType::RlimitStack => libc::RLIMIT_STACK,
            PosixRlimitType::RlimitCore => libc::RLIMIT_CORE,
            PosixRlimitType::RlimitRss => libc::RLIMIT_RSS,
            PosixRlimitType::RlimitNproc => libc::RLIMIT_NPROC,
            PosixRlimitType::RlimitNofile => libc::RLIMIT_NOFILE,
            PosixRlimitType::RlimitMemlock => libc::RLIMIT_MEMLOCK,
            PosixRlimitType::RlimitAs => libc::RLIMIT_AS,
            PosixRlimitType::RlimitLocks => libc::RLIMIT_LOCKS,
            PosixRlimitType::RlimitSigpending => libc::RLIMIT_SIGPENDING,
            PosixRlimitType::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
            PosixRlimitType::RlimitNice => libc::RLIMIT_NICE,
            PosixRlimitType::RlimitRtprio => libc::RLIMIT_RTPRIO,
            PosixRlimitType::RlimitRttime => libc::RLIMIT_RTTIME,
        };
        let lim = libc::rlimit {
            rlim_cur: r.soft(),
            rlim_max: r.hard(),
        };
        // SAFETY: setrlimit reads a struct we own.
        if unsafe { libc::setrlimit(resource, &lim) } != 0 {
            return Err(Error::io(format!("setrlimit {:?}", r.typ()))(
                std::io::Error::last_os_error(),
            ));
        }
    }
    Ok(())
}

/// Switches to the configured user, groups and capabilities and sets
/// no_new_privileges. Capabilities survive the uid change through PR_SET_KEEPCAPS.
pub fn switch_credentials(process: &Process) -> Result<()> {
    let user = process.user();
    if let Some(c) = process.capabilities() {
        caps::drop_bounding(c)?;
    }
    // SAFETY: plain prctl calls with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
    let mut groups: Vec<Gid> = user
        .additional_gids()
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .map(|g| Gid::from_raw(*g))
        .collect();
    groups.dedup();
    nix::unistd::setgroups(&groups).map_err(Error::sys("setgroups"))?;
    nix::unistd::setresgid(
        Gid::from_raw(user.gid()),
        Gid::from_raw(user.gid()),
        Gid::from_raw(user.gid()),
    )
    .map_err(Error::sys(format!("setgid {}", user.gid())))?;
    nix::unistd::setresuid(
        Uid::from_raw(user.uid()),
        Uid::from_raw(user.uid()),
        Uid::from_raw(user.uid()),
    )
    .map_err(Error::sys(format!("setuid {}", user.uid())))?;
    // SAFETY: see above.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
    if let Some(c) = process.capabilities() {
        caps::apply_sets(c)?;
    }
    if let Some(mask) = user.umask() {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    }
    if process.no_new_privileges().unwrap_or(false) {
        // SAFETY: see above.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(Error::io("set no_new_privileges")(
                std::io::Error::last_os_error(),
            ));
        }
    }
    Ok(())
}

/// The environment of `process` as `KEY=VALUE` strings.
fn env_of(process: &Process) -> Vec<String> {
    process.env().clone().unwrap_or_default()
}

/// Finds `cmd` the way execvp would, but with the container's `PATH`.
/// Errors are the messages (and exit codes) the user sees.
pub fn find_executable(cmd: &str, env: &[String]) -> std::result::Result<CString, (i32, String)> {
    let not_found = |detail: &str| {
        (
            EXIT_NOT_FOUND,
            format!("exec: \"{cmd}\": executable file not found{detail}"),
        )
    };
    if cmd.is_empty() {
        return Err(not_found(" (empty command)"));
    }
    let check = |p: &Path| -> Option<std::result::Result<(), (i32, String)>> {
        let meta = std::fs::metadata(p).ok()?;
        if meta.is_dir() {
            return Some(Err((
                EXIT_CANNOT_EXEC,
                format!("exec: \"{cmd}\": is a directory"),
            )));
        }
        match nix::unistd::access(p, nix::unistd::AccessFlags::X_OK) {
            Ok(()) => Some(Ok(())),
            Err(_) => Some(Err((
                EXIT_CANNOT_EXEC,
                format!("exec: \"{cmd}\": permission denied"),
            ))),
        }
    };
    let to_c = |p: &Path| {
        CString::new(p.as_os_str().as_encoded_bytes()).map_err(|_| {
            (
                EXIT_CANNOT_EXEC,
                format!("exec: \"{cmd}\": contains a NUL byte"),
            )
        })
    };
    if cmd.contains('/') {
        return match check(Path::new(cmd)) {
            Some(Ok(())) => to_c(Path::new(cmd)),
            Some(Err(e)) => Err(e),
            None => Err(not_found(": no such file or directory")),
        };
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    let mut denied = None;
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(cmd);
        match check(&candidate) {
            Some(Ok(())) => return to_c(&candidate),
            Some(Err(e)) if denied.is_none() => denied = Some(e),
            _ => {}
        }
    }
    Err(denied.unwrap_or_else(|| not_found(" in $PATH")))
}

/// Sets up the calling (forked) process and replaces it with the container process.
/// Never returns: on failure it prints one line to stderr and exits with 127 (not
/// found) or 126 (any other reason).
pub fn exec_process(process: &Process, terminal: Option<OwnedFd>) -> ! {
    let code = match prepare_and_exec(process, terminal) {
        Ok(never) => match never {},
        Err((code, msg)) => {
            eprintln!("ctr-runtime: {msg}");
            code
        }
    };
    // SAFETY: _exit is always sound; nothing of this forked process needs flushing.
    unsafe { libc::_exit(code) }
}

fn prepare_and_exec(
    process: &Process,
    terminal: Option<OwnedFd>,
) -> std::result::Result<std::convert::Infallible, (i32, String)> {
    let fail = |e: Error| (EXIT_CANNOT_EXEC, e.to_string());
    reset_signals();
    if let Some(slave) = &terminal {
        let _ = nix::unistd::setsid();
        pty::make_controlling(slave).map_err(fail)?;
    }
    drop(terminal);
    switch_credentials(process).map_err(fail)?;
    let cwd = process.cwd();
    std::env::set_current_dir(cwd).map_err(|e| {
        (
            EXIT_CANNOT_EXEC,
            format!("chdir to cwd {:?}: {e}", cwd.display().to_string()),
        )
    })?;
    let args = process.args().clone().unwrap_or_default();
    let Some(cmd) = args.first() else {
        return Err((EXIT_CANNOT_EXEC, "process.args is empty".into()));
    };
    let env = env_of(process);
    let exe = find_executable(cmd, &env)?;
    let to_cstrings = |v: &[String]| -> std::result::Result<Vec<CString>, (i32, String)> {
        v.iter()
            .map(|s| {
                CString::new(s.as_bytes())
                    .map_err(|_| (EXIT_CANNOT_EXEC, format!("{s:?} contains a NUL byte")))
            })
            .collect()
    };
    let argv = to_cstrings(&args)?;
    let envp = to_cstrings(&env)?;
    match nix::unistd::execve(&exe, &argv, &envp) {
        Ok(never) => match never {},
        Err(nix::Error::ENOENT) => Err((
            EXIT_NOT_FOUND,
            format!("exec: \"{cmd}\": no such file or directory (missing interpreter?)"),
        )),
        Err(e) => Err((EXIT_CANNOT_EXEC, format!("exec: \"{cmd}\": {e}"))),
    }
}
