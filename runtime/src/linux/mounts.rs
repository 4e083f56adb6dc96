//! The filesystem view of a container: its rootfs bound onto itself, the mounts of
//! config.json, the device nodes of /dev, `pivot_root` into it, and runc's masked
//! and read-only paths. All of it runs inside the container's new mount namespace.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use oci_spec::runtime::{Mount, Spec};

use crate::cgroups::Cgroups;
use crate::error::{Error, Result};
use crate::paths::secure_join;

/// FUSE's statfs magic number.
const FUSE_SUPER_MAGIC: i64 = 0x6573_5546;

/// `mount(2)` flags, propagation flags and the fs-specific data of one option list.
#[derive(Debug, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags for the mount call itself.
    pub flags: MsFlags,
    /// Flags to clear (an explicit `rw`, `suid`, ...), relevant for bind remounts.
    pub cleared: MsFlags,
    /// Propagation changes applied after the mount.
    pub propagation: Vec<MsFlags>,
    /// Whatever is not a flag, comma-joined (`mode=755,size=65536k`).
    pub data: String,
    /// `bind` or `rbind`.
    pub bind: bool,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MsFlags::empty(),
            cleared: MsFlags::empty(),
            propagation: Vec::new(),
            data: String::new(),
            bind: false,
        }
    }
}

/// Splits an OCI option list into flags and data, with runc's vocabulary.
pub fn parse_options(options: &[String]) -> MountOptions {
    let mut o = MountOptions::default();
    let mut data = Vec::new();
    for opt in options {
        let (set, clear) = match opt.as_str() {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "bind" => {
                o.bind = true;
                (MsFlags::MS_BIND, MsFlags::empty())
            }
            "rbind" => {
                o.bind = true;
                (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty())
            }
            "private" => prop(&mut o, MsFlags::MS_PRIVATE),
            "rprivate" => prop(&mut o, MsFlags::MS_PRIVATE | MsFlags::MS_REC),
            "shared" => prop(&mut o, MsFlags::MS_SHARED),
            "rshared" => prop(&mut o, MsFlags::MS_SHARED | MsFlags::MS_REC),
            "slave" => prop(&mut o, MsFlags::MS_SLAVE),
            "rslave" => prop(&mut o, MsFlags::MS_SLAVE | MsFlags::MS_REC),
            "unbindable" => prop(&mut o, MsFlags::MS_UNBINDABLE),
            "runbindable" => prop(&mut o, MsFlags::MS_UNBINDABLE | MsFlags::MS_REC),
            "tmpcopyup" | "defaults" => (MsFlags::empty(), MsFlags::empty()),
            other => {
                data.push(other.to_string());
                (MsFlags::empty(), MsFlags::empty())
            }
        };
        o.flags = (o.flags | set) & !clear;
        o.cleared = (o.cleared | clear) & !set;
    }
    o.data = data.join(",");
    o
}

fn prop(o: &mut MountOptions, f: MsFlags) -> (MsFlags, MsFlags) {
    o.propagation.push(f);
    (MsFlags::empty(), MsFlags::empty())
}

fn sys(what: String) -> impl FnOnce(nix::Error) -> Error {
    Error::sys(what)
}

/// Refuses a FUSE rootfs that processes running as `uid` could not read: without
/// `allow_other` the kernel lets only the mounting user in, and the container would
/// fail with confusing EACCES errors instead.
pub fn check_fuse_access(rootfs: &Path, uid: u32) -> Result<()> {
    let st =
        nix::sys::statfs::statfs(rootfs).map_err(sys(format!("statfs {}", rootfs.display())))?;
    if st.filesystem_type().0 as i64 != FUSE_SUPER_MAGIC {
        return Ok(());
    }
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(Error::io("read /proc/self/mountinfo"))?;
    let target = rootfs.to_string_lossy();
    let line = info
        .lines()
        .rfind(|l| l.split(' ').nth(4) == Some(&*target));
    let Some(line) = line else {
        return Ok(()); // rootfs is inside a FUSE mount, not its root: the same check applies, but be lenient
    };
    let super_opts = line
        .split(" - ")
        .nth(1)
        .and_then(|r| r.split(' ').nth(2))
        .unwrap_or("");
    let owner: Option<u32> = super_opts
        .split(',')
        .find_map(|o| o.strip_prefix("user_id="))
        .and_then(|v| v.parse().ok());
    let allow_other = super_opts.split(',').any(|o| o == "allow_other");
    if !allow_other && owner.is_some_and(|o| o != uid) {
        return Err(Error::Setup(format!(
            "rootfs {} is a FUSE mount without allow_other: a process running as uid {uid} cannot \
             access it; mount it with -o allow_other",
            rootfs.display()
        )));
    }
    Ok(())
}

/// Makes the mount tree private (or what `rootfsPropagation` asks) and binds the rootfs
/// onto itself so it is a mount point `pivot_root` accepts.
pub fn prepare_rootfs(spec: &Spec, rootfs: &Path) -> Result<()> {
    let propagation = spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().clone())
        .unwrap_or_default();
    let root_flags = match propagation.as_str() {
        "shared" | "rshared" => MsFlags::MS_SHARED,
        "slave" | "rslave" => MsFlags::MS_SLAVE,
        "unbindable" | "runbindable" => MsFlags::MS_UNBINDABLE,
        _ => MsFlags::MS_PRIVATE,
    } | MsFlags::MS_REC;
    mount(None::<&str>, "/", None::<&str>, root_flags, None::<&str>)
        .map_err(sys("make / private".into()))?;
    mount(
        Some(rootfs),
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(sys(format!("bind {} onto itself", rootfs.display())))?;
    Ok(())
}

/// Performs every mount of config.json under `rootfs`, in order.
pub fn mount_all(spec: &Spec, bundle: &Path, rootfs: &Path, cgroups: &Cgroups) -> Result<()> {
    for m in spec.mounts().as_deref().unwrap_or(&[]) {
        mount_one(m, bundle, rootfs, cgroups)?;
    }
    Ok(())
}

/// Creates the mount point for `dest`: a file when binding a file, a directory otherwise.
fn make_mount_point(dest: &Path, as_file: bool) -> Result<()> {
    if as_file {
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)
                .map_err(Error::io(format!("mkdir {}", parent.display())))?;
        }
        if !dest.exists() {
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(dest)
                .map_err(Error::io(format!("create mount point {}", dest.display())))?;
        }
    } else {
        std::fs::create_dir_all(dest).map_err(Error::io(format!("mkdir {}", dest.display())))?;
    }
    Ok(())
}

fn mount_one(m: &Mount, bundle: &Path, rootfs: &Path, cgroups: &Cgroups) -> Result<()> {
    let dest = secure_join(rootfs, m.destination())?;
    let typ = m.typ().clone().unwrap_or_default();
    let opts = parse_options(m.options().as_deref().unwrap_or(&[]));
    let source: PathBuf = m.source().clone().unwrap_or_else(|| PathBuf::from("none"));
    if opts.bind || typ == "bind" {
        let source = if source.is_absolute() {
            source
        } else {
            bundle.join(source)
        };
        let meta = std::fs::metadata(&source)
            .map_err(Error::io(format!("bind mount source {}", source.display())))?;
        make_mount_point(&dest, !meta.is_dir())?;
        let rec = opts.flags & MsFlags::MS_REC;
        mount(
            Some(&source),
            &dest,
            None::<&str>,
            MsFlags::MS_BIND | rec,
            None::<&str>,
        )
        .map_err(sys(format!(
            "bind {} to {}",
            source.display(),
            dest.display()
        )))?;
        let extra = opts.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
        if !extra.is_empty() {
            remount_bind(&dest, extra)?;
        }
    } else if typ == "cgroup" || typ == "cgroup2" {
        mount_cgroups(&dest, &opts, cgroups)?;
    } else {
        make_mount_point(&dest, false)?;
        let data = (!opts.data.is_empty()).then_some(opts.data.as_str());
        let r = mount(Some(&source), &dest, Some(typ.as_str()), opts.flags, data);
        match r {
            Ok(()) => {}
            // sysfs cannot be mounted when the container shares the host's network
            // namespace: bind the host's /sys instead, read-only, as runc does.
            Err(nix::Error::EPERM) if typ == "sysfs" => {
                mount(
                    Some("/sys"),
                    &dest,
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None::<&str>,
                )
                .map_err(sys(format!("bind /sys to {}", dest.display())))?;
                remount_bind(&dest, opts.flags | MsFlags::MS_RDONLY)?;
            }
            Err(e) => {
                return Err(Error::Sys {
                    what: format!("mount {typ} on {}", m.destination().display()),
                    source: e,
                });
            }
        }
    }
    for p in &opts.propagation {
        mount(None::<&str>, &dest, None::<&str>, *p, None::<&str>)
            .map_err(sys(format!("set propagation of {}", dest.display())))?;
    }
    Ok(())
}

/// Re-applies flags (ro, nosuid, ...) to a bind mount, keeping the ones it has.
fn remount_bind(dest: &Path, flags: MsFlags) -> Result<()> {
    let current = nix::sys::statvfs::statvfs(dest)
        .map(|s| {
            let f = s.flags();
            let mut out = MsFlags::empty();
            use nix::sys::statvfs::FsFlags;
            for (a, b) in [
                (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
                (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
                (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
            ] {
                if f.contains(a) {
                    out |= b;
                }
            }
            out
        })
        .unwrap_or(MsFlags::empty());
    mount(
        None::<&str>,
        dest,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags | current,
        None::<&str>,
    )
    .map_err(sys(format!("remount {} with {flags:?}", dest.display())))
}

/// Gives the container a view of its own cgroups at `dest`: on v1 a tmpfs with one bind
/// per controller, on v2 a bind of its directory.
fn mount_cgroups(dest: &Path, opts: &MountOptions, cgroups: &Cgroups) -> Result<()> {
    make_mount_point(dest, false)?;
    let ro = opts.flags.contains(MsFlags::MS_RDONLY);
    match cgroups {
        Cgroups::V2 { dir } => {
            mount(
                Some(dir.as_path()),
                dest,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(sys(format!("bind {} to {}", dir.display(), dest.display())))?;
            if ro {
                remount_bind(dest, MsFlags::MS_RDONLY)?;
            }
        }
        Cgroups::V1 { dirs } => {
            mount(
                Some("tmpfs"),
                dest,
                Some("tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                Some("mode=755"),
            )
            .map_err(sys(format!("mount tmpfs on {}", dest.display())))?;
            for (ctrl, dir) in dirs {
                let sub = dest.join(ctrl);
                make_mount_point(&sub, false)?;
                mount(
                    Some(dir.as_path()),
                    &sub,
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )
                .map_err(sys(format!(
                    "bind {} to {}",
                    dir.display(),
                    sub.display()
                )))?;
                if ro {
                    remount_bind(&sub, MsFlags::MS_RDONLY | opts.flags)?;
                }
            }
            if ro {
                mount(
                    None::<&str>,
                    dest,
                    None::<&str>,
                    MsFlags::MS_REMOUNT
                        | MsFlags::MS_RDONLY
                        | MsFlags::MS_NOSUID
                        | MsFlags::MS_NODEV
                        | MsFlags::MS_NOEXEC,
                    Some("mode=755"),
                )
                .map_err(sys(format!("remount {} read-only", dest.display())))?;
            }
        }
    }
    Ok(())
}

/// `pivot_root` into `rootfs` and detach the old root, runc's way: no put_old
/// directory is needed, which matters for read-only rootfs.
pub fn pivot_root(rootfs: &Path) -> Result<()> {
    let old = std::fs::File::open("/").map_err(Error::io("open /"))?;
    let new =
        std::fs::File::open(rootfs).map_err(Error::io(format!("open {}", rootfs.display())))?;
    nix::unistd::fchdir(&new).map_err(sys("fchdir to rootfs".into()))?;
    nix::unistd::pivot_root(".", ".").map_err(sys(format!("pivot_root {}", rootfs.display())))?;
    nix::unistd::fchdir(&old).map_err(sys("fchdir to old root".into()))?;
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(sys("make old root a slave".into()))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(sys("detach old root".into()))?;
    std::env::set_current_dir("/").map_err(Error::io("chdir /"))?;
    drop(old);
    let _ = new.as_raw_fd();
    Ok(())
}

/// Masks paths after pivot_root: directories get an empty read-only tmpfs, files
/// /dev/null. Missing paths are skipped.
pub fn mask_paths(paths: &[String]) -> Result<()> {
    for p in paths {
        let path = Path::new(p);
        let Ok(meta) = std::fs::metadata(path) else {
            continue;
        };
        let r = if meta.is_dir() {
            mount(
                Some("tmpfs"),
                path,
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None::<&str>,
            )
        } else {
            mount(
                Some("/dev/null"),
                path,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
        };
        r.map_err(sys(format!("mask {p}")))?;
    }
    Ok(())
}

/// Makes paths read-only after pivot_root (bind onto themselves, remount ro).
pub fn readonly_paths(paths: &[String]) -> Result<()> {
    for p in paths {
        let path = Path::new(p);
        if std::fs::symlink_metadata(path).is_err() {
            continue;
        }
        mount(
            Some(path),
            path,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(sys(format!("bind {p} onto itself")))?;
        remount_bind(path, MsFlags::MS_RDONLY | MsFlags::MS_REC)?;
    }
    Ok(())
}

/// Remounts `/` read-only (`root.readonly`).
pub fn readonly_root() -> Result<()> {
    remount_bind(Path::new("/"), MsFlags::MS_RDONLY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_split_into_flags_and_data() {
        let o = parse_options(&[
            "nosuid".into(),
            "strictatime".into(),
            "mode=755".into(),
            "size=65536k".into(),
            "ro".into(),
            "rw".into(),
            "rprivate".into(),
        ]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data, "mode=755,size=65536k");
        assert_eq!(o.propagation, vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
        assert!(!o.bind);
        assert!(parse_options(&["rbind".into()]).bind);
    }
}
