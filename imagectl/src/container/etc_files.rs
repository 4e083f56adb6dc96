//! The three files docker and podman give every container and every build step:
//! `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf`, written beside the container
//! and bind-mounted over the image's.
//!
//! Why: images do not carry usable copies (a registry image has none, or the build
//! host's, as debootstrap leaves them), yet `apt-get update` in a `RUN` needs the
//! host's resolver, and `hostname -f` needs the container's own name in `/etc/hosts`.
//! Being mounts, they never reach the container's upper layer, so `diff`, `commit` and
//! build layers don't carry them.

use std::fs;
use std::path::{Path, PathBuf};

use runtime::config::generate::BindMount;

use crate::error::{IoContext, Result};
use crate::store::write_file_atomic;

/// Where the files are mounted in the container, in the order [`write`] returns them.
pub const DESTINATIONS: [&str; 3] = ["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"];

/// Writes `hostname`, `hosts` and `resolv.conf` into `dir` and returns their bind mounts,
/// leaving out any destination in `taken` (the user's own `-v` wins, as in docker).
///
/// With the host's network the container sees the host's `/etc/hosts` (docker's
/// `--network host` does the same); otherwise a loopback-only one naming `hostname`.
/// `resolv.conf` is the host's: a container without a network never reaches it, and one
/// with the host's network resolves as the host does.
pub fn write(
    dir: &Path,
    hostname: &str,
    network_host: bool,
    taken: &[PathBuf],
) -> Result<Vec<BindMount>> {
    fs::create_dir_all(dir).at(dir)?;
    let hosts = if network_host {
        fs::read_to_string("/etc/hosts").unwrap_or_default()
    } else {
        String::new()
    };
    let hosts = if hosts.is_empty() {
        format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"
        )
    } else {
        hosts
    };
    let resolv = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let contents = [format!("{hostname}\n"), hosts, resolv];
    let mut mounts = Vec::new();
    for (dest, text) in DESTINATIONS.iter().zip(contents) {
        let dest = PathBuf::from(dest);
        if taken.contains(&dest) {
            continue;
        }
        let name = dest.file_name().map(PathBuf::from).unwrap_or_default();
        let source = dir.join(name);
        write_file_atomic(&source, text.as_bytes())?;
        mounts.push(BindMount {
            source,
            destination: dest,
            readonly: false,
        });
    }
    Ok(mounts)
}

/// Directories the runtime mounts over (`/proc`, `/sys`, `/dev`) and the one holding
/// [`DESTINATIONS`]: an image without them gets them as mount points.
pub const MOUNT_POINT_DIRS: [&str; 4] = ["/proc", "/sys", "/dev", "/etc"];

/// The mount points a container needs in `rootfs` ([`MOUNT_POINT_DIRS`], then
/// [`DESTINATIONS`]) that are not there yet: a build step removes these stubs after its
/// `RUN` ([`remove_stubs`]), so they never land in the step's layer (what docker's init
/// layer and BuildKit's stub cleanup achieve).
pub fn missing_stubs(rootfs: &Path) -> Vec<PathBuf> {
    MOUNT_POINT_DIRS
        .iter()
        .chain(DESTINATIONS.iter())
        .map(|dest| rootfs.join(dest.trim_start_matches('/')))
        .filter(|p| fs::symlink_metadata(p).is_err())
        .collect()
}

/// Removes the stubs [`missing_stubs`] listed, files first, then directories; only
/// empty files and empty directories are touched, so anything the `RUN` itself wrote
/// there stays.
pub fn remove_stubs(stubs: &[PathBuf]) {
    for p in stubs.iter().rev() {
        match fs::symlink_metadata(p) {
            Ok(m) if m.is_file() && m.len() == 0 => {
                let _ = fs::remove_file(p);
            }
            Ok(m) if m.is_dir() => {
                let _ = fs::remove_dir(p);
            }
            _ => {}
        }
    }
}
