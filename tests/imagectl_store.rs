//! The image store through the `imagectl` CLI: import, images, inspect, history, tag,
//! rmi with shared layers, prune, whiteout conversion, hostile tars and bad digests.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use integration_tests::images::{Imagectl, TarBuilder, import_busybox, sha256, write_oci_layout};

#[test]
fn import_then_images_inspect_history() {
    let ctl = Imagectl::new();
    let id = import_busybox(&ctl, "busybox");
    assert!(id.starts_with("sha256:"), "{id}");
    let images = ctl.ok(&["images"]);
    assert!(images.starts_with("REPOSITORY"), "{images}");
    let row = images
        .lines()
        .find(|l| l.starts_with("busybox "))
        .expect("busybox row");
    assert!(row.contains("latest") && row.contains(&id[7..19]), "{row}");

    let v = ctl.inspect("busybox");
    assert_eq!(v["Id"], id);
    assert_eq!(v["RepoTags"], serde_json::json!(["busybox:latest"]));
    assert_eq!(v["RootFS"]["Layers"].as_array().map(|a| a.len()), Some(1));
    assert_eq!(v["Os"], "linux");
    assert!(v["Size"].as_u64().unwrap_or(0) > 500_000, "{v}");
    // The short ID and the full ID resolve to the same image.
    assert_eq!(ctl.inspect(&id[7..19])["Id"], id);
    assert_eq!(ctl.inspect(&id)["Id"], id);

    let hist = ctl.ok(&["history", "busybox", "--format", "json"]);
    let lines: Vec<serde_json::Value> = hist
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0]["CreatedBy"]
            .as_str()
            .unwrap_or("")
            .contains("imagectl import")
    );
    assert!(
        lines[0]["Comment"]
            .as_str()
            .unwrap_or("")
            .starts_with("Imported from")
    );
    let table = ctl.ok(&["history", "--no-trunc", "busybox"]);
    assert!(table.contains(&id), "{table}");
    assert!(table.starts_with("IMAGE"), "{table}");

    // docker-style --format templates.
    assert_eq!(ctl.ok(&["inspect", "-f", "{{.Id}}", "busybox"]).trim(), id);
    assert_eq!(
        ctl.ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"])
            .trim(),
        format!("busybox:latest {}", &id[7..19])
    );
    let j: serde_json::Value =
        serde_json::from_str(ctl.ok(&["images", "--format", "json"]).trim()).unwrap();
    assert_eq!(j["Repository"], "busybox");

    // The store is an OCI layout skopeo-compatible tools can read as is.
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(ctl.root.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "docker.io/library/busybox:latest"
    );
    assert!(ctl.root.join("oci-layout").is_file());
    ctl.assert_blobs_intact();
}

#[test]
fn unknown_image_is_one_clear_error() {
    let ctl = Imagectl::new();
    for args in [
        &["inspect", "nothere"][..],
        &["history", "nothere"],
        &["rmi", "nothere"],
        &["tag", "nothere", "x"],
        &["save", "nothere", "-o", "/dev/null"],
    ] {
        let err = ctl.fail(args);
        assert!(err.contains("no such image: nothere"), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
}

#[test]
fn hostile_tars_are_refused_naming_the_entry_and_store_nothing() {
    let outside = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "../evil",
            TarBuilder::new()
                .file("ok", b"x")
                .file("../evil", b"x")
                .finish(),
        ),
        (
            "/etc/evil",
            TarBuilder::new().file("/etc/evil", b"x").finish(),
        ),
        (
            "escape/pwned",
            TarBuilder::new()
                .symlink("escape", outside.path().to_str().unwrap())
                .file("escape/pwned", b"x")
                .finish(),
        ),
        (
            "pw",
            TarBuilder::new().hardlink("pw", "etc/passwd").finish(),
        ),
        (
            "a/../../b",
            TarBuilder::new().dir("a/").file("a/../../b", b"x").finish(),
        ),
    ];
    for (entry, tar) in cases {
        let ctl = Imagectl::new();
        let file = ctl.scratch("in").join("evil.tar");
        fs::write(&file, &tar).unwrap();
        let err = ctl.fail(&["import", file.to_str().unwrap(), "evil"]);
        assert!(
            err.contains(&format!("refusing layer entry \"{entry}\"")),
            "{entry}: {err}"
        );
        assert!(
            ctl.blobs().is_empty(),
            "{entry}: blobs left: {:?}",
            ctl.blobs()
        );
        assert!(ctl.layers().is_empty(), "{entry}: layers left");
        assert!(
            ctl.tmp_entries().is_empty(),
            "{entry}: tmp left: {:?}",
            ctl.tmp_entries()
        );
        assert!(ctl.fail(&["inspect", "evil"]).contains("no such image"));
    }
    assert!(
        fs::read_dir(outside.path()).unwrap().next().is_none(),
        "wrote outside the layer"
    );
}

fn base_and_child(dir: &std::path::Path) -> (Vec<u8>, Vec<u8>) {
    let base = TarBuilder::new()
        .dir("d/")
        .file("d/a", b"a")
        .file("d/b", b"b")
        .file("f", b"f")
        .dir("o/")
        .file("o/lower", b"lower")
        .file("keep", b"keep")
        .hardlink("keep2", "keep")
        .finish();
    let child = TarBuilder::new()
        .file("d/.wh.a", b"")
        .file(".wh.f", b"")
        .dir("o/")
        .file("o/.wh..wh..opq", b"")
        .file("o/upper", b"upper")
        .file("new", b"new")
        .finish();
    fs::create_dir_all(dir).unwrap();
    (base, child)
}

#[test]
fn shared_base_survives_rmi_and_whiteouts_use_the_overlay_format() {
    let ctl = Imagectl::new();
    let (base, child) = base_and_child(&ctl.scratch("tars"));
    let base_dir = ctl.scratch("base-layout");
    let child_dir = ctl.scratch("child-layout");
    write_oci_layout(&base_dir, std::slice::from_ref(&base), "base:1");
    write_oci_layout(&child_dir, &[base.clone(), child.clone()], "child:1");
    ctl.ok(&["pull", &format!("oci:{}:base:1", base_dir.display())]);
    let out = ctl.ok(&["pull", &format!("oci:{}:child:1", child_dir.display())]);
    assert!(out.contains("Already exists"), "{out}");
    assert_eq!(ctl.layers().len(), 2);

    // The child's own layer holds kernel-format whiteouts and an opaque directory.
    let v = ctl.inspect("child:1");
    let lower = v["GraphDriver"]["Data"]["LowerDir"]
        .as_str()
        .unwrap()
        .to_string();
    let top = std::path::PathBuf::from(lower.split(':').next().unwrap());
    let base_layer = std::path::PathBuf::from(lower.split(':').nth(1).unwrap());
    if nix::unistd::geteuid().is_root() {
        for wh in ["d/a", "f"] {
            let md = fs::symlink_metadata(top.join(wh)).unwrap();
            assert!(
                md.file_type().is_char_device() && md.rdev() == 0,
                "{wh} is not a 0/0 whiteout"
            );
        }
        let mut val = [0u8; 8];
        let path = std::ffi::CString::new(top.join("o").to_str().unwrap()).unwrap();
        let name = std::ffi::CString::new("trusted.overlay.opaque").unwrap();
        let n = unsafe {
            libc::lgetxattr(
                path.as_ptr(),
                name.as_ptr(),
                val.as_mut_ptr().cast(),
                val.len(),
            )
        };
        assert_eq!(&val[..n.max(0) as usize], b"y", "o/ is not opaque");
        assert!(!top.join("o/.wh..wh..opq").exists());
    }
    assert_eq!(fs::read(top.join("o/upper")).unwrap(), b"upper");
    let k1 = fs::metadata(base_layer.join("keep")).unwrap();
    let k2 = fs::metadata(base_layer.join("keep2")).unwrap();
    assert_eq!(k1.ino(), k2.ino(), "hardlink not kept");

    // Removing the child keeps the base layer; removing the base empties the store.
    let out = ctl.ok(&["rmi", "child:1"]);
    assert!(
        out.contains("Untagged: child:1") && out.contains("Deleted: sha256:"),
        "{out}"
    );
    assert_eq!(ctl.layers(), vec![sha256(&base)[7..].to_string()]);
    assert!(base_layer.join("d/a").is_file());
    ctl.ok(&["inspect", "base:1"]);
    ctl.ok(&["rmi", "base:1"]);
    assert!(ctl.layers().is_empty());
    assert!(ctl.blobs().is_empty(), "{:?}", ctl.blobs());
}

#[test]
fn tags_are_refcounted_and_prune_removes_dangling_images() {
    let ctl = Imagectl::new();
    let id = import_busybox(&ctl, "busybox");
    ctl.ok(&["tag", "busybox", "example.com/team/bb:v1"]);
    let v = ctl.inspect("example.com/team/bb:v1");
    assert_eq!(v["Id"], id);
    let mut tags: Vec<String> = serde_json::from_value(v["RepoTags"].clone()).unwrap();
    tags.sort();
    assert_eq!(tags, vec!["busybox:latest", "example.com/team/bb:v1"]);

    // By ID with two tags needs -f; by tag only untags.
    assert!(ctl.fail(&["rmi", &id]).contains("must be forced"));
    let out = ctl.ok(&["rmi", "busybox"]);
    assert!(
        out.contains("Untagged: busybox:latest") && !out.contains("Deleted"),
        "{out}"
    );
    assert_eq!(ctl.inspect("example.com/team/bb:v1")["Id"], id);

    // Moving the tag to another image leaves the old one dangling; prune removes it.
    let rootfs = ctl.scratch("other-rootfs");
    fs::write(rootfs.join("hello"), "hi").unwrap();
    ctl.ok(&["import", rootfs.to_str().unwrap(), "example.com/team/bb:v1"]);
    let images = ctl.ok(&["images"]);
    assert!(images.lines().any(|l| l.starts_with("<none>")), "{images}");
    let out = ctl.ok(&["image", "prune"]);
    assert!(out.contains(&id), "{out}");
    assert!(!ctl.ok(&["images"]).contains("<none>"));
    assert!(ctl.fail(&["inspect", &id]).contains("no such image"));
    ctl.assert_blobs_intact();
    let df = ctl.ok(&["system", "df"]);
    assert!(df.contains("Images") && df.contains("RECLAIMABLE"), "{df}");
}

#[test]
fn wrong_digest_names_the_blob_and_stores_nothing() {
    let ctl = Imagectl::new();
    let layer = TarBuilder::new().file("hello", b"hello").finish();
    let dir = ctl.scratch("layout");
    write_oci_layout(&dir, std::slice::from_ref(&layer), "x:1");
    let digest = sha256(&layer);
    let blob = dir.join("blobs/sha256").join(&digest[7..]);
    let tampered = TarBuilder::new().file("hello", b"HELLO").finish();
    fs::write(&blob, &tampered).unwrap();
    let err = ctl.fail(&["pull", &format!("oci:{}:x:1", dir.display())]);
    assert!(err.contains(&digest), "{err}");
    assert!(ctl.blobs().is_empty(), "{:?}", ctl.blobs());
    assert!(ctl.layers().is_empty());
    // Put the right bytes back: the re-run completes.
    fs::write(&blob, &layer).unwrap();
    ctl.ok(&["pull", &format!("oci:{}:x:1", dir.display())]);
    ctl.ok(&["inspect", "x:1"]);
}

#[test]
fn concurrent_imports_share_one_layer() {
    let ctl = Imagectl::new();
    let rootfs = ctl.scratch("rootfs");
    integration_tests::images::busybox_rootfs(&rootfs);
    let r = rootfs.to_str().unwrap().to_string();
    let children: Vec<_> = (0..3)
        .map(|i| {
            ctl.command()
                .args(["import", &r, &format!("bb{i}")])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for i in 0..3 {
        ctl.ok(&["inspect", &format!("bb{i}")]);
    }
    assert_eq!(ctl.layers().len(), 1);
    ctl.assert_blobs_intact();
}

#[test]
fn import_from_stdin_and_save_load_through_pipes() {
    let ctl = Imagectl::new();
    let tar = TarBuilder::new()
        .dir("etc/")
        .file("etc/hostname", b"piped\n")
        .finish();
    let mut child = ctl
        .command()
        .args(["import", "-", "piped:1"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(&tar).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(ctl.inspect("piped:1")["Id"], id);

    // save to stdout | load from stdin, into another store.
    let saved = ctl.command().args(["save", "piped:1"]).output().unwrap();
    assert!(
        saved.status.success(),
        "{}",
        String::from_utf8_lossy(&saved.stderr)
    );
    let other = Imagectl::new();
    let mut child = other
        .command()
        .args(["load"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(&saved.stdout).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Loaded image: piped:1"));
    assert_eq!(other.inspect("piped:1")["Id"], id);
    assert!(other.tmp_entries().is_empty());
}
