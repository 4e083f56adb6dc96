//! Packing a directory (a rootfs, or a container's upper directory) into a layer tar.
//!
//! On-disk whiteouts (char device 0/0, or any form `unionfs::whiteout` recognizes) become
//! OCI `.wh.NAME` entries and opaque directories get a `.wh..wh..opq` entry, so the tar
//! is a portable OCI layer. Hardlinks are kept as tar links; xattrs go into PAX records
//! (overlay's own xattrs stay out). Entries are sorted so the same tree gives the same
//! DiffID.

use std::collections::HashMap;
use std::ffi::{CString, OsStr};
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};
use unionfs::whiteout;

use crate::error::{Error, IoContext, Result};

/// Writes the tree under `dir` as an uncompressed layer tar to `out` (finished with the
/// end-of-archive blocks) and returns `out`.
pub fn pack_dir<W: Write>(dir: &Path, out: W) -> Result<W> {
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    walk(&mut b, dir, Path::new(""), &mut links)?;
    b.into_inner().at(dir)
}

fn walk<W: Write>(
    b: &mut tar::Builder<W>,
    root: &Path,
    rel: &Path,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> Result<()> {
    let abs = root.join(rel);
    let mut names: Vec<_> = fs::read_dir(&abs)
        .at(&abs)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()
        .at(&abs)?;
    names.sort();
    if !rel.as_os_str().is_empty() && whiteout::is_opaque(&abs).at(&abs)? {
        let marker = rel.join(whiteout::OCI_OPAQUE_NAME);
        if !names.iter().any(|n| n == whiteout::OCI_OPAQUE_NAME) {
            append_empty(b, &marker).at(&abs)?;
        }
    }
    for name in names {
        let path = abs.join(&name);
        let rel_path = rel.join(&name);
        let md = fs::symlink_metadata(&path).at(&path)?;
        let ft = md.file_type();
        let maybe_whiteout =
            (ft.is_char_device() && md.rdev() == 0) || (ft.is_file() && md.len() == 0);
        if maybe_whiteout
            && !name
                .as_bytes()
                .starts_with(whiteout::OCI_WHITEOUT_PREFIX.as_bytes())
            && whiteout::is_whiteout(&abs, &name).at(&path)?
        {
            let mut wh = std::ffi::OsString::from(whiteout::OCI_WHITEOUT_PREFIX);
            wh.push(&name);
            append_empty(b, &rel.join(wh)).at(&path)?;
            continue;
        }
        let mut h = Header::new_gnu();
        h.set_mode(md.mode() & 0o7777);
        h.set_uid(md.uid() as u64);
        h.set_gid(md.gid() as u64);
        h.set_mtime(md.mtime().max(0) as u64);
        h.set_size(0);
        write_xattrs(b, &path, &rel_path).at(&path)?;
        if ft.is_dir() {
            h.set_entry_type(EntryType::Directory);
            b.append_data(&mut h, &rel_path, io::empty()).at(&path)?;
            walk(b, root, &rel_path, links)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&path).at(&path)?;
            h.set_entry_type(EntryType::Symlink);
            b.append_link(&mut h, &rel_path, &target).at(&path)?;
        } else if ft.is_file() {
            let key = (md.dev(), md.ino());
            if md.nlink() > 1 {
                if let Some(first) = links.get(&key) {
                    h.set_entry_type(EntryType::Link);
                    b.append_link(&mut h, &rel_path, first).at(&path)?;
                    continue;
                }
                links.insert(key, rel_path.clone());
            }
            h.set_entry_type(EntryType::Regular);
            h.set_size(md.len());
            let f = fs::File::open(&path).at(&path)?;
            b.append_data(&mut h, &rel_path, f).at(&path)?;
        } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
            h.set_entry_type(if ft.is_char_device() {
                EntryType::Char
            } else if ft.is_block_device() {
                EntryType::Block
            } else {
                EntryType::Fifo
            });
            let rdev = md.rdev();
            h.set_device_major(libc::major(rdev)).at(&path)?;
            h.set_device_minor(libc::minor(rdev)).at(&path)?;
            b.append_data(&mut h, &rel_path, io::empty()).at(&path)?;
        } else {
            return Err(Error::Other(format!(
                "{}: sockets can not be stored in a layer",
                path.display()
            )));
        }
    }
    Ok(())
}

fn append_empty<W: Write>(b: &mut tar::Builder<W>, rel: &Path) -> io::Result<()> {
    let mut h = Header::new_gnu();
    h.set_entry_type(EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(0);
    h.set_mtime(0);
    b.append_data(&mut h, rel, io::empty())
}

fn list_xattrs(path: &Path) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut buf = vec![0u8; 4096];
    // SAFETY: valid C string and buffer.
    let n = unsafe { libc::llistxattr(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENOTSUP) => Ok(Vec::new()),
            _ => Err(e),
        };
    }
    buf.truncate(n as usize);
    let mut out = Vec::new();
    for name in buf.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        if name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.") {
            continue;
        }
        let cname = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let mut val = vec![0u8; 65536];
        // SAFETY: valid C strings and buffer.
        let m = unsafe {
            libc::lgetxattr(
                c.as_ptr(),
                cname.as_ptr(),
                val.as_mut_ptr().cast(),
                val.len(),
            )
        };
        if m < 0 {
            continue;
        }
        val.truncate(m as usize);
        out.push((name.to_vec(), val));
    }
    Ok(out)
}

/// Emits a PAX extended header carrying the entry's xattrs, if it has any.
fn write_xattrs<W: Write>(b: &mut tar::Builder<W>, path: &Path, rel: &Path) -> io::Result<()> {
    let xattrs = list_xattrs(path)?;
    if xattrs.is_empty() {
        return Ok(());
    }
    let mut data = Vec::new();
    for (k, v) in xattrs {
        let mut rec = b"SCHILY.xattr.".to_vec();
        rec.extend_from_slice(&k);
        rec.push(b'=');
        rec.extend_from_slice(&v);
        rec.push(b'\n');
        // "LEN " prefix counts its own digits.
        let base = rec.len() + 1;
        let mut len = base + base.to_string().len();
        if len.to_string().len() != base.to_string().len() {
            len += 1;
        }
        data.extend_from_slice(format!("{len} ").as_bytes());
        data.extend_from_slice(&rec);
    }
    let mut h = Header::new_ustar();
    h.set_entry_type(EntryType::XHeader);
    let name: Vec<u8> = OsStr::new("PaxHeaders.0/")
        .as_bytes()
        .iter()
        .chain(rel.as_os_str().as_bytes().iter())
        .take(99)
        .copied()
        .collect();
    h.set_path(OsStr::from_bytes(&name))?;
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_cksum();
    b.append(&h, &data[..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn on_disk_whiteouts_become_oci_entries_and_round_trip() {
        let root = nix::unistd::geteuid().is_root();
        let format = if root {
            whiteout::WhiteoutFormat::Kernel
        } else {
            whiteout::WhiteoutFormat::Oci
        };
        let src = tempfile::tempdir().unwrap();
        fs::create_dir(src.path().join("d")).unwrap();
        fs::write(src.path().join("d/keep"), "k").unwrap();
        fs::write(src.path().join("f"), "f").unwrap();
        fs::hard_link(src.path().join("f"), src.path().join("f2")).unwrap();
        whiteout::create_whiteout(src.path(), OsStr::new("gone"), format).unwrap();
        whiteout::mark_opaque(&src.path().join("d"), format).unwrap();

        let tar = pack_dir(src.path(), Vec::new()).unwrap();
        let mut names = Vec::new();
        let mut ar = tar::Archive::new(&tar[..]);
        for e in ar.entries().unwrap() {
            let e = e.unwrap();
            names.push((
                e.path().unwrap().to_string_lossy().into_owned(),
                e.header().entry_type(),
            ));
        }
        let has = |n: &str| names.iter().any(|(x, _)| x.trim_end_matches('/') == n);
        assert!(has(".wh.gone"), "{names:?}");
        assert!(has("d/.wh..wh..opq"), "{names:?}");
        assert!(has("d/keep") && has("f"), "{names:?}");
        assert!(!has("gone"), "{names:?}");
        assert!(
            names
                .iter()
                .any(|(n, t)| n == "f2" && *t == EntryType::Link),
            "{names:?}"
        );

        // Extracting it again gives the on-disk forms back.
        let dst = tempfile::tempdir().unwrap();
        crate::layer::extract_layer(
            &tar[..],
            dst.path(),
            &crate::layer::ExtractOptions::for_current_user(),
        )
        .unwrap();
        assert!(whiteout::is_whiteout(dst.path(), OsStr::new("gone")).unwrap());
        assert!(whiteout::is_opaque(&dst.path().join("d")).unwrap());
        // Same tree, same tar: packing is deterministic.
        assert_eq!(pack_dir(src.path(), Vec::new()).unwrap(), tar);
    }
}
