//! The command line, fuse-overlayfs compatible: option forms, defaults, daemonizing only
//! once the mount serves, the ways a mount ends, and one clear line for bad input with
//! nothing mounted.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use integration_tests::mount::{
    FuseMount, LayerStack, Tmpfs, daemon, daemon_pids_for, escape_opt_path, layers, mounts_at,
    pid_alive, run,
};

fn o(opts: &str) -> Vec<OsString> {
    vec![OsString::from("-o"), OsString::from(opts)]
}

fn simple_stack() -> LayerStack {
    let s = LayerStack::new(2);
    layers::file(&s.lower(0).join("both"), b"top\n", 0o644).expect("file");
    layers::file(&s.lower(1).join("both"), b"bottom\n", 0o644).expect("file");
    layers::file(&s.lower(1).join("only-bottom"), b"bottom only\n", 0o644).expect("file");
    s
}

/// Waits (bounded, not a timing assertion) until `pred` holds.
fn eventually(what: &str, mut pred: impl FnMut() -> bool) {
    let start = Instant::now();
    while !pred() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "gave up waiting: {what}"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

fn errno_of(r: std::io::Result<impl Sized>) -> Option<i32> {
    r.err().and_then(|e| e.raw_os_error())
}

#[test]
fn leftmost_lowerdir_is_the_top_layer() {
    let s = simple_stack();
    let _m = FuseMount::mount(&s, "");
    assert_eq!(fs::read_to_string(s.m("both")).expect("read"), "top\n");
    assert_eq!(
        fs::read_to_string(s.m("only-bottom")).expect("read"),
        "bottom only\n"
    );
}

#[test]
fn lowerdir_only_mount_is_read_only() {
    let s = simple_stack();
    let _m = FuseMount::spawn_foreground(&o(&format!("lowerdir={}", s.lowerdir())), &s.mnt)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(fs::read_to_string(s.m("both")).expect("read"), "top\n");
    assert_eq!(errno_of(fs::write(s.m("new"), b"x")), Some(libc::EROFS));
    assert_eq!(errno_of(fs::remove_file(s.m("both"))), Some(libc::EROFS));
}

#[test]
fn escaped_colon_in_a_layer_path() {
    let s = LayerStack::new(1);
    let odd = s.extra_dir("layer:with:colons");
    layers::file(&odd.join("from-odd"), b"odd\n", 0o644).expect("file");
    let lowerdir = format!("{}:{}", escape_opt_path(&odd), escape_opt_path(s.lower(0)));
    assert!(
        lowerdir.contains("\\:"),
        "the test must exercise the escape"
    );
    let opts = format!(
        "lowerdir={lowerdir},upperdir={},workdir={}",
        escape_opt_path(&s.upper),
        escape_opt_path(&s.work)
    );
    let _m = FuseMount::spawn_foreground(&o(&opts), &s.mnt).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(fs::read_to_string(s.m("from-odd")).expect("read"), "odd\n");
}

#[test]
fn generic_mount_options_are_accepted() {
    let s = simple_stack();
    let _m = FuseMount::mount(
        &s,
        "rw,dev,suid,exec,lazytime,noatime,nodiratime,relatime,async",
    );
    assert_eq!(fs::read_to_string(s.m("both")).expect("read"), "top\n");
}

#[test]
fn ro_option_is_honoured() {
    let s = simple_stack();
    let _m = FuseMount::mount(&s, "ro");
    assert_eq!(fs::read_to_string(s.m("both")).expect("read"), "top\n");
    assert_eq!(errno_of(fs::write(s.m("new"), b"x")), Some(libc::EROFS));
    assert!(!s.upper.join("new").exists());
}

#[test]
fn root_defaults_allow_other_default_permissions_suid_dev() {
    let s = simple_stack();
    layers::file(&s.lower(0).join("secret"), b"root only\n", 0o600).expect("file");
    layers::mknod(
        &s.lower(0).join("null"),
        libc::S_IFCHR | 0o666,
        libc::makedev(1, 3),
    )
    .expect("mknod /dev/null twin");
    let _m = FuseMount::mount(&s, "");
    let mi = mounts_at(&s.mnt).pop().expect("mounted");
    for bad in ["nosuid", "nodev", "noexec"] {
        assert!(
            !mi.mount_options.split(',').any(|x| x == bad),
            "{bad} set by default: {mi:?}"
        );
    }
    for good in ["allow_other", "default_permissions"] {
        assert!(
            mi.super_options.split(',').any(|x| x == good),
            "{good} not set by default: {mi:?}"
        );
    }
    // dev: a device node in a layer works (a container rootfs needs /dev/null).
    fs::write(s.m("null"), b"discarded").expect("write to a char device through the mount");
    // allow_other: another user can look; default_permissions: modes are enforced.
    let cat = |f: &str| run(Command::new("cat").arg(s.m(f)).uid(65534).gid(65534));
    let (ok, out) = cat("both");
    assert!(
        ok && out == "top\n",
        "nobody cannot read a 0644 file: {out}"
    );
    let (ok, out) = cat("secret");
    assert!(
        !ok && out.contains("Permission denied"),
        "nobody read a 0600 root file: {out}"
    );
}

#[test]
fn nodev_noexec_and_nosuid_are_honoured() {
    let s = simple_stack();
    layers::mknod(
        &s.lower(0).join("null"),
        libc::S_IFCHR | 0o666,
        libc::makedev(1, 3),
    )
    .expect("mknod");
    layers::file(&s.lower(0).join("script"), b"#!/bin/sh\nexit 0\n", 0o755).expect("script");
    let _m = FuseMount::mount(&s, "nodev,noexec,nosuid");
    let mi = mounts_at(&s.mnt).pop().expect("mounted");
    for flag in ["nodev", "noexec", "nosuid"] {
        assert!(
            mi.mount_options.split(',').any(|x| x == flag),
            "{flag} not applied: {mi:?}"
        );
    }
    assert_eq!(
        errno_of(fs::write(s.m("null"), b"x")),
        Some(libc::EACCES),
        "nodev"
    );
    let e = Command::new(s.m("script"))
        .status()
        .expect_err("noexec must refuse exec");
    assert_eq!(e.raw_os_error(), Some(libc::EACCES), "noexec");
}

#[test]
fn mount_fuse3_source_form_is_accepted() {
    // mount.fuse3 runs `PROGRAM SOURCE MOUNTPOINT -o OPTS`.
    let s = simple_stack();
    let out = Command::new(daemon())
        .arg("unionfs-source")
        .arg(&s.mnt)
        .arg("-o")
        .arg(s.overlay_opts())
        .output()
        .expect("run daemon");
    // Guard first so the mount is cleaned up whatever happens below.
    let guard = Unmount(&s.mnt);
    assert!(
        out.status.success(),
        "SOURCE MNT -o form failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fs::read_to_string(s.m("both")).expect("read"), "top\n");
    drop(guard);
}

/// Unmounts a daemonized mount on drop (for tests that start it by hand).
struct Unmount<'a>(&'a Path);

impl Drop for Unmount<'_> {
    fn drop(&mut self) {
        let pids = daemon_pids_for(self.0);
        if !mounts_at(self.0).is_empty() {
            let ok = Command::new("fusermount3")
                .arg("-u")
                .arg(self.0)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                let _ = nix::mount::umount2(self.0, nix::mount::MntFlags::MNT_DETACH);
            }
        }
        for p in pids {
            let start = Instant::now();
            while pid_alive(p) && start.elapsed() < Duration::from_secs(20) {
                thread::sleep(Duration::from_millis(10));
            }
            if pid_alive(p) {
                // SAFETY: kill(2) of the daemon this test started.
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
        }
    }
}

#[test]
fn mount_t_fuse_dot_program_works() {
    // mount(8) runs helpers with its own PATH, so the daemon is made visible as
    // /usr/local/bin/NAME inside a private mount namespace (nothing on the host changes).
    // The script unmounts on exit, which also ends the daemon and the namespace.
    let s = simple_stack();
    let bin = daemon();
    let name = bin
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let tmpbin = s.extra_dir("bin");
    std::os::unix::fs::symlink(&bin, tmpbin.join(&name)).expect("symlink daemon");
    let script = r#"set -e
mount --make-rprivate /
mount --bind "$1" /usr/local/bin
trap 'fusermount3 -u "$2" 2>/dev/null || umount -l "$2" 2>/dev/null' EXIT
mount -t "fuse.$3" "$3" "$2" -o "$4"
grep -F " $2 " /proc/self/mountinfo | sed 's/.* - //'
cat "$2/both""#;
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", script, "sh"])
        .arg(&tmpbin)
        .arg(&s.mnt)
        .arg(&name)
        .arg(s.overlay_opts())
        .output()
        .expect("run unshare");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "mount -t fuse.{name} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.ends_with("top\n"),
        "read through the mount: {stdout}"
    );
}

#[test]
fn mount_type_is_fuse_dot_program_name() {
    // What `findmnt`, `mount -t` and `umount -t` match on, in both command-line forms.
    let s = simple_stack();
    let name = daemon()
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let m = FuseMount::mount(&s, "");
    assert_eq!(
        mounts_at(&s.mnt).pop().map(|m| m.fstype),
        Some(format!("fuse.{name}")),
        "-o form"
    );
    drop(m);
    let out = Command::new(daemon())
        .arg(&name)
        .arg(&s.mnt)
        .arg("-o")
        .arg(s.overlay_opts())
        .output()
        .expect("run daemon");
    let _g = Unmount(&s.mnt);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        mounts_at(&s.mnt).pop().map(|m| m.fstype),
        Some(format!("fuse.{name}")),
        "SOURCE MNT form"
    );
}

#[test]
fn daemonizes_only_once_the_mount_serves() {
    let s = simple_stack();
    let (mut m, stderr) = FuseMount::spawn_daemonized(&o(&s.overlay_opts()), &s.mnt)
        .unwrap_or_else(|e| panic!("{e}"));
    // No waiting: the parent has exited, so the mount must already answer.
    assert!(
        !mounts_at(&s.mnt).is_empty(),
        "parent exited before the mount existed"
    );
    assert_eq!(
        fs::read_to_string(s.m("both")).expect("read right after the parent exits"),
        "top\n"
    );
    assert!(
        stderr.trim().is_empty(),
        "a successful mount prints nothing: {stderr}"
    );
    assert!(m.daemon_running(), "no daemon process serves the mount");
    m.unmount().expect("fusermount3 -u");
}

#[test]
fn foreground_mode_stays_and_exits_zero_on_unmount() {
    let s = simple_stack();
    let mut m = FuseMount::mount(&s, "");
    assert!(
        m.daemon_running(),
        "-f must stay in the foreground while mounted"
    );
    let st = m.unmount().expect("fusermount3 -u").expect("exit status");
    assert!(st.success(), "daemon exit after fusermount3 -u: {st}");
    assert!(mounts_at(&s.mnt).is_empty());
}

#[test]
fn debug_flag_logs_requests_and_stays_in_the_foreground() {
    let s = simple_stack();
    let mut m = FuseMount::spawn_child(
        &[
            OsString::from("-d"),
            OsString::from("-o"),
            OsString::from(s.overlay_opts()),
        ],
        &s.mnt,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(fs::read_to_string(s.m("both")).expect("read"), "top\n");
    assert!(m.daemon_running(), "-d must stay in the foreground");
    let log = m.stderr();
    assert!(!log.trim().is_empty(), "-d must log requests on stderr");
    m.unmount().expect("fusermount3 -u");
}

fn daemonized(s: &LayerStack) -> (FuseMount, i32) {
    let (m, _) = FuseMount::spawn_daemonized(&o(&s.overlay_opts()), &s.mnt)
        .unwrap_or_else(|e| panic!("{e}"));
    let pid = m.pid().expect("daemon process found by its command line");
    (m, pid)
}

#[test]
fn fusermount_u_unmounts_and_the_daemon_exits() {
    let s = simple_stack();
    let (_m, pid) = daemonized(&s);
    let (ok, out) = run(Command::new("fusermount3").arg("-u").arg(&s.mnt));
    assert!(ok, "fusermount3 -u: {out}");
    eventually("daemon exits after fusermount3 -u", || !pid_alive(pid));
}

#[test]
fn umount_ends_the_daemon() {
    let s = simple_stack();
    let (_m, pid) = daemonized(&s);
    let (ok, out) = run(Command::new("umount").arg(&s.mnt));
    assert!(ok, "umount: {out}");
    eventually("daemon exits after umount", || !pid_alive(pid));
}

#[test]
fn daemon_exits_when_the_kernel_drops_the_mount() {
    let s = simple_stack();
    let (_m, pid) = daemonized(&s);
    nix::mount::umount2(&s.mnt, nix::mount::MntFlags::MNT_DETACH).expect("lazy umount");
    eventually("daemon exits after a lazy unmount", || !pid_alive(pid));
}

#[test]
fn sigterm_and_sigint_unmount_cleanly() {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let s = simple_stack();
        let mut m = FuseMount::mount(&s, "");
        fs::write(s.m("written-before-signal"), b"kept\n").expect("write");
        m.signal(sig);
        let st = m.reap().expect("exit status");
        assert!(st.success(), "signal {sig}: daemon exit status {st}");
        assert!(mounts_at(&s.mnt).is_empty(), "signal {sig}: still mounted");
        assert_eq!(
            fs::read(s.upper.join("written-before-signal")).expect("in upper"),
            b"kept\n"
        );
    }
}

/// Starts the daemon the normal way with `args` and asserts it refuses: non-zero exit,
/// exactly one stderr line containing one of `needles`, nothing mounted, no daemon left.
#[track_caller]
fn assert_refused(args: &[OsString], mnt: &Path, needles: &[&str]) {
    let before = mounts_at(mnt).len();
    match FuseMount::spawn_daemonized(args, mnt) {
        Ok((_m, _)) => panic!("mounted although the input is bad: {args:?}"),
        Err(f) => {
            let st = f.status.expect("exit status");
            assert!(!st.success(), "bad input must exit non-zero");
            let text = f.stderr.trim();
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines.len(), 1, "exactly one line on stderr, got:\n{text}");
            let lower = text.to_lowercase();
            assert!(
                needles.iter().any(|n| lower.contains(&n.to_lowercase())),
                "the message must name the problem (one of {needles:?}): {text}"
            );
        }
    }
    assert_eq!(
        mounts_at(mnt).len(),
        before,
        "something was mounted on {}",
        mnt.display()
    );
    assert!(
        daemon_pids_for(mnt).is_empty(),
        "a daemon process was left behind"
    );
}

#[test]
fn missing_lowerdir_option_is_refused() {
    let s = simple_stack();
    let opts = format!(
        "upperdir={},workdir={}",
        s.upper.display(),
        s.work.display()
    );
    assert_refused(&o(&opts), &s.mnt, &["lowerdir"]);
}

#[test]
fn nonexistent_lowerdir_is_refused() {
    let s = simple_stack();
    let missing = s.root().join("no-such-layer");
    let opts = format!(
        "lowerdir={}:{},upperdir={},workdir={}",
        s.lower(0).display(),
        missing.display(),
        s.upper.display(),
        s.work.display()
    );
    assert_refused(&o(&opts), &s.mnt, &[&missing.to_string_lossy()]);
}

#[test]
fn workdir_on_another_filesystem_is_refused() {
    let s = simple_stack();
    let other = s.root().join("tmpfs-work");
    let _t = Tmpfs::mount(&other).expect("tmpfs");
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        s.lowerdir(),
        s.upper.display(),
        other.display()
    );
    assert_refused(&o(&opts), &s.mnt, &["workdir"]);
}

#[test]
fn workdir_inside_upperdir_is_refused() {
    let s = simple_stack();
    let inside = s.upper.join("work");
    fs::create_dir(&inside).expect("mkdir");
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        s.lowerdir(),
        s.upper.display(),
        inside.display()
    );
    assert_refused(&o(&opts), &s.mnt, &["workdir"]);
}

#[test]
fn upperdir_without_workdir_is_refused() {
    let s = simple_stack();
    let opts = format!("lowerdir={},upperdir={}", s.lowerdir(), s.upper.display());
    assert_refused(&o(&opts), &s.mnt, &["workdir"]);
}

#[test]
fn nonexistent_upperdir_is_refused() {
    let s = simple_stack();
    let missing = s.root().join("no-such-upper");
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        s.lowerdir(),
        missing.display(),
        s.work.display()
    );
    assert_refused(&o(&opts), &s.mnt, &[&missing.to_string_lossy()]);
}

#[test]
fn missing_mountpoint_is_refused() {
    let s = simple_stack();
    let mnt = s.root().join("no-such-mountpoint");
    assert_refused(
        &o(&s.overlay_opts()),
        &mnt,
        &[&mnt.to_string_lossy(), "mountpoint", "mount point"],
    );
}

#[test]
fn busy_mountpoint_is_refused() {
    let s = simple_stack();
    let _t = Tmpfs::mount(&s.mnt).expect("tmpfs on the mount point");
    assert_refused(
        &o(&s.overlay_opts()),
        &s.mnt,
        &["busy", "already mounted", "mountpoint", "mount point"],
    );
}

#[test]
fn missing_dev_fuse_is_refused() {
    // A private mount namespace whose /dev has no fuse node.
    let s = simple_stack();
    let script = format!(
        "mount --make-rprivate / && mount -t tmpfs tmpfs /dev && exec \"$0\" -o '{}' '{}'",
        s.overlay_opts(),
        s.mnt.display()
    );
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .arg(daemon())
        .output()
        .expect("run unshare");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "mounted without /dev/fuse?");
    let lines: Vec<&str> = text.trim().lines().collect();
    assert_eq!(lines.len(), 1, "exactly one line on stderr, got:\n{text}");
    assert!(
        text.contains("/dev/fuse"),
        "the message must name /dev/fuse: {text}"
    );
    assert!(mounts_at(&s.mnt).is_empty());
}

/// The mount's readahead in KiB, from its bdi in sysfs.
fn readahead_kb(mnt: &Path) -> u32 {
    let dev = fs::metadata(mnt).expect("stat mount").dev();
    let (major, minor) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
    fs::read_to_string(format!("/sys/class/bdi/{major}:{minor}/read_ahead_kb"))
        .expect("read_ahead_kb of the mount's bdi")
        .trim()
        .parse()
        .expect("a number")
}

/// With `readahead=KB` (root) the daemon sets its mount's readahead once the first file
/// is opened (processing INIT resets it, so it can't be set sooner); without it, or
/// with 0, the kernel's stays.
#[test]
fn readahead_is_set_once_a_file_is_opened_when_asked() {
    if !integration_tests::mount::testing_unionfsd() {
        return;
    }
    for (opts, want) in [
        ("", None),
        ("readahead=0", None),
        ("readahead=1024", Some(1024)),
    ] {
        let s = simple_stack();
        let m = FuseMount::mount(&s, opts);
        let before = readahead_kb(m.mnt());
        assert_eq!(fs::read(m.mnt().join("both")).expect("read"), b"top\n");
        assert_eq!(readahead_kb(m.mnt()), want.unwrap_or(before), "{opts:?}");
    }
}
