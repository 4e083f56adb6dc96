//! How the CLI side reads a container's state while its monitor is still at work.
//! A fake container stands in for a real one: a `sleep` child plays the monitor and
//! the test writes state.json as the monitor would.

use std::process::{Child, Command};

use super::*;

/// A stopped process's pid (reaped, so /proc has no entry for it).
fn dead_pid() -> i32 {
    let mut c = Command::new("true").spawn().expect("spawn true");
    let pid = c.id() as i32;
    c.wait().expect("wait for true");
    pid
}

/// A process that lives until killed: the stand-in monitor, or PID 1.
fn live_process() -> Child {
    Command::new("sleep")
        .arg("60")
        .spawn()
        .expect("spawn sleep")
}

/// Writes a container `id` in status `status` whose PID 1 is `init` (gone if `None`),
/// watched by `monitor` (gone if `None`).
fn fake_container(
    rt: &Runtime,
    id: &str,
    status: Status,
    init: Option<&Child>,
    monitor: Option<&Child>,
) -> State {
    let dir = rt.dir(id).expect("valid id");
    std::fs::create_dir_all(&dir).expect("create state dir");
    let init_pid = init.map_or_else(dead_pid, |c| c.id() as i32);
    let monitor_pid = monitor.map_or_else(dead_pid, |m| m.id() as i32);
    let st = State {
        oci_version: state::OCI_VERSION.into(),
        id: id.into(),
        status,
        pid: Some(init_pid),
        pid_start_time: state::process_start_time(init_pid).or(Some(1)),
        monitor_pid: Some(monitor_pid),
        monitor_start_time: state::process_start_time(monitor_pid).or(Some(1)),
        bundle: dir.clone(),
        rootfs: dir.clone(),
        created: state::now(),
        started: None,
        finished: None,
        exit_code: None,
        cgroups: crate::cgroups::Cgroups::V2 {
            dir: dir.join("no-such-cgroup"),
        },
        log_path: None,
        annotations: BTreeMap::new(),
        error: None,
    };
    st.save(&dir).expect("save state");
    st
}

#[test]
fn a_container_whose_monitor_died_is_reported_stopped_with_the_reason() {
    let root = tempfile::tempdir().expect("tempdir");
    let rt = Runtime::new(root.path());
    fake_container(&rt, "orphan", Status::Running, None, None);
    let st = rt.state("orphan").expect("state");
    assert_eq!(st.status, Status::Stopped);
    assert_eq!(
        st.error.as_deref(),
        Some("the monitor process died before the container")
    );
}

/// The process of a just-started container can exit before its monitor's "running"
/// record lands on a busy disk (each record is fsynced). `start` must wait for the
/// record instead of taking the dead process for a failed start, however long the
/// monitor takes (here longer than `state` waits for a monitor to exit).
#[test]
fn start_waits_for_the_record_of_a_process_that_exited_at_once() {
    let root = tempfile::tempdir().expect("tempdir");
    let rt = Runtime::new(root.path());
    let mut monitor = live_process();
    // PID 1 lives when `start` looks; the stand-in monitor kills it once started.
    let mut init = live_process();
    let mut st = fake_container(&rt, "quick", Status::Created, Some(&init), Some(&monitor));
    let dir = rt.dir("quick").expect("valid id");
    let fifo = dir.join(files::START_FIFO);
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    // The monitor's end of the fifo, so `start` finds a reader.
    let mut reader = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .expect("open fifo");
    let init_pid = nix::unistd::Pid::from_raw(init.id() as i32);
    let slow_monitor = std::thread::spawn(move || {
        use std::io::Read;
        // Once `start` has written to the fifo, PID 1 runs and exits at once...
        let mut byte = [0u8; 1];
        reader.read_exact(&mut byte).expect("read the start fifo");
        nix::sys::signal::kill(init_pid, nix::sys::signal::Signal::SIGKILL).expect("kill init");
        // ...and the monitor's records land late.
        std::thread::sleep(Duration::from_millis(5_500));
        st.status = Status::Running;
        st.started = Some(state::now());
        st.save(&dir).expect("record running");
        st.status = Status::Stopped;
        st.exit_code = Some(0);
        st.save(&dir).expect("record the exit");
        // Its work done, the monitor exits.
        let _ = monitor.kill();
        let _ = monitor.wait();
    });
    let started = rt.start("quick");
    slow_monitor.join().expect("monitor thread");
    let _ = init.wait();
    started.expect("start succeeds once the monitor records the start");
    let st = rt.state("quick").expect("state");
    assert_eq!((st.status, st.exit_code), (Status::Stopped, Some(0)));
}
