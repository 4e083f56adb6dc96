//! `imagectl mount IMAGE DIR`: the image's merged view, served by `unionfsd` over its
//! layer directories (top first); `--rw` adds a throwaway upper and work dir.
//!
//! A mount holds its image (so `rmi` and GC leave the layers alone) until `umount`.
//! State lives in `ROOT/mounts/KEY.json`, KEY being a hash of the mount point.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::store::{Store, write_file_atomic};

/// What `umount` needs to undo a mount.
#[derive(Debug, Serialize, Deserialize)]
pub struct MountRecord {
    /// The mount point.
    pub dir: PathBuf,
    /// The image's manifest digest.
    pub manifest: Digest,
    /// The image as the user named it.
    pub image: String,
    /// Scratch directory holding upper/ and work/ for `--rw`.
    pub scratch: Option<PathBuf>,
}

/// Finds `unionfsd`: next to the running executable first, then on `PATH`.
pub fn find_unionfsd() -> Result<PathBuf> {
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        let c = dir.join("unionfsd");
        if c.is_file() {
            return Ok(c);
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            let c = d.join("unionfsd");
            if c.is_file() {
                return Ok(c);
            }
        }
    }
    Err(Error::Other(
        "unionfsd not found next to imagectl or on PATH".into(),
    ))
}

fn key(dir: &Path) -> String {
    Digest::of(dir.as_os_str().as_encoded_bytes())
        .short()
        .to_string()
}

fn record_path(store: &Store, dir: &Path) -> PathBuf {
    store
        .root()
        .join("mounts")
        .join(format!("{}.json", key(dir)))
}

/// Whether `dir` is a mount point (listed in /proc/self/mountinfo).
pub fn is_mounted(dir: &Path) -> bool {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = dir.to_string_lossy();
    info.lines().any(|l| {
        l.split(' ')
            .nth(4)
            .map(|m| m.replace("\\040", " ") == want)
            .unwrap_or(false)
    })
}

/// The persistent index to hand unionfsd (`-o index=FILE`) for a union of the store's
/// layer directories `lowers_top_first`: the top layer's `unionfs.index`, if it exists and
/// was built for exactly this chain. `None` means mount without one (unionfsd then
/// builds its in-memory index as it goes), so a missing, damaged or stale file never
/// stops a mount; so does `IMAGECTL_NO_INDEX=1`. Also meant for container root
/// filesystems.
pub fn index_for(lowers_top_first: &[PathBuf]) -> Option<PathBuf> {
    if !crate::store::indexes_enabled() {
        return None;
    }
    let top = lowers_top_first.first()?;
    let path = top.parent()?.join(crate::store::INDEX_FILE);
    if !path.is_file() {
        return None;
    }
    match unionfs::pindex::PersistentIndex::open(&path, lowers_top_first) {
        Ok(_) => Some(path),
        Err(e) => {
            log::warn!("not using {}: {e}", path.display());
            None
        }
    }
}

fn escape_opt(p: &Path) -> String {
    let s = p.to_string_lossy();
    s.replace('\\', "\\\\")
        .replace(',', "\\,")
        .replace(':', "\\:")
}

/// Mounts a union of `lowers` (top first) at `dir` with the workspace's unionfsd,
/// writable when `upper_work` gives an upper and a work directory. The one place that
/// spells unionfsd's options, so image mounts, containers and builds all get the
/// layer chain's persistent index when there is one.
pub fn mount_union(
    lowers: &[PathBuf],
    upper_work: Option<(&Path, &Path)>,
    dir: &Path,
) -> Result<()> {
    let lowerdir: Vec<String> = lowers.iter().map(|p| escape_opt(p)).collect();
    let mut opts = format!("lowerdir={}", lowerdir.join(":"));
    if let Some(index) = index_for(lowers) {
        opts.push_str(&format!(",index={}", escape_opt(&index)));
    }
    if let Some((upper, work)) = upper_work {
        opts.push_str(&format!(
            ",upperdir={},workdir={}",
            escape_opt(upper),
            escape_opt(work)
        ));
    }
    let bin = find_unionfsd()?;
    let out = Command::new(&bin)
        .arg("-o")
        .arg(&opts)
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .at(&bin)?;
    if !out.status.success() {
        return Err(Error::Other(format!(
            "unionfsd failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Mounts `image` at `dir` (which must exist), read-only unless `rw`.
pub fn mount(store: &Store, image: &str, dir: &Path, rw: bool) -> Result<MountRecord> {
    let img = store.resolve(image)?;
    let dir = fs::canonicalize(dir).at(dir)?;
    if is_mounted(&dir) {
        return Err(Error::Other(format!(
            "{}: already a mount point",
            dir.display()
        )));
    }
    let rec_path = record_path(store, &dir);
    let holder = format!("mount-{}", key(&dir));
    store.hold(&holder, img.manifest_digest())?;
    let result = (|| {
        let lowers = store.layer_dirs(&img)?;
        if lowers.is_empty() {
            return Err(Error::Other(format!("{image}: image has no layers")));
        }
        let mut scratch = None;
        if rw {
            let s = store.root().join("mounts").join(key(&dir));
            if s.exists() {
                fs::remove_dir_all(&s).at(&s)?;
            }
            for sub in ["upper", "work"] {
                fs::create_dir_all(s.join(sub)).at(s.join(sub))?;
            }
            scratch = Some(s);
        }
        let writable = scratch.as_ref().map(|s| (s.join("upper"), s.join("work")));
        mount_union(
            &lowers,
            writable.as_ref().map(|(u, w)| (u.as_path(), w.as_path())),
            &dir,
        )?;
        let rec = MountRecord {
            dir: dir.clone(),
            manifest: img.manifest_digest().clone(),
            image: image.to_string(),
            scratch,
        };
        let bytes = serde_json::to_vec_pretty(&rec).map_err(|e| Error::json("mount record", e))?;
        fs::create_dir_all(store.root().join("mounts")).at(store.root().join("mounts"))?;
        write_file_atomic(&rec_path, &bytes)?;
        Ok(rec)
    })();
    if result.is_err() {
        let _ = store.release(&holder);
    }
    result
}

/// Unmounts `dir`, drops the throwaway upper and releases the image.
pub fn umount(store: &Store, dir: &Path) -> Result<()> {
    let dir = fs::canonicalize(dir).at(dir)?;
    let rec_path = record_path(store, &dir);
    let rec: Option<MountRecord> = fs::read(&rec_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    if is_mounted(&dir) {
        unmount_fs(&dir)?;
    } else if rec.is_none() {
        return Err(Error::Other(format!("{}: not mounted", dir.display())));
    }
    if let Some(rec) = rec {
        if let Some(s) = &rec.scratch {
            fs::remove_dir_all(s).at(s)?;
        }
        fs::remove_file(&rec_path).at(&rec_path)?;
    }
    store.release(&format!("mount-{}", key(&dir)))
}

/// Unmounts `dir`, failing (and leaving it mounted) when it is busy: what a user's
/// `imagectl umount` wants. `umount(2)` as root, else `fusermount3 -u`.
fn unmount_fs(dir: &Path) -> Result<()> {
    if nix::mount::umount(dir).is_ok() {
        return Ok(());
    }
    fusermount_u(dir, false)
}

/// Unmounts `dir` whatever state it is in: `umount(2)`, then a lazy detach (a busy mount,
/// or one whose daemon died and answers ENOTCONN), then `fusermount3 -u -z` for
/// unprivileged mounts. For mounts imagectl owns (containers, build steps), where
/// leaving a stale mount behind is worse than detaching it.
pub fn unmount_path(dir: &Path) -> Result<()> {
    if !is_mounted(dir) {
        return Ok(());
    }
    if nix::mount::umount(dir).is_ok()
        || nix::mount::umount2(dir, nix::mount::MntFlags::MNT_DETACH).is_ok()
    {
        return Ok(());
    }
    fusermount_u(dir, true).or_else(|e| if is_mounted(dir) { Err(e) } else { Ok(()) })
}

/// `fusermount3 -u [-z] DIR` (or the older `fusermount`), with its complaint as the error.
fn fusermount_u(dir: &Path, lazy: bool) -> Result<()> {
    let args: &[&str] = if lazy { &["-u", "-z"] } else { &["-u"] };
    let out = Command::new("fusermount3")
        .args(args)
        .arg(dir)
        .output()
        .or_else(|_| Command::new("fusermount").args(args).arg(dir).output())
        .at(dir)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Other(format!(
            "unmounting {}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}
