//! COPY and ADD: files from the build context (or another stage or image with
//! `--from`, or heredocs, or URLs for ADD) written into the step's union mount, so the
//! destination's existing directories and symlinks are resolved against the layers
//! below exactly as the image sees them. What the step changed ends up in the upper
//! directory, which becomes the layer.
//!
//! Docker's rules: a destination ending in `/` (or several sources) is a directory; a
//! directory source copies its contents; files keep their mode and mtime and get
//! uid/gid 0 unless `--chown` names a user of the image; `--chmod` sets the mode; ADD
//! extracts a local tar (plain, gzip, bzip2 or xz, recognised by content) and fetches
//! URLs without extracting them.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt, lchown, symlink};
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

/// Runs the copy into `merged` (the step's `/`). `src_root` is where `sources.paths`
/// live; `visible` filters context-relative paths (`.dockerignore`); `chown` is the
/// resolved owner.
#[allow(clippy::too_many_arguments)]
pub fn copy(
    merged: &Path,
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
    let attrs = Attrs { uid, gid, chmod };
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
    let host = runtime::paths::secure_join(merged, Path::new(&dest)).map_err(|e| e.to_string())?;
    let into_dir = dir_syntax || host.is_dir();

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
            make_dirs(&host, attrs)?;
            let rel_s = rel.to_string_lossy().into_owned();
            copy_children(&src, &host, &rel_s, visible, attrs)?;
        } else if is_add && md.is_file() && is_archive(&src)? {
            make_dirs(&host, attrs)?;
            extract(&src, &host)?;
        } else {
            if name.is_empty() {
                return Err(format!("source {} has no file name", rel.display()));
            }
            let target = if into_dir {
                host.join(&name)
            } else {
                host.clone()
            };
            if let Some(parent) = target.parent() {
                make_dirs(parent, attrs)?;
            }
            copy_entry(&src, &target, &md, attrs)?;
        }
    }
    for inline in &spec.inline {
        let target = if into_dir {
            host.join(&inline.name)
        } else {
            host.clone()
        };
        if let Some(parent) = target.parent() {
            make_dirs(parent, attrs)?;
        }
        fs::write(&target, inline.data.as_bytes()).map_err(io_err("writing", &target))?;
        finish(&target, 0o644, attrs, None)?;
    }
    for (url, file) in &sources.fetched {
        let target = if into_dir {
            host.join(url_file_name(url))
        } else {
            host.clone()
        };
        if let Some(parent) = target.parent() {
            make_dirs(parent, attrs)?;
        }
        fs::copy(file, &target).map_err(io_err("writing", &target))?;
        finish(&target, 0o600, attrs, None)?;
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

/// Creates `dir` and missing parents (mode 0755, owned by the copy's owner).
fn make_dirs(dir: &Path, attrs: Attrs) -> Result<(), String> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        make_dirs(parent, attrs)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => return Ok(()),
        Err(e) => return Err(format!("creating {}: {e}", dir.display())),
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).map_err(io_err("chmod", dir))?;
    lchown(dir, Some(attrs.uid), Some(attrs.gid)).map_err(io_err("chown", dir))
}

/// Copies the entries of directory `src` into `dst` (which exists).
fn copy_children(
    src: &Path,
    dst: &Path,
    rel: &str,
    visible: &dyn Fn(&str) -> bool,
    attrs: Attrs,
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
        let d = dst.join(&name);
        let md = fs::symlink_metadata(&s).map_err(io_err("reading", &s))?;
        let shown = visible(&child_rel);
        if md.is_dir() {
            // An excluded directory is still searched: a `!` exception may bring back
            // something below it. It is kept only if something was.
            let existed = d.is_dir();
            if !existed {
                fs::create_dir(&d).map_err(io_err("creating", &d))?;
            }
            let inner = copy_children(&s, &d, &child_rel, visible, attrs)?;
            if shown || inner || existed {
                finish(&d, md.mode() & 0o7777, attrs, Some(&md))?;
                copied = true;
            } else {
                fs::remove_dir(&d).map_err(io_err("removing", &d))?;
            }
        } else if shown {
            copy_entry(&s, &d, &md, attrs)?;
            copied = true;
        }
    }
    Ok(copied)
}

/// Copies one non-directory entry (or a directory, recursively, unfiltered).
fn copy_entry(src: &Path, dst: &Path, md: &fs::Metadata, attrs: Attrs) -> Result<(), String> {
    let ft = md.file_type();
    if ft.is_dir() {
        if !dst.is_dir() {
            fs::create_dir(dst).map_err(io_err("creating", dst))?;
        }
        copy_children(src, dst, "", &|_| true, attrs)?;
        return finish(dst, md.mode() & 0o7777, attrs, Some(md));
    }
    if let Ok(old) = fs::symlink_metadata(dst) {
        if old.is_dir() {
            return Err(format!(
                "cannot copy {} over the directory {}",
                src.display(),
                dst.display()
            ));
        }
        fs::remove_file(dst).map_err(io_err("replacing", dst))?;
    }
    if ft.is_symlink() {
        let target = fs::read_link(src).map_err(io_err("reading", src))?;
        symlink(&target, dst).map_err(io_err("creating", dst))?;
        lchown(dst, Some(attrs.uid), Some(attrs.gid)).map_err(io_err("chown", dst))?;
        return Ok(());
    }
    if !ft.is_file() {
        log::warn!("build: skipping special file {}", src.display());
        return Ok(());
    }
    fs::copy(src, dst).map_err(io_err("copying to", dst))?;
    finish(dst, md.mode() & 0o7777, attrs, Some(md))
}

/// Sets owner, mode (the `--chmod` one if given) and the source's mtime.
fn finish(path: &Path, mode: u32, attrs: Attrs, src: Option<&fs::Metadata>) -> Result<(), String> {
    lchown(path, Some(attrs.uid), Some(attrs.gid)).map_err(io_err("chown", path))?;
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
