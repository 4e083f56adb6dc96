//! Containers as they run in real use: the rootfs is a FUSE union mount served by
//! `unionfsd` (writes land in the upper layer, the lower stays untouched), and a
//! process can have a pseudo-terminal (`run -t`, `exec -t`).

use integration_tests::mount::{FuseMount, LayerStack};
use integration_tests::runtime::{Bundle, Runtime, make_busybox_rootfs, unique_id};
use serde_json::json;

/// A bundle whose rootfs is `mnt` (the union mount) instead of its own directory.
fn bundle_on(mnt: &std::path::Path, args: &[&str], uid: u32) -> Bundle {
    let mut b = Bundle::new(args);
    b.config["root"]["path"] = json!(mnt);
    b.config["process"]["user"] = json!({"uid": uid, "gid": uid});
    b.save();
    b
}

#[test]
fn container_on_a_unionfsd_mount() {
    let stack = LayerStack::new(1);
    make_busybox_rootfs(stack.lower(0));
    let fuse = FuseMount::mount(&stack, "allow_other");
    let rt = Runtime::new();
    let b = bundle_on(
        fuse.mnt(),
        &[
            "sh",
            "-c",
            "echo written > /tmp/new-file; id -u; cat /etc/passwd | wc -l",
        ],
        1000,
    );
    let r = rt.run(&b);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout, "1000\n2\n");
    // Copy-on-write: the change is in the upper layer only.
    assert_eq!(
        std::fs::read_to_string(stack.upper.join("tmp/new-file")).unwrap(),
        "written\n"
    );
    assert!(!stack.lower(0).join("tmp/new-file").exists());
    drop(b);
    drop(fuse);
}

#[test]
fn fuse_rootfs_without_allow_other_is_refused_for_other_uids() {
    let stack = LayerStack::new(1);
    make_busybox_rootfs(stack.lower(0));
    let fuse = FuseMount::mount(&stack, "");
    let mounted_with_allow_other = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.contains(&*fuse.mnt().to_string_lossy()) && l.contains("allow_other"));
    let rt = Runtime::new();
    let b = bundle_on(fuse.mnt(), &["id", "-u"], 1000);
    let r = rt.run(&b);
    if mounted_with_allow_other {
        // The daemon adds allow_other by itself as root (like fuse-overlayfs): fine.
        assert_eq!(r.code, 0, "{r:?}");
    } else {
        assert_eq!(r.code, 1, "{r:?}");
        assert!(r.stderr.contains("allow_other"), "{}", r.stderr);
    }
    // Root may use it either way.
    let b = bundle_on(fuse.mnt(), &["id", "-u"], 0);
    assert_eq!(rt.run(&b).stdout, "0\n");
    drop(b);
    drop(fuse);
}

#[test]
fn run_and_exec_with_a_terminal() {
    let rt = Runtime::new();
    let b = Bundle::new(&[
        "sh",
        "-c",
        "tty; [ -t 0 ] && [ -t 1 ] && echo is-a-tty; exit 4",
    ]);
    let id = unique_id("tty");
    let _g = rt.guard(&id);
    let out = rt
        .cmd()
        .args(["run", "--tty", "--bundle"])
        .arg(b.path())
        .arg(&id)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let text = String::from_utf8_lossy(&out.stdout);
    // The pty comes from the container's own devpts instance.
    assert!(text.contains("/dev/pts/0\r\n"), "{text}");
    assert!(text.contains("is-a-tty"), "{text}");

    let b = Bundle::new(&["sleep", "1000"]);
    let id = unique_id("ttyexec");
    let _g2 = rt.guard(&id);
    let run = rt.exec(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let out = rt.exec(&[
        "exec",
        "-t",
        &id,
        "sh",
        "-c",
        "[ -t 0 ] && echo exec-tty; echo TERM=$TERM",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("exec-tty\r\nTERM=xterm\r\n"), "{text}");
}

#[test]
fn cleanup_after_the_mount_daemon_was_killed() {
    let stack = LayerStack::new(1);
    make_busybox_rootfs(stack.lower(0));
    let fuse = FuseMount::mount(&stack, "allow_other");
    let rt = Runtime::new();
    let b = bundle_on(
        fuse.mnt(),
        &[
            "sh",
            "-c",
            "while true; do cat /etc/passwd > /dev/null; sleep 0.05; done",
        ],
        0,
    );
    let id = unique_id("fusekill");
    let _g = rt.guard(&id);
    let run = rt.exec(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let st = rt.state(&id);
    let dirs: Vec<String> = st["cgroups"]["dirs"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|d| d[1].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    assert!(!dirs.is_empty());

    fuse.signal(libc::SIGKILL);
    // The state still answers (it does not live on the dead mount) and the container
    // can be removed without leaving cgroups or state behind.
    let status = rt.state(&id)["status"].as_str().unwrap().to_string();
    assert!(
        ["running", "stopped"].contains(&status.as_str()),
        "{status}"
    );
    let del = rt.exec(&["delete", "--force", &id]);
    assert!(
        del.status.success(),
        "{}",
        String::from_utf8_lossy(&del.stderr)
    );
    assert!(!rt.exec(&["state", &id]).status.success());
    for d in dirs {
        assert!(!std::path::Path::new(&d).exists(), "{d} left behind");
    }
    drop(b);
    drop(fuse);
}

#[test]
fn console_socket_receives_the_pty_master() {
    use std::io::Read;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    use std::os::unix::net::UnixListener;

    let rt = Runtime::new();
    let mut b = Bundle::new(&["sh", "-c", "tty; echo via-console-socket"]);
    b.config["process"]["terminal"] = json!(true);
    b.save();
    let sock_path = b.path().join("console.sock");
    let listener = UnixListener::bind(&sock_path).unwrap();
    // Receive the master in a thread, as a runc caller (containerd-shim, conmon) would.
    let receiver = std::thread::spawn(move || -> OwnedFd {
        let (conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 256];
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let msg = nix::sys::socket::recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            nix::sys::socket::MsgFlags::empty(),
        )
        .unwrap();
        for c in msg.cmsgs().unwrap() {
            if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = c {
                // SAFETY: the kernel installed this fd for us.
                return unsafe { OwnedFd::from_raw_fd(fds[0]) };
            }
        }
        panic!("no fd received");
    });
    let id = unique_id("console");
    let _g = rt.guard(&id);
    let out = rt.exec(&[
        "create",
        "--console-socket",
        sock_path.to_str().unwrap(),
        "--bundle",
        b.path().to_str().unwrap(),
        &id,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let master = receiver.join().unwrap();
    assert!(rt.exec(&["start", &id]).status.success());
    assert_eq!(rt.exec(&["wait", &id]).status.code(), Some(0));
    let mut text = Vec::new();
    let mut f = std::fs::File::from(master);
    // Reading past the end of a pty whose slave is closed gives EIO: stop there.
    let mut chunk = [0u8; 1024];
    while let Ok(n) = f.read(&mut chunk) {
        if n == 0 {
            break;
        }
        text.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&text);
    assert_eq!(text, "/dev/pts/0\r\nvia-console-socket\r\n");
}
