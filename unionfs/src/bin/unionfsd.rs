//! `unionfsd`: mounts a union of directories over FUSE, as fuse-overlayfs does.
//!
//! Without `-f` the process forks; the parent waits until the child's mount serves
//! requests (exit 0) or the child reports why it could not (one line on stderr, exit 1),
//! so a script that runs `unionfsd ... && ls MNT` never races the mount.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::ExitCode;

use anyhow::{Context, Result};
use nix::sys::signal::{SigSet, Signal};
use nix::unistd::ForkResult;
use unionfs::options::{self, MountArgs};

/// Keeps the daemon's resident memory close to its heap, before any thread starts.
///
/// glibc gives each thread that allocates its own arena, and memory freed in one (a
/// directory listing, a dropped directory index) is reused only by allocations of the
/// same thread: with four serving threads the daemon held a third more memory than its
/// heap. One arena pools it. A fixed mmap threshold hands large blocks (the listing of a
/// big directory, a big index's table) back to the kernel when freed instead of raising
/// the threshold and keeping them. `MALLOC_ARENA_MAX` and `MALLOC_MMAP_THRESHOLD_` in the
/// environment still win.
fn tune_malloc() {
    const MMAP_THRESHOLD: libc::c_int = 128 * 1024;
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only adjusts allocator parameters; no thread allocates yet.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
    }
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: as above.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            libc::mallopt(libc::M_TRIM_THRESHOLD, MMAP_THRESHOLD);
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let args = match options::parse(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("unionfsd: {e} (see unionfsd --help)");
            return ExitCode::from(2);
        }
    };
    if args.help {
        print!("{}", options::USAGE);
        return ExitCode::SUCCESS;
    }
    if args.version {
        println!("unionfsd {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    tune_malloc();
    let level = if args.debug { "debug" } else { "warn" };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level)).init();
    if let Err(e) = unionfs::daemon::check(&args) {
        eprintln!("unionfsd: {e}");
        return ExitCode::FAILURE;
    }
    let result = if args.foreground {
        serve(&args, None)
    } else {
        daemonize(&args)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("unionfsd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Forks; the parent reports the child's verdict on the mount.
fn daemonize(args: &MountArgs) -> Result<()> {
    let (read_end, write_end) = nix::unistd::pipe().context("creating the readiness pipe")?;
    // SAFETY: no threads exist yet; the child goes on to mount and serve.
    match unsafe { nix::unistd::fork() }.context("fork")? {
        ForkResult::Parent { .. } => {
            drop(write_end);
            let mut msg = String::new();
            std::fs::File::from(read_end)
                .read_to_string(&mut msg)
                .context("waiting for the daemon")?;
            match msg.strip_prefix("ok") {
                Some(_) => Ok(()),
                None if msg.is_empty() => {
                    anyhow::bail!("the daemon exited before the mount was ready")
                }
                None => anyhow::bail!("{}", msg.trim_end()),
            }
        }
        ForkResult::Child => {
            drop(read_end);
            let _ = nix::unistd::setsid();
            let code = match serve(args, Some(write_end)) {
                Ok(()) => 0,
                Err(e) => {
                    log::error!("{e:#}");
                    1
                }
            };
            std::process::exit(code);
        }
    }
}

/// Mounts and serves until unmounted or told to stop; `ready` hears "ok" or the error.
fn serve(args: &MountArgs, ready: Option<OwnedFd>) -> Result<()> {
    let report = |ready: &Option<OwnedFd>, msg: &str| {
        if let Some(fd) = ready {
            let mut f =
                std::fs::File::from(nix::unistd::dup(fd).expect("dup of the readiness pipe"));
            let _ = f.write_all(msg.as_bytes());
        }
    };
    let fs = match unionfs::daemon::build(args) {
        Ok(fs) => fs,
        Err(e) => {
            report(&ready, &e.to_string());
            return Err(e.into());
        }
    };
    // Signals are taken by one thread with sigwait; block them before any thread exists.
    let mut signals = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        signals.add(s);
    }
    signals.thread_block().context("blocking signals")?;
    let mounted = match unionfs::daemon::mount(fs, args) {
        Ok(m) => m,
        Err(e) => {
            report(&ready, &e.to_string());
            return Err(e.into());
        }
    };
    let session = mounted.session;
    let mut unmount = mounted.unmount;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if signals.wait().is_ok() {
                unmount();
            }
        })
        .context("starting the signal thread")?;
    report(&ready, "ok");
    if let Some(fd) = ready {
        drop(fd);
        detach_stdio();
    }
    session.run().context("serving requests")?;
    Ok(())
}

/// A daemon keeps no terminal: stdin, stdout and stderr go to /dev/null.
fn detach_stdio() {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        for fd in 0..=2 {
            // SAFETY: dup2 onto the standard descriptors of this process.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
}
