//! Whiteouts and opaque directories: lookup is top-down, whiteouts hide lower entries,
//! opaque directories stop the descent; every on-disk form is read; what the daemon
//! writes is what the kernel writes (or the OCI form with `whiteout=oci`); no marker
//! ever shows in the merged view.
//!
//! Each form test encodes one logical stack twice: in kernel form for a kernel overlayfs
//! mount (the reference view) and in the form under test for the daemon.

use std::fs;
use std::path::Path;

use integration_tests::mount::{
    FuseMount, KernelOverlay, LayerStack, Twin, assert_same_view, layers, snapshot, xattr,
};

#[derive(Clone, Copy, Debug)]
enum Whiteout {
    CharDev,
    Xattr,
    Oci,
}

#[derive(Clone, Copy, Debug)]
enum Opaque {
    Trusted,
    User,
    Oci,
}

/// The logical stack: bottom layer with content, top layer hiding parts of it.
fn build(s: &LayerStack, wh: Whiteout, opq: Opaque) {
    let (top, bottom) = (s.lower(0), s.lower(1));
    for (p, c) in [
        ("gone", "bottom gone\n"),
        ("kept", "bottom kept\n"),
        ("shadowed", "bottom shadowed\n"),
        ("dir/old1", "old1\n"),
        ("dir/old2", "old2\n"),
        ("hidden_dir/inner", "inner\n"),
        ("op/below", "below\n"),
        ("op/sub/deep", "deep\n"),
    ] {
        layers::file(&bottom.join(p), c.as_bytes(), 0o644).expect("bottom file");
    }
    layers::file(&top.join("shadowed"), b"top shadowed\n", 0o600).expect("top file");
    layers::file(&top.join("op/above"), b"above\n", 0o644).expect("top file");
    fs::create_dir_all(top.join("dir")).expect("top dir");
    let whiteout = |p: &Path| match wh {
        Whiteout::CharDev => layers::whiteout_chardev(p),
        Whiteout::Xattr => layers::whiteout_xattr(p),
        Whiteout::Oci => layers::whiteout_oci(p),
    };
    whiteout(&top.join("gone")).expect("whiteout file");
    whiteout(&top.join("dir/old1")).expect("whiteout nested file");
    whiteout(&top.join("hidden_dir")).expect("whiteout dir");
    match opq {
        Opaque::Trusted => layers::opaque_trusted(&top.join("op")),
        Opaque::User => layers::opaque_user(&top.join("op")),
        Opaque::Oci => layers::opaque_oci(&top.join("op")),
    }
    .expect("opaque");
    for d in ["dir", "op", "hidden_dir"] {
        for l in [top, bottom] {
            if l.join(d).is_dir() {
                layers::set_old_times(&l.join(d), 300_000_000).expect("times");
            }
        }
    }
}

/// Mounts the kernel form under kernel overlayfs and the given form under the daemon
/// and compares the views.
fn compare_form(wh: Whiteout, opq: Opaque) {
    let ks = LayerStack::new(2);
    build(&ks, Whiteout::CharDev, Opaque::Trusted);
    let fs_ = LayerStack::new(2);
    build(&fs_, wh, opq);
    let _k = KernelOverlay::mount(&ks, "").expect("kernel mount");
    let _f = FuseMount::mount(&fs_, "");
    let kv = snapshot(&ks.mnt).expect("kernel view");
    let fv = snapshot(&fs_.mnt).expect("daemon view");
    // The reference itself must show the semantics, or the comparison proves nothing.
    assert_eq!(
        kv.paths(),
        ["dir", "dir/old2", "kept", "op", "op/above", "shadowed"],
        "kernel reference view"
    );
    assert_same_view(
        "kernel",
        &kv,
        "daemon",
        &fv,
        &format!("{wh:?} whiteouts, {opq:?} opaque"),
    );
    let leaks = fv.leaked_markers();
    assert!(leaks.is_empty(), "markers visible: {leaks:?}");
    assert_eq!(
        fs::read_to_string(fs_.m("shadowed")).expect("read"),
        "top shadowed\n",
        "the top layer wins"
    );
    for hidden in [
        "gone",
        "dir/old1",
        "hidden_dir",
        "hidden_dir/inner",
        "op/below",
        "op/sub",
    ] {
        match fs::symlink_metadata(fs_.m(hidden)) {
            Ok(_) => {
                panic!("lookup of {hidden} finds it, though it is hidden (readdir agrees it is)")
            }
            Err(e) => assert_eq!(
                e.raw_os_error(),
                Some(libc::ENOENT),
                "{hidden} must be ENOENT"
            ),
        }
    }
}

#[test]
fn whiteout_chardev_and_trusted_opaque_hide_lower_entries() {
    compare_form(Whiteout::CharDev, Opaque::Trusted);
}

#[test]
fn whiteout_as_xattr_marked_empty_file_is_read() {
    compare_form(Whiteout::Xattr, Opaque::Trusted);
}

#[test]
fn whiteout_and_opaque_in_oci_form_are_read() {
    compare_form(Whiteout::Oci, Opaque::Oci);
}

#[test]
fn opaque_as_user_overlay_xattr_is_read() {
    compare_form(Whiteout::CharDev, Opaque::User);
}

fn lower_tree(s: &LayerStack) {
    layers::file(&s.lower(0).join("file"), b"lower file\n", 0o644).expect("file");
    layers::file(&s.lower(0).join("dir/a"), b"a\n", 0o644).expect("file");
    layers::file(&s.lower(0).join("redo/x"), b"x\n", 0o644).expect("file");
}

fn delete_and_recreate(root: &Path) {
    fs::remove_file(root.join("file")).expect("unlink lower file");
    fs::remove_file(root.join("dir/a")).expect("unlink lower file in dir");
    fs::remove_dir(root.join("dir")).expect("rmdir emptied lower dir");
    fs::remove_file(root.join("redo/x")).expect("unlink");
    fs::remove_dir(root.join("redo")).expect("rmdir");
    fs::create_dir(root.join("redo")).expect("mkdir over a whiteout");
    fs::write(root.join("redo/new"), b"new\n").expect("create in the new dir");
}

#[test]
fn daemon_writes_kernel_whiteouts_and_opaque_dirs() {
    let mut t = Twin::new(1, "", "", lower_tree);
    t.both(delete_and_recreate);
    t.assert_same("after unlink, rmdir and mkdir over a whiteout");
    t.unmount();
    let up = &t.fs.upper;
    for w in ["file", "dir"] {
        let md = fs::symlink_metadata(up.join(w))
            .unwrap_or_else(|e| panic!("no whiteout for {w} in upper: {e}"));
        assert!(
            std::os::unix::fs::FileTypeExt::is_char_device(&md.file_type())
                && std::os::unix::fs::MetadataExt::rdev(&md) == 0,
            "{w}: the whiteout must be a 0/0 character device, like the kernel's"
        );
    }
    assert_eq!(
        xattr::get(&up.join("redo"), layers::TRUSTED_OPAQUE)
            .expect("getxattr")
            .as_deref(),
        Some(&b"y"[..]),
        "mkdir over a whiteout must make an opaque dir (trusted.overlay.opaque=y)"
    );
    t.remount();
    t.assert_same("after remount");
    t.assert_kernel_reads_daemon_upper("", "the daemon's upper under kernel overlayfs");
}

#[test]
fn whiteout_oci_option_writes_oci_whiteouts_and_user_opaque() {
    let reference = Twin::new(1, "", "", lower_tree);
    reference.both(delete_and_recreate);
    let s = LayerStack::new(1);
    lower_tree(&s);
    let view = {
        let _f = FuseMount::mount(&s, "whiteout=oci");
        delete_and_recreate(&s.mnt);
        snapshot(&s.mnt).expect("view")
    };
    let (kv, _) = reference.views();
    assert_same_view("kernel", &kv, "daemon(whiteout=oci)", &view, "whiteout=oci");
    for w in [".wh.file", ".wh.dir"] {
        let md = fs::symlink_metadata(s.upper.join(w))
            .unwrap_or_else(|e| panic!("{w} missing in upper: {e}"));
        assert!(md.is_file(), "{w} must be a regular file");
    }
    assert!(
        !s.upper.join("file").exists(),
        "no character-device whiteout with whiteout=oci"
    );
    assert_eq!(
        xattr::get(&s.upper.join("redo"), layers::USER_OPAQUE)
            .expect("getxattr")
            .as_deref(),
        Some(&b"y"[..]),
        "whiteout=oci marks opaque dirs with user.overlay.opaque=y"
    );
    let again = {
        let _f = FuseMount::mount(&s, "whiteout=oci");
        snapshot(&s.mnt).expect("view")
    };
    assert_same_view(
        "kernel",
        &kv,
        "daemon(whiteout=oci) remounted",
        &again,
        "whiteout=oci after remount",
    );
}

#[test]
fn no_marker_name_or_private_xattr_is_visible() {
    let s = LayerStack::new(2);
    build(&s, Whiteout::Oci, Opaque::Trusted);
    layers::opaque_user(&s.lower(0).join("dir")).expect("user opaque on a merged-looking dir");
    xattr::set(&s.lower(1).join("kept"), "trusted.overlay.origin", b"junk").expect("private xattr");
    xattr::set(&s.lower(1).join("kept"), "user.visible", b"yes").expect("user xattr");
    let _f = FuseMount::mount(&s, "");
    let v = snapshot(&s.mnt).expect("view");
    assert!(
        v.leaked_markers().is_empty(),
        "markers visible: {:?}",
        v.leaked_markers()
    );
    for (p, x) in [
        ("op", "trusted.overlay.opaque"),
        ("dir", "user.overlay.opaque"),
        ("kept", "trusted.overlay.origin"),
    ] {
        assert_eq!(
            xattr::get(&s.m(p), x).expect("getxattr"),
            None,
            "{x} readable on {p}"
        );
    }
    assert_eq!(
        xattr::get(&s.m("kept"), "user.visible")
            .expect("getxattr")
            .as_deref(),
        Some(&b"yes"[..])
    );
    for name in [".wh.gone", ".wh..wh..opq", "op/.wh..wh..opq"] {
        assert!(
            fs::symlink_metadata(s.m(name)).is_err(),
            "{name} must not be visible"
        );
    }
}
