//! `imagectl mount`: an image's merged view served by unionfsd over its stored layers,
//! read-only by default, with a throwaway upper under `--rw`; the image is held while
//! mounted.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use integration_tests::images::{Imagectl, TarBuilder, import_busybox, write_oci_layout};

/// Unmounts on drop, even when the test fails.
struct Mounted<'a> {
    ctl: &'a Imagectl,
    dir: PathBuf,
}

impl<'a> Mounted<'a> {
    fn new(ctl: &'a Imagectl, image: &str, dir: &Path, rw: bool) -> Self {
        let mut args = vec!["mount", image, dir.to_str().unwrap()];
        if rw {
            args.push("--rw");
        }
        ctl.ok(&args);
        Mounted {
            ctl,
            dir: dir.to_path_buf(),
        }
    }

    fn unmount(mut self) {
        self.ctl.ok(&["umount", self.dir.to_str().unwrap()]);
        self.dir = PathBuf::new();
    }
}

impl Drop for Mounted<'_> {
    fn drop(&mut self) {
        if self.dir.as_os_str().is_empty() {
            return;
        }
        let r = self.ctl.run(&["umount", self.dir.to_str().unwrap()]);
        if r.code != 0 {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

#[test]
fn read_only_mount_shows_the_image_and_holds_it() {
    let ctl = Imagectl::new();
    import_busybox(&ctl, "busybox");
    let mnt = ctl.scratch("mnt");
    let m = Mounted::new(&ctl, "busybox", &mnt, false);
    assert!(
        fs::read_to_string(mnt.join("etc/passwd"))
            .unwrap()
            .starts_with("root:")
    );
    assert_eq!(
        fs::read_link(mnt.join("bin/sh")).unwrap().to_str(),
        Some("busybox")
    );
    let err = fs::write(mnt.join("new"), "x").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
    // The image is in use while mounted.
    let err = ctl.fail(&["rmi", "busybox"]);
    assert!(err.contains("in use by mount-"), "{err}");
    m.unmount();
    assert!(fs::read_dir(&mnt).unwrap().next().is_none());
    ctl.ok(&["rmi", "busybox"]);
    assert!(ctl.layers().is_empty());
}

#[test]
fn merged_view_applies_whiteouts_and_opaque_dirs() {
    let ctl = Imagectl::new();
    let base = TarBuilder::new()
        .dir("d/")
        .file("d/a", b"a")
        .file("d/b", b"b")
        .file("f", b"f")
        .dir("o/")
        .file("o/lower", b"lower")
        .finish();
    let top = TarBuilder::new()
        .file("d/.wh.a", b"")
        .file(".wh.f", b"")
        .dir("o/")
        .file("o/.wh..wh..opq", b"")
        .file("o/upper", b"upper")
        .finish();
    let layout = ctl.scratch("layout");
    write_oci_layout(&layout, &[base, top], "wh:1");
    ctl.ok(&["pull", &format!("oci:{}:wh:1", layout.display())]);
    let mnt = ctl.scratch("mnt");
    let _m = Mounted::new(&ctl, "wh:1", &mnt, false);
    let names = |p: &Path| {
        let mut v: Vec<String> = fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&mnt), vec!["d", "o"]);
    assert_eq!(names(&mnt.join("d")), vec!["b"]);
    assert_eq!(names(&mnt.join("o")), vec!["upper"]);
}

#[test]
fn rw_mount_writes_to_a_throwaway_upper() {
    let ctl = Imagectl::new();
    import_busybox(&ctl, "busybox");
    let layers_before = ctl.layers();
    let mnt = ctl.scratch("mnt");
    let m = Mounted::new(&ctl, "busybox", &mnt, true);
    fs::write(mnt.join("etc/passwd"), "changed\n").unwrap();
    fs::write(mnt.join("new"), "x").unwrap();
    m.unmount();
    // The stored layer is untouched and the writes are gone.
    assert_eq!(ctl.layers(), layers_before);
    let m = Mounted::new(&ctl, "busybox", &mnt, false);
    assert!(
        fs::read_to_string(mnt.join("etc/passwd"))
            .unwrap()
            .starts_with("root:")
    );
    assert!(!mnt.join("new").exists());
    m.unmount();
    let err = ctl.fail(&["umount", mnt.to_str().unwrap()]);
    assert!(err.contains("not mounted"), "{err}");
}
