//! Test helpers for the container runtime: a busybox-static rootfs, OCI bundles made
//! with `ctr-runtime spec` and adjusted as JSON, and guards that delete every container
//! a test starts (under `ctr-runtime` or `runc`), even when the test fails.
//!
//! Each test gets its own state directory and container ids that are unique across
//! parallel tests and test processes, so cgroups never collide.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use tempfile::TempDir;

/// The uid/gid of the unprivileged user in the test rootfs.
pub const USER_ID: u32 = 1000;
/// A supplementary group of that user (`extra`).
pub const EXTRA_GID: u32 = 2000;

/// The runtime binary under test.
pub fn ctr_runtime() -> PathBuf {
    crate::bins::workspace_bin("ctr-runtime")
}

/// Fills `root` with /bin/busybox from Debian's busybox-static, one symlink per applet,
/// and a minimal /etc/passwd and /etc/group (root, `user` 1000, group `extra` 2000).
pub fn make_busybox_rootfs(root: &Path) {
    let busybox = Path::new("/bin/busybox");
    assert!(
        busybox.exists(),
        "install busybox-static (apt-get install busybox-static)"
    );
    for d in [
        "bin",
        "etc",
        "tmp",
        "root",
        "home/user",
        "proc",
        "sys",
        "dev",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy(busybox, root.join("bin/busybox")).unwrap();
    let list = Command::new(busybox).arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let applet = applet.trim();
        // `busybox` itself is in the list: linking it would replace the binary.
        if applet.is_empty() || applet == "busybox" {
            continue;
        }
        let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(applet));
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        root.join("etc/group"),
        "root:x:0:\nuser:x:1000:\nextra:x:2000:user\n",
    )
    .unwrap();
    std::os::unix::fs::chown(root.join("home/user"), Some(USER_ID), Some(USER_ID)).unwrap();
    std::fs::set_permissions(
        root.join("tmp"),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .unwrap();
}

/// A unique container id for this test process.
pub fn unique_id(name: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "t{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// An OCI bundle in a temp dir: a busybox rootfs and a config.json.
pub struct Bundle {
    /// Holds the directory.
    pub dir: TempDir,
    /// The config, edited by tests and written by [`Bundle::save`].
    pub config: Value,
}

impl Bundle {
    /// A bundle whose process runs `args`, from `ctr-runtime spec` defaults.
    pub fn new(args: &[&str]) -> Bundle {
        let dir = tempfile::Builder::new()
            .prefix("rt-bundle")
            .tempdir()
            .unwrap();
        make_busybox_rootfs(&dir.path().join("rootfs"));
        let out = Command::new(ctr_runtime())
            .args(["spec", "--bundle"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "spec: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
        let mut config: Value = serde_json::from_str(&text).unwrap();
        config["process"]["args"] = json!(args);
        let b = Bundle { dir, config };
        b.save();
        b
    }

    /// The bundle directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The rootfs directory.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// Writes `config` to config.json.
    pub fn save(&self) {
        std::fs::write(
            self.dir.path().join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }

    /// Sets the process args and saves.
    pub fn set_args(&mut self, args: &[&str]) {
        self.config["process"]["args"] = json!(args);
        self.save();
    }

    /// Removes a namespace type from `linux.namespaces` and saves.
    pub fn drop_namespace(&mut self, typ: &str) {
        let ns = self.config["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != typ);
        self.save();
    }
}

/// A private state directory for `ctr-runtime --root`.
pub struct Runtime {
    /// Holds the state directory.
    pub root: TempDir,
}

impl Default for Runtime {
    fn default() -> Self {
        Self::new()
    }
}

impl Runtime {
    /// A fresh state directory.
    pub fn new() -> Runtime {
        Runtime {
            root: tempfile::Builder::new()
                .prefix("rt-state")
                .tempdir()
                .unwrap(),
        }
    }

    /// A `ctr-runtime --root <state>` command.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(ctr_runtime());
        c.arg("--root").arg(self.root.path());
        c
    }

    /// Runs `ctr-runtime --root <state> ARGS` with stdin closed and returns its output.
    pub fn exec(&self, args: &[&str]) -> Output {
        self.cmd().args(args).stdin(Stdio::null()).output().unwrap()
    }

    /// Runs a bundle in the foreground (deleted afterwards by `run` itself).
    pub fn run(&self, bundle: &Bundle) -> RunOutput {
        let id = unique_id("run");
        let _guard = self.guard(&id);
        let out = self
            .cmd()
            .args(["run", "--bundle"])
            .arg(bundle.path())
            .arg(&id)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        RunOutput::from(out)
    }

    /// A guard that force-deletes container `id` when dropped.
    pub fn guard(&self, id: &str) -> ContainerGuard {
        ContainerGuard {
            bin: ctr_runtime(),
            root: self.root.path().to_path_buf(),
            id: id.to_string(),
        }
    }

    /// The parsed `state` of a container.
    pub fn state(&self, id: &str) -> Value {
        let out = self.exec(&["state", id]);
        assert!(
            out.status.success(),
            "state {id}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

/// Exit code and output of a container run.
#[derive(Debug)]
pub struct RunOutput {
    /// The exit code (-1 if the runtime itself was killed).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl From<Output> for RunOutput {
    fn from(o: Output) -> Self {
        RunOutput {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Deletes a container (with `--force`) on drop, whether the test passed or not.
pub struct ContainerGuard {
    bin: PathBuf,
    root: PathBuf,
    id: String,
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        let _ = Command::new(&self.bin)
            .arg("--root")
            .arg(&self.root)
            .args(["delete", "--force", &self.id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Runs a bundle under `runc` in the foreground, with its own state dir; the container
/// is force-deleted afterwards.
pub fn runc_run(bundle: &Bundle) -> RunOutput {
    let root = tempfile::Builder::new()
        .prefix("runc-state")
        .tempdir()
        .unwrap();
    let id = unique_id("runc");
    let out = Command::new("runc")
        .arg("--root")
        .arg(root.path())
        .args(["run", "--bundle"])
        .arg(bundle.path())
        .arg(&id)
        .stdin(Stdio::null())
        .output()
        .expect("runc is installed (apt-get install runc)");
    let _ = Command::new("runc")
        .arg("--root")
        .arg(root.path())
        .args(["delete", "--force", &id])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    RunOutput::from(out)
}
