//! Test helpers for the image manager: running `imagectl` against a private store,
//! local base images (Debian's busybox-static, as there is no public registry here),
//! hand-made layer tars (including hostile ones) and hand-made OCI layouts.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use sha2::{Digest as _, Sha256};

use crate::bins::workspace_bin;

/// `sha256:<hex>` of some bytes.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// `imagectl` bound to a private store in a temp dir (removed on drop).
pub struct Imagectl {
    /// The store root.
    pub root: PathBuf,
    _dir: tempfile::TempDir,
}

/// What a command printed and how it ended.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Imagectl {
    /// A fresh, empty store.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("imagectl-test-")
            .tempdir()
            .expect("tempdir");
        let root = dir.path().join("store");
        Imagectl { root, _dir: dir }
    }

    /// A scratch directory inside this store's temp dir.
    pub fn scratch(&self, name: &str) -> PathBuf {
        let p = self._dir.path().join(name);
        fs::create_dir_all(&p).expect("mkdir scratch");
        p
    }

    /// The `imagectl` command with `--root` set.
    pub fn command(&self) -> Command {
        let mut c = Command::new(workspace_bin("imagectl"));
        c.arg("--root").arg(&self.root);
        c.env("DOCKER_CONFIG", self._dir.path().join("docker-config"));
        c.stdin(Stdio::null());
        c
    }

    /// Runs `imagectl ARGS`.
    pub fn run(&self, args: &[&str]) -> Run {
        let out: Output = self.command().args(args).output().expect("spawn imagectl");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs and expects success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(r.code, 0, "imagectl {args:?} failed: {r:?}");
        r.stdout
    }

    /// Runs and expects exit status 1; returns stderr.
    pub fn fail(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(r.code, 1, "imagectl {args:?} should fail with 1: {r:?}");
        r.stderr
    }

    /// Files under `blobs/sha256` (hex names).
    pub fn blobs(&self) -> Vec<String> {
        list(&self.root.join("blobs/sha256"))
    }

    /// Directories under `layers/` (ChainID hex names).
    pub fn layers(&self) -> Vec<String> {
        list(&self.root.join("layers"))
    }

    /// Entries left in `tmp/`.
    pub fn tmp_entries(&self) -> Vec<String> {
        list(&self.root.join("tmp"))
    }

    /// The entries of `image`'s top layer tar (trailing `/` dropped) and the tar's size:
    /// what a commit or a build step put into its layer.
    pub fn top_layer_listing(&self, image: &str) -> (Vec<String>, u64) {
        let v = self.inspect(image);
        let layers = v["RootFS"]["Layers"].as_array().expect("layers");
        let top = layers.last().and_then(|l| l.as_str()).expect("top layer");
        let hex = top.trim_start_matches("sha256:");
        let blob = self.root.join("blobs/sha256").join(hex);
        let size = fs::metadata(&blob).expect("layer blob").len();
        let out = Command::new("tar")
            .arg("tf")
            .arg(&blob)
            .output()
            .expect("tar");
        let names = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim_end_matches('/').to_string())
            .collect();
        (names, size)
    }

    /// `inspect` output of one image, parsed.
    pub fn inspect(&self, image: &str) -> serde_json::Value {
        let out = self.ok(&["inspect", image]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("inspect JSON");
        v[0].clone()
    }

    /// Every blob in the store hashes to its name (nothing half-written).
    pub fn assert_blobs_intact(&self) {
        for b in self.blobs() {
            let bytes = fs::read(self.root.join("blobs/sha256").join(&b)).expect("read blob");
            assert_eq!(sha256(&bytes), format!("sha256:{b}"), "corrupt blob {b}");
        }
    }
}

impl Default for Imagectl {
    fn default() -> Self {
        Self::new()
    }
}

fn list(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

/// Writes a busybox root filesystem under `dir`: `/bin/busybox` from Debian's
/// busybox-static, a symlink per applet, a minimal /etc/passwd and /etc/group.
pub fn busybox_rootfs(dir: &Path) {
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).expect("mkdir bin");
    fs::create_dir_all(dir.join("etc")).expect("mkdir etc");
    fs::create_dir_all(dir.join("tmp")).expect("mkdir tmp");
    fs::copy("/bin/busybox", bin.join("busybox"))
        .expect("copy /bin/busybox (apt-get install busybox-static)");
    let list = Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" && !applet.is_empty() {
            let _ = symlink("busybox", bin.join(applet));
        }
    }
    fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )
    .expect("passwd");
    fs::write(dir.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").expect("group");
}

/// Imports a busybox rootfs as `name` into `ctl`'s store.
pub fn import_busybox(ctl: &Imagectl, name: &str) -> String {
    let rootfs = ctl.scratch("busybox-rootfs");
    if !rootfs.join("bin/busybox").exists() {
        busybox_rootfs(&rootfs);
    }
    ctl.ok(&["import", rootfs.to_str().expect("utf8"), name])
        .trim()
        .to_string()
}

/// A minimal tar writer for tests: it writes whatever names it is given, including the
/// hostile ones (`..`, absolute paths) that real tar libraries refuse to produce.
#[derive(Default)]
pub struct TarBuilder {
    buf: Vec<u8>,
}

impl TarBuilder {
    /// An empty archive.
    pub fn new() -> Self {
        TarBuilder::default()
    }

    fn header(&mut self, name: &str, kind: u8, size: usize, mode: u32, link: &str) {
        let mut h = [0u8; 512];
        assert!(
            name.len() < 100 && link.len() < 100,
            "test tar names must be short"
        );
        h[..name.len()].copy_from_slice(name.as_bytes());
        let oct = |h: &mut [u8; 512], at: usize, len: usize, v: u64| {
            let s = format!("{:0width$o}\0", v, width = len - 1);
            h[at..at + len].copy_from_slice(s.as_bytes());
        };
        oct(&mut h, 100, 8, mode as u64);
        oct(&mut h, 108, 8, 0);
        oct(&mut h, 116, 8, 0);
        oct(&mut h, 124, 12, size as u64);
        oct(&mut h, 136, 12, 1_600_000_000);
        h[156] = kind;
        h[157..157 + link.len()].copy_from_slice(link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| b as u32).sum();
        let s = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(s.as_bytes());
        self.buf.extend_from_slice(&h);
    }

    /// A regular file.
    pub fn file(mut self, name: &str, data: &[u8]) -> Self {
        self.header(name, b'0', data.len(), 0o644, "");
        self.buf.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.buf.extend(std::iter::repeat_n(0u8, pad));
        self
    }

    /// A directory.
    pub fn dir(mut self, name: &str) -> Self {
        self.header(name, b'5', 0, 0o755, "");
        self
    }

    /// A symlink.
    pub fn symlink(mut self, name: &str, target: &str) -> Self {
        self.header(name, b'2', 0, 0o777, target);
        self
    }

    /// A hardlink.
    pub fn hardlink(mut self, name: &str, target: &str) -> Self {
        self.header(name, b'1', 0, 0o644, target);
        self
    }

    /// The finished archive (two zero blocks appended).
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.extend(std::iter::repeat_n(0u8, 1024));
        self.buf
    }
}

/// One layer blob for [`write_oci_image`]: its bytes as stored, media type, DiffID.
pub struct LayerBlob {
    /// The blob as stored (maybe compressed).
    pub blob: Vec<u8>,
    /// Its media type.
    pub media_type: String,
    /// SHA-256 of the uncompressed tar.
    pub diff_id: String,
}

impl LayerBlob {
    /// An uncompressed layer.
    pub fn plain(tar: &[u8]) -> Self {
        LayerBlob {
            blob: tar.to_vec(),
            media_type: "application/vnd.oci.image.layer.v1.tar".into(),
            diff_id: sha256(tar),
        }
    }
}

/// Writes the blobs of one image (layers, config for `arch`, manifest) into the layout
/// at `dir` without touching `index.json`. Returns the manifest digest and size.
pub fn write_oci_image(dir: &Path, layers: &[LayerBlob], arch: &str) -> (String, usize) {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).expect("mkdir blobs");
    let put = |bytes: &[u8]| {
        let d = sha256(bytes);
        fs::write(blobs.join(&d[7..]), bytes).expect("write blob");
        d
    };
    let layer_digests: Vec<String> = layers.iter().map(|l| put(&l.blob)).collect();
    let history: Vec<serde_json::Value> = (0..layers.len())
        .map(|i| serde_json::json!({"created": "2024-01-01T00:00:00Z", "created_by": format!("layer {i}")}))
        .collect();
    let config = serde_json::json!({
        "created": "2024-01-01T00:00:00Z",
        "architecture": arch,
        "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()},
        "history": history,
    });
    let config_bytes = serde_json::to_vec(&config).expect("config json");
    let config_digest = put(&config_bytes);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_bytes.len()},
        "layers": layers.iter().zip(&layer_digests).map(|(l, d)| serde_json::json!({
            "mediaType": l.media_type, "digest": d, "size": l.blob.len()
        })).collect::<Vec<_>>(),
    });
    let manifest_bytes = serde_json::to_vec(&manifest).expect("manifest json");
    (put(&manifest_bytes), manifest_bytes.len())
}

/// Writes `index.json` and `oci-layout` naming one top-level descriptor `refname`.
pub fn write_index_json(dir: &Path, media_type: &str, digest: &str, size: usize, refname: &str) {
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": media_type,
            "digest": digest, "size": size,
            "annotations": {"org.opencontainers.image.ref.name": refname}
        }]
    });
    fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&index).expect("index"),
    )
    .expect("write index");
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
        .expect("write oci-layout");
}

/// Writes an OCI layout at `dir` holding one image made of `layers` (uncompressed tars,
/// bottom first) for this host, named `refname`. Returns the manifest digest.
pub fn write_oci_layout(dir: &Path, layers: &[Vec<u8>], refname: &str) -> String {
    let blobs: Vec<LayerBlob> = layers.iter().map(|l| LayerBlob::plain(l)).collect();
    let (digest, size) = write_oci_image(dir, &blobs, host_arch());
    write_index_json(
        dir,
        "application/vnd.oci.image.manifest.v1+json",
        &digest,
        size,
        refname,
    );
    digest
}

/// This host's architecture as image configs spell it.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}
