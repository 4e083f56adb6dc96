//! Device nodes in the container's /dev tmpfs: the standard set every container
//! gets (null, zero, full, random, urandom, tty), the devices of config.json, and the
//! usual symlinks (/dev/fd, /dev/stdin, /dev/ptmx -> pts/ptmx, ...).

use std::path::Path;

use nix::sys::stat::{Mode, SFlag, makedev, mknod};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use crate::error::{Error, Result};
use crate::paths::secure_join;

/// A device node to create: path inside the container, kind, numbers, mode, owner.
struct Node {
    path: String,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    uid: u32,
    gid: u32,
}

/// The devices runc creates in every container.
fn defaults() -> Vec<Node> {
    [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ]
    .into_iter()
    .map(|(n, major, minor)| Node {
        path: format!("/dev/{n}"),
        kind: SFlag::S_IFCHR,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

fn from_config(d: &LinuxDevice) -> Option<Node> {
    let kind = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        LinuxDeviceType::A => return None,
    };
    Some(Node {
        path: d.path().to_string_lossy().into_owned(),
        kind,
        major: d.major() as u64,
        minor: d.minor() as u64,
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
    })
}

/// Creates the device nodes and symlinks under `rootfs` (before pivot_root). When
/// mknod is refused (a restrictive devices cgroup), the host's node is bind-mounted.
pub fn create_devices(rootfs: &Path, configured: &[LinuxDevice]) -> Result<()> {
    let mut nodes = defaults();
    for d in configured.iter().filter_map(from_config) {
        nodes.retain(|n| n.path != d.path);
        nodes.push(d);
    }
    for n in &nodes {
        let dest = secure_join(rootfs, Path::new(&n.path))?;
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)
                .map_err(Error::io(format!("mkdir {}", parent.display())))?;
        }
        let _ = std::fs::remove_file(&dest);
        let old_umask = nix::sys::stat::umask(Mode::empty());
        let r = mknod(
            &dest,
            n.kind,
            Mode::from_bits_truncate(n.mode),
            makedev(n.major, n.minor),
        );
        nix::sys::stat::umask(old_umask);
        match r {
            Ok(()) => {
                nix::unistd::chown(&dest, Some(n.uid.into()), Some(n.gid.into()))
                    .map_err(Error::sys(format!("chown {}", dest.display())))?;
            }
            Err(nix::Error::EPERM) => {
                std::fs::File::create(&dest)
                    .map_err(Error::io(format!("create {}", dest.display())))?;
                nix::mount::mount(
                    Some(n.path.as_str()),
                    &dest,
                    None::<&str>,
                    nix::mount::MsFlags::MS_BIND,
                    None::<&str>,
                )
                .map_err(Error::sys(format!("bind {} into the container", n.path)))?;
            }
            Err(e) => return Err(Error::sys(format!("mknod {}", dest.display()))(e)),
        }
    }
    for (link, target) in [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
        ("/dev/core", "/proc/kcore"),
        ("/dev/ptmx", "pts/ptmx"),
    ] {
        if link == "/dev/core" && !Path::new("/proc/kcore").exists() {
            continue; // as runc: only when the kernel has a /proc/kcore
        }
        let dest = secure_join(rootfs, Path::new(link))?;
        if std::fs::symlink_metadata(&dest).is_ok() {
            if link != "/dev/ptmx" {
                continue;
            }
            let _ = std::fs::remove_file(&dest);
        }
        std::os::unix::fs::symlink(target, &dest)
            .map_err(Error::io(format!("symlink {}", dest.display())))?;
    }
    Ok(())
}
