//! The persistent layer-chain index in imagectl's store: built when layers are unpacked
//! (`layers/CHAINHEX/unionfs.index`), accepted by `unionfs-index check`, handed to unionfsd
//! by `imagectl mount`, and showing exactly the tree a mount without it shows. A damaged
//! index is skipped, never a failed mount.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use integration_tests::bins::workspace_bin;
use integration_tests::images::{Imagectl, TarBuilder, import_busybox, write_oci_layout};

/// An `imagectl mount` that is unmounted on drop, even when the test fails.
struct Mounted<'a> {
    ctl: &'a Imagectl,
    dir: PathBuf,
}

impl<'a> Mounted<'a> {
    fn new(ctl: &'a Imagectl, image: &str, dir: &Path) -> Self {
        ctl.ok(&["mount", image, dir.to_str().unwrap()]);
        Mounted {
            ctl,
            dir: dir.to_path_buf(),
        }
    }
}

impl Drop for Mounted<'_> {
    fn drop(&mut self) {
        let r = self.ctl.run(&["umount", self.dir.to_str().unwrap()]);
        if r.code != 0 {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

/// Every entry under `root`: type, mode, owner, size, symlink target or file content.
fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut todo = vec![PathBuf::new()];
    while let Some(rel) = todo.pop() {
        for e in fs::read_dir(root.join(&rel)).unwrap() {
            let e = e.unwrap();
            let rel = rel.join(e.file_name());
            let p = root.join(&rel);
            let md = fs::symlink_metadata(&p).unwrap();
            let what = if md.is_dir() {
                todo.push(rel.clone());
                "dir".to_string()
            } else if md.file_type().is_symlink() {
                format!("-> {}", fs::read_link(&p).unwrap().display())
            } else if md.is_file() {
                format!("{:?}", fs::read(&p).unwrap())
            } else {
                format!("special {:x}", md.rdev())
            };
            out.insert(
                rel.display().to_string(),
                format!(
                    "{:o} {}:{} {} {}",
                    md.mode(),
                    md.uid(),
                    md.gid(),
                    md.len(),
                    what
                ),
            );
        }
    }
    out
}

/// The command line of the unionfsd serving `dir`, if one does.
fn daemon_cmdline(dir: &Path) -> Option<String> {
    let want = dir.to_str().unwrap();
    for p in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(raw) = fs::read(p.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = raw
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.first().is_some_and(|a| a.ends_with("unionfsd")) && args.iter().any(|a| a == want) {
            return Some(args.join(" "));
        }
    }
    None
}

/// The chain of `layers/HEX` (its diff dir and its parents', top first), from layer.json.
fn chain_lowers(ctl: &Imagectl, hex: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut next = Some(hex.to_string());
    while let Some(h) = next {
        let dir = ctl.root.join("layers").join(&h);
        let rec: serde_json::Value =
            serde_json::from_slice(&fs::read(dir.join("layer.json")).unwrap()).unwrap();
        out.push(dir.join("diff"));
        next = rec["parent"]
            .as_str()
            .map(|p| p.trim_start_matches("sha256:").to_string());
    }
    out
}

fn index_check(ctl: &Imagectl, hex: &str) -> std::process::Output {
    let lowers: Vec<String> = chain_lowers(ctl, hex)
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    Command::new(workspace_bin("unionfs-index"))
        .arg("check")
        .arg(ctl.root.join("layers").join(hex).join("unionfs.index"))
        .arg(lowers.join(":"))
        .output()
        .unwrap()
}

/// A three-layer image with whiteouts, an opaque dir, a type change and a symlink.
fn pull_layered(ctl: &Imagectl) -> String {
    let base = TarBuilder::new()
        .dir("d/")
        .file("d/a", b"a")
        .file("d/b", b"b")
        .file("f", b"f")
        .dir("o/")
        .file("o/lower", b"lower")
        .file("t", b"becomes a dir")
        .finish();
    let mid = TarBuilder::new()
        .file("d/.wh.a", b"")
        .file(".wh.f", b"")
        .dir("o/")
        .file("o/.wh..wh..opq", b"")
        .file("o/mid", b"mid")
        .dir("t/")
        .file("t/inside", b"inside")
        .finish();
    let top = TarBuilder::new()
        .file("d/c", b"c")
        .symlink("link", "d/c")
        .file("f", b"f again")
        .finish();
    let layout = ctl.scratch("layout");
    write_oci_layout(&layout, &[base, mid, top], "layered:1");
    let r = ctl.run(&["pull", &format!("oci:{}:layered:1", layout.display())]);
    assert_eq!(r.code, 0, "{r:?}");
    // Building an index is never worth a warning on a healthy store.
    assert!(!r.stderr.contains("index"), "{}", r.stderr);
    "layered:1".to_string()
}

/// The `layers/HEX` whose chain is longest: the image's top layer.
fn top_layer(ctl: &Imagectl) -> String {
    ctl.layers()
        .into_iter()
        .max_by_key(|h| chain_lowers(ctl, h).len())
        .unwrap()
}

#[test]
fn pull_builds_a_valid_index_and_mounts_use_it() {
    let ctl = Imagectl::new();
    let image = pull_layered(&ctl);
    let layers = ctl.layers();
    assert_eq!(layers.len(), 3, "{layers:?}");
    // Every chain (each layer over its parents) has an index the checker accepts.
    for hex in &layers {
        let out = index_check(&ctl, hex);
        assert!(
            out.status.success(),
            "unionfs-index check of layer {hex}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let top = top_layer(&ctl);
    let index = ctl.root.join("layers").join(&top).join("unionfs.index");

    let mnt = ctl.scratch("with-index");
    let with = {
        let _m = Mounted::new(&ctl, &image, &mnt);
        let cmd = daemon_cmdline(&mnt).expect("unionfsd serving the mount");
        assert!(
            cmd.contains(&format!("index={}", index.display())),
            "mounted without the index: {cmd}"
        );
        tree(&mnt)
    };
    // The layers' merged view, as written above.
    assert!(
        with["f"].ends_with(&format!("{:?}", b"f again")),
        "{with:?}"
    );
    assert!(with["link"].ends_with("-> d/c"), "{with:?}");
    assert!(!with.contains_key("d/a") && with.contains_key("d/b"));
    assert!(with.contains_key("o/mid") && !with.contains_key("o/lower"));
    assert!(with["t"].ends_with("dir") && with.contains_key("t/inside"));

    // With indexes turned off the daemon indexes as it goes, and sees the same tree.
    let mnt2 = ctl.scratch("plain");
    let without = {
        let r = ctl
            .command()
            .env("IMAGECTL_NO_INDEX", "1")
            .args(["mount", &image, mnt2.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(r.status.success(), "{r:?}");
        let _m = Mounted {
            ctl: &ctl,
            dir: mnt2.clone(),
        };
        let cmd = daemon_cmdline(&mnt2).expect("unionfsd serving the mount");
        assert!(!cmd.contains(",index="), "{cmd}");
        tree(&mnt2)
    };
    assert_eq!(with, without);

    // A damaged (or missing) index is rebuilt when the image's layers are next checked,
    // and the mount uses the new one.
    let bytes = fs::read(&index).unwrap();
    fs::write(&index, &bytes[..bytes.len() / 2]).unwrap();
    let mnt3 = ctl.scratch("rebuilt");
    let rebuilt = {
        let _m = Mounted::new(&ctl, &image, &mnt3);
        let cmd = daemon_cmdline(&mnt3).expect("unionfsd serving the mount");
        assert!(cmd.contains(",index="), "{cmd}");
        tree(&mnt3)
    };
    assert!(index_check(&ctl, &top).status.success());
    assert_eq!(with, rebuilt);
}

#[test]
fn import_builds_the_index_unless_disabled() {
    let ctl = Imagectl::new();
    import_busybox(&ctl, "busybox");
    let layers = ctl.layers();
    assert_eq!(layers.len(), 1);
    let out = index_check(&ctl, &layers[0]);
    assert!(out.status.success(), "{out:?}");

    // IMAGECTL_NO_INDEX=1 skips it (for measuring), and the image still mounts.
    let other = Imagectl::new();
    let rootfs = other.scratch("rootfs");
    fs::create_dir_all(rootfs.join("etc")).unwrap();
    fs::write(rootfs.join("etc/hostname"), "x\n").unwrap();
    let out = other
        .command()
        .env("IMAGECTL_NO_INDEX", "1")
        .args(["import", rootfs.to_str().unwrap(), "plain"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let hex = &other.layers()[0];
    assert!(
        !other
            .root
            .join("layers")
            .join(hex)
            .join("unionfs.index")
            .exists()
    );
    let mnt = other.scratch("mnt");
    let _m = Mounted::new(&other, "plain", &mnt);
    assert_eq!(fs::read_to_string(mnt.join("etc/hostname")).unwrap(), "x\n");
}
