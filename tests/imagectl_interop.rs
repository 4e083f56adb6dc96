//! Interop with the peers both ways: what `imagectl save` writes is read by skopeo, the
//! store itself is an OCI layout skopeo copies from, and layouts and registry images
//! written by skopeo come into imagectl with the same digests.

use std::process::Command;

use integration_tests::images::{Imagectl, import_busybox};
use integration_tests::registry::Registry;

fn skopeo(args: &[&str]) -> String {
    let out = Command::new("skopeo")
        .args(args)
        .output()
        .expect("spawn skopeo (apt-get install skopeo)");
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).expect("json")
}

#[test]
fn skopeo_reads_every_save_format_and_the_store() {
    let ctl = Imagectl::new();
    let id = import_busybox(&ctl, "busybox");
    let v = ctl.inspect("busybox");
    let digest = v["Descriptor"]["digest"].as_str().unwrap().to_string();
    let diff_id = v["RootFS"]["Layers"][0].as_str().unwrap().to_string();
    let out = ctl.scratch("out");

    let docker = out.join("bb-docker.tar");
    ctl.ok(&["save", "busybox", "-o", docker.to_str().unwrap()]);
    let s = json(&skopeo(&[
        "inspect",
        &format!("docker-archive:{}", docker.display()),
    ]));
    assert_eq!(s["Layers"], serde_json::json!([diff_id]));
    let cfg = json(&skopeo(&[
        "inspect",
        "--config",
        &format!("docker-archive:{}", docker.display()),
    ]));
    assert_eq!(cfg["rootfs"]["diff_ids"][0], diff_id.as_str());
    // skopeo copies it on into an OCI layout.
    let copied = out.join("from-docker");
    skopeo(&[
        "copy",
        &format!("docker-archive:{}", docker.display()),
        &format!("oci:{}:copied", copied.display()),
    ]);

    let oci_tar = out.join("bb-oci.tar");
    ctl.ok(&[
        "save",
        "--format",
        "oci-archive",
        "busybox",
        "-o",
        oci_tar.to_str().unwrap(),
    ]);
    let s = json(&skopeo(&[
        "inspect",
        &format!("oci-archive:{}", oci_tar.display()),
    ]));
    assert_eq!(s["Digest"], digest.as_str());

    let oci_dir = out.join("bb-oci-dir");
    ctl.ok(&[
        "save",
        "--format",
        "oci-dir",
        "busybox",
        "-o",
        oci_dir.to_str().unwrap(),
    ]);
    let s = json(&skopeo(&["inspect", &format!("oci:{}", oci_dir.display())]));
    assert_eq!(s["Digest"], digest.as_str());

    // The store root itself.
    let s = json(&skopeo(&[
        "inspect",
        &format!(
            "oci:{}:docker.io/library/busybox:latest",
            ctl.root.display()
        ),
    ]));
    assert_eq!(s["Digest"], digest.as_str());

    // And every archive loads back into a fresh store as the same image.
    for f in [&docker, &oci_tar] {
        let other = Imagectl::new();
        let out = other.ok(&["load", "-i", f.to_str().unwrap()]);
        assert!(out.contains("Loaded image: busybox:latest"), "{out}");
        assert_eq!(other.inspect("busybox")["Id"], id);
    }
}

#[test]
fn layouts_and_registry_images_written_by_skopeo_pull_with_the_same_digests() {
    let ctl = Imagectl::new();
    import_busybox(&ctl, "busybox");
    let digest = ctl.inspect("busybox")["Descriptor"]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let out = ctl.scratch("skopeo");
    let layout = out.join("layout");
    skopeo(&[
        "copy",
        &format!(
            "oci:{}:docker.io/library/busybox:latest",
            ctl.root.display()
        ),
        &format!("oci:{}:bb", layout.display()),
    ]);
    // skopeo gzips the uncompressed layer, so the layout has a manifest of its own;
    // imagectl must take exactly that one, and the image (config) stays the same.
    let written = json(&skopeo(&[
        "inspect",
        &format!("oci:{}:bb", layout.display()),
    ]));
    let fresh = Imagectl::new();
    fresh.ok(&["pull", &format!("oci:{}:bb", layout.display())]);
    let v = fresh.inspect("layout:bb");
    assert_eq!(v["Descriptor"]["digest"], written["Digest"]);
    assert_eq!(v["Id"], ctl.inspect("busybox")["Id"]);
    fresh.assert_blobs_intact();

    // skopeo pushes to the registry (gzip-compressing the layer); imagectl pulls it and
    // gets the manifest skopeo wrote, byte for byte.
    let reg = Registry::start();
    let dest = reg.repo("sk/busybox:1");
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:bb", layout.display()),
        &format!("docker://{dest}"),
    ]);
    let remote = json(&skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{dest}"),
    ]));
    let other = Imagectl::new();
    other.ok(&["pull", &dest]);
    let v = other.inspect(&dest);
    assert_eq!(v["Descriptor"]["digest"], remote["Digest"]);
    assert_eq!(v["Id"], ctl.inspect("busybox")["Id"]);

    // Docker's v2 schema 2 (what docker push writes): pulled byte for byte, pushed on.
    let v2 = reg.repo("sk/v2s2:1");
    skopeo(&[
        "copy",
        "--format",
        "v2s2",
        "--dest-tls-verify=false",
        &format!("oci:{}:bb", layout.display()),
        &format!("docker://{v2}"),
    ]);
    let remote = json(&skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{v2}"),
    ]));
    other.ok(&["pull", &v2]);
    let v = other.inspect(&v2);
    assert_eq!(v["Descriptor"]["digest"], remote["Digest"]);
    assert_eq!(
        v["Descriptor"]["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let v2b = reg.repo("ic/v2s2:again");
    other.ok(&["push", &v2, &v2b]);
    let again = json(&skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{v2b}"),
    ]));
    assert_eq!(again["Digest"], remote["Digest"]);

    // And what imagectl pushes, skopeo reads with the same digest.
    let dest2 = reg.repo("ic/busybox:2");
    ctl.ok(&["push", "busybox", &dest2]);
    let remote = json(&skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{dest2}"),
    ]));
    assert_eq!(remote["Digest"], digest.as_str());
}

#[test]
fn podman_loads_what_save_writes() {
    let ctl = Imagectl::new();
    let id = import_busybox(&ctl, "busybox");
    let out = ctl.scratch("podman");
    // A private podman: its own storage (vfs), config and registries files.
    let storage = out.join("storage.conf");
    std::fs::write(
        &storage,
        format!(
            "[storage]\ndriver = \"vfs\"\nrunroot = \"{0}/run\"\ngraphroot = \"{0}/graph\"\n",
            out.display()
        ),
    )
    .unwrap();
    let conf = out.join("containers.conf");
    std::fs::write(
        &conf,
        "[containers]\nnetns = \"none\"\ndefault_ulimits = [\"nofile=16384:16384\", \"nproc=16384:16384\"]\n[engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
    )
    .unwrap();
    let registries = out.join("registries.conf");
    std::fs::write(&registries, "unqualified-search-registries = []\n").unwrap();
    let podman = |args: &[&str]| {
        let o = Command::new("podman")
            .args(args)
            .env("CONTAINERS_STORAGE_CONF", &storage)
            .env("CONTAINERS_CONF", &conf)
            .env("CONTAINERS_REGISTRIES_CONF", &registries)
            .output()
            .expect("spawn podman (apt-get install podman)");
        assert!(
            o.status.success(),
            "podman {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    for format in ["docker-archive", "oci-archive"] {
        let file = out.join(format!("bb-{format}.tar"));
        ctl.ok(&[
            "save",
            "--format",
            format,
            "busybox",
            "-o",
            file.to_str().unwrap(),
        ]);
        let loaded = podman(&["load", "-i", file.to_str().unwrap()]);
        assert!(loaded.contains("busybox"), "{loaded}");
    }
    let ids = podman(&["images", "--no-trunc", "--format", "{{.ID}}"]);
    assert!(
        ids.lines()
            .all(|l| id.ends_with(l.trim_start_matches("sha256:"))),
        "{ids} vs {id}"
    );
    // Leave no vfs layers behind (they are plain dirs under the temp dir, removed with it).
    podman(&["rmi", "--all", "--force"]);
}
