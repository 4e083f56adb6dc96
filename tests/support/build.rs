//! Test helpers for `imagectl build`: build contexts in temp dirs, running a build
//! against a private store, and reading a built image's files through a read-only
//! `imagectl mount` that is unmounted on drop (also when the test fails).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::images::{Imagectl, Run};

/// A build context directory (removed on drop).
pub struct BuildContext {
    dir: tempfile::TempDir,
}

impl BuildContext {
    /// An empty context.
    pub fn new() -> Self {
        BuildContext {
            dir: tempfile::Builder::new()
                .prefix("build-ctx-")
                .tempdir()
                .expect("tempdir"),
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `rel` (creating parents) with `content`.
    pub fn write(&self, rel: &str, content: &str) -> &Self {
        let p = self.dir.path().join(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).expect("mkdir in context");
        }
        fs::write(&p, content).expect("write context file");
        self
    }

    /// Sets the mode of `rel`.
    pub fn chmod(&self, rel: &str, mode: u32) -> &Self {
        fs::set_permissions(self.dir.path().join(rel), fs::Permissions::from_mode(mode))
            .expect("chmod");
        self
    }

    /// Writes the Dockerfile.
    pub fn dockerfile(&self, text: &str) -> &Self {
        self.write("Dockerfile", text)
    }
}

impl Default for BuildContext {
    fn default() -> Self {
        Self::new()
    }
}

/// Runs `imagectl build ARGS CONTEXT`.
pub fn build(ctl: &Imagectl, ctx: &BuildContext, args: &[&str]) -> Run {
    let mut all: Vec<&str> = vec!["build"];
    all.extend_from_slice(args);
    let p = ctx.path().to_str().expect("utf8 path");
    all.push(p);
    ctl.run(&all)
}

/// Runs a build that must succeed; returns its stdout.
pub fn build_ok(ctl: &Imagectl, ctx: &BuildContext, args: &[&str]) -> String {
    let r = build(ctl, ctx, args);
    assert_eq!(r.code, 0, "build {args:?} failed: {r:?}");
    r.stdout
}

/// The full image ID (`sha256:...`) of `name`.
pub fn image_id(ctl: &Imagectl, name: &str) -> String {
    ctl.inspect(name)["Id"]
        .as_str()
        .expect("Id in inspect")
        .to_string()
}

/// An image mounted read-only with `imagectl mount`, unmounted on drop.
pub struct MountedImage<'a> {
    ctl: &'a Imagectl,
    dir: PathBuf,
}

impl<'a> MountedImage<'a> {
    /// Mounts `image` at a fresh scratch directory.
    pub fn new(ctl: &'a Imagectl, image: &str) -> Self {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = ctl.scratch(&format!("mnt-{n}"));
        ctl.ok(&["mount", image, dir.to_str().expect("utf8")]);
        MountedImage { ctl, dir }
    }

    /// The path of `p` (absolute in the image) on the host.
    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.join(p.trim_start_matches('/'))
    }

    /// The content of a file, if it exists.
    pub fn read(&self, p: &str) -> Option<String> {
        fs::read_to_string(self.path(p)).ok()
    }

    /// `lstat` of a path in the image.
    pub fn meta(&self, p: &str) -> Option<fs::Metadata> {
        fs::symlink_metadata(self.path(p)).ok()
    }
}

impl Drop for MountedImage<'_> {
    fn drop(&mut self) {
        let _ = self
            .ctl
            .run(&["umount", self.dir.to_str().unwrap_or_default()]);
    }
}

/// Mount points under the store (a build must leave none behind).
pub fn mounts_under(root: &Path) -> Vec<String> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let root = root.to_string_lossy().into_owned();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&root))
        .map(str::to_string)
        .collect()
}
