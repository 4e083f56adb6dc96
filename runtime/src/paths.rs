//! Resolving paths inside a rootfs as if it were `/`, so that a symlink in an image
//! (say `/etc/passwd -> /host/etc/passwd` or `../../..`) can never point the runtime
//! at a file of the host.

use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// How many symlinks one resolution may follow before giving up (Linux uses 40).
const MAX_SYMLINKS: usize = 40;

/// Joins `unsafe_path` onto `root`, resolving every symlink on the way relative to
/// `root` and clamping `..` at it. Components that do not exist are appended as they
/// are, so the result can be used to create a mount point.
pub fn secure_join(root: &Path, unsafe_path: &Path) -> Result<PathBuf> {
    let mut pending: Vec<PathBuf> = unsafe_path
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(PathBuf::from(n)),
            Component::ParentDir => Some(PathBuf::from("..")),
            _ => None,
        })
        .collect();
    let mut resolved = PathBuf::new();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part.as_os_str() == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&part);
        let full = root.join(&candidate);
        match std::fs::symlink_metadata(&full) {
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(Error::Setup(format!(
                        "too many levels of symbolic links in {}",
                        unsafe_path.display()
                    )));
                }
                let target = std::fs::read_link(&full)
                    .map_err(Error::io(format!("readlink {}", full.display())))?;
                if target.is_absolute() {
                    resolved = PathBuf::new();
                }
                for c in target.components().rev() {
                    match c {
                        Component::Normal(n) => pending.push(PathBuf::from(n)),
                        Component::ParentDir => pending.push(PathBuf::from("..")),
                        _ => {}
                    }
                }
            }
            _ => resolved = candidate,
        }
    }
    Ok(root.join(resolved))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_stay_inside_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("a/abs")).unwrap();
        std::os::unix::fs::symlink("../../../../..", root.join("a/b/up")).unwrap();
        assert_eq!(
            secure_join(root, Path::new("/a/abs/passwd")).unwrap(),
            root.join("etc/passwd")
        );
        assert_eq!(
            secure_join(root, Path::new("a/b/up/x")).unwrap(),
            root.join("x")
        );
        assert_eq!(
            secure_join(root, Path::new("/../../a/./b")).unwrap(),
            root.join("a/b")
        );
    }

    #[test]
    fn symlink_loop_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("loop", dir.path().join("loop")).unwrap();
        assert!(secure_join(dir.path(), Path::new("/loop/x")).is_err());
    }
}
