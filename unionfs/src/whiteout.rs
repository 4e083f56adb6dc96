//! The on-disk forms of whiteouts and opaque directories, read and written.
//!
//! A union needs to record "this name was deleted" and "nothing below this directory
//! shows through" in a plain directory tree. Three conventions exist and every one of
//! them is read here: the kernel's (a 0/0 character device, `trusted.overlay.opaque=y`),
//! the kernel's xattr-only whiteouts (a zero-size file with `overlay.whiteout` inside a
//! directory marked `overlay.opaque=x`), and the OCI image spec's (`.wh.NAME`,
//! `.wh..wh..opq`). What is written is the kernel's form, so an upper directory made here
//! mounts under kernel overlayfs with the same view; where device nodes or trusted xattrs
//! are not allowed, the OCI names and `user.overlay.opaque` are written instead.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{Mode, SFlag};

use crate::sys::xattr::{self, Target};
use crate::sys::{self, SysResult};

/// Prefix of an OCI whiteout file: `.wh.NAME` hides `NAME` in the layers below.
pub const OCI_WHITEOUT_PREFIX: &str = ".wh.";
/// Name of the OCI opaque marker: its presence makes the directory opaque.
pub const OCI_OPAQUE_NAME: &str = ".wh..wh..opq";

/// Which convention to use when *writing* whiteouts and opaque markers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WhiteoutFormat {
    /// What kernel overlayfs writes: char device 0/0 and `trusted.overlay.opaque=y`.
    #[default]
    Kernel,
    /// For unprivileged use: `.wh.NAME` files and `user.overlay.opaque=y`.
    Oci,
}

impl WhiteoutFormat {
    /// The xattr namespace this format writes its markers in.
    pub fn xattr_prefix(self) -> &'static str {
        match self {
            WhiteoutFormat::Kernel => "trusted.overlay.",
            WhiteoutFormat::Oci => "user.overlay.",
        }
    }
}

impl std::str::FromStr for WhiteoutFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "kernel" => Ok(WhiteoutFormat::Kernel),
            "oci" => Ok(WhiteoutFormat::Oci),
            other => Err(format!("whiteout={other}: expected kernel or oci")),
        }
    }
}

/// How a layer directory limits what shows through from below.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opacity {
    /// Lower layers' entries merge in.
    Transparent,
    /// Nothing from lower layers shows through.
    Opaque,
    /// Transparent, but may hold xattr-only whiteouts (`overlay.opaque=x`).
    XWhiteouts,
}

/// What one directory entry of a layer means to the union.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryRole {
    /// An ordinary entry, visible under its own name.
    Plain,
    /// A whiteout hiding this name in lower layers.
    Whiteout(OsString),
    /// The OCI opaque marker: the directory is opaque.
    OpaqueMarker,
}

/// Classifies an entry from its name and `d_type`, asking the disk only when the name and
/// type can not settle it (a character device's numbers, a zero-size file's xattr).
pub fn classify_entry(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    d_type: Option<u32>,
    opacity: Opacity,
) -> SysResult<EntryRole> {
    let bytes = name.as_bytes();
    if bytes == OCI_OPAQUE_NAME.as_bytes() {
        return Ok(EntryRole::OpaqueMarker);
    }
    if let Some(target) = bytes.strip_prefix(OCI_WHITEOUT_PREFIX.as_bytes()) {
        return Ok(EntryRole::Whiteout(
            OsStr::from_bytes(target).to_os_string(),
        ));
    }
    let kind = match d_type {
        Some(t) => t,
        None => sys::file_type(sys::stat_child(dir, name)?.st_mode),
    };
    if kind == libc::S_IFCHR {
        let st = sys::stat_child(dir, name)?;
        if st.st_rdev == 0 {
            return Ok(EntryRole::Whiteout(name.to_os_string()));
        }
    } else if kind == libc::S_IFREG && opacity == Opacity::XWhiteouts {
        let st = sys::stat_child(dir, name)?;
        if st.st_size == 0 && has_marker(Target::Child(dir, name), "whiteout")? {
            return Ok(EntryRole::Whiteout(name.to_os_string()));
        }
    }
    Ok(EntryRole::Plain)
}

/// Reads whether a layer directory (an fd opened on it, `O_PATH` is fine) is opaque.
pub fn opacity(dir: BorrowedFd<'_>) -> SysResult<Opacity> {
    for prefix in ["trusted.overlay.", "user.overlay."] {
        let name = format!("{prefix}opaque");
        // An unreadable marker counts as no marker: the layer still serves.
        if let Some(v) = xattr::get(Target::Child(dir, OsStr::new("")), &name).unwrap_or(None) {
            match v.as_slice() {
                b"y" => return Ok(Opacity::Opaque),
                b"x" => return Ok(Opacity::XWhiteouts),
                _ => {}
            }
        }
    }
    Ok(Opacity::Transparent)
}

fn has_marker(target: Target<'_>, what: &str) -> SysResult<bool> {
    for prefix in ["trusted.overlay.", "user.overlay."] {
        if xattr::get(target, &format!("{prefix}{what}"))?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Writes a whiteout for `name` in `dir`, in `format`.
pub fn create_whiteout_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    format: WhiteoutFormat,
) -> SysResult<()> {
    match format {
        WhiteoutFormat::Kernel => {
            nix::sys::stat::mknodat(dir, name, SFlag::S_IFCHR, Mode::empty(), 0)
        }
        WhiteoutFormat::Oci => {
            let mut wh = OsString::from(OCI_WHITEOUT_PREFIX);
            wh.push(name);
            sys::open_child(
                dir,
                &wh,
                OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_TRUNC,
                0o000,
            )
            .map(drop)
        }
    }
}

/// Marks the directory open at `dir` (a real descriptor, not `O_PATH`) opaque.
pub fn mark_opaque_fd(dir: BorrowedFd<'_>, format: WhiteoutFormat) -> SysResult<()> {
    let name = format!("{}opaque", format.xattr_prefix());
    xattr::set(Target::Fd(dir), OsStr::new(&name), b"y", 0)
}

/// The name under which a whiteout for `name` is stored in `format`.
pub fn whiteout_name(name: &OsStr, format: WhiteoutFormat) -> OsString {
    match format {
        WhiteoutFormat::Kernel => name.to_os_string(),
        WhiteoutFormat::Oci => {
            let mut wh = OsString::from(OCI_WHITEOUT_PREFIX);
            wh.push(name);
            wh
        }
    }
}

fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    Ok(nix::fcntl::open(
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?)
}

/// Path form of [`create_whiteout_at`], for tools that build layers (the image manager).
pub fn create_whiteout(dir: &Path, name: &OsStr, format: WhiteoutFormat) -> io::Result<()> {
    let fd = open_dir(dir)?;
    Ok(create_whiteout_at(fd.as_fd(), name, format)?)
}

/// Path form of [`mark_opaque_fd`].
pub fn mark_opaque(dir: &Path, format: WhiteoutFormat) -> io::Result<()> {
    let fd = open_dir(dir)?;
    Ok(mark_opaque_fd(fd.as_fd(), format)?)
}

/// True when `name` in `dir` is a whiteout in any of the on-disk forms.
pub fn is_whiteout(dir: &Path, name: &OsStr) -> io::Result<bool> {
    let fd = open_dir(dir)?;
    let opacity = opacity(fd.as_fd())?;
    Ok(matches!(
        classify_entry(fd.as_fd(), name, None, opacity)?,
        EntryRole::Whiteout(_)
    ))
}

/// True when `dir` is opaque in any of the on-disk forms (xattr or OCI marker file).
pub fn is_opaque(dir: &Path) -> io::Result<bool> {
    let fd = open_dir(dir)?;
    if opacity(fd.as_fd())? == Opacity::Opaque {
        return Ok(true);
    }
    match sys::stat_child(fd.as_fd(), OsStr::new(OCI_OPAQUE_NAME)) {
        Ok(_) => Ok(true),
        Err(Errno::ENOENT) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oci_names_are_classified_without_touching_disk() {
        let dir = tempfile::tempdir().unwrap();
        let fd = open_dir(dir.path()).unwrap();
        let role = classify_entry(
            fd.as_fd(),
            OsStr::new(".wh.foo"),
            Some(libc::S_IFREG),
            Opacity::Transparent,
        )
        .unwrap();
        assert_eq!(role, EntryRole::Whiteout("foo".into()));
        let role = classify_entry(
            fd.as_fd(),
            OsStr::new(OCI_OPAQUE_NAME),
            Some(libc::S_IFREG),
            Opacity::Transparent,
        )
        .unwrap();
        assert_eq!(role, EntryRole::OpaqueMarker);
    }

    #[test]
    fn written_forms_read_back() {
        let dir = tempfile::tempdir().unwrap();
        create_whiteout(dir.path(), OsStr::new("gone"), WhiteoutFormat::Oci).unwrap();
        assert!(is_whiteout(dir.path(), OsStr::new(".wh.gone")).unwrap());
        if nix::unistd::geteuid().is_root() {
            create_whiteout(dir.path(), OsStr::new("k"), WhiteoutFormat::Kernel).unwrap();
            assert!(is_whiteout(dir.path(), OsStr::new("k")).unwrap());
            mark_opaque(dir.path(), WhiteoutFormat::Kernel).unwrap();
            assert!(is_opaque(dir.path()).unwrap());
        }
        std::fs::write(dir.path().join("plain"), b"x").unwrap();
        assert!(!is_whiteout(dir.path(), OsStr::new("plain")).unwrap());
    }
}
