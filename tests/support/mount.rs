//! Test helpers for the union filesystem: temporary layer stacks, RAII mount guards for
//! kernel overlayfs and for the FUSE daemon under test, and comparable snapshots of
//! merged views.
//!
//! Every guard unmounts in `Drop` (falling back to a lazy unmount and, for a daemon, a
//! kill), so a failing test never leaves a mount or a daemon behind.
//!
//! The daemon under test is the workspace's `unionfsd` unless `UNIONFS_TEST_DAEMON`
//! names another fuse-overlayfs-compatible binary (e.g. `/usr/bin/fuse-overlayfs`): the
//! same suite then measures a peer, which is how the tests themselves are validated.

pub mod inotify;
pub mod layers;
pub mod mountinfo;
pub mod snapshot;
pub mod twin;
pub mod xattr;

use std::ffi::OsString;
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub use mountinfo::{any_mount_under, fstype_at, is_mounted, mounts_at};
pub use snapshot::{Snapshot, assert_same_view, snapshot};
pub use twin::Twin;

/// Environment variable naming the daemon to test instead of the workspace's `unionfsd`.
pub const DAEMON_ENV: &str = "UNIONFS_TEST_DAEMON";

/// How long a daemon may take to make its mount live before the harness gives up. Not a
/// performance assertion: only a bound so a broken daemon cannot hang the suite.
const MOUNT_DEADLINE: Duration = Duration::from_secs(60);
/// How long a daemon may take to exit after its mount is gone before it is killed.
const EXIT_DEADLINE: Duration = Duration::from_secs(20);

/// The daemon binary under test.
pub fn daemon() -> PathBuf {
    match std::env::var_os(DAEMON_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => crate::bins::workspace_bin("unionfsd"),
    }
}

/// Whether the suite runs against the workspace's own `unionfsd` (and not a peer).
pub fn testing_unionfsd() -> bool {
    daemon().file_name().is_some_and(|n| n == "unionfsd")
}

/// Escapes a layer path for a `lowerdir=`/`upperdir=` option value (`\`, `:` and `,`).
pub fn escape_opt_path(p: &Path) -> String {
    let mut s = String::new();
    for c in p.to_string_lossy().chars() {
        if matches!(c, '\\' | ':' | ',') {
            s.push('\\');
        }
        s.push(c);
    }
    s
}

/// A temporary directory holding a layer stack: `l0` (top) .. `lN-1`, `upper`, `work`
/// and `mnt`. Everything is removed when it is dropped (mount guards must be dropped
/// first; declare them after the stack so Rust drops them earlier).
pub struct LayerStack {
    dir: tempfile::TempDir,
    /// Lower layers, top first.
    pub lowers: Vec<PathBuf>,
    /// The writable layer.
    pub upper: PathBuf,
    /// The work directory (same filesystem as `upper`).
    pub work: PathBuf,
    /// The mount point.
    pub mnt: PathBuf,
}

impl LayerStack {
    /// A fresh stack with `lowers` empty lower layers.
    pub fn new(lowers: usize) -> Self {
        let mut dir = tempfile::Builder::new()
            .prefix("unionfs-test-")
            .tempdir()
            .expect("create temp dir for a layer stack");
        // For debugging a failure: keep the layers (upper, work, lowers) after the test.
        if std::env::var_os("UNIONFS_TEST_KEEP").is_some() {
            dir.disable_cleanup(true);
        }
        let root = dir.path().to_path_buf();
        // Traversable by every user: pjdfstest and permission tests switch uids.
        fs::set_permissions(&root, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod stack dir");
        let lowers: Vec<PathBuf> = (0..lowers).map(|i| root.join(format!("l{i}"))).collect();
        for l in &lowers {
            fs::create_dir(l).expect("create lower");
        }
        let (upper, work, mnt) = (root.join("upper"), root.join("work"), root.join("mnt"));
        for d in [&upper, &work, &mnt] {
            fs::create_dir(d).expect("create stack dir");
        }
        LayerStack {
            dir,
            lowers,
            upper,
            work,
            mnt,
        }
    }

    /// A stack whose lower layers are copies (`cp -a`) of `template`'s lower layers and
    /// whose upper is a copy of its upper: two stacks made this way start identical.
    pub fn copy_of(template: &LayerStack) -> Self {
        let s = LayerStack::new(0);
        let mut lowers = Vec::new();
        for (i, l) in template.lowers.iter().enumerate() {
            let dst = s.root().join(format!("l{i}"));
            layers::copy_tree(l, &dst).expect("copy lower layer");
            lowers.push(dst);
        }
        fs::remove_dir(&s.upper).expect("remove empty upper");
        layers::copy_tree(&template.upper, &s.upper).expect("copy upper layer");
        LayerStack { lowers, ..s }
    }

    /// The temporary directory that holds the whole stack.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Lower layer `i` (0 is the top one).
    pub fn lower(&self, i: usize) -> &Path {
        &self.lowers[i]
    }

    /// A new empty directory inside the stack's temp dir (extra mount points, workdirs).
    pub fn extra_dir(&self, name: &str) -> PathBuf {
        let p = self.root().join(name);
        fs::create_dir_all(&p).expect("create extra dir");
        p
    }

    /// `lowerdir=A:B,upperdir=U,workdir=W`.
    pub fn overlay_opts(&self) -> String {
        format!(
            "lowerdir={},upperdir={},workdir={}",
            self.lowerdir(),
            escape_opt_path(&self.upper),
            escape_opt_path(&self.work)
        )
    }

    /// The `lowerdir=` value, top first.
    pub fn lowerdir(&self) -> String {
        self.lowers
            .iter()
            .map(|l| escape_opt_path(l))
            .collect::<Vec<_>>()
            .join(":")
    }

    /// Path of `rel` inside the mount point.
    pub fn m(&self, rel: &str) -> PathBuf {
        self.mnt.join(rel)
    }
}

/// A kernel overlayfs mount, unmounted on drop.
pub struct KernelOverlay {
    mnt: PathBuf,
    mounted: bool,
}

impl KernelOverlay {
    /// Mounts `stack` under kernel overlayfs with `extra` options appended
    /// (e.g. `"redirect_dir=on,index=on"`).
    pub fn mount(stack: &LayerStack, extra: &str) -> io::Result<Self> {
        Self::mount_opts(&stack.mnt, &join_opts(&stack.overlay_opts(), extra))
    }

    /// Mounts kernel overlayfs on `mnt` with a full option string.
    pub fn mount_opts(mnt: &Path, opts: &str) -> io::Result<Self> {
        nix::mount::mount(
            Some("overlay"),
            mnt,
            Some("overlay"),
            nix::mount::MsFlags::empty(),
            Some(opts),
        )
        .map_err(|e| {
            io::Error::other(format!("mount -t overlay -o {opts} {}: {e}", mnt.display()))
        })?;
        Ok(KernelOverlay {
            mnt: mnt.to_path_buf(),
            mounted: true,
        })
    }

    /// Unmounts now, reporting failure instead of falling back to a lazy unmount.
    pub fn unmount(mut self) -> io::Result<()> {
        self.mounted = false;
        nix::mount::umount(&self.mnt)
            .map_err(|e| io::Error::other(format!("umount {}: {e}", self.mnt.display())))
    }
}

impl Drop for KernelOverlay {
    fn drop(&mut self) {
        if self.mounted && nix::mount::umount(&self.mnt).is_err() {
            let _ = nix::mount::umount2(&self.mnt, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// A tmpfs mount, for layers that must live on another filesystem. Unmounted on drop.
pub struct Tmpfs {
    mnt: PathBuf,
}

impl Tmpfs {
    /// Mounts a small tmpfs on `mnt`.
    pub fn mount(mnt: &Path) -> io::Result<Self> {
        fs::create_dir_all(mnt)?;
        nix::mount::mount(
            Some("tmpfs"),
            mnt,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some("size=64m"),
        )
        .map_err(io::Error::from)?;
        Ok(Tmpfs {
            mnt: mnt.to_path_buf(),
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        if nix::mount::umount(&self.mnt).is_err() {
            let _ = nix::mount::umount2(&self.mnt, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

fn join_opts(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a},{b}"),
    }
}

/// Why a daemon did not mount: its exit status and everything it wrote on stderr.
#[derive(Debug)]
pub struct MountFailure {
    /// Exit status, `None` when the harness gave up waiting.
    pub status: Option<ExitStatus>,
    /// The daemon's stderr.
    pub stderr: String,
}

impl std::fmt::Display for MountFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "daemon did not mount (status {:?}): {}",
            self.status,
            self.stderr.trim()
        )
    }
}

/// A mount served by the daemon under test. On drop it is unmounted (`fusermount3 -u`,
/// then `umount -l`) and the daemon is reaped (killed if it does not exit by itself).
pub struct FuseMount {
    mnt: PathBuf,
    depth: usize,
    child: Option<Child>,
    daemon_pid: Option<i32>,
    stderr: Arc<Mutex<String>>,
}

fn drain(mut r: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let buf = Arc::new(Mutex::new(String::new()));
    let b = buf.clone();
    thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = r.read(&mut chunk) {
            if n == 0 {
                break;
            }
            if let Ok(mut s) = b.lock() {
                s.push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        }
    });
    buf
}

impl FuseMount {
    /// Mounts `stack` with the daemon in the foreground (`-f`), `extra` options appended
    /// to `lowerdir=..,upperdir=..,workdir=..`. Panics if it does not mount.
    pub fn mount(stack: &LayerStack, extra: &str) -> Self {
        Self::try_mount(stack, extra).unwrap_or_else(|e| panic!("{}: {e}", daemon().display()))
    }

    /// Like [`FuseMount::mount`] but returns the failure.
    pub fn try_mount(stack: &LayerStack, extra: &str) -> Result<Self, MountFailure> {
        let opts = join_opts(&stack.overlay_opts(), extra);
        Self::spawn_foreground(&[OsString::from("-o"), OsString::from(opts)], &stack.mnt)
    }

    /// Runs `daemon -f ARGS MNT` and waits until `MNT` is a live FUSE mount.
    pub fn spawn_foreground(args: &[OsString], mnt: &Path) -> Result<Self, MountFailure> {
        let mut all = vec![OsString::from("-f")];
        all.extend_from_slice(args);
        Self::spawn_child(&all, mnt)
    }

    /// Runs `daemon ARGS MNT` as a child that must stay in the foreground (e.g. with
    /// `-f` or `-d`) and waits until `MNT` is a live FUSE mount.
    pub fn spawn_child(args: &[OsString], mnt: &Path) -> Result<Self, MountFailure> {
        Self::spawn_program(&daemon(), args, mnt)
    }

    /// Runs any FUSE filesystem `program ARGS MNT` as a child that stays in the
    /// foreground (a peer serving a layer, say) and waits until `MNT` is a live FUSE
    /// mount; dropping the guard unmounts it and reaps the program like the daemon.
    pub fn spawn_program(
        program: &Path,
        args: &[OsString],
        mnt: &Path,
    ) -> Result<Self, MountFailure> {
        let depth = mounts_at(mnt).len() + 1;
        let mut child = Command::new(program)
            .args(args)
            .arg(mnt)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| MountFailure {
                status: None,
                stderr: format!("spawn {}: {e}", program.display()),
            })?;
        let stderr = drain(child.stderr.take().expect("piped stderr"));
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                thread::sleep(Duration::from_millis(50)); // let the reader catch the last line
                let text = stderr.lock().map(|s| s.clone()).unwrap_or_default();
                return Err(MountFailure {
                    status: Some(status),
                    stderr: text,
                });
            }
            let here = mounts_at(mnt);
            if here.len() >= depth
                && here.last().is_some_and(|m| m.fstype.starts_with("fuse"))
                && nix::sys::statfs::statfs(mnt).is_ok()
            {
                return Ok(FuseMount {
                    mnt: mnt.to_path_buf(),
                    depth,
                    child: Some(child),
                    daemon_pid: None,
                    stderr,
                });
            }
            if start.elapsed() > MOUNT_DEADLINE {
                let _ = child.kill();
                let _ = child.wait();
                let text = stderr.lock().map(|s| s.clone()).unwrap_or_default();
                return Err(MountFailure {
                    status: None,
                    stderr: format!("gave up waiting for the mount; stderr: {text}"),
                });
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Runs the daemon the way a user does (no `-f`): the parent must exit 0 only once
    /// the mount is live. Returns the guard and the parent's stderr, or the failure.
    pub fn spawn_daemonized(args: &[OsString], mnt: &Path) -> Result<(Self, String), MountFailure> {
        let depth = mounts_at(mnt).len() + 1;
        let out = Command::new(daemon())
            .args(args)
            .arg(mnt)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| MountFailure {
                status: None,
                stderr: format!("spawn: {e}"),
            })?;
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let mounted = mounts_at(mnt).len() >= depth;
        let guard = FuseMount {
            mnt: mnt.to_path_buf(),
            depth,
            child: None,
            daemon_pid: daemon_pids_for(mnt).first().copied(),
            stderr: Arc::new(Mutex::new(stderr.clone())),
        };
        if out.status.success() {
            Ok((guard, stderr))
        } else {
            // A failed start may still have mounted (a daemon that reports failure too
            // late): the guard's drop unmounts it in that case, and does nothing otherwise.
            let _ = mounted;
            drop(guard);
            Err(MountFailure {
                status: Some(out.status),
                stderr,
            })
        }
    }

    /// The mount point.
    pub fn mnt(&self) -> &Path {
        &self.mnt
    }

    /// The daemon's process id (foreground child, or the daemonized process found by
    /// its command line).
    pub fn pid(&self) -> Option<i32> {
        self.child
            .as_ref()
            .map(|c| c.id() as i32)
            .or(self.daemon_pid)
    }

    /// What the daemon wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Unmounts with `fusermount3 -u` (no lazy fallback) and waits for the daemon to
    /// exit; returns its exit status when it was a foreground child.
    pub fn unmount(mut self) -> Result<Option<ExitStatus>, String> {
        let out = Command::new("fusermount3")
            .arg("-u")
            .arg(&self.mnt)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "fusermount3 -u {}: {}",
                self.mnt.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(self.reap())
    }

    /// Waits for the daemon to exit (killing it after [`EXIT_DEADLINE`]).
    pub fn reap(&mut self) -> Option<ExitStatus> {
        let start = Instant::now();
        if let Some(mut child) = self.child.take() {
            loop {
                if let Ok(Some(st)) = child.try_wait() {
                    return Some(st);
                }
                if start.elapsed() > EXIT_DEADLINE {
                    let _ = child.kill();
                    return child.wait().ok();
                }
                thread::sleep(Duration::from_millis(10));
            }
        }
        if let Some(pid) = self.daemon_pid.take() {
            while pid_alive(pid) {
                if start.elapsed() > EXIT_DEADLINE {
                    // SAFETY: plain kill(2) of the daemon this guard started.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    break;
                }
                thread::sleep(Duration::from_millis(10));
            }
        }
        None
    }

    /// Sends `sig` to the daemon process (e.g. `libc::SIGTERM`).
    pub fn signal(&self, sig: i32) {
        if let Some(pid) = self.pid() {
            // SAFETY: plain kill(2) of the daemon this guard started.
            unsafe { libc::kill(pid, sig) };
        }
    }

    /// Whether the daemon process is still running.
    pub fn daemon_running(&mut self) -> bool {
        if let Some(c) = self.child.as_mut() {
            return matches!(c.try_wait(), Ok(None));
        }
        self.daemon_pid.is_some_and(pid_alive)
    }
}

impl Drop for FuseMount {
    fn drop(&mut self) {
        for _ in 0..3 {
            if mounts_at(&self.mnt).len() < self.depth {
                break;
            }
            let ok = Command::new("fusermount3")
                .arg("-u")
                .arg(&self.mnt)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                let _ = nix::mount::umount2(&self.mnt, nix::mount::MntFlags::MNT_DETACH);
            }
        }
        self.reap();
    }
}

/// Whether process `pid` exists and is not a zombie.
pub fn pid_alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Processes running the daemon under test whose command line names `mnt` (tempdir
/// paths are unique, so this finds exactly the daemon serving one test's mount).
pub fn daemon_pids_for(mnt: &Path) -> Vec<i32> {
    let want = mnt.as_os_str().as_bytes();
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(cmd) = fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        if cmd.split(|b| *b == 0).any(|arg| arg == want) && pid_alive(pid) {
            out.push(pid);
        }
    }
    out
}

/// Runs a command and returns (success, stdout+stderr), for shell-level checks.
pub fn run(cmd: &mut Command) -> (bool, String) {
    match cmd.output() {
        Ok(o) => (
            o.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        ),
        Err(e) => (false, e.to_string()),
    }
}
