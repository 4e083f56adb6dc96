//! Checking a mount request and serving it: the part of `unionfsd` worth testing.
//!
//! Every check runs before anything is mounted, so bad input costs one clear line and
//! leaves nothing behind.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use fuser::{Config, MountOption, SessionACL};

use crate::fuse::{PassthroughScope, ReadaheadTuning, Timeouts, UnionFs};
use crate::layer::LayerStack;
use crate::options::MountArgs;
use crate::union::{Union, UnionConfig};
use crate::whiteout::WhiteoutFormat;

/// Why a mount was refused; the message is the one line the user sees.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct MountError(pub String);

fn fail<T>(msg: String) -> Result<T, MountError> {
    Err(MountError(msg))
}

fn canonical(role: &str, p: &Path) -> Result<PathBuf, MountError> {
    std::fs::canonicalize(p).or_else(|e| fail(format!("{role} {}: {e}", p.display())))
}

/// Checks everything that can be checked before mounting.
pub fn check(args: &MountArgs) -> Result<(), MountError> {
    if !Path::new("/dev/fuse").exists() {
        return fail("no /dev/fuse: load the fuse module (modprobe fuse) or pass the device into this container".into());
    }
    for lower in &args.lowers {
        let p = canonical("lowerdir", lower)?;
        if !p.is_dir() {
            return fail(format!("lowerdir {}: not a directory", lower.display()));
        }
    }
    if let (Some(upper), Some(work)) = (&args.upper, &args.work) {
        let u = canonical("upperdir", upper)?;
        let w = canonical("workdir", work)?;
        let (um, wm) = match (std::fs::metadata(&u), std::fs::metadata(&w)) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => return fail(format!("upperdir/workdir: {e}")),
        };
        if !um.is_dir() || !wm.is_dir() {
            return fail("upperdir and workdir must be directories".into());
        }
        if um.dev() != wm.dev() {
            return fail(format!(
                "workdir {} is not on the same filesystem as upperdir {}: copy-up renames from one to the other",
                work.display(),
                upper.display()
            ));
        }
        if w.starts_with(&u) || u.starts_with(&w) {
            return fail(format!(
                "workdir {} and upperdir {} must be separate trees, neither inside the other",
                work.display(),
                upper.display()
            ));
        }
    }
    let mp = canonical("mountpoint", &args.mountpoint)?;
    if !mp.is_dir() {
        return fail(format!(
            "mountpoint {}: not a directory",
            args.mountpoint.display()
        ));
    }
    if crate::sys::mountinfo::is_mount_point(&mp) {
        return fail(format!(
            "mountpoint {} is busy: something is already mounted there",
            args.mountpoint.display()
        ));
    }
    Ok(())
}

/// Opens the layers and builds the union (taking the workdir's lock).
pub fn build(args: &MountArgs) -> Result<UnionFs, MountError> {
    let root = nix::unistd::geteuid().is_root();
    let layers = LayerStack::open(
        &args.lowers,
        if args.read_only {
            None
        } else {
            args.upper.as_deref()
        },
    )
    .map_err(|e| MountError(e.to_string()))?;
    let whiteout = args.whiteout.unwrap_or(if root {
        WhiteoutFormat::Kernel
    } else {
        WhiteoutFormat::Oci
    });
    let cfg = UnionConfig {
        whiteout,
        volatile: args.volatile,
        dir_cache_entries: args
            .dir_cache_entries
            .unwrap_or(crate::union::dircache::DEFAULT_DIR_CACHE_ENTRIES),
    };
    let work = if args.read_only {
        None
    } else {
        args.work.as_deref()
    };
    let mut union = Union::new(layers, work, cfg).map_err(|e| MountError(e.to_string()))?;
    if let Some(path) = &args.index {
        let index = crate::pindex::PersistentIndex::open(path, &args.lowers)
            .map_err(|e| MountError(format!("index={}: {e}", path.display())))?;
        union = union.with_persistent_index(index);
    }
    let mut timeouts = Timeouts::default();
    if let Some(t) = args.timeout {
        timeouts.lower = std::time::Duration::from_secs(t);
    }
    Ok(UnionFs::new(union, timeouts)
        .with_passthrough(args.passthrough.unwrap_or(if root {
            PassthroughScope::Stable
        } else {
            PassthroughScope::Off
        }))
        .with_threads(serving_threads(args))
        .with_readdirplus(args.wants_readdirplus_always()))
}

/// Serving threads when `threads=` is not given: enough for a few requests blocked on
/// the disk at once; all but one park while requests come one at a time.
const DEFAULT_SERVING_THREADS: usize = 4;

fn serving_threads(args: &MountArgs) -> usize {
    args.threads.unwrap_or(DEFAULT_SERVING_THREADS)
}

/// The `fuser` configuration for a request: mount flags and access. The serving
/// threads come from the filesystem (see [`mount`]).
pub fn fuse_config(args: &MountArgs) -> Config {
    let root = nix::unistd::geteuid().is_root();
    let mut opts = vec![
        MountOption::FSName(args.source.clone().unwrap_or_else(|| "unionfsd".into())),
        MountOption::Subtype("unionfsd".into()),
    ];
    let read_only = args.read_only || args.upper.is_none();
    opts.push(if read_only {
        MountOption::RO
    } else {
        MountOption::RW
    });
    if args.default_permissions.unwrap_or(root) {
        opts.push(MountOption::DefaultPermissions);
    }
    opts.push(if args.suid.unwrap_or(root) {
        MountOption::Suid
    } else {
        MountOption::NoSuid
    });
    opts.push(if args.dev.unwrap_or(root) {
        MountOption::Dev
    } else {
        MountOption::NoDev
    });
    opts.push(if args.exec.unwrap_or(true) {
        MountOption::Exec
    } else {
        MountOption::NoExec
    });
    opts.push(MountOption::NoAtime);
    let mut config = Config::default();
    config.mount_options = opts;
    config.acl = if args.allow_other.unwrap_or(root) {
        SessionACL::All
    } else if args.allow_root {
        SessionACL::RootAndOwner
    } else {
        SessionACL::Owner
    };
    config.clone_fd = true;
    config
}

/// A mounted session and how to end it.
pub struct Mounted {
    /// The session, ready to `run`.
    pub session: fuser::Session<UnionFs>,
    /// Unmounts (from the signal thread).
    pub unmount: Box<dyn FnMut() + Send>,
}

/// Mounts `fs` at the requested mountpoint.
///
/// As root the mount is made here with the `fuse.unionfsd` type, so `/proc/mounts`,
/// `findmnt -t` and `umount -t` see what it is; unprivileged users go through
/// `fusermount3`, which does the same with the `subtype=` option.
pub fn mount(mut fs: UnionFs, args: &MountArgs) -> Result<Mounted, MountError> {
    let mut config = fuse_config(args);
    let workers = fs.workers();
    // The thread count the workers' bookkeeping counts on (a larger one would park
    // threads that don't exist).
    config.n_threads = Some(workers.threads());
    let watch = |session: &fuser::Session<UnionFs>| {
        if let Err(e) = workers.watch(std::os::fd::AsFd::as_fd(session)) {
            log::warn!("serving threads won't park (no watchdog): {e}");
        }
    };
    let mountpoint = args.mountpoint.clone();
    let readahead_kb = args.readahead_kb.unwrap_or(0);
    if !nix::unistd::geteuid().is_root() {
        if args.readahead_kb.is_some_and(|kb| kb > 0) {
            log::warn!("readahead= needs root (it is set in sysfs); the kernel's is kept");
        }
        let mut session = fuser::Session::new(fs, &mountpoint, &config)
            .map_err(|e| MountError(format!("mounting {}: {e}", mountpoint.display())))?;
        watch(&session);
        let mut unmounter = session.unmount_callable();
        return Ok(Mounted {
            session,
            unmount: Box::new(move || {
                let _ = unmounter.unmount();
            }),
        });
    }
    // Resolved before the mount: afterwards, resolving the mount point would ask the
    // daemon, which does not serve yet.
    let resolved = std::fs::canonicalize(&mountpoint).unwrap_or_else(|_| mountpoint.clone());
    let fd = mount_as_root(args, &config)?;
    if readahead_kb > 0 {
        match ReadaheadTuning::for_mount(&resolved, readahead_kb) {
            Ok(tuning) => fs.set_readahead(tuning),
            Err(e) => log::warn!("readahead left as the kernel sets it: {e}"),
        }
    }
    let session = fuser::Session::from_fd(fs, fd, config.acl, config).map_err(|e| {
        MountError(format!(
            "starting the FUSE session on {}: {e}",
            mountpoint.display()
        ))
    })?;
    watch(&session);
    Ok(Mounted {
        session,
        unmount: Box::new(move || {
            let _ = nix::mount::umount2(&mountpoint, nix::mount::MntFlags::MNT_DETACH);
        }),
    })
}

fn mount_as_root(args: &MountArgs, config: &Config) -> Result<std::os::fd::OwnedFd, MountError> {
    use nix::mount::MsFlags;
    use std::os::fd::AsRawFd;
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        MountError(format!(
            "mounting {}: {what}: {e}",
            args.mountpoint.display()
        ))
    };
    let dev = nix::fcntl::open(
        "/dev/fuse",
        nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| fail("/dev/fuse", &e))?;
    let root_mode = std::fs::metadata(&args.mountpoint)
        .map_err(|e| fail("mountpoint", &e))?
        .mode()
        & libc::S_IFMT;
    let mut data = format!(
        "fd={},rootmode={:o},user_id={},group_id={}",
        dev.as_raw_fd(),
        root_mode,
        nix::unistd::getuid(),
        nix::unistd::getgid()
    );
    let mut flags = MsFlags::empty();
    for opt in &config.mount_options {
        match opt {
            MountOption::DefaultPermissions => data.push_str(",default_permissions"),
            MountOption::RO => flags |= MsFlags::MS_RDONLY,
            MountOption::NoSuid => flags |= MsFlags::MS_NOSUID,
            MountOption::NoDev => flags |= MsFlags::MS_NODEV,
            MountOption::NoExec => flags |= MsFlags::MS_NOEXEC,
            MountOption::NoAtime => flags |= MsFlags::MS_NOATIME,
            _ => {}
        }
    }
    if config.acl != SessionACL::Owner {
        data.push_str(",allow_other");
    }
    let source = args.source.clone().unwrap_or_else(|| "unionfsd".into());
    nix::mount::mount(
        Some(source.as_str()),
        &args.mountpoint,
        Some("fuse.unionfsd"),
        flags,
        Some(data.as_str()),
    )
    .map_err(|e| fail("mount", &e))?;
    Ok(dev)
}
