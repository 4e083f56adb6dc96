//! Helpers for the container tests: a private store with a busybox image, and a guard
//! that force-removes every container (and so every union mount) of that store when
//! the test ends, pass or fail.

use std::fs;
use std::path::{Path, PathBuf};

use crate::images::{Imagectl, Run, import_busybox};

/// A store with the busybox image `bb` (with `/etc/x` = "orig"), cleaned up on drop.
pub struct Lab {
    /// `imagectl` bound to the store.
    pub ctl: Imagectl,
}

impl Lab {
    /// A fresh store with `bb` imported.
    pub fn new() -> Lab {
        let ctl = Imagectl::new();
        let rootfs = ctl.scratch("busybox-rootfs");
        crate::images::busybox_rootfs(&rootfs);
        fs::write(rootfs.join("etc/x"), "orig\n").expect("write etc/x");
        import_busybox(&ctl, "bb");
        Lab { ctl }
    }

    /// Runs `imagectl ARGS`.
    pub fn run(&self, args: &[&str]) -> Run {
        self.ctl.run(args)
    }

    /// Runs and expects exit 0; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(r.code, 0, "imagectl {args:?}: {r:?}");
        r.stdout
    }

    /// `inspect` of a container, parsed.
    pub fn inspect(&self, name: &str) -> serde_json::Value {
        let out = self.ok(&["container", "inspect", name]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("inspect JSON");
        v[0].clone()
    }

    /// The store root.
    pub fn root(&self) -> &Path {
        &self.ctl.root
    }

    /// Container directories in `ROOT/containers` (not the `.names` reservations).
    pub fn container_dirs(&self) -> Vec<String> {
        let mut v = list(&self.root().join("containers"));
        v.retain(|n| !n.starts_with('.'));
        v
    }

    /// Entries of `ROOT/holds`.
    pub fn holds(&self) -> Vec<String> {
        list(&self.root().join("holds"))
    }

    /// Mount points under the store (none should be left after `rm`).
    pub fn mounts(&self) -> Vec<PathBuf> {
        mounts_under(self.root())
    }

    /// The host path of the container's upper directory.
    pub fn upper(&self, name: &str) -> PathBuf {
        PathBuf::from(
            self.inspect(name)["GraphDriver"]["Data"]["UpperDir"]
                .as_str()
                .expect("UpperDir"),
        )
    }

    /// The file listing of the top layer blob of `image` (`tar tf`).
    pub fn top_layer_listing(&self, image: &str) -> (Vec<String>, u64) {
        self.ctl.top_layer_listing(image)
    }
}

impl Default for Lab {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let ids = self.ctl.run(&["ps", "-a", "-q", "--no-trunc"]).stdout;
        for id in ids.lines().filter(|l| !l.is_empty()) {
            let _ = self.ctl.run(&["rm", "-f", "-v", id]);
        }
        for m in mounts_under(&self.ctl.root) {
            let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

fn list(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Mount points (from /proc/self/mountinfo) below `root`.
pub fn mounts_under(root: &Path) -> Vec<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(m.replace("\\040", " ")))
        .filter(|m| m.starts_with(root))
        .collect()
}

/// Pids of the `unionfsd` processes serving a mount at `merged`.
pub fn unionfsd_pids(merged: &Path) -> Vec<i32> {
    crate::mount::daemon_pids_for(merged)
}
