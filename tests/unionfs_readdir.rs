//! readdir: merged and deduplicated across layers, whiteouts and opaque dirs honoured,
//! stable offsets (telldir/seekdir), d_type and d_ino agreeing with lstat (what
//! readdirplus must deliver), and changes visible to the next opendir.

use std::collections::BTreeSet;
use std::ffi::{CStr, CString};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use integration_tests::mount::{FuseMount, LayerStack, Twin, layers};

/// Three layers sharing a big directory: overlapping names, whiteouts, an opaque subdir.
fn big_dir(s: &LayerStack) {
    for (i, l) in s.lowers.iter().enumerate() {
        let d = l.join("big");
        fs::create_dir_all(&d).expect("dir");
        for n in 0..400 {
            // Layer i holds names n where n % (i + 2) == 0, plus its own names.
            if n % (i + 2) == 0 {
                fs::write(d.join(format!("shared-{n:04}")), format!("layer {i}\n")).expect("file");
            }
        }
        for n in 0..100 {
            fs::write(d.join(format!("only{i}-{n:03}")), b"x").expect("file");
        }
    }
    // The top layer whites out some names of the layers below and makes a dir opaque.
    let top = s.lower(0).join("big");
    for n in [3, 9, 15, 21] {
        layers::whiteout_chardev(&top.join(format!("shared-{n:04}"))).expect("whiteout");
    }
    layers::whiteout_chardev(&top.join("only1-000")).expect("whiteout");
    for l in &s.lowers {
        fs::create_dir_all(l.join("big/opaque")).expect("dir");
    }
    fs::write(s.lower(2).join("big/opaque/hidden"), b"h").expect("file");
    fs::write(s.lower(0).join("big/opaque/seen"), b"s").expect("file");
    layers::opaque_trusted(&s.lower(0).join("big/opaque")).expect("opaque");
    std::os::unix::fs::symlink("shared-0000", s.lower(1).join("big/a-symlink")).expect("symlink");
    layers::mknod(&s.lower(2).join("big/a-fifo"), libc::S_IFIFO | 0o644, 0).expect("fifo");
}

/// Raw readdir(3) order, without "." and "..".
fn raw_names(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .expect("readdir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn merged_and_deduplicated_like_the_kernel() {
    merged_and_deduplicated_like_the_kernel_on("");
}

#[test]
fn merged_and_deduplicated_like_the_kernel_with_readdirplus_always() {
    merged_and_deduplicated_like_the_kernel_on("readdirplus=always");
}

fn merged_and_deduplicated_like_the_kernel_on(opts: &str) {
    let mut t = Twin::new(3, "", opts, big_dir);
    for sub in ["big", "big/opaque"] {
        let (k, d) = t.both(|r| raw_names(&r.join(sub)));
        let dset: BTreeSet<&String> = d.iter().collect();
        assert_eq!(dset.len(), d.len(), "{sub}: duplicate names in readdir");
        let kset: BTreeSet<&String> = k.iter().collect();
        assert_eq!(
            kset, dset,
            "{sub}: merged listing differs from the kernel's"
        );
    }
    assert!(!t.d().join("big/shared-0003").exists());
    t.both(|r| {
        fs::remove_file(r.join("big/shared-0000")).expect("unlink");
        fs::write(r.join("big/zz-new"), b"n").expect("create");
        fs::rename(r.join("big/only2-005"), r.join("big/renamed")).expect("rename");
    });
    let (k, d) = t.both(|r| {
        raw_names(&r.join("big"))
            .into_iter()
            .collect::<BTreeSet<_>>()
    });
    assert_eq!(k, d, "after changes, a new opendir sees them");
    t.remount();
    t.assert_same("after remount");
}

/// Reads a directory with readdir(3), recording telldir() before each entry, then seeks
/// back to a sample of positions and checks the same entry comes back.
fn telldir_seekdir(dir: &Path) -> Result<usize, String> {
    let c = CString::new(dir.as_os_str().as_bytes()).expect("no NUL");
    // SAFETY: opendir/readdir/telldir/seekdir/closedir on one DIR* used only here.
    unsafe {
        let d = libc::opendir(c.as_ptr());
        if d.is_null() {
            return Err(format!("opendir: {}", std::io::Error::last_os_error()));
        }
        let mut seen: Vec<(libc::c_long, String)> = Vec::new();
        loop {
            let pos = libc::telldir(d);
            let e = libc::readdir(d);
            if e.is_null() {
                break;
            }
            let name = CStr::from_ptr((*e).d_name.as_ptr())
                .to_string_lossy()
                .into_owned();
            seen.push((pos, name));
        }
        let mut errors = Vec::new();
        let sample: Vec<usize> = (0..seen.len())
            .step_by(37)
            .chain([seen.len().saturating_sub(1)])
            .rev()
            .collect();
        for i in sample {
            let (pos, ref want) = seen[i];
            libc::seekdir(d, pos);
            let e = libc::readdir(d);
            let got = if e.is_null() {
                "<end>".to_string()
            } else {
                CStr::from_ptr((*e).d_name.as_ptr())
                    .to_string_lossy()
                    .into_owned()
            };
            if &got != want {
                errors.push(format!(
                    "seekdir({pos}) gave {got}, telldir promised {want}"
                ));
            }
        }
        libc::rewinddir(d);
        let mut again = 0;
        while !libc::readdir(d).is_null() {
            again += 1;
        }
        libc::closedir(d);
        if again != seen.len() {
            errors.push(format!(
                "rewinddir then readdir gave {again} entries, first pass {}",
                seen.len()
            ));
        }
        if errors.is_empty() {
            Ok(seen.len())
        } else {
            Err(errors.join("\n"))
        }
    }
}

#[test]
fn telldir_and_seekdir_offsets_are_stable() {
    let s = LayerStack::new(3);
    big_dir(&s);
    let _m = FuseMount::mount(&s, "");
    let n = telldir_seekdir(&s.m("big")).unwrap_or_else(|e| panic!("{e}"));
    assert!(n > 500, "only {n} entries read");
    // Also in a directory that got upper entries after the mount.
    for i in 0..50 {
        fs::write(s.m(&format!("big/upper-{i:02}")), b"u").expect("create");
    }
    telldir_seekdir(&s.m("big")).unwrap_or_else(|e| panic!("after creates: {e}"));
}

#[test]
fn d_type_and_d_ino_agree_with_lstat() {
    d_type_and_d_ino_agree_with_lstat_on("");
}

/// With every directory read a READDIRPLUS, each lstat below is answered from the
/// attributes the listing carried, not from a LOOKUP.
#[test]
fn d_type_and_d_ino_agree_with_lstat_with_readdirplus_always() {
    d_type_and_d_ino_agree_with_lstat_on("readdirplus=always");
}

fn d_type_and_d_ino_agree_with_lstat_on(opts: &str) {
    let s = LayerStack::new(3);
    big_dir(&s);
    let _m = FuseMount::mount(&s, opts);
    fs::write(s.m("big/upper-file"), b"u").expect("create");
    fs::create_dir(s.m("big/upper-dir")).expect("mkdir");
    let mut d = nix::dir::Dir::open(
        &s.m("big"),
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY,
        nix::sys::stat::Mode::empty(),
    )
    .expect("opendir");
    let mut n = 0;
    for e in d.iter() {
        let e = e.expect("readdir");
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "." || name == ".." {
            continue;
        }
        let md = fs::symlink_metadata(s.m("big").join(&name)).expect("lstat");
        let ft = md.file_type();
        let want = if ft.is_dir() {
            nix::dir::Type::Directory
        } else if ft.is_symlink() {
            nix::dir::Type::Symlink
        } else if ft.is_fifo() {
            nix::dir::Type::Fifo
        } else {
            nix::dir::Type::File
        };
        assert_eq!(e.file_type(), Some(want), "{name}: d_type");
        assert_eq!(e.ino(), md.ino(), "{name}: d_ino");
        n += 1;
    }
    assert!(n > 500);
}
