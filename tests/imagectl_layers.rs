//! Layer formats and image indexes: gzip (several members), zstd and plain layers all
//! unpack to the same tree with their DiffIDs checked, and an index picks `--platform`.

use std::fs;
use std::io::Write;
use std::process::{Command, Stdio};

use integration_tests::images::{
    Imagectl, LayerBlob, TarBuilder, host_arch, sha256, write_index_json, write_oci_image,
};

fn compress(tool: &str, data: &[u8]) -> Vec<u8> {
    let mut child = Command::new(tool)
        .arg("-c")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {tool}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let input = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success());
    out.stdout
}

#[test]
fn gzip_multi_member_zstd_and_plain_layers() {
    let ctl = Imagectl::new();
    let l1 = TarBuilder::new().dir("a/").file("a/one", b"one").finish();
    let l2 = TarBuilder::new().file("two", &vec![b'2'; 100_000]).finish();
    let l3 = TarBuilder::new().file("three", b"three").finish();
    // Layer 1 as two gzip members back to back (what pigz and some registries produce).
    let (h1, h2) = l1.split_at(l1.len() / 2);
    let mut gz = compress("gzip", h1);
    gz.extend(compress("gzip", h2));
    let layers = vec![
        LayerBlob {
            blob: gz,
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            diff_id: sha256(&l1),
        },
        LayerBlob {
            blob: compress("zstd", &l2),
            media_type: "application/vnd.oci.image.layer.v1.tar+zstd".into(),
            diff_id: sha256(&l2),
        },
        LayerBlob::plain(&l3),
    ];
    let dir = ctl.scratch("layout");
    let (digest, size) = write_oci_image(&dir, &layers, host_arch());
    write_index_json(
        &dir,
        "application/vnd.oci.image.manifest.v1+json",
        &digest,
        size,
        "mixed:1",
    );
    ctl.ok(&["pull", &format!("oci:{}:mixed:1", dir.display())]);
    let v = ctl.inspect("mixed:1");
    assert_eq!(v["Descriptor"]["digest"], digest.as_str());
    let lower = v["GraphDriver"]["Data"]["LowerDir"]
        .as_str()
        .unwrap()
        .to_string();
    let dirs: Vec<&str> = lower.split(':').collect();
    assert_eq!(dirs.len(), 3);
    assert_eq!(fs::read(format!("{}/three", dirs[0])).unwrap(), b"three");
    assert_eq!(fs::read(format!("{}/two", dirs[1])).unwrap().len(), 100_000);
    assert_eq!(fs::read(format!("{}/a/one", dirs[2])).unwrap(), b"one");

    // A wrong DiffID (the config lies about the uncompressed content) is refused.
    let bad = Imagectl::new();
    let dir2 = bad.scratch("layout");
    let lie = vec![LayerBlob {
        blob: compress("zstd", &l2),
        media_type: "application/vnd.oci.image.layer.v1.tar+zstd".into(),
        diff_id: sha256(&l3),
    }];
    let (d2, s2) = write_oci_image(&dir2, &lie, host_arch());
    write_index_json(
        &dir2,
        "application/vnd.oci.image.manifest.v1+json",
        &d2,
        s2,
        "lie:1",
    );
    let err = bad.fail(&["pull", &format!("oci:{}:lie:1", dir2.display())]);
    assert!(
        err.contains("diffID") && err.contains(&sha256(&l3)),
        "{err}"
    );
    assert!(bad.layers().is_empty());
}

#[test]
fn index_picks_the_platform() {
    let ctl = Imagectl::new();
    let dir = ctl.scratch("multi");
    let host = TarBuilder::new()
        .file("arch", host_arch().as_bytes())
        .finish();
    let other_arch = if host_arch() == "s390x" {
        "ppc64le"
    } else {
        "s390x"
    };
    let other = TarBuilder::new()
        .file("arch", other_arch.as_bytes())
        .finish();
    let (hd, hs) = write_oci_image(&dir, &[LayerBlob::plain(&host)], host_arch());
    let (od, os) = write_oci_image(&dir, &[LayerBlob::plain(&other)], other_arch);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": od, "size": os,
             "platform": {"architecture": other_arch, "os": "linux"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": hd, "size": hs,
             "platform": {"architecture": host_arch(), "os": "linux"}},
        ]
    });
    let bytes = serde_json::to_vec(&index).unwrap();
    let idx_digest = sha256(&bytes);
    fs::write(dir.join("blobs/sha256").join(&idx_digest[7..]), &bytes).unwrap();
    write_index_json(
        &dir,
        "application/vnd.oci.image.index.v1+json",
        &idx_digest,
        bytes.len(),
        "multi:1",
    );

    ctl.ok(&["pull", &format!("oci:{}:multi:1", dir.display())]);
    let v = ctl.inspect("multi:1");
    assert_eq!(v["Descriptor"]["digest"], hd.as_str());
    assert_eq!(v["Architecture"], host_arch());

    let ctl2 = Imagectl::new();
    ctl2.ok(&[
        "pull",
        "--platform",
        &format!("linux/{other_arch}"),
        &format!("oci:{}:multi:1", dir.display()),
    ]);
    assert_eq!(ctl2.inspect("multi:1")["Descriptor"]["digest"], od.as_str());

    let err = ctl.fail(&[
        "pull",
        "--platform",
        "linux/mips",
        &format!("oci:{}:multi:1", dir.display()),
    ]);
    assert!(err.contains("no image for platform linux/mips"), "{err}");
}
