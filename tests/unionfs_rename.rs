//! rename(2) of files and of directories, including directories with lower content:
//! `mv` of a lower directory works (no EXDEV, unlike kernel overlayfs without
//! redirect_dir and unlike fuse-overlayfs), keeps inode numbers (a real rename, not a
//! copy) and survives a remount; RENAME_NOREPLACE and RENAME_EXCHANGE behave as on ext4.
//! The reference is kernel overlayfs with `redirect_dir=on`.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use integration_tests::mount::{LayerStack, Twin, layers};

const REDIRECT: &str = "redirect_dir=on";

fn renameat2(root: &Path, from: &str, to: &str, flags: u32) -> Result<(), i32> {
    let f = CString::new(root.join(from).as_os_str().as_bytes()).expect("no NUL");
    let t = CString::new(root.join(to).as_os_str().as_bytes()).expect("no NUL");
    // SAFETY: valid paths.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            flags,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error().raw_os_error().unwrap_or(-1))
    }
}

fn tree(s: &LayerStack) {
    let (top, bottom) = (s.lower(0), s.lower(1));
    layers::file(&bottom.join("tree/a/deep/file"), b"bottom deep\n", 0o644).expect("file");
    layers::file(&bottom.join("tree/a/f1"), b"bottom f1\n", 0o600).expect("file");
    layers::file(&top.join("tree/a/f2"), b"top f2\n", 0o644).expect("file");
    layers::file(&top.join("tree/b"), b"top b\n", 0o644).expect("file");
    layers::file(&bottom.join("other/x"), b"x\n", 0o644).expect("file");
    layers::file(&bottom.join("file1"), b"one\n", 0o644).expect("file");
    layers::file(&top.join("file2"), b"two\n", 0o644).expect("file");
    layers::dir(&bottom.join("emptydir"), 0o755).expect("dir");
    layers::dir(&top.join("dir2/sub"), 0o755).expect("dir");
    for d in ["tree/a/deep", "tree/a", "tree", "other", "emptydir"] {
        for l in [top, bottom] {
            if l.join(d).exists() {
                layers::set_old_times(&l.join(d), 300_000_000).expect("times");
            }
        }
    }
}

#[test]
fn rename_of_lower_files() {
    let mut t = Twin::new(2, REDIRECT, "", tree);
    let r = t.same("rename of lower files", |r| {
        (
            renameat2(r, "file1", "renamed", 0),
            renameat2(r, "file2", "other/x", 0),
            renameat2(r, "tree/b", "tree/a/deep/b", 0),
            renameat2(r, "missing", "x", 0),
            renameat2(r, "renamed", "tree", 0),
        )
    });
    assert_eq!(
        r,
        (Ok(()), Ok(()), Ok(()), Err(libc::ENOENT), Err(libc::EISDIR))
    );
    t.assert_same("after file renames");
    t.remount();
    t.assert_same("after remount");
}

#[test]
fn mv_of_a_lower_directory_works_keeps_inodes_and_survives_remount() {
    let mut t = Twin::new(2, REDIRECT, "", tree);
    let ino = |p: &Path| {
        fs::symlink_metadata(p)
            .unwrap_or_else(|e| panic!("stat {}: {e}", p.display()))
            .ino()
    };
    let d = t.d().to_path_buf();
    let before: Vec<u64> = [
        "tree",
        "tree/a",
        "tree/a/deep",
        "tree/a/deep/file",
        "tree/a/f1",
        "tree/a/f2",
    ]
    .iter()
    .map(|p| ino(&d.join(p)))
    .collect();
    let r = t.same("rename of a directory with lower content", |r| {
        (
            renameat2(r, "tree", "moved", 0),
            renameat2(r, "moved/a", "other/a-moved", 0),
        )
    });
    assert_eq!(r, (Ok(()), Ok(())));
    t.assert_same("after moving lower directories");
    let after: Vec<u64> = [
        "moved",
        "other/a-moved",
        "other/a-moved/deep",
        "other/a-moved/deep/file",
        "other/a-moved/f1",
        "other/a-moved/f2",
    ]
    .iter()
    .map(|p| ino(&d.join(p)))
    .collect();
    assert_eq!(
        before, after,
        "inode numbers changed by moving directories: copied, not renamed"
    );
    // Changes inside the moved dir, then remount.
    t.both(|r| {
        fs::write(r.join("other/a-moved/new"), b"new\n").expect("create in moved dir");
        fs::remove_file(r.join("other/a-moved/f1")).expect("unlink in moved dir");
    });
    t.assert_same("after changes in the moved directory");
    t.remount();
    t.assert_same("after remount");
    t.assert_kernel_reads_daemon_upper(REDIRECT, "the daemon's redirects read by kernel overlayfs");
}

#[test]
fn rename_of_a_lower_directory_succeeds_where_the_kernel_default_says_exdev() {
    let t = Twin::new(2, "redirect_dir=off", "", tree);
    let (k, d) = t.both(|r| renameat2(r, "tree", "moved", 0));
    assert_eq!(
        k,
        Err(libc::EXDEV),
        "kernel overlayfs without redirect_dir refuses (the reason this test exists)"
    );
    assert_eq!(d, Ok(()), "the daemon must rename lower directories");
    assert_eq!(
        fs::read_to_string(t.d().join("moved/a/deep/file")).expect("read"),
        "bottom deep\n"
    );
    assert!(
        fs::symlink_metadata(t.d().join("tree")).is_err(),
        "old name still visible"
    );
}

#[test]
fn rename_noreplace() {
    let t = Twin::new(2, REDIRECT, "", tree);
    let r = t.same("RENAME_NOREPLACE", |r| {
        fs::remove_file(r.join("other/x")).expect("make a whiteout");
        (
            renameat2(r, "file1", "file2", libc::RENAME_NOREPLACE),
            renameat2(r, "file1", "tree", libc::RENAME_NOREPLACE),
            renameat2(r, "file1", "other/x", libc::RENAME_NOREPLACE),
            renameat2(r, "tree", "fresh", libc::RENAME_NOREPLACE),
            renameat2(r, "file2", "fresh/b", libc::RENAME_NOREPLACE),
        )
    });
    assert_eq!(
        r,
        (
            Err(libc::EEXIST),
            Err(libc::EEXIST),
            Ok(()),
            Ok(()),
            Err(libc::EEXIST)
        )
    );
    t.assert_same("after RENAME_NOREPLACE");
}

#[test]
fn rename_exchange() {
    let mut t = Twin::new(2, REDIRECT, "", tree);
    let r = t.same("RENAME_EXCHANGE", |r| {
        fs::write(r.join("upper-file"), b"upper\n").expect("create");
        (
            renameat2(r, "file1", "file2", libc::RENAME_EXCHANGE),
            renameat2(r, "file1", "tree", libc::RENAME_EXCHANGE),
            renameat2(r, "upper-file", "other", libc::RENAME_EXCHANGE),
            renameat2(r, "file2", "missing", libc::RENAME_EXCHANGE),
        )
    });
    assert_eq!(r, (Ok(()), Ok(()), Ok(()), Err(libc::ENOENT)));
    assert_eq!(
        fs::read_to_string(t.d().join("tree")).expect("file now named tree"),
        "two\n"
    );
    t.assert_same("after RENAME_EXCHANGE");
    t.remount();
    t.assert_same("after remount");
}

#[test]
fn rename_of_directories_over_directories() {
    let t = Twin::new(2, REDIRECT, "", tree);
    let r = t.same("rename dir over dir", |r| {
        (
            renameat2(r, "other", "tree", 0),
            renameat2(r, "tree", "emptydir", 0),
            renameat2(r, "dir2", "emptydir/a", 0),
            renameat2(r, "emptydir", "emptydir/a/sub", 0),
        )
    });
    assert_eq!(
        r,
        (
            Err(libc::ENOTEMPTY),
            Ok(()),
            Err(libc::ENOTEMPTY),
            Err(libc::EINVAL)
        )
    );
    t.assert_same("after directory renames");
}

#[test]
fn kernel_rejects_nothing_the_daemon_wrote_for_a_rename_chain() {
    // A chain of renames of the same lower directory, then the upper under the kernel.
    let mut t = Twin::new(2, REDIRECT, "", tree);
    t.both(|r| {
        renameat2(r, "tree", "t1", 0).expect("rename 1");
        renameat2(r, "t1/a", "a1", 0).expect("rename 2");
        renameat2(r, "a1", "t1/a", 0).expect("rename back");
        renameat2(r, "t1", "other/t2", 0).expect("rename 3");
    });
    t.assert_same("after a rename chain");
    t.assert_kernel_reads_daemon_upper(REDIRECT, "rename chain read by kernel overlayfs");
}
