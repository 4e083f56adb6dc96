//! Foreground containers under `ctr-runtime run`: exit codes, signals, the process's
//! environment, user, hostname, /proc and /dev, limits, the loopback-only network,
//! zombie reaping and the missing-executable error.

use integration_tests::runtime::{Bundle, EXTRA_GID, Runtime, USER_ID};
use serde_json::json;

#[test]
fn exit_code_is_the_process_exit_code() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&["sh", "-c", "echo hello; exit 3"]);
    let r = rt.run(&b);
    assert_eq!(r.code, 3, "{r:?}");
    assert_eq!(r.stdout, "hello\n");
    b.set_args(&["true"]);
    assert_eq!(rt.run(&b).code, 0);
}

#[test]
fn killed_by_a_signal_gives_128_plus_n() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&["sh", "-c", "kill -TERM $$"]);
    assert_eq!(rt.run(&b).code, 128 + 15);
    b.set_args(&["sh", "-c", "kill -KILL $$"]);
    assert_eq!(rt.run(&b).code, 128 + 9);
}

#[test]
fn missing_executable_exits_127() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&["no-such-command"]);
    let r = rt.run(&b);
    assert_eq!(r.code, 127, "{r:?}");
    assert!(
        r.stderr.contains("executable file not found"),
        "{}",
        r.stderr
    );
    b.set_args(&["/bin/no-such-file"]);
    let r = rt.run(&b);
    assert_eq!(r.code, 127, "{r:?}");
    assert!(
        r.stderr.contains("executable file not found"),
        "{}",
        r.stderr
    );
}

#[test]
fn env_cwd_user_and_groups() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&["sh", "-c", "echo $FOO; pwd; id -u; id -g; id -G"]);
    b.config["process"]["env"] = json!(["PATH=/bin", "FOO=bar baz"]);
    b.config["process"]["cwd"] = json!("/home/user/work");
    b.config["process"]["user"] =
        json!({"uid": USER_ID, "gid": USER_ID, "additionalGids": [EXTRA_GID]});
    b.save();
    let r = rt.run(&b);
    assert_eq!(r.code, 0, "{r:?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "bar baz");
    assert_eq!(lines[1], "/home/user/work", "a missing cwd is created");
    assert_eq!(lines[2], "1000");
    assert_eq!(lines[3], "1000");
    assert!(lines[4].split(' ').any(|g| g == "2000"), "{}", lines[4]);
}

#[test]
fn capabilities_and_no_new_privileges() {
    let rt = Runtime::new();
    let b = Bundle::new(&[
        "sh",
        "-c",
        "grep -E '^(CapBnd|CapEff|NoNewPrivs)' /proc/self/status",
    ]);
    let r = rt.run(&b);
    assert_eq!(r.code, 0, "{r:?}");
    // Docker's default set: chown dac_override fowner fsetid kill setgid setuid setpcap
    // net_bind_service net_raw sys_chroot mknod audit_write setfcap.
    assert!(
        r.stdout.contains("CapEff:\t00000000a80425fb"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("CapBnd:\t00000000a80425fb"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("NoNewPrivs:\t1"), "{}", r.stdout);
}

#[test]
fn hostname_and_rlimits() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&["sh", "-c", "hostname; ulimit -n"]);
    b.config["hostname"] = json!("box-under-test");
    b.config["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": 321, "soft": 123}]);
    b.save();
    let r = rt.run(&b);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout, "box-under-test\n123\n");
}

#[test]
fn proc_sys_and_dev() {
    let rt = Runtime::new();
    let script = r#"
        for d in null zero full random urandom tty ptmx pts shm; do [ -e /dev/$d ] || echo "missing /dev/$d"; done
        [ -c /dev/null ] || echo "/dev/null is not a char device"
        head -c 4 /dev/zero | od -An -tx1 | tr -d ' \n'; echo
        echo x > /proc/sys/kernel/domainname 2>/dev/null && echo "proc/sys writable"
        touch /sys/x 2>/dev/null && echo "sys writable"
        for f in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug; do
            [ -e $f ] && [ -n "$(head -c 1 $f)" ] && echo "$f is not masked"
        done
        ls /sys/firmware | wc -l
        echo pid=$$
        mount | grep -c ' on /dev/pts type devpts'
    "#;
    let b = Bundle::new(&["sh", "-c", script]);
    let r = rt.run(&b);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout, "00000000\n0\npid=2\n1\n", "{}", r.stderr);
}

#[test]
fn network_is_loopback_only() {
    let rt = Runtime::new();
    let mut b = Bundle::new(&["sh", "-c", "ls /sys/class/net; ip -o link show lo"]);
    let r = rt.run(&b);
    assert_eq!(r.code, 0, "{r:?}");
    let mut lines = r.stdout.lines();
    assert_eq!(lines.next(), Some("lo"));
    assert!(lines.next().unwrap().contains("UP"), "{}", r.stdout);

    // Without a network namespace the host's interfaces are visible.
    let host: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    b.drop_namespace("network");
    b.set_args(&["sh", "-c", "ls /sys/class/net | wc -l"]);
    let r = rt.run(&b);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout.trim(), host.len().to_string());
}

#[test]
fn pid_1_reaps_orphaned_zombies() {
    let rt = Runtime::new();
    // The subshell exits at once, so its child is re-parented to PID 1; once that child
    // has exited, only PID 1 can reap it. Wait (without a time limit that matters) for
    // its /proc entry to disappear.
    let script = r#"
        (sh -c 'echo $$ > /tmp/orphan; exit 0' &)
        while [ ! -s /tmp/orphan ]; do sleep 0.01; done
        p=$(cat /tmp/orphan)
        i=0
        while [ -e /proc/$p ] && [ $i -lt 3000 ]; do sleep 0.01; i=$((i+1)); done
        if [ -e /proc/$p ]; then echo "zombie: $(cat /proc/$p/stat)"; else echo reaped; fi
    "#;
    let b = Bundle::new(&["sh", "-c", script]);
    let r = rt.run(&b);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout, "reaped\n");
}

#[test]
fn pids_and_memory_limits() {
    let rt = Runtime::new();
    // The shell gives up ("can't fork") once the pids limit is reached.
    let script = r#"
        cat /sys/fs/cgroup/pids/pids.max
        cat /sys/fs/cgroup/memory/memory.limit_in_bytes
        cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us
        for i in $(seq 1 20); do sleep 1000 & done
        echo "forked 20 processes"
    "#;
    let mut b = Bundle::new(&["sh", "-c", script]);
    b.config["linux"]["resources"]["pids"] = json!({"limit": 8});
    b.config["linux"]["resources"]["memory"] = json!({"limit": 64 * 1024 * 1024});
    b.config["linux"]["resources"]["cpu"] = json!({"quota": 50000, "period": 100000});
    b.save();
    let r = rt.run(&b);
    let lines: Vec<&str> = r.stdout.lines().collect();
    let mem = (64 * 1024 * 1024).to_string();
    assert_eq!(lines, ["8", mem.as_str(), "50000", "100000"], "{r:?}");
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("can't fork"), "{}", r.stderr);
}

#[test]
fn device_nodes_of_the_host_cannot_be_opened() {
    use std::os::unix::fs::MetadataExt;
    // The block device holding the test's temp dir: root in the container may create a
    // node for it (CAP_MKNOD) but the devices cgroup refuses to open it.
    let dev = std::fs::metadata(std::env::temp_dir()).unwrap().dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let script = format!(
        "mknod /tmp/disk b {major} {minor} && echo created; \
         head -c 512 /tmp/disk > /dev/null 2>&1 && echo opened || echo refused"
    );
    let rt = Runtime::new();
    let b = Bundle::new(&["sh", "-c", &script]);
    let r = rt.run(&b);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout, "created\nrefused\n");
}
