//! Pull and push against a real registry (Debian's docker-registry on 127.0.0.1):
//! round trips keep digests, shared layers say "Already exists", and bad input — an
//! unreachable registry, a corrupted blob, a killed pull — fails clearly and recovers.

use std::fs;
use std::time::{Duration, Instant};

use integration_tests::images::{Imagectl, TarBuilder, import_busybox, sha256, write_oci_layout};
use integration_tests::registry::Registry;
use rand::RngCore;
use rand::SeedableRng;

fn manifest_digest(ctl: &Imagectl, image: &str) -> String {
    ctl.inspect(image)["Descriptor"]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn push_pull_round_trip_keeps_digests() {
    let reg = Registry::start();
    let a = Imagectl::new();
    let id = import_busybox(&a, "busybox");
    let dest = reg.repo("test/busybox:v1");
    let out = a.ok(&["push", "busybox", &dest]);
    assert!(out.contains("Pushed"), "{out}");
    let local = manifest_digest(&a, "busybox");
    assert!(out.contains(&local), "{out}");
    // Pushing again uploads nothing.
    let out = a.ok(&["push", "busybox", &dest]);
    assert!(
        out.contains("Layer already exists") && !out.contains("Pushed"),
        "{out}"
    );

    let b = Imagectl::new();
    let out = b.ok(&["pull", &dest]);
    assert!(out.contains("Pull complete"), "{out}");
    let v = b.inspect(&dest);
    assert_eq!(v["Id"], id);
    assert_eq!(v["Descriptor"]["digest"], local.as_str());
    assert_eq!(
        v["RepoDigests"][0],
        format!("{}@{local}", reg.repo("test/busybox"))
    );
    // By digest too.
    b.ok(&["pull", &format!("{}@{local}", reg.repo("test/busybox"))]);
    b.assert_blobs_intact();
}

#[test]
fn second_image_on_the_same_base_fetches_only_new_layers() {
    let reg = Registry::start();
    let src = Imagectl::new();
    let base = TarBuilder::new()
        .dir("etc/")
        .file("etc/os-release", b"ID=test\n")
        .finish();
    let top = TarBuilder::new()
        .file("app", b"#!/bin/sh\necho app\n")
        .finish();
    let d1 = src.scratch("base");
    let d2 = src.scratch("app");
    write_oci_layout(&d1, std::slice::from_ref(&base), "base:1");
    write_oci_layout(&d2, &[base.clone(), top.clone()], "app:1");
    src.ok(&["pull", &format!("oci:{}:base:1", d1.display())]);
    src.ok(&["pull", &format!("oci:{}:app:1", d2.display())]);
    src.ok(&["push", "base:1", &reg.repo("base:1")]);
    src.ok(&["push", "app:1", &reg.repo("app:1")]);

    let ctl = Imagectl::new();
    ctl.ok(&["pull", &reg.repo("base:1")]);
    let out = ctl.ok(&["pull", &reg.repo("app:1")]);
    assert_eq!(out.matches("Already exists").count(), 1, "{out}");
    assert_eq!(out.matches("Pull complete").count(), 1, "{out}");
    assert!(
        out.contains(&sha256(&base)[7..19]) && out.contains(&sha256(&top)[7..19]),
        "{out}"
    );
    assert_eq!(ctl.layers().len(), 2);
}

#[test]
fn unreachable_registry_names_the_url() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ctl = Imagectl::new();
    let err = ctl.fail(&["pull", &format!("127.0.0.1:{port}/nothing/here:v1")]);
    assert!(
        err.contains(&format!(
            "http://127.0.0.1:{port}/v2/nothing/here/manifests/v1"
        )),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let reg = Registry::start();
    let err = ctl.fail(&["pull", &reg.repo("missing:v1")]);
    assert!(err.contains("manifest unknown"), "{err}");
    assert!(ctl.blobs().is_empty());
}

#[test]
fn corrupted_blob_is_refused_then_the_rerun_completes() {
    let reg = Registry::start();
    let src = Imagectl::new();
    import_busybox(&src, "busybox");
    src.ok(&["push", "busybox", &reg.repo("bb:1")]);
    let layer = src.inspect("busybox")["RootFS"]["Layers"][0]
        .as_str()
        .unwrap()
        .to_string();
    // The imported layer is stored uncompressed, so its blob digest is its DiffID.
    let data = reg.blob_data(&layer);
    let good = fs::read(&data).unwrap();
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    fs::write(&data, &bad).unwrap();

    let ctl = Imagectl::new();
    let err = ctl.fail(&["pull", &reg.repo("bb:1")]);
    assert!(err.contains(&layer), "{err}");
    assert!(
        !ctl.blobs().iter().any(|b| layer.ends_with(b.as_str())),
        "bad blob stored"
    );
    assert!(ctl.layers().is_empty());
    assert!(
        ctl.fail(&["inspect", &reg.repo("bb:1")])
            .contains("no such image")
    );

    fs::write(&data, &good).unwrap();
    ctl.ok(&["pull", &reg.repo("bb:1")]);
    ctl.assert_blobs_intact();
}

#[test]
fn killed_pull_completes_on_rerun() {
    let reg = Registry::start();
    let src = Imagectl::new();
    // Three incompressible 6 MiB layers, so the pull is still running when it is killed.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let layers: Vec<Vec<u8>> = (0..3)
        .map(|i| {
            let mut data = vec![0u8; 6 << 20];
            rng.fill_bytes(&mut data);
            TarBuilder::new().file(&format!("blob{i}"), &data).finish()
        })
        .collect();
    let dir = src.scratch("big");
    write_oci_layout(&dir, &layers, "big:1");
    src.ok(&["pull", &format!("oci:{}:big:1", dir.display())]);
    src.ok(&["push", "big:1", &reg.repo("big:1")]);
    let want = manifest_digest(&src, "big:1");

    let ctl = Imagectl::new();
    let mut child = ctl
        .command()
        .args(["pull", "-q", &reg.repo("big:1")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once it has started writing (or let it be if it already finished).
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if !ctl.tmp_entries().is_empty() || !ctl.layers().is_empty() {
            break;
        }
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
    ctl.assert_blobs_intact();

    ctl.ok(&["pull", &reg.repo("big:1")]);
    assert_eq!(manifest_digest(&ctl, &reg.repo("big:1")), want);
    assert_eq!(ctl.layers().len(), 3);
    ctl.assert_blobs_intact();
}

#[test]
fn login_stores_docker_config_auths() {
    let reg = Registry::start();
    let ctl = Imagectl::new();
    let out = ctl.ok(&["login", "-u", "alice", "-p", "secret", &reg.addr]);
    assert!(out.contains("Login Succeeded"), "{out}");
    let cfg = ctl.root.parent().unwrap().join("docker-config/config.json");
    let v: serde_json::Value = serde_json::from_slice(&fs::read(&cfg).unwrap()).unwrap();
    // "alice:secret" in base64.
    assert_eq!(v["auths"][&reg.addr]["auth"], "YWxpY2U6c2VjcmV0");
    ctl.ok(&["logout", &reg.addr]);
    let v: serde_json::Value = serde_json::from_slice(&fs::read(&cfg).unwrap()).unwrap();
    assert!(v["auths"].get(&reg.addr).is_none());
}

#[test]
fn basic_auth_registry_needs_login() {
    let reg = Registry::start_with_htpasswd("alice", "s3cret");
    let ctl = Imagectl::new();
    import_busybox(&ctl, "busybox");
    let dest = reg.repo("private/bb:1");
    let err = ctl.fail(&["push", "busybox", &dest]);
    assert!(
        err.contains("401") && err.contains("imagectl login"),
        "{err}"
    );
    let err = ctl.fail(&["login", "-u", "alice", "-p", "wrong", &reg.addr]);
    assert!(err.contains("401"), "{err}");
    ctl.ok(&["login", "-u", "alice", "-p", "s3cret", &reg.addr]);
    ctl.ok(&["push", "busybox", &dest]);
    // Another store with the same docker config (credentials read from config.json).
    let other = Imagectl::new();
    let err = other.fail(&["pull", &dest]);
    assert!(err.contains("401"), "{err}");
    let cfg_dir = ctl.root.parent().unwrap().join("docker-config");
    let out = other
        .command()
        .env("DOCKER_CONFIG", &cfg_dir)
        .args(["pull", &dest])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(other.inspect(&dest)["Id"], ctl.inspect("busybox")["Id"]);
}

#[test]
fn concurrent_pulls_into_one_store_agree() {
    let reg = Registry::start();
    let src = Imagectl::new();
    import_busybox(&src, "busybox");
    src.ok(&["push", "busybox", &reg.repo("bb:1")]);
    let ctl = Imagectl::new();
    let children: Vec<_> = (0..3)
        .map(|_| {
            ctl.command()
                .args(["pull", "-q", &reg.repo("bb:1")])
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
    assert_eq!(ctl.layers().len(), 1);
    assert_eq!(
        ctl.inspect(&reg.repo("bb:1"))["Id"],
        src.inspect("busybox")["Id"]
    );
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(ctl.root.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1, "{index}");
    ctl.assert_blobs_intact();
}

#[test]
fn bearer_token_registry_works_after_login() {
    let reg = Registry::start_with_token_auth("bob", "t0ken");
    let ctl = Imagectl::new();
    import_busybox(&ctl, "busybox");
    let dest = reg.repo("team/bb:1");
    // Anonymous: the token server refuses, and the error names its URL.
    let err = ctl.fail(&["push", "busybox", &dest]);
    assert!(err.contains("/token?") && err.contains("401"), "{err}");
    ctl.ok(&["login", "-u", "bob", "-p", "t0ken", &reg.addr]);
    let out = ctl.ok(&["push", "busybox", &dest]);
    assert!(out.contains("Pushed"), "{out}");
    let other = Imagectl::new();
    let cfg_dir = ctl.root.parent().unwrap().join("docker-config");
    let out = other
        .command()
        .env("DOCKER_CONFIG", &cfg_dir)
        .args(["pull", &dest])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(other.inspect(&dest)["Id"], ctl.inspect("busybox")["Id"]);
}

#[test]
fn partial_downloads_are_resumed_and_bad_ones_restarted() {
    let reg = Registry::start();
    let src = Imagectl::new();
    import_busybox(&src, "busybox");
    src.ok(&["push", "busybox", &reg.repo("bb:1")]);
    let layer = src.inspect("busybox")["RootFS"]["Layers"][0]
        .as_str()
        .unwrap()
        .to_string();
    let blob = fs::read(reg.blob_data(&layer)).unwrap();
    for prefix in [blob[..blob.len() / 2].to_vec(), vec![0xAAu8; 4096]] {
        let ctl = Imagectl::new();
        // What an interrupted earlier pull leaves behind.
        let partial = ctl.root.join("partial");
        fs::create_dir_all(&partial).unwrap();
        fs::write(partial.join(&layer[7..]), &prefix).unwrap();
        ctl.ok(&["pull", &reg.repo("bb:1")]);
        assert_eq!(
            ctl.inspect(&reg.repo("bb:1"))["Id"],
            src.inspect("busybox")["Id"]
        );
        assert!(fs::read_dir(&partial).unwrap().next().is_none());
        ctl.assert_blobs_intact();
    }
}
