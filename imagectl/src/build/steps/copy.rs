//! COPY and ADD: files from the build context (or another stage or image with
//! `--from`, or heredocs, or URLs for ADD) added to the step's layer.
//!
//! The destination is resolved in the step's union mount (`merged`), so existing
//! directories and symlinks of the layers below mean what they mean in the image
//! (`COPY x /lib/` lands in `/usr/lib` when `/lib` is a symlink to it). The files
//! themselves are written straight into the step's upper directory, the future layer:
//! going through the FUSE mount costs a daemon round trip per operation, about a
//! millisecond per small file. A directory of a lower layer that receives files is
//! first copied up the way the union would (mode and owner kept); a directory that did
//! not exist below is new, and nothing under it needs looking up. Local archives (ADD)
//! are extracted through the mount, where the tar reader's own path checks apply.
//!
//! Docker's rules: a destination ending in `/` (or several sources) is a directory; a
//! directory source copies its contents; files keep their mode and mtime and get
//! uid/gid 0 unless `--chown` names a user of the image; `--chmod` sets the mode; ADD
//! extracts a local tar (plain, gzip, bzip2 or xz, recognised by content) and fetches
//! URLs without extracting them.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt, fchown, lchown, symlink};
use std::path::{Path, PathBuf};

use crate::dockerfile::CopySpec;
use crate::layer::{Compression, compress::sniff, decompress};

/// What a COPY/ADD step copies, resolved before it runs.
#[derive(Debug, Default)]
pub struct Sources {
    /// Paths relative to `root` (the context, or the `--from` filesystem).
    pub paths: Vec<PathBuf>,
    /// Downloaded URLs (ADD): the URL and the temp file holding its body.
    pub fetched: Vec<(String, PathBuf)>,
}

/// How copied files are owned and moded.
#[derive(Debug, Clone, Copy)]
struct Attrs {
    uid: u32,
    gid: u32,
    chmod: Option<u32>,
    /// Keep each source file's own owner (extracted archives) instead of uid/gid.
    keep_owner: bool,
}

impl Attrs {
    fn owner(&self, src: Option<&fs::Metadata>) -> (u32, u32) {
        match src {
            Some(md) if self.keep_owner => (md.uid(), md.gid()),
            _ => (self.uid, self.gid),
        }
    }
}

/// Parses `--chmod` (octal, as docker accepts it).
pub fn parse_chmod(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("invalid --chmod={s}: want an octal mode such as 0755"))
}

/// The destination path inside the image: relative paths start at WORKDIR.
pub fn dest_path(dest: &str, workdir: &str) -> String {
    if dest.starts_with('/') {
        dest.to_string()
    } else {
        format!("{}/{dest}", workdir.trim_end_matches('/'))
    }
}

fn io_err(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> String {
    let p = path.display().to_string();
    let what = what.to_string();
    move |e| format!("{what} {p}: {e}")
}

/// The step's two views: the union (to look things up) and its upper (to write).
struct Dest<'a> {
    merged: &'a Path,
    upper: &'a Path,
    /// Sources with several links already copied, by (device, inode): the copy in the
    /// upper, so the other names become hard links again, as docker keeps them.
    links: std::cell::RefCell<std::collections::HashMap<(u64, u64), PathBuf>>,
}

/// What a path of the destination is, seen in the upper first, then the union.
enum Found {
    Missing,
    Dir,
    Symlink,
    Other,
}

impl Dest<'_> {
    fn lookup(&self, rel: &Path) -> Found {
        let md = fs::symlink_metadata(self.upper.join(rel))
            .or_else(|_| fs::symlink_metadata(self.merged.join(rel)));
        match md {
            Err(_) => Found::Missing,
            Ok(m) if m.is_dir() => Found::Dir,
            Ok(m) if m.file_type().is_symlink() => Found::Symlink,
            Ok(_) => Found::Other,
        }
    }

    /// `rel` (relative to `/`) with every symlink resolved inside the image.
    fn resolve(&self, rel: &Path) -> Result<PathBuf, String> {
        let host = runtime::paths::secure_join(self.merged, &Path::new("/").join(rel))
            .map_err(|e| e.to_string())?;
        Ok(host
            .strip_prefix(self.merged)
            .map(Path::to_path_buf)
            .unwrap_or_default())
    }

    /// Makes the (resolved) directory `rel` exist in the upper: lower directories on
    /// the way are copied up with their mode and owner, missing ones are created 0755
    /// and owned by the copy's owner.
    fn ensure_dir(&self, rel: &Path, attrs: Attrs) -> Result<(), String> {
        let mut cur = PathBuf::new();
        for comp in rel.components() {
            cur.push(comp);
            let up = self.upper.join(&cur);
            match fs::symlink_metadata(&up) {
                Ok(m) if m.is_dir() => continue,
                Ok(_) => return Err(format!("/{}: not a directory", cur.display())),
                Err(_) => {}
            }
            match fs::symlink_metadata(self.merged.join(&cur)) {
                Ok(m) if m.is_dir() => {
                    fs::create_dir(&up).map_err(io_err("creating", &up))?;
                    lchown(&up, Some(m.uid()), Some(m.gid())).map_err(io_err("chown", &up))?;
                    fs::set_permissions(&up, fs::Permissions::from_mode(m.mode() & 0o7777))
                        .map_err(io_err("chmod", &up))?;
                }
                Ok(_) => return Err(format!("/{}: not a directory", cur.display())),
                Err(_) => {
                    fs::create_dir(&up).map_err(io_err("creating", &up))?;
                    lchown(&up, Some(attrs.uid), Some(attrs.gid)).map_err(io_err("chown", &up))?;
                    fs::set_permissions(&up, fs::Permissions::from_mode(0o755))
                        .map_err(io_err("chmod", &up))?;
                }
            }
        }
        Ok(())
    }

    /// Makes room for a non-directory at `rel`: an upper file there is replaced; a
    /// directory (upper or lower) is an error.
    fn clear_for_file(&self, rel: &Path, fresh: bool) -> Result<(), String> {
        if fresh {
            return Ok(());
        }
        let up = self.upper.join(rel);
        match fs::symlink_metadata(&up) {
            Ok(m) if m.is_dir() => {
                return Err(format!("cannot replace the directory /{}", rel.display()));
            }
            Ok(_) => return fs::remove_file(&up).map_err(io_err("replacing", &up)),
            Err(_) => {}
        }
        if let Ok(m) = fs::symlink_metadata(self.merged.join(rel))
            && m.is_dir()
        {
            return Err(format!("cannot replace the directory /{}", rel.display()));
        }
        Ok(())
    }
}

/// Runs the copy: `merged` is the step's `/`, `upper` its future layer. `src_root` is
/// where `sources.paths` live; `visible` filters context-relative paths
/// (`.dockerignore`); `chown` is the resolved owner.
#[allow(clippy::too_many_arguments)]
pub fn copy(
    merged: &Path,
    upper: &Path,
    src_root: &Path,
    visible: &dyn Fn(&str) -> bool,
    sources: &Sources,
    spec: &CopySpec,
    is_add: bool,
    workdir: &str,
    chown: Option<(u32, u32)>,
) -> Result<(), String> {
    let chmod = spec.chmod.as_deref().map(parse_chmod).transpose()?;
    let (uid, gid) = chown.unwrap_or((0, 0));
    let attrs = Attrs {
        uid,
        gid,
        chmod,
        keep_owner: false,
    };
    let dest = dest_path(&spec.dest, workdir);
    let dir_syntax = spec.dest.ends_with('/')
        || spec.dest == "."
        || spec.dest.ends_with("/.")
        || spec.dest.is_empty();
    let count = sources.paths.len() + spec.inline.len() + sources.fetched.len();
    if count > 1 && !dir_syntax {
        return Err(format!(
            "When using {} with more than one source file, the destination must be a directory and end with a /",
            if is_add { "ADD" } else { "COPY" }
        ));
    }
    let d = Dest {
        merged,
        upper,
        links: Default::default(),
    };
    let rel_dest = d.resolve(Path::new(dest.trim_start_matches('/')))?;
    let into_dir = dir_syntax || matches!(d.lookup(&rel_dest), Found::Dir);
    // Where a file source goes: into the directory, or to the path itself.
    let file_target = |name: &std::ffi::OsStr| -> Result<PathBuf, String> {
        if into_dir {
            d.ensure_dir(&rel_dest, attrs)?;
            Ok(rel_dest.join(name))
        } else {
            if let Some(parent) = rel_dest.parent() {
                d.ensure_dir(parent, attrs)?;
            }
            Ok(rel_dest.clone())
        }
    };

    for rel in &sources.paths {
        let src = if rel.as_os_str().is_empty() {
            src_root.to_path_buf()
        } else {
            src_root.join(rel)
        };
        let mut md = fs::symlink_metadata(&src).map_err(io_err("reading", &src))?;
        let name = src
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        let mut src = src.clone();
        if md.file_type().is_symlink() {
            // A source named directly is followed (inside its root), as docker does;
            // symlinks met inside a copied directory are copied as symlinks.
            src = runtime::paths::secure_join(src_root, rel).map_err(|e| e.to_string())?;
            md = fs::metadata(&src).map_err(io_err("reading", &src))?;
        }
        if md.is_dir() {
            let fresh = matches!(d.lookup(&rel_dest), Found::Missing);
            d.ensure_dir(&rel_dest, attrs)?;
            let rel_s = rel.to_string_lossy().into_owned();
            copy_children(&d, &src, &rel_dest, &rel_s, visible, attrs, fresh)?;
        } else if is_add && md.is_file() && is_archive(&src)? {
            // Unpacked beside the upper first (the tar reader's own path checks apply
            // there), then merged into the destination like a directory source,
            // keeping the archive's owners and modes.
            let scratch = upper.parent().unwrap_or(upper);
            let unpacked = tempfile::Builder::new()
                .prefix("add-")
                .tempdir_in(scratch)
                .map_err(io_err("creating a directory in", scratch))?;
            extract(&src, unpacked.path())?;
            let fresh = matches!(d.lookup(&rel_dest), Found::Missing);
            d.ensure_dir(&rel_dest, attrs)?;
            let archive_attrs = Attrs {
                chmod: None,
                keep_owner: true,
                ..attrs
            };
            copy_children(
                &d,
                unpacked.path(),
                &rel_dest,
                "",
                &|_| true,
                archive_attrs,
                fresh,
            )?;
        } else {
            if name.is_empty() {
                return Err(format!("source {} has no file name", rel.display()));
            }
            let target = file_target(&name)?;
            d.clear_for_file(&target, false)?;
            copy_entry(&src, &upper.join(&target), &md, attrs)?;
        }
    }
    for inline in &spec.inline {
        let target = file_target(std::ffi::OsStr::new(&inline.name))?;
        d.clear_for_file(&target, false)?;
        let host = upper.join(&target);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&host)
            .map_err(io_err("creating", &host))?;
        f.write_all(inline.data.as_bytes())
            .map_err(io_err("writing", &host))?;
        drop(f);
        finish(&host, 0o644, attrs, None)?;
    }
    for (url, file) in &sources.fetched {
        let name = url_file_name(url);
        let target = file_target(std::ffi::OsStr::new(&name))?;
        d.clear_for_file(&target, false)?;
        write_file(file, &upper.join(&target), 0o600, attrs, None)?;
    }
    Ok(())
}

/// The file name ADD gives a download into a directory: the URL path's last segment.
pub fn url_file_name(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let path = path.split_once("://").map(|(_, p)| p).unwrap_or(path);
    let last = path
        .split_once('/')
        .map(|(_, p)| p)
        .unwrap_or("")
        .rsplit('/')
        .find(|s| !s.is_empty())
        .unwrap_or("");
    if last.is_empty() {
        "index.html".into()
    } else {
        last.into()
    }
}

/// Copies the entries of directory `src` into the (resolved, existing) destination
/// directory `dst` (relative to `/`). `fresh`: `dst` did not exist below this step, so
/// nothing under it needs looking up. Returns whether anything was copied.
fn copy_children(
    d: &Dest<'_>,
    src: &Path,
    dst: &Path,
    rel: &str,
    visible: &dyn Fn(&str) -> bool,
    attrs: Attrs,
    fresh: bool,
) -> Result<bool, String> {
    let mut entries: Vec<fs::DirEntry> = fs::read_dir(src)
        .map_err(io_err("reading", src))?
        .collect::<Result<_, _>>()
        .map_err(io_err("reading", src))?;
    entries.sort_by_key(|e| e.file_name());
    let mut copied = false;
    for e in entries {
        let name = e.file_name();
        let child_rel = if rel.is_empty() || rel == "." {
            name.to_string_lossy().into_owned()
        } else {
            format!("{rel}/{}", name.to_string_lossy())
        };
        let s = e.path();
        let md = fs::symlink_metadata(&s).map_err(io_err("reading", &s))?;
        let shown = visible(&child_rel);
        let mut target = dst.join(&name);
        if md.is_dir() {
            // An existing symlink to a directory is followed, as docker does.
            let found = if fresh {
                Found::Missing
            } else {
                d.lookup(&target)
            };
            let child_fresh = match found {
                Found::Missing => true,
                Found::Dir => false,
                Found::Symlink => {
                    target = d.resolve(&target)?;
                    match d.lookup(&target) {
                        Found::Missing => true,
                        Found::Dir => false,
                        _ => {
                            return Err(format!(
                                "cannot copy the directory {child_rel} over /{}",
                                target.display()
                            ));
                        }
                    }
                }
                Found::Other => {
                    return Err(format!(
                        "cannot copy the directory {child_rel} over the file /{}",
                        target.display()
                    ));
                }
            };
            let created = child_fresh;
            d.ensure_dir(&target, attrs)?;
            let host = d.upper.join(&target);
            // An excluded directory is still searched: a `!` exception may bring back
            // something below it. It is kept only if something was.
            let inner = copy_children(d, &s, &target, &child_rel, visible, attrs, child_fresh)?;
            if shown || inner || !created {
                finish(&host, md.mode() & 0o7777, attrs, Some(&md))?;
                copied = true;
            } else {
                fs::remove_dir(&host).map_err(io_err("removing", &host))?;
            }
        } else if shown {
            d.clear_for_file(&target, fresh)?;
            let host = d.upper.join(&target);
            let key = (md.dev(), md.ino());
            let first = if md.is_file() && md.nlink() > 1 {
                d.links.borrow().get(&key).cloned()
            } else {
                None
            };
            match first {
                Some(first) => fs::hard_link(&first, &host).map_err(io_err("linking", &host))?,
                None => {
                    copy_entry(&s, &host, &md, attrs)?;
                    if md.is_file() && md.nlink() > 1 {
                        d.links.borrow_mut().insert(key, host);
                    }
                }
            }
            copied = true;
        }
    }
    Ok(copied)
}

/// Copies one non-directory entry to `dst` (a path in the upper, cleared already).
fn copy_entry(src: &Path, dst: &Path, md: &fs::Metadata, attrs: Attrs) -> Result<(), String> {
    let ft = md.file_type();
    if ft.is_symlink() {
        let target = fs::read_link(src).map_err(io_err("reading", src))?;
        symlink(&target, dst).map_err(io_err("creating", dst))?;
        let (uid, gid) = attrs.owner(Some(md));
        lchown(dst, Some(uid), Some(gid)).map_err(io_err("chown", dst))?;
        return Ok(());
    }
    if !ft.is_file() {
        log::warn!("build: skipping special file {}", src.display());
        return Ok(());
    }
    let (uid, gid) = attrs.owner(Some(md));
    let attrs = Attrs {
        uid,
        gid,
        keep_owner: false,
        ..attrs
    };
    write_file(src, dst, md.mode() & 0o7777, attrs, md.modified().ok())
}

/// Copies a regular file, setting owner, mode and mtime through the open descriptor.
fn write_file(
    src: &Path,
    dst: &Path,
    mode: u32,
    attrs: Attrs,
    mtime: Option<std::time::SystemTime>,
) -> Result<(), String> {
    let mut input = fs::File::open(src).map_err(io_err("reading", src))?;
    let mut out = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dst)
        .map_err(io_err("creating", dst))?;
    std::io::copy(&mut input, &mut out).map_err(io_err("writing", dst))?;
    fchown(&out, Some(attrs.uid), Some(attrs.gid)).map_err(io_err("chown", dst))?;
    out.set_permissions(fs::Permissions::from_mode(attrs.chmod.unwrap_or(mode)))
        .map_err(io_err("chmod", dst))?;
    if let Some(t) = mtime {
        let _ = out.set_times(fs::FileTimes::new().set_modified(t));
    }
    Ok(())
}

/// Sets owner, mode (the `--chmod` one if given) and the source's mtime.
fn finish(path: &Path, mode: u32, attrs: Attrs, src: Option<&fs::Metadata>) -> Result<(), String> {
    let (uid, gid) = attrs.owner(src);
    lchown(path, Some(uid), Some(gid)).map_err(io_err("chown", path))?;
    let mode = attrs.chmod.unwrap_or(mode);
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io_err("chmod", path))?;
    if let Some(md) = src
        && let Ok(mtime) = md.modified()
        && let Ok(f) = fs::File::open(path)
    {
        let _ = f.set_times(fs::FileTimes::new().set_modified(mtime));
    }
    Ok(())
}

/// Whether a local ADD source is a tar archive (plain, gzip, bzip2 or xz), judged by
/// its content, not its name.
pub fn is_archive(path: &Path) -> Result<bool, String> {
    let mut head = Vec::with_capacity(512);
    fs::File::open(path)
        .and_then(|f| f.take(512).read_to_end(&mut head))
        .map_err(io_err("reading", path))?;
    let kind = sniff(&head);
    if !matches!(
        kind,
        Compression::None | Compression::Gzip | Compression::Bzip2 | Compression::Xz
    ) {
        return Ok(false);
    }
    let file = fs::File::open(path).map_err(io_err("reading", path))?;
    let Ok((_, mut plain)) = decompress(file) else {
        return Ok(false);
    };
    let mut block = Vec::with_capacity(512);
    if (&mut plain).take(512).read_to_end(&mut block).is_err() || block.len() < 512 {
        return Ok(false);
    }
    Ok(&block[257..262] == b"ustar")
}

/// Extracts a local archive into `dir`, keeping the archive's owners and modes.
fn extract(path: &Path, dir: &Path) -> Result<(), String> {
    let file = fs::File::open(path).map_err(io_err("reading", path))?;
    let (_, plain) = decompress(file).map_err(io_err("reading", path))?;
    let mut ar = tar::Archive::new(plain);
    ar.set_preserve_permissions(true);
    ar.set_preserve_ownerships(true);
    ar.set_overwrite(true);
    ar.set_unpack_xattrs(false);
    ar.unpack(dir)
        .map_err(|e| format!("extracting {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_names_and_dest_paths() {
        assert_eq!(url_file_name("http://h:1/a/b.tar.gz?x=1"), "b.tar.gz");
        assert_eq!(url_file_name("http://h/"), "index.html");
        assert_eq!(dest_path("x/", "/app"), "/app/x/");
        assert_eq!(dest_path("/y", "/app"), "/y");
        assert_eq!(parse_chmod("755"), Ok(0o755));
        assert!(parse_chmod("9").is_err());
    }
}
