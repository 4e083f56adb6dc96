//! The same OCI bundle under `ctr-runtime` and under `runc` gives the same results:
//! output, exit codes (including 128+N for signals), user, environment, hostname,
//! mounts seen from inside and the loopback-only network.

use integration_tests::runtime::{Bundle, EXTRA_GID, Runtime, USER_ID, runc_run};
use serde_json::json;

/// Runs the bundle under both runtimes and asserts identical exit code and stdout.
fn same_under_both(b: &Bundle) -> String {
    let ours = Runtime::new().run(b);
    let theirs = runc_run(b);
    assert_eq!(
        (ours.code, &ours.stdout),
        (theirs.code, &theirs.stdout),
        "ctr-runtime stderr: {}\nrunc stderr: {}",
        ours.stderr,
        theirs.stderr
    );
    ours.stdout
}

#[test]
fn same_process_view_as_runc() {
    let script = r#"
        echo "$FOO|$HOME|$(pwd)"
        id
        hostname
        ls /sys/class/net
        ls /dev | sort | tr '\n' ' '; echo
        grep -E '^(CapBnd|CapEff|CapPrm|NoNewPrivs)' /proc/self/status
        ulimit -n
        # runc binds every v1 hierarchy into /sys/fs/cgroup, we only those we join.
        mount | awk '{print $3, $5}' | grep -v '^/sys/fs/cgroup/' | sort | tr '\n' ' '; echo
        touch /sys/x 2>/dev/null || echo "sys read-only"
        echo x > /proc/sys/kernel/domainname 2>/dev/null || echo "proc/sys read-only"
        exit 7
    "#;
    let mut b = Bundle::new(&["sh", "-c", script]);
    b.config["hostname"] = json!("same-host");
    b.config["process"]["env"] = json!(["PATH=/bin", "FOO=foo value", "HOME=/home/user"]);
    b.config["process"]["cwd"] = json!("/home/user");
    b.config["process"]["user"] =
        json!({"uid": USER_ID, "gid": USER_ID, "additionalGids": [EXTRA_GID]});
    b.save();
    let out = same_under_both(&b);
    assert!(
        out.starts_with("foo value|/home/user|/home/user\n"),
        "{out}"
    );
    assert!(out.contains("same-host\n"));
}

#[test]
fn same_exit_codes_as_runc() {
    let mut b = Bundle::new(&["sh", "-c", "exit 0"]);
    same_under_both(&b);
    b.set_args(&["sh", "-c", "echo bye; exit 213"]);
    same_under_both(&b);
    // Under runc the process is PID 1, which the kernel protects from signals it has
    // no handler for; under ctr-runtime a tiny init is PID 1 (as with `docker run
    // --init`). A child killed by a signal gives 128+N under both.
    b.set_args(&["sh", "-c", "sh -c 'kill -TERM $$'; exit $?"]);
    assert_eq!(Runtime::new().run(&b).code, 143);
    same_under_both(&b);
    b.set_args(&["sh", "-c", "sh -c 'kill -KILL $$'; exit $?"]);
    same_under_both(&b);
}

#[test]
fn missing_executable_is_reported_by_both() {
    let b = Bundle::new(&["no-such-command"]);
    let ours = Runtime::new().run(&b);
    let theirs = runc_run(&b);
    assert_eq!(ours.code, 127);
    assert_ne!(theirs.code, 0);
    for err in [&ours.stderr, &theirs.stderr] {
        assert!(err.contains("executable file not found"), "{err}");
    }
}

#[test]
fn same_limits_as_runc() {
    let script = "cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/memory/memory.limit_in_bytes";
    let mut b = Bundle::new(&["sh", "-c", script]);
    b.config["linux"]["resources"]["pids"] = json!({"limit": 42});
    b.config["linux"]["resources"]["memory"] = json!({"limit": 96 * 1024 * 1024});
    b.save();
    let out = same_under_both(&b);
    assert_eq!(out, format!("42\n{}\n", 96 * 1024 * 1024));
}
