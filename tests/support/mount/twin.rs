//! Two identical layer stacks, one under kernel overlayfs and one under the daemon,
//! for tests that do the same thing to both and compare what a user sees.

use std::path::Path;

use super::{FuseMount, KernelOverlay, LayerStack, Snapshot, assert_same_view, snapshot};

/// A kernel overlay mount and a daemon mount of byte-identical layers.
///
/// Fields drop in order: mounts first, then the stacks that hold their directories.
pub struct Twin {
    kernel: Option<KernelOverlay>,
    daemon: Option<FuseMount>,
    /// The stack mounted under kernel overlayfs.
    pub ks: LayerStack,
    /// The stack mounted by the daemon under test.
    pub fs: LayerStack,
    kernel_opts: String,
    daemon_opts: String,
}

impl Twin {
    /// Builds a template stack with `lowers` lower layers, lets `populate` fill it, copies
    /// it twice and mounts the copies (`kernel_opts` / `daemon_opts` appended to the
    /// layer options).
    pub fn new(
        lowers: usize,
        kernel_opts: &str,
        daemon_opts: &str,
        populate: impl FnOnce(&LayerStack),
    ) -> Self {
        let template = LayerStack::new(lowers);
        populate(&template);
        let ks = LayerStack::copy_of(&template);
        let fs = LayerStack::copy_of(&template);
        let mut t = Twin {
            kernel: None,
            daemon: None,
            ks,
            fs,
            kernel_opts: kernel_opts.to_string(),
            daemon_opts: daemon_opts.to_string(),
        };
        t.mount();
        t
    }

    fn mount(&mut self) {
        self.kernel =
            Some(KernelOverlay::mount(&self.ks, &self.kernel_opts).expect("mount kernel overlay"));
        self.daemon = Some(FuseMount::mount(&self.fs, &self.daemon_opts));
    }

    /// Unmounts both and mounts them again (state must survive).
    pub fn remount(&mut self) {
        self.unmount();
        self.mount();
    }

    /// Unmounts both (the layers stay, for inspecting what was written).
    pub fn unmount(&mut self) {
        self.daemon = None;
        self.kernel = None;
    }

    /// The kernel overlay's mount point.
    pub fn k(&self) -> &Path {
        &self.ks.mnt
    }

    /// The daemon's mount point.
    pub fn d(&self) -> &Path {
        &self.fs.mnt
    }

    /// Runs `f` on the kernel mount then on the daemon mount and returns both results.
    pub fn both<R>(&self, mut f: impl FnMut(&Path) -> R) -> (R, R) {
        (f(self.k()), f(self.d()))
    }

    /// Runs `f` on both and asserts equal results (e.g. `Ok` or the same errno).
    #[track_caller]
    pub fn same<R: PartialEq + std::fmt::Debug>(&self, what: &str, f: impl FnMut(&Path) -> R) -> R {
        let (k, d) = self.both(f);
        assert_eq!(
            k, d,
            "{what}: kernel overlayfs (left) and the daemon (right) disagree"
        );
        d
    }

    /// Snapshots of both views.
    pub fn views(&self) -> (Snapshot, Snapshot) {
        (
            snapshot(self.k()).expect("snapshot kernel view"),
            snapshot(self.d()).expect("snapshot daemon view"),
        )
    }

    /// Asserts that both views are equal and that the daemon shows no overlay markers.
    #[track_caller]
    pub fn assert_same(&self, context: &str) {
        let (k, d) = self.views();
        assert_same_view("kernel", &k, "daemon", &d, context);
        let leaks = d.leaked_markers();
        assert!(
            leaks.is_empty(),
            "{context}: overlay markers visible in the daemon's view: {leaks:?}"
        );
    }

    /// Mounts the daemon's layers (its upper and workdir included) under kernel overlayfs
    /// with `opts` after unmounting the daemon, and asserts the kernel sees the same view
    /// as the reference mount. The daemon is remounted afterwards.
    #[track_caller]
    pub fn assert_kernel_reads_daemon_upper(&mut self, opts: &str, context: &str) {
        let (reference, _) = self.views();
        self.daemon = None;
        let mnt = self.fs.extra_dir("kernel-on-daemon-upper");
        let all = format!("{},{opts}", self.fs.overlay_opts());
        let view = {
            let _k =
                KernelOverlay::mount_opts(&mnt, all.trim_end_matches(',')).unwrap_or_else(|e| {
                    panic!("{context}: kernel overlayfs refuses the daemon's layers: {e}")
                });
            snapshot(&mnt).expect("snapshot")
        };
        assert_same_view(
            "kernel",
            &reference,
            "kernel-on-daemon-upper",
            &view,
            context,
        );
        self.daemon = Some(FuseMount::mount(&self.fs, &self.daemon_opts));
    }
}
