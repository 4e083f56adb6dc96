//! The harness itself: a test that fails leaves no mount, no daemon and no temporary
//! directory behind, whether the mount is the daemon's, a kernel overlay or a tmpfs,
//! and a daemon that crashed is cleaned up too.

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use integration_tests::mount::{
    FuseMount, KernelOverlay, LayerStack, Tmpfs, any_mount_under, layers, pid_alive,
};

#[test]
fn a_failing_test_leaves_no_mount_and_no_daemon() {
    let mut root = PathBuf::new();
    let mut pid = None;
    let result = catch_unwind(AssertUnwindSafe(|| {
        let s = LayerStack::new(1);
        root = s.root().to_path_buf();
        layers::file(&s.lower(0).join("f"), b"f", 0o644).expect("file");
        let kmnt = s.extra_dir("kernel");
        let tmnt = s.extra_dir("tmpfs");
        let kwork = s.extra_dir("kwork");
        let kupper = s.extra_dir("kupper");
        let _t = Tmpfs::mount(&tmnt).expect("tmpfs");
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            s.lower(0).display(),
            kupper.display(),
            kwork.display()
        );
        let _k = KernelOverlay::mount_opts(&kmnt, &opts).expect("kernel overlay");
        let m = FuseMount::mount(&s, "");
        pid = m.pid();
        // A file is open on the mount when the test fails (unwinding closes it first).
        let _open = fs::File::open(s.m("f")).expect("open");
        assert!(!any_mount_under(&root).is_empty());
        panic!("the test fails here, with three mounts up");
    }));
    assert!(result.is_err(), "the inner test was meant to fail");
    let left = any_mount_under(&root);
    assert!(
        left.is_empty(),
        "mounts left behind by a failing test: {left:?}"
    );
    let pid = pid.expect("daemon pid");
    assert!(
        !pid_alive(pid),
        "daemon {pid} left running by a failing test"
    );
    assert!(
        !root.exists(),
        "the failing test's temporary directory was not removed"
    );
}

#[test]
fn a_daemon_that_died_leaves_nothing_mounted_after_the_guard() {
    let s = LayerStack::new(1);
    let m = FuseMount::mount(&s, "");
    let pid = m.pid().expect("pid");
    // SAFETY: kill(2) of the daemon this test started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    drop(m);
    assert!(
        any_mount_under(s.root()).is_empty(),
        "the guard must clean up after a crashed daemon"
    );
    assert!(!pid_alive(pid));
}
