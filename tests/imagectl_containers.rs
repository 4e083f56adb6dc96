//! imagectl's container commands on real containers: a busybox image imported by each
//! test into its own store, union mounts served by unionfsd, processes run by the
//! built-in runtime (and by runc for `--runtime runc`). Every container is removed by
//! the `Lab` guard, also when a test fails.

use std::fs;
use std::time::{Duration, Instant};

use integration_tests::containers::{Lab, unionfsd_pids};

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Cgroup directories (any hierarchy, up to three levels down) named `id`.
fn cgroup_dirs_named(id: &str) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![(std::path::PathBuf::from("/sys/fs/cgroup"), 0)];
    while let Some((dir, depth)) = stack.pop() {
        let Ok(rd) = fs::read_dir(&dir) else { continue };
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                if e.file_name() == id {
                    out.push(e.path());
                } else if depth < 3 {
                    stack.push((e.path(), depth + 1));
                }
            }
        }
    }
    out
}

fn status(lab: &Lab, name: &str) -> String {
    lab.inspect(name)["State"]["Status"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[test]
fn two_containers_see_only_their_own_change_and_commit_only_it() {
    let lab = Lab::new();
    for (name, val) in [("a", "A"), ("b", "B")] {
        let cmd = format!("echo {val} > /etc/x; sleep 1000");
        lab.ok(&["run", "-d", "--name", name, "bb", "sh", "-c", &cmd]);
    }
    for (name, val) in [("a", "A"), ("b", "B")] {
        wait_until("the write", || {
            lab.run(&["exec", name, "cat", "/etc/x"]).stdout == format!("{val}\n")
        });
    }
    // The image is unchanged.
    assert_eq!(lab.ok(&["run", "--rm", "bb", "cat", "/etc/x"]), "orig\n");
    assert_eq!(lab.ok(&["diff", "a"]), "C /etc\nC /etc/x\n");
    // Commit while running (paused for the commit, then running again).
    lab.ok(&["commit", "a", "img-a"]);
    lab.ok(&["commit", "-p=false", "b", "img-b:v1"]);
    assert_eq!(status(&lab, "a"), "running");
    assert_eq!(lab.ok(&["run", "--rm", "img-a", "cat", "/etc/x"]), "A\n");
    assert_eq!(lab.ok(&["run", "--rm", "img-b:v1", "cat", "/etc/x"]), "B\n");
    for img in ["img-a", "img-b:v1"] {
        let (names, _) = lab.top_layer_listing(img);
        assert_eq!(names, vec!["etc", "etc/x"], "layer of {img}");
    }
    assert_eq!(lab.ok(&["run", "--rm", "bb", "cat", "/etc/x"]), "orig\n");
}

#[test]
fn touch_commit_run_keeps_files_and_deletions_small_layer() {
    let lab = Lab::new();
    lab.ok(&[
        "run",
        "--name",
        "c",
        "bb",
        "sh",
        "-c",
        "touch /abc.txt && rm /etc/x && rm -r /tmp",
    ]);
    assert_eq!(
        lab.ok(&["diff", "c"]),
        "A /abc.txt\nC /etc\nD /etc/x\nD /tmp\n"
    );
    // A directory replaced as a whole (opaque in the upper dir): podman prints D for
    // it and A/C for what is in it now. (Not /etc: /etc/hosts and friends are mount
    // points in a running container, so `rm -rf /etc` fails there, as in docker.)
    lab.ok(&[
        "run",
        "--name",
        "p",
        "bb",
        "sh",
        "-c",
        "mkdir /srv && echo orig > /srv/x",
    ]);
    lab.ok(&["commit", "p", "withsrv"]);
    lab.ok(&[
        "run",
        "--name",
        "o",
        "withsrv",
        "sh",
        "-c",
        "rm -rf /srv && mkdir /srv && echo y > /srv/new && touch /srv/x",
    ]);
    assert_eq!(lab.ok(&["diff", "o"]), "D /srv\nA /srv/new\nC /srv/x\n");
    let id = lab.ok(&[
        "commit",
        "-m",
        "added abc",
        "-a",
        "tester",
        "-c",
        "ENV GREETING=hi",
        "-c",
        "CMD [\"sh\", \"-c\", \"echo $GREETING\"]",
        "c",
        "withabc",
    ]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    assert_eq!(
        lab.ok(&["run", "--rm", "withabc", "ls", "/abc.txt"]),
        "/abc.txt\n"
    );
    let gone = lab.run(&["run", "--rm", "withabc", "cat", "/etc/x"]);
    assert_eq!(gone.code, 1, "{gone:?}");
    assert_eq!(lab.run(&["run", "--rm", "withabc", "ls", "/tmp"]).code, 1);
    assert_eq!(lab.ok(&["run", "--rm", "withabc"]), "hi\n");
    let (mut names, size) = lab.top_layer_listing("withabc");
    names.sort();
    assert_eq!(names, vec![".wh.tmp", "abc.txt", "etc", "etc/.wh.x"]);
    assert!(size < 16 * 1024, "layer is {size} bytes");
    let img = lab.ctl.inspect("withabc");
    let hist = img["Author"].as_str().unwrap_or("");
    assert_eq!(hist, "tester");
    let history = lab.ok(&["history", "--no-trunc", "withabc"]);
    assert!(history.contains("added abc"), "{history}");
    assert!(
        history.contains("sh -c touch /abc.txt && rm /etc/x"),
        "{history}"
    );
}

#[test]
fn exit_codes_signals_and_stop_timeout() {
    let lab = Lab::new();
    assert_eq!(lab.run(&["run", "--rm", "bb", "true"]).code, 0);
    assert_eq!(
        lab.run(&["run", "--rm", "bb", "sh", "-c", "exit 3"]).code,
        3
    );
    lab.ok(&["run", "-d", "--name", "k9", "bb", "sleep", "1000"]);
    lab.ok(&["run", "-d", "--name", "term", "bb", "sleep", "1000"]);
    lab.ok(&[
        "run",
        "-d",
        "--name",
        "stubborn",
        "bb",
        "sh",
        "-c",
        "trap '' TERM; echo ready; while true; do sleep 0.1; done",
    ]);
    lab.ok(&["kill", "k9"]);
    lab.ok(&["kill", "-s", "TERM", "term"]);
    wait_until("ready", || lab.ok(&["logs", "stubborn"]).contains("ready"));
    lab.ok(&["stop", "-t", "1", "stubborn"]);
    for (name, code) in [("k9", 137), ("term", 143), ("stubborn", 137)] {
        wait_until("exit", || status(&lab, name) == "exited");
        assert_eq!(lab.inspect(name)["State"]["ExitCode"], code, "{name}");
    }
    let ps = lab.ok(&["ps", "-a"]);
    assert!(
        ps.contains("Exited (137)") && ps.contains("Exited (143)"),
        "{ps}"
    );
    assert!(lab.ok(&["ps", "-q"]).is_empty());
    // Exited containers' unions are unmounted and their cgroups removed.
    assert!(lab.mounts().is_empty(), "{:?}", lab.mounts());
    let id = lab.inspect("k9")["Id"].as_str().unwrap().to_string();
    assert!(
        cgroup_dirs_named(&id).is_empty(),
        "{:?}",
        cgroup_dirs_named(&id)
    );
}

#[test]
fn rm_flag_leaves_nothing_behind() {
    let lab = Lab::new();
    assert_eq!(
        lab.ok(&["run", "--rm", "bb", "sh", "-c", "echo x > /y"]),
        ""
    );
    let id = lab.ok(&["run", "-d", "--rm", "bb", "sleep", "0.2"]);
    assert_eq!(id.trim().len(), 64);
    wait_until("auto-removal", || lab.container_dirs().is_empty());
    assert!(lab.holds().is_empty(), "{:?}", lab.holds());
    assert!(lab.mounts().is_empty());
    // The image can go once no container holds it.
    lab.ok(&["rmi", "bb"]);
}

#[test]
fn env_workdir_user_hostname() {
    let lab = Lab::new();
    let envfile = lab.ctl.scratch("env").join("list");
    fs::write(&envfile, "# comment\nB=from-file\n").unwrap();
    let out = lab.ok(&[
        "run",
        "--rm",
        "-e",
        "A=1",
        "--env-file",
        envfile.to_str().unwrap(),
        "-w",
        "/tmp",
        "-u",
        "nobody",
        "--hostname",
        "box",
        "bb",
        "sh",
        "-c",
        "echo $A $B; pwd; id -u; id -g; hostname",
    ]);
    assert_eq!(out, "1 from-file\n/tmp\n65534\n65534\nbox\n");
    let unknown = lab.run(&["run", "--rm", "-u", "nosuchuser", "bb", "true"]);
    assert_eq!(unknown.code, 125, "{unknown:?}");
    assert!(unknown.stderr.contains("nosuchuser"), "{unknown:?}");
}

#[test]
fn bind_mounts_rw_ro_and_image_volumes() {
    let lab = Lab::new();
    let host = lab.ctl.scratch("host-dir");
    fs::write(host.join("in"), "from host\n").unwrap();
    let rw = format!("{}:/data", host.display());
    let ro = format!("{}:/ro:ro", host.display());
    let out = lab.ok(&[
        "run",
        "--rm",
        "-v",
        &rw,
        "-v",
        &ro,
        "bb",
        "sh",
        "-c",
        "cat /data/in; echo out > /data/out; echo no > /ro/x 2>/dev/null || echo ro-refused",
    ]);
    assert_eq!(out, "from host\nro-refused\n");
    assert_eq!(fs::read_to_string(host.join("out")).unwrap(), "out\n");
    assert!(!host.join("x").exists());
    // The mount points the image lacks do not show up as changes.
    lab.ok(&["run", "--name", "d", "-v", &rw, "bb", "true"]);
    assert_eq!(lab.ok(&["diff", "d"]), "");

    // VOLUME in the image config: an anonymous volume, seeded from the image.
    lab.ok(&[
        "run",
        "--name",
        "v",
        "bb",
        "sh",
        "-c",
        "mkdir /vol && echo seed > /vol/s",
    ]);
    lab.ok(&["commit", "-c", "VOLUME /vol", "v", "withvol"]);
    lab.ok(&[
        "run",
        "--name",
        "u",
        "withvol",
        "sh",
        "-c",
        "cat /vol/s; echo new > /vol/n",
    ]);
    let m = &lab.inspect("u")["Mounts"][0];
    assert_eq!(m["Type"], "volume");
    assert_eq!(m["Destination"], "/vol");
    let src = std::path::PathBuf::from(m["Source"].as_str().unwrap());
    assert!(src.starts_with(lab.root().join("volumes")), "{src:?}");
    assert_eq!(fs::read_to_string(src.join("s")).unwrap(), "seed\n");
    assert_eq!(fs::read_to_string(src.join("n")).unwrap(), "new\n");
    // The volume's data is not in the container's layer.
    assert!(!lab.ok(&["diff", "u"]).contains("/vol/n"));
    lab.ok(&["rm", "-v", "u"]);
    assert!(!src.exists());
}

#[test]
fn pause_exec_logs_diff_export_and_rm_rules() {
    let lab = Lab::new();
    lab.ok(&[
        "run",
        "-d",
        "--name",
        "p",
        "bb",
        "sh",
        "-c",
        "echo hello; sleep 1000",
    ]);
    wait_until("log", || lab.ok(&["logs", "p"]) == "hello\n");
    assert_eq!(
        lab.ok(&[
            "exec",
            "-e",
            "E=2",
            "-w",
            "/etc",
            "p",
            "sh",
            "-c",
            "echo $E $(pwd)"
        ]),
        "2 /etc\n"
    );
    assert_eq!(lab.run(&["exec", "p", "sh", "-c", "exit 7"]).code, 7);
    lab.ok(&["exec", "p", "sh", "-c", "echo n > /new; rm /etc/x"]);
    assert_eq!(lab.ok(&["diff", "p"]), "C /etc\nD /etc/x\nA /new\n");
    lab.ok(&["pause", "p"]);
    assert!(lab.ok(&["ps"]).contains("(Paused)"));
    assert_eq!(lab.inspect("p")["State"]["Paused"], true);
    lab.ok(&["unpause", "p"]);
    assert_eq!(status(&lab, "p"), "running");
    let tar = lab.ctl.scratch("export").join("p.tar");
    lab.ok(&["export", "-o", tar.to_str().unwrap(), "p"]);
    let listing = std::process::Command::new("tar")
        .arg("tf")
        .arg(&tar)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    assert!(listing.lines().any(|l| l == "new"), "{listing}");
    assert!(listing.lines().any(|l| l == "bin/busybox"));
    assert!(!listing.lines().any(|l| l == "etc/x"));
    // A running container is not removed without -f.
    let refused = lab.run(&["rm", "p"]);
    assert_eq!(refused.code, 1);
    assert!(refused.stderr.contains("running"), "{refused:?}");
    let info = lab.inspect("p");
    assert_eq!(info["GraphDriver"]["Name"], "unionfsd");
    assert_eq!(info["Name"], "/p");
    assert_eq!(info["Path"], "sh");
    assert!(info["State"]["Pid"].as_i64().unwrap() > 0);
    // The image is held by the container: rmi refuses.
    assert_eq!(lab.run(&["rmi", "bb"]).code, 1);
    lab.ok(&["rm", "-f", "p"]);
    assert!(lab.container_dirs().is_empty());
    assert!(lab.holds().is_empty());
    assert!(lab.mounts().is_empty());
}

#[test]
fn the_same_bundle_under_runc() {
    let lab = Lab::new();
    let r = lab.run(&[
        "run",
        "--rm",
        "--runtime",
        "runc",
        "-e",
        "V=runc",
        "bb",
        "sh",
        "-c",
        "echo $V $(cat /etc/x); exit 5",
    ]);
    assert_eq!(r.code, 5, "{r:?}");
    assert_eq!(r.stdout, "runc orig\n");
    lab.ok(&[
        "run",
        "-d",
        "--runtime",
        "runc",
        "--name",
        "rd",
        "bb",
        "sh",
        "-c",
        "echo up; sleep 1000",
    ]);
    wait_until("runc log", || lab.ok(&["logs", "rd"]) == "up\n");
    assert_eq!(lab.ok(&["exec", "rd", "cat", "/etc/x"]), "orig\n");
    assert_eq!(lab.inspect("rd")["HostConfig"]["Runtime"], "runc");
    // Under runc the shell is PID 1 (no init), which ignores SIGTERM: stop has to
    // fall back to SIGKILL after the timeout, as docker without --init does.
    lab.ok(&["stop", "-t", "1", "rd"]);
    wait_until("runc exit", || status(&lab, "rd") == "exited");
    assert_eq!(lab.inspect("rd")["State"]["ExitCode"], 137);
    let missing = lab.run(&["run", "--rm", "--runtime", "runc", "bb", "nope"]);
    assert_eq!(missing.code, 127, "{missing:?}");
    assert!(missing.stderr.contains("executable file not found"));
}

#[test]
fn bad_input_and_cleanup_after_the_mount_daemon_dies() {
    let lab = Lab::new();
    let missing = lab.run(&["run", "--rm", "bb", "no-such-command"]);
    assert_eq!(missing.code, 127, "{missing:?}");
    assert!(
        missing
            .stderr
            .contains("executable file not found in $PATH"),
        "{missing:?}"
    );
    let noimg = lab.run(&["run", "--rm", "no-such-image", "true"]);
    assert_eq!(noimg.code, 125);
    assert!(noimg.stderr.contains("no such image"), "{noimg:?}");
    assert_eq!(lab.run(&["rm", "nobody-here"]).code, 1);
    lab.ok(&["run", "--name", "dup", "bb", "true"]);
    let dup = lab.run(&["run", "--name", "dup", "bb", "true"]);
    assert_eq!(dup.code, 125);
    assert!(dup.stderr.contains("already in use"), "{dup:?}");

    // Kill the union's daemon under a running container: rm -f still cleans up.
    lab.ok(&["run", "-d", "--name", "victim", "bb", "sleep", "1000"]);
    let merged = std::path::PathBuf::from(
        lab.inspect("victim")["GraphDriver"]["Data"]["MergedDir"]
            .as_str()
            .unwrap(),
    );
    let pids = unionfsd_pids(&merged);
    assert!(!pids.is_empty(), "no unionfsd for {merged:?}");
    for p in pids {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(p),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    lab.ok(&["rm", "-f", "victim"]);
    lab.ok(&["rm", "dup"]);
    assert!(lab.container_dirs().is_empty());
    assert!(lab.mounts().is_empty(), "{:?}", lab.mounts());
    assert!(lab.holds().is_empty());
}

#[test]
fn ps_reads_state_from_disk_and_names_and_prefixes_resolve() {
    let lab = Lab::new();
    let id = lab.ok(&["create", "bb", "echo", "made"]).trim().to_string();
    assert_eq!(id.len(), 64);
    let ps = lab.ok(&["ps", "-a"]);
    assert!(ps.starts_with("CONTAINER ID"), "{ps}");
    assert!(ps.contains("Created"), "{ps}");
    let name = lab.inspect(&id[..8])["Name"]
        .as_str()
        .unwrap()
        .trim_start_matches('/')
        .to_string();
    assert!(name.contains('_'), "generated name {name}");
    assert_eq!(lab.ok(&["start", "-a", &name]), "made\n");
    assert!(lab.ok(&["ps", "-a", "-l"]).contains("Exited (0)"));
    assert_eq!(lab.ok(&["ps", "-a", "-q"]).trim(), &id[..12]);
    // Restart an exited container.
    lab.ok(&["start", &id[..12]]);
    wait_until("second run", || status(&lab, &name) == "exited");
    assert_eq!(lab.ok(&["logs", &name]), "made\n");
}

#[test]
fn a_container_whose_monitor_was_killed_shows_exited_with_an_explanation() {
    let lab = Lab::new();
    let id = lab
        .ok(&["run", "-d", "--name", "orphan", "bb", "sleep", "1000"])
        .trim()
        .to_string();
    let state: serde_json::Value = serde_json::from_slice(
        &fs::read(lab.root().join("runtime").join(&id).join("state.json")).unwrap(),
    )
    .unwrap();
    let monitor = state["monitorPid"].as_i64().expect("monitor pid") as i32;
    let pid = lab.inspect("orphan")["State"]["Pid"].as_i64().unwrap() as i32;
    let kill = |p: i32| {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(p),
            nix::sys::signal::Signal::SIGKILL,
        );
    };
    kill(monitor);
    kill(pid);
    wait_until("exited", || status(&lab, "orphan") == "exited");
    let info = lab.inspect("orphan");
    assert_eq!(info["State"]["ExitCode"], 255);
    assert!(
        info["State"]["Error"]
            .as_str()
            .unwrap()
            .contains("not recorded"),
        "{info}"
    );
    assert!(lab.ok(&["ps", "-a"]).contains("Exited (255)"));
    lab.ok(&["rm", "orphan"]);
    assert!(lab.mounts().is_empty());
}

#[test]
fn concurrent_creates_never_share_a_name() {
    let lab = Lab::new();
    let codes: Vec<i32> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..3)
            .map(|_| s.spawn(|| lab.run(&["create", "--name", "twin", "bb", "true"]).code))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(codes.iter().filter(|c| **c == 0).count(), 1, "{codes:?}");
    assert!(codes.iter().all(|c| *c == 0 || *c == 125), "{codes:?}");
    assert_eq!(lab.container_dirs().len(), 1);
    lab.ok(&["rm", "twin"]);
    // The name is free again.
    lab.ok(&["create", "--name", "twin", "bb", "true"]);
}
