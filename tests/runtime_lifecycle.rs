//! Detached containers: create/start, run -d, state, kill, wait, delete, exec,
//! pause/resume and the log of a detached container's output.

use integration_tests::runtime::{Bundle, Runtime, unique_id};
use serde_json::json;

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn create_start_kill_delete() {
    let rt = Runtime::new();
    let b = Bundle::new(&["sleep", "1000"]);
    let id = unique_id("life");
    let _g = rt.guard(&id);
    let bundle = b.path().to_str().unwrap();
    ok(&rt.exec(&["create", "--bundle", bundle, &id]));
    let st = rt.state(&id);
    assert_eq!(st["status"], "created");
    assert_eq!(st["ociVersion"], "1.0.2");
    assert!(st["pid"].as_i64().unwrap() > 0);
    // A second container with the same id is refused.
    let dup = rt.exec(&["create", "--bundle", bundle, &id]);
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));

    ok(&rt.exec(&["start", &id]));
    assert_eq!(rt.state(&id)["status"], "running");
    // Deleting a running container needs --force.
    let del = rt.exec(&["delete", &id]);
    assert!(!del.status.success());
    assert!(String::from_utf8_lossy(&del.stderr).contains("not stopped"));

    // SIGTERM is passed on to `sleep` by PID 1: 128+15.
    ok(&rt.exec(&["kill", &id, "TERM"]));
    let waited = rt.exec(&["wait", &id]);
    assert_eq!(waited.status.code(), Some(143));
    let st = rt.state(&id);
    assert_eq!(st["status"], "stopped");
    assert_eq!(st["exitCode"], 143);
    ok(&rt.exec(&["delete", &id]));
    assert!(!rt.exec(&["state", &id]).status.success());
}

#[test]
fn detached_exit_code_and_log_survive_the_cli() {
    let rt = Runtime::new();
    let b = Bundle::new(&["sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 42"]);
    let id = unique_id("logs");
    let _g = rt.guard(&id);
    ok(&rt.exec(&[
        "run",
        "--detach",
        "--bundle",
        b.path().to_str().unwrap(),
        &id,
    ]));
    assert_eq!(rt.exec(&["wait", &id]).status.code(), Some(42));
    let st = rt.state(&id);
    assert_eq!(st["status"], "stopped");
    assert_eq!(st["exitCode"], 42);
    let log = std::fs::read_to_string(st["logPath"].as_str().unwrap()).unwrap();
    assert!(
        log.contains("to-stdout\n") && log.contains("to-stderr\n"),
        "{log}"
    );
    // The listing agrees.
    let list = ok(&rt.exec(&["list"]));
    assert!(
        list.lines()
            .any(|l| l.starts_with(&id) && l.contains("stopped") && l.contains("42")),
        "{list}"
    );
}

#[test]
fn kill_9_and_kill_all() {
    let rt = Runtime::new();
    let b = Bundle::new(&["sh", "-c", "sleep 1000 & sleep 1000"]);
    let id = unique_id("kill");
    let _g = rt.guard(&id);
    ok(&rt.exec(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]));
    let pids = ok(&rt.exec(&["ps", "--format", "json", &id]));
    let pids: Vec<i64> = serde_json::from_str(&pids).unwrap();
    assert!(pids.len() >= 3, "init, sh and sleeps: {pids:?}");
    ok(&rt.exec(&["kill", "--all", &id, "KILL"]));
    assert_eq!(rt.exec(&["wait", &id]).status.code(), Some(137));
    ok(&rt.exec(&["delete", &id]));
}

#[test]
fn exec_joins_the_container() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&["sh", "-c", "echo marker > /tmp/from-main; sleep 1000"]);
    b.config["hostname"] = json!("exec-box");
    b.config["process"]["env"] = json!(["PATH=/bin", "FROM_CONFIG=1"]);
    b.save();
    let id = unique_id("exec");
    let _g = rt.guard(&id);
    ok(&rt.exec(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]));
    // Wait (no time limit that matters) for the main process to write its marker.
    let out = rt.exec(&[
        "exec", &id, "sh", "-c",
        "while [ ! -s /tmp/from-main ]; do sleep 0.01; done; cat /tmp/from-main; hostname; echo $FROM_CONFIG $EXTRA; ls /sys/class/net; ps -o pid,comm | grep -c sleep",
    ]);
    let stdout = ok(&out);
    assert_eq!(stdout, "marker\nexec-box\n1\nlo\n1\n");

    let out = rt.exec(&[
        "exec",
        "--user",
        "user",
        "--cwd",
        "/home/user",
        "--env",
        "EXTRA=2",
        &id,
        "sh",
        "-c",
        "id -un; pwd; echo $EXTRA",
    ]);
    assert_eq!(ok(&out), "user\n/home/user\n2\n");

    let out = rt.exec(&["exec", &id, "sh", "-c", "exit 5"]);
    assert_eq!(out.status.code(), Some(5));
    let out = rt.exec(&["exec", &id, "no-such-tool"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&out.stderr).contains("executable file not found"));
    ok(&rt.exec(&["delete", "--force", &id]));
}

#[test]
fn pause_and_resume() {
    let rt = Runtime::new();
    let b = Bundle::new(&["sleep", "1000"]);
    let id = unique_id("pause");
    let _g = rt.guard(&id);
    ok(&rt.exec(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]));
    ok(&rt.exec(&["pause", &id]));
    assert_eq!(rt.state(&id)["status"], "paused");
    // Every process is frozen: the kernel reports state D or "frozen" via the freezer.
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let freezer = cgroup
        .lines()
        .find(|l| l.contains(":freezer:"))
        .map(|l| l.splitn(3, ':').nth(2).unwrap().to_string());
    if let Some(path) = freezer {
        let state =
            std::fs::read_to_string(format!("/sys/fs/cgroup/freezer{path}/freezer.state")).unwrap();
        assert_eq!(state.trim(), "FROZEN");
    }
    let refused = rt.exec(&["exec", &id, "true"]);
    assert!(!refused.status.success());
    assert!(
        !rt.exec(&["pause", &id]).status.success(),
        "pausing twice is refused"
    );
    ok(&rt.exec(&["resume", &id]));
    assert_eq!(rt.state(&id)["status"], "running");
    ok(&rt.exec(&["exec", &id, "true"]));
    // A paused container can still be force-deleted.
    ok(&rt.exec(&["pause", &id]));
    ok(&rt.exec(&["delete", "--force", &id]));
}

#[test]
fn bad_bundles_give_one_clear_error() {
    let rt = Runtime::new();
    let empty = tempfile::tempdir().unwrap();
    let out = rt.exec(&[
        "run",
        "--bundle",
        empty.path().to_str().unwrap(),
        &unique_id("bad"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no config.json"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    let mut b = Bundle::new(&["true"]);
    b.config["root"]["path"] = json!("missing-rootfs");
    b.save();
    let out = rt.exec(&[
        "run",
        "--bundle",
        b.path().to_str().unwrap(),
        &unique_id("bad"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing-rootfs"));

    let out = rt.exec(&["run", "--bundle", b.path().to_str().unwrap(), "../escape"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid container id"));
    // Nothing was left behind in the state dir.
    assert_eq!(std::fs::read_dir(rt.root.path()).unwrap().count(), 0);
}

#[test]
fn foreground_run_passes_signals_on_and_writes_the_pid_file() {
    let rt = Runtime::new();
    let b = Bundle::new(&["sleep", "1000"]);
    let id = unique_id("fg");
    let _g = rt.guard(&id);
    let pid_file = b.path().join("pid");
    let mut child = rt
        .cmd()
        .args(["run", "--keep", "--pid-file"])
        .arg(&pid_file)
        .arg("--bundle")
        .arg(b.path())
        .arg(&id)
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait (no time limit that matters) until the process runs.
    let mut tries = 0;
    while !(pid_file.exists()
        && rt.exec(&["state", &id]).status.success()
        && rt.state(&id)["status"] == "running")
    {
        tries += 1;
        assert!(tries < 30_000, "the container never started");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(rt.state(&id)["pid"], pid);
    // SAFETY: kill(2) of the ctr-runtime process this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(143),
        "SIGTERM reached sleep through PID 1"
    );
    let st = rt.state(&id);
    assert_eq!(st["status"], "stopped");
    assert_eq!(st["exitCode"], 143);
}

#[test]
fn stop_escalates_to_sigkill() {
    let rt = Runtime::new();
    // The shell ignores SIGTERM, so `stop` has to fall back to SIGKILL.
    let b = Bundle::new(&["sh", "-c", "trap '' TERM; while true; do sleep 0.05; done"]);
    let id = unique_id("stop");
    let _g = rt.guard(&id);
    ok(&rt.exec(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]));
    let out = ok(&rt.exec(&["stop", "--time", "1", &id]));
    assert_eq!(out.trim(), "137");
    assert_eq!(rt.state(&id)["exitCode"], 137);

    // A process that handles SIGTERM stops with its own code, well before the timeout.
    let b = Bundle::new(&[
        "sh",
        "-c",
        "trap 'exit 0' TERM; while true; do sleep 0.05; done",
    ]);
    let id = unique_id("stop");
    let _g = rt.guard(&id);
    ok(&rt.exec(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]));
    ok(&rt.exec(&["pause", &id]));
    let out = ok(&rt.exec(&["stop", "--time", "600", &id]));
    assert_eq!(out.trim(), "0");
}

#[test]
fn logs_follow_and_terminal_output() {
    let rt = Runtime::new();
    let b = Bundle::new(&[
        "sh",
        "-c",
        "for i in 1 2 3; do echo line $i; sleep 0.1; done",
    ]);
    let id = unique_id("follow");
    let _g = rt.guard(&id);
    ok(&rt.exec(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]));
    // `logs -f` returns once the container has stopped, with all of its output.
    assert_eq!(
        ok(&rt.exec(&["logs", "--follow", &id])),
        "line 1\nline 2\nline 3\n"
    );
    assert_eq!(ok(&rt.exec(&["logs", &id])), "line 1\nline 2\nline 3\n");

    // A detached container with a terminal: the monitor copies the pty to the log.
    let b = Bundle::new(&["sh", "-c", "[ -t 1 ] && echo on-a-tty"]);
    let id = unique_id("dtty");
    let _g = rt.guard(&id);
    ok(&rt.exec(&[
        "run",
        "-d",
        "-t",
        "--bundle",
        b.path().to_str().unwrap(),
        &id,
    ]));
    assert_eq!(rt.exec(&["wait", &id]).status.code(), Some(0));
    assert_eq!(ok(&rt.exec(&["logs", &id])), "on-a-tty\r\n");
}
