//! Semantics that are not about one on-disk format: deletes and whiteouts, rmdir on
//! the merged view, special files, xattrs, statfs, fsync, fallocate, SEEK_DATA/HOLE,
//! locks, UTIME_NOW/UTIME_OMIT, O_EXCL, shared writable mmap, name length limits and
//! paths deeper than PATH_MAX, reads of big lower files at any offset. Kernel overlayfs
//! (or ext4) is the reference.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use integration_tests::mount::{FuseMount, LayerStack, Twin, layers, xattr};

fn cs(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("no NUL")
}

fn errno<T>(r: io::Result<T>) -> Result<T, i32> {
    r.map_err(|e| e.raw_os_error().unwrap_or(-1))
}

fn last() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(-1)
}

fn basic_lower(s: &LayerStack) {
    let (top, bottom) = (s.lower(0), s.lower(1));
    layers::file(&bottom.join("dir/child"), b"lower child\n", 0o644).expect("file");
    layers::file(&bottom.join("file"), b"lower file\n", 0o644).expect("file");
    layers::file(&top.join("dir/top-child"), b"top child\n", 0o644).expect("file");
    layers::file(&bottom.join("wh-dir/x"), b"x\n", 0o644).expect("file");
    fs::create_dir(top.join("wh-dir")).expect("dir");
    layers::whiteout_chardev(&top.join("wh-dir/x")).expect("whiteout");
    layers::file(&bottom.join("gone"), b"gone\n", 0o644).expect("file");
    layers::whiteout_chardev(&top.join("gone")).expect("whiteout");
}

#[test]
fn rmdir_counts_the_merged_view() {
    let t = Twin::new(2, "", "", basic_lower);
    // dir has children in two layers: not empty.
    let r = t.same("rmdir of a merged dir with lower children", |r| {
        errno(fs::remove_dir(r.join("dir")))
    });
    assert_eq!(r, Err(libc::ENOTEMPTY));
    // wh-dir's only lower child is whited out: empty in the merged view.
    let r = t.same(
        "rmdir of a dir whose lower children are all whited out",
        |r| errno(fs::remove_dir(r.join("wh-dir"))),
    );
    assert_eq!(r, Ok(()));
    let r = t.same("unlink lower children", |r| {
        (
            errno(fs::remove_file(r.join("dir/child"))),
            errno(fs::remove_file(r.join("dir/top-child"))),
        )
    });
    assert_eq!(r, (Ok(()), Ok(())));
    let r = t.same("rmdir once the merged view is empty", |r| {
        errno(fs::remove_dir(r.join("dir")))
    });
    assert_eq!(r, Ok(()));
    t.assert_same("after the deletes");
    for gone in ["dir", "wh-dir"] {
        let md = fs::symlink_metadata(t.fs.upper.join(gone)).expect("whiteout in upper");
        assert!(
            std::os::unix::fs::FileTypeExt::is_char_device(&md.file_type()),
            "{gone}: whiteout"
        );
    }
}

#[test]
fn mkdir_over_a_whiteout_makes_an_opaque_dir() {
    let mut t = Twin::new(2, "", "", basic_lower);
    t.both(|r| {
        fs::remove_file(r.join("dir/child")).expect("unlink");
        fs::remove_file(r.join("dir/top-child")).expect("unlink");
        fs::remove_dir(r.join("dir")).expect("rmdir");
        fs::create_dir(r.join("dir")).expect("mkdir over the whiteout");
        fs::create_dir(r.join("gone")).expect("mkdir over a lower whiteout");
    });
    assert!(
        fs::read_dir(t.d().join("dir"))
            .expect("readdir")
            .next()
            .is_none(),
        "old lower children leak into the new dir"
    );
    t.assert_same("after mkdir over whiteouts");
    t.remount();
    t.assert_same("after remount");
}

#[test]
fn symlinks_fifos_sockets_and_device_nodes() {
    let mut t = Twin::new(1, "", "", |s| {
        let l = s.lower(0);
        std::os::unix::fs::symlink("file", l.join("lower-link")).expect("symlink");
        layers::mknod(&l.join("lower-fifo"), libc::S_IFIFO | 0o644, 0).expect("fifo");
        layers::mknod(
            &l.join("lower-null"),
            libc::S_IFCHR | 0o666,
            libc::makedev(1, 3),
        )
        .expect("chr");
        layers::file(&l.join("file"), b"target\n", 0o644).expect("file");
    });
    t.both(|r| {
        std::os::unix::fs::symlink("../file", r.join("new-link")).expect("symlink");
        layers::mknod(&r.join("new-fifo"), libc::S_IFIFO | 0o600, 0).expect("mkfifo");
        layers::mknod(
            &r.join("new-chr"),
            libc::S_IFCHR | 0o600,
            libc::makedev(1, 5),
        )
        .expect("mknod chr");
        layers::mknod(
            &r.join("new-blk"),
            libc::S_IFBLK | 0o600,
            libc::makedev(7, 0),
        )
        .expect("mknod blk");
        let sock =
            std::os::unix::net::UnixListener::bind(r.join("new-sock")).expect("bind a unix socket");
        drop(sock);
        assert_eq!(
            fs::read_to_string(r.join("lower-link")).expect("follow lower symlink"),
            "target\n"
        );
        fs::write(r.join("lower-null"), b"discard").expect("write a lower device node");
        // A fifo from a lower layer still works as a fifo.
        let f = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(r.join("lower-fifo"))
            .expect("open fifo rw");
        std::io::Write::write_all(&mut &f, b"ping").expect("write fifo");
        let mut buf = [0u8; 4];
        std::io::Read::read_exact(&mut &f, &mut buf).expect("read fifo");
        assert_eq!(&buf, b"ping");
    });
    t.assert_same("after creating every file type");
    t.remount();
    t.assert_same("after remount");
}

#[test]
fn xattrs_set_get_list_remove() {
    let mut t = Twin::new(1, "", "", |s| {
        layers::file(&s.lower(0).join("f"), b"f\n", 0o644).expect("file");
        xattr::set(&s.lower(0).join("f"), "user.lower", b"1").expect("xattr");
        fs::create_dir(s.lower(0).join("d")).expect("dir");
    });
    let res = t.same("xattr operations", |r| {
        let f = r.join("f");
        let d = r.join("d");
        let mut out = vec![
            errno(xattr::set(&f, "user.new", b"value")),
            errno(xattr::set(&d, "user.on-dir", b"")),
            errno(xattr::set(&f, "trusted.private", b"root only")),
            errno(xattr::remove(&f, "user.lower")),
            errno(xattr::remove(&f, "user.never-set")),
        ];
        out.push(errno(
            xattr::get(&f, "user.new").map(|v| assert_eq!(v.as_deref(), Some(&b"value"[..]))),
        ));
        out.push(errno(
            xattr::list(&f).map(|l| assert!(!l.contains(&"user.lower".to_string()))),
        ));
        out
    });
    assert_eq!(res[4], Err(libc::ENODATA));
    t.assert_same("after xattr changes");
    t.remount();
    t.assert_same("after remount");
}

#[test]
fn statfs_reports_the_upper_filesystem() {
    let t = Twin::new(1, "", "", |_| {});
    let sf = |p: &Path| nix::sys::statfs::statfs(p).expect("statfs");
    let (k, d) = (sf(t.k()), sf(t.d()));
    assert_eq!(d.blocks(), k.blocks(), "f_blocks");
    assert_eq!(d.block_size(), k.block_size(), "f_bsize");
    assert_eq!(d.maximum_name_length(), 255, "f_namelen");
    assert!(d.files() > 0, "f_files");
}

#[test]
fn fsync_fdatasync_and_fallocate() {
    let t = Twin::new(1, "", "", |s| {
        layers::file(&s.lower(0).join("lower"), &[5u8; 10000], 0o644).expect("file")
    });
    let res = t.same("fsync, fdatasync, fallocate", |r| {
        let mut out = Vec::new();
        for name in ["lower", "new"] {
            let f = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(r.join(name))
                .expect("open");
            let fd = f.as_raw_fd();
            // SAFETY: syscalls on an open fd.
            unsafe {
                out.push(libc::fsync(fd));
                out.push(libc::fdatasync(fd));
                out.push(libc::fallocate(fd, 0, 0, 1 << 20));
                out.push(libc::fallocate(
                    fd,
                    libc::FALLOC_FL_KEEP_SIZE,
                    1 << 20,
                    1 << 20,
                ));
                out.push(libc::fallocate(
                    fd,
                    libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                    0,
                    4096,
                ));
            }
            out.push(f.metadata().expect("fstat").size() as i32);
        }
        out
    });
    assert!(
        res.iter().take(5).all(|r| *r == 0),
        "all calls succeed: {res:?}"
    );
    t.assert_same("after fallocate");
}

#[test]
fn seek_data_and_seek_hole_on_lower_and_upper_files() {
    const MIB: i64 = 1 << 20;
    let t = Twin::new(1, "", "", |s| {
        let f = fs::File::create(s.lower(0).join("sparse")).expect("create");
        f.set_len(16 * MIB as u64).expect("extend");
        f.write_all_at(b"data", 4 * MIB as u64).expect("write");
    });
    // Probes whose answers do not depend on copy-up granularity (the kernel copies 1 MiB
    // chunks around data; a finer copy that keeps holes is as good).
    let probe = |r: &Path| {
        let f = fs::File::open(r.join("sparse")).expect("open");
        let mut out = Vec::new();
        for (whence, from) in [
            (libc::SEEK_DATA, 0),
            (libc::SEEK_HOLE, 12 * MIB),
            (libc::SEEK_DATA, 5 * MIB),
            (libc::SEEK_HOLE, 0),
        ] {
            // SAFETY: lseek on an open fd.
            let o = unsafe { libc::lseek(f.as_raw_fd(), from, whence) };
            out.push(if o < 0 { -(last() as i64) } else { o });
        }
        out
    };
    let lower = t.same("SEEK_DATA/SEEK_HOLE on a lower file", probe);
    assert_eq!(lower[0], 4 * MIB, "first data");
    assert_eq!(
        lower[2],
        -(libc::ENXIO as i64),
        "no data after the only extent"
    );
    t.both(|r| {
        let f = fs::OpenOptions::new()
            .write(true)
            .open(r.join("sparse"))
            .expect("open");
        f.write_all_at(b"more", 12 * MIB as u64).expect("write");
    });
    t.same("SEEK_DATA/SEEK_HOLE after copy-up", probe);
}

#[test]
fn flock_and_posix_locks_conflict_between_open_files() {
    let s = LayerStack::new(1);
    layers::file(&s.lower(0).join("locked"), b"0123456789", 0o644).expect("file");
    let _m = FuseMount::mount(&s, "");
    let a = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(s.m("locked"))
        .expect("open a");
    let b = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(s.m("locked"))
        .expect("open b");
    // SAFETY: flock/fcntl on open fds with a valid flock struct.
    unsafe {
        assert_eq!(
            libc::flock(a.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB),
            0,
            "flock a"
        );
        assert_eq!(
            libc::flock(b.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB),
            -1,
            "flock b must conflict"
        );
        assert_eq!(last(), libc::EWOULDBLOCK);
        assert_eq!(libc::flock(a.as_raw_fd(), libc::LOCK_UN), 0);
        assert_eq!(
            libc::flock(b.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB),
            0,
            "flock b after unlock"
        );

        let mut l: libc::flock = std::mem::zeroed();
        l.l_type = libc::F_WRLCK as i16;
        l.l_whence = libc::SEEK_SET as i16;
        l.l_start = 0;
        l.l_len = 5;
        assert_eq!(
            libc::fcntl(a.as_raw_fd(), libc::F_OFD_SETLK, &l),
            0,
            "POSIX (OFD) write lock on a"
        );
        let mut probe = l;
        assert_eq!(
            libc::fcntl(b.as_raw_fd(), libc::F_OFD_SETLK, &probe),
            -1,
            "b's lock must conflict"
        );
        assert!(matches!(last(), libc::EAGAIN | libc::EACCES));
        assert_eq!(libc::fcntl(b.as_raw_fd(), libc::F_OFD_GETLK, &mut probe), 0);
        assert_eq!(
            probe.l_type,
            libc::F_WRLCK as i16,
            "F_GETLK reports a's lock"
        );
        let mut other = l;
        other.l_start = 5;
        assert_eq!(
            libc::fcntl(b.as_raw_fd(), libc::F_OFD_SETLK, &other),
            0,
            "a disjoint range is free"
        );
    }
}

#[test]
fn utimens_with_utime_now_and_utime_omit() {
    let t = Twin::new(1, "", "", |s| {
        layers::file(&s.lower(0).join("f"), b"f", 0o644).expect("file")
    });
    let res = t.same("utimensat UTIME_OMIT / UTIME_NOW", |r| {
        let p = cs(&r.join("f"));
        let omit_atime = [
            libc::timespec {
                tv_sec: 0,
                tv_nsec: libc::UTIME_OMIT,
            },
            libc::timespec {
                tv_sec: 200_000_000,
                tv_nsec: 5,
            },
        ];
        // SAFETY: valid path and timespec arrays.
        let a = unsafe { libc::utimensat(libc::AT_FDCWD, p.as_ptr(), omit_atime.as_ptr(), 0) };
        let md = fs::metadata(r.join("f")).expect("stat");
        let after_omit = (md.atime(), md.mtime(), md.mtime_nsec());
        let now_mtime = [
            libc::timespec {
                tv_sec: 0,
                tv_nsec: libc::UTIME_OMIT,
            },
            libc::timespec {
                tv_sec: 0,
                tv_nsec: libc::UTIME_NOW,
            },
        ];
        // SAFETY: as above.
        let b = unsafe { libc::utimensat(libc::AT_FDCWD, p.as_ptr(), now_mtime.as_ptr(), 0) };
        let md = fs::metadata(r.join("f")).expect("stat");
        (a, b, after_omit, md.atime(), md.mtime() > 1_000_000_000)
    });
    assert_eq!(res.2.0, 500_000_000, "UTIME_OMIT kept atime");
    assert_eq!((res.2.1, res.2.2), (200_000_000, 5), "mtime set");
    assert!(res.4, "UTIME_NOW set mtime to now");
}

#[test]
fn o_excl_on_lower_upper_and_whited_out_names() {
    let t = Twin::new(2, "", "", basic_lower);
    let res = t.same("O_CREAT|O_EXCL", |r| {
        let excl = |n: &str| {
            errno(
                fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(r.join(n))
                    .map(|_| ()),
            )
        };
        (
            excl("file"),
            excl("gone"),
            excl("gone"),
            excl("dir"),
            excl("brand-new"),
        )
    });
    assert_eq!(
        res,
        (
            Err(libc::EEXIST),
            Ok(()),
            Err(libc::EEXIST),
            Err(libc::EEXIST),
            Ok(())
        )
    );
}

#[test]
fn shared_writable_mmap() {
    let s = LayerStack::new(1);
    layers::file(&s.lower(0).join("mapped"), &[b'.'; 8192], 0o644).expect("file");
    let mut m = Some(FuseMount::mount(&s, ""));
    for name in ["mapped", "new-mapped"] {
        let f = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(s.m(name))
            .expect("open");
        f.set_len(8192).expect("size");
        // SAFETY: mapping 8 KiB of an open file shared read-write, writing inside it, unmapping.
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                8192,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                f.as_raw_fd(),
                0,
            );
            assert_ne!(
                p,
                libc::MAP_FAILED,
                "{name}: mmap MAP_SHARED: {}",
                io::Error::last_os_error()
            );
            let bytes = std::slice::from_raw_parts_mut(p.cast::<u8>(), 8192);
            bytes[4096..4101].copy_from_slice(b"MMAP!");
            assert_eq!(libc::msync(p, 8192, libc::MS_SYNC), 0, "msync");
            assert_eq!(libc::munmap(p, 8192), 0);
        }
        drop(f);
        let got = fs::read(s.m(name)).expect("read back");
        assert_eq!(
            &got[4096..4101],
            b"MMAP!",
            "{name}: mapped write visible through read"
        );
    }
    drop(m.take());
    m = Some(FuseMount::mount(&s, ""));
    for name in ["mapped", "new-mapped"] {
        assert_eq!(
            &fs::read(s.m(name)).expect("read")[4096..4101],
            b"MMAP!",
            "{name}: after remount"
        );
    }
    assert_eq!(
        &fs::read(s.lower(0).join("mapped")).expect("lower")[4096..4101],
        b".....",
        "lower untouched"
    );
    drop(m);
}

#[test]
fn names_of_255_bytes_work_and_256_give_enametoolong() {
    let n255 = "n".repeat(255);
    let n256 = "n".repeat(256);
    let mut t = Twin::new(1, "", "", |s| {
        layers::file(&s.lower(0).join(&n255), b"long lower\n", 0o644)
            .expect("255-byte name in a layer");
        fs::create_dir(s.lower(0).join("d")).expect("dir");
    });
    let res = t.same("255/256-byte names", |r| {
        (
            errno(fs::write(r.join("d").join(&n255), b"x")),
            errno(fs::create_dir(r.join(format!("{}d", "m".repeat(254))))),
            errno(fs::write(r.join(&n255), b"rewrite")),
            errno(fs::write(r.join(&n256), b"x")),
            errno(fs::create_dir(r.join("d").join(&n256))),
            errno(fs::symlink_metadata(r.join(&n256)).map(|_| ())),
            errno(fs::rename(r.join("d").join(&n255), r.join("d").join(&n256))),
        )
    });
    assert_eq!(&res.0, &Ok(()));
    assert_eq!(res.3, Err(libc::ENAMETOOLONG));
    assert_eq!(res.6, Err(libc::ENAMETOOLONG));
    t.assert_same("with 255-byte names");
    t.remount();
    t.assert_same("after remount");
}

/// openat(dirfd, name, flags) returning an owned fd.
fn openat(dir: &OwnedFd, name: &str, flags: i32) -> Result<OwnedFd, i32> {
    let n = CString::new(name).expect("no NUL");
    // SAFETY: valid dirfd and name.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), n.as_ptr(), flags | libc::O_CLOEXEC, 0o644) };
    if fd < 0 {
        Err(last())
    } else {
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

fn mkdirat(dir: &OwnedFd, name: &str) -> Result<(), i32> {
    let n = CString::new(name).expect("no NUL");
    // SAFETY: valid dirfd and name.
    if unsafe { libc::mkdirat(dir.as_raw_fd(), n.as_ptr(), 0o755) } < 0 {
        Err(last())
    } else {
        Ok(())
    }
}

fn open_dir(p: &Path) -> OwnedFd {
    let fd = fs::File::open(p).expect("open dir");
    OwnedFd::from(fd)
}

/// Builds a chain of `levels` directories named `name` under `root`, fd-relative.
fn deep_chain(root: &Path, name: &str, levels: usize) -> OwnedFd {
    let mut fd = open_dir(root);
    for _ in 0..levels {
        match mkdirat(&fd, name) {
            Ok(()) | Err(libc::EEXIST) => {}
            Err(e) => panic!("mkdirat: errno {e}"),
        }
        fd = openat(&fd, name, libc::O_RDONLY | libc::O_DIRECTORY).expect("openat dir");
    }
    fd
}

#[test]
fn paths_deeper_than_path_max() {
    const LEVELS: usize = 30; // 30 * 201 bytes > PATH_MAX (4096)
    let name = "p".repeat(200);
    let s = LayerStack::new(1);
    {
        let bottom = deep_chain(s.lower(0), &name, LEVELS);
        let f = openat(&bottom, "in-lower", libc::O_WRONLY | libc::O_CREAT)
            .expect("create deep lower file");
        drop(fs::File::from(f));
    }
    let mut m = Some(FuseMount::mount(&s, ""));
    let bottom = deep_chain(&s.mnt, &name, LEVELS);
    // Copy-up of a lower file 30 levels down (all parents copied up).
    let f = openat(&bottom, "in-lower", libc::O_WRONLY | libc::O_APPEND)
        .expect("open deep lower file for write");
    fs::File::from(f)
        .write_all_at(b"deep write", 0)
        .expect("write");
    let f = openat(&bottom, "created", libc::O_WRONLY | libc::O_CREAT).expect("create deep");
    fs::File::from(f).write_all_at(b"new", 0).expect("write");
    mkdirat(&bottom, "more").expect("mkdir deep");
    drop(bottom);
    drop(m.take());
    m = Some(FuseMount::mount(&s, ""));
    let bottom = deep_chain(&s.mnt, &name, LEVELS);
    let mut got = String::new();
    std::io::Read::read_to_string(
        &mut fs::File::from(openat(&bottom, "in-lower", libc::O_RDONLY).expect("open")),
        &mut got,
    )
    .expect("read");
    assert_eq!(got, "deep write");
    assert!(openat(&bottom, "created", libc::O_RDONLY).is_ok());
    assert!(openat(&bottom, "more", libc::O_RDONLY | libc::O_DIRECTORY).is_ok());
    drop(bottom);
    drop(m);
    // It all really went to the upper layer.
    let up = deep_chain(&s.upper, &name, LEVELS);
    assert!(
        openat(&up, "created", libc::O_RDONLY).is_ok(),
        "deep file not in upper"
    );
}

#[test]
fn mknod_of_the_whiteout_device_is_refused_or_survives_a_remount() {
    // Kernel overlayfs refuses a 0/0 character device (EPERM): it is the whiteout format.
    // A daemon may do the same, or store it some other way, but it must not turn into a
    // whiteout (and vanish) on the next mount.
    let s = LayerStack::new(1);
    let mut m = Some(FuseMount::mount(&s, ""));
    let r = errno(layers::mknod(&s.m("dev00"), libc::S_IFCHR | 0o600, 0));
    if r == Err(libc::EPERM) {
        return;
    }
    assert_eq!(r, Ok(()), "mknod c 0 0: EPERM like the kernel, or success");
    drop(m.take());
    m = Some(FuseMount::mount(&s, ""));
    let md =
        fs::symlink_metadata(s.m("dev00")).expect("a created 0/0 device vanished after a remount");
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(&md.file_type()) && md.rdev() == 0);
    drop(m);
}

/// Runs a shell script in `root`; returns its combined output with `root` replaced by `.`.
fn sh_in(root: &Path, script: &str) -> String {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(root)
        .output()
        .expect("run sh");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    text.replace(&*root.to_string_lossy(), ".")
}

#[test]
fn posix_acls_are_enforced_and_inherited_like_overlayfs() {
    let t = Twin::new(1, "", "", |s| {
        layers::file(&s.lower(0).join("secret"), b"x\n", 0o640).expect("file");
        fs::create_dir(s.lower(0).join("shared")).expect("dir");
    });
    // The unprivileged user must reach both mounts.
    for mnt in [t.k(), t.d()] {
        let parent = mnt.parent().expect("mount point has a parent");
        fs::set_permissions(parent, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
    }
    let as_nobody = "setpriv --reuid=nobody --regid=nogroup --clear-groups";
    let script = format!(
        "set -u
         setfacl -m u:nobody:r secret && {as_nobody} cat \"$PWD/secret\"
         setfacl -b secret; {as_nobody} cat \"$PWD/secret\" 2>&1 | sed 's/.*: //'
         setfacl -d -m u:nobody:rwx shared
         touch shared/file; mkdir shared/dir; mknod shared/fifo p
         umask 077; touch plain; mkdir plaindir; umask 022
         {as_nobody} sh -c \"umask 002; touch $PWD/shared/dir/by-nobody\"
         stat -c '%A %U %n' secret shared/file shared/dir shared/fifo plain plaindir shared/dir/by-nobody
         getfacl -cp shared/file shared/dir/by-nobody"
    );
    let out = t.same("ACL enforcement, default ACL inheritance and umask", |r| {
        sh_in(r, &script)
    });
    assert!(out.starts_with("x\nPermission denied\n"), "{out}");
    assert!(out.contains("-rw-rw-r-- root shared/file"), "{out}");
    assert!(out.contains("-rw------- root plain"), "{out}");
    t.assert_same("after ACL changes");
}

/// A running program's file is not truncated by `open(O_RDONLY|O_TRUNC)`: the open
/// fails with ETXTBSY and the program keeps running, as on kernel overlayfs. (FUSE's
/// atomic truncation sends that open to the daemon before the kernel's ETXTBSY check;
/// the daemon used to truncate, and the program died of SIGBUS.)
#[test]
fn o_trunc_of_a_running_program_is_refused_and_truncates_nothing() {
    let t = Twin::new(1, "", "", |_| {});
    let sleep = fs::read("/bin/sleep").expect("read /bin/sleep");
    let (k, d) = t.both(|m| {
        let prog = m.join("prog");
        fs::write(&prog, &sleep).expect("copy sleep");
        fs::set_permissions(&prog, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let mut child = std::process::Command::new(&prog)
            .arg("30")
            .spawn()
            .expect("run the copy");
        let opened = errno(
            fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_TRUNC)
                .open(&prog),
        )
        .map(|_| ());
        std::thread::sleep(std::time::Duration::from_millis(200));
        let running = child.try_wait().expect("try_wait").is_none();
        let _ = child.kill();
        let _ = child.wait();
        let size = fs::metadata(&prog).expect("stat").len();
        (opened, running, size)
    });
    assert_eq!(
        k,
        (Err(libc::ETXTBSY), true, sleep.len() as u64),
        "kernel overlayfs"
    );
    assert_eq!(d, k);
}

/// Reads of a big lower file come back byte for byte at any offset and size: at offsets
/// off the page grid, across the end of the file, after a metadata-only copy-up (the
/// data still below) and, on the daemon, with `O_DIRECT` at an odd offset (the kernel
/// then asks for exactly that range, off the page grid). The daemon answers large reads of lower files from
/// a mapping of the range and small ones through a buffer; both must agree.
#[test]
fn big_lower_files_read_back_exactly_at_any_offset() {
    const LEN: usize = (3 << 20) + 123;
    let data: Vec<u8> = (0..LEN).map(|i| (i % 251) as u8).collect();
    let t = Twin::new(1, "", "", |s| {
        layers::file(&s.lower(0).join("big"), &data, 0o644).expect("file");
    });
    let ranges = [
        (0, LEN + 4096),
        (1001, 300 << 10),
        (LEN - 5000, 64 << 10),
        (LEN + 10, 128 << 10),
        (4096, 100),
    ];
    let read_ranges = |root: &Path| {
        let f = fs::File::open(root.join("big")).expect("open");
        ranges
            .iter()
            .map(|&(offset, size)| {
                let mut buf = vec![0u8; size];
                let n = f.read_at(&mut buf, offset as u64).expect("read");
                let want = &data[offset.min(LEN)..(offset + size).min(LEN)];
                (n, &buf[..n] == want)
            })
            .collect::<Vec<_>>()
    };
    let expected: Vec<(usize, bool)> = ranges
        .iter()
        .map(|&(offset, size)| ((offset + size).min(LEN) - offset.min(LEN), true))
        .collect();
    assert_eq!(t.same("reads of a big lower file", read_ranges), expected);

    // Kernel overlayfs refuses this one (ext4 wants direct I/O aligned); the daemon,
    // whose own read of the layer is buffered, serves it.
    let direct = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(t.d().join("big"))
        .expect("O_DIRECT open on the daemon");
    let mut buf = vec![0u8; 200 << 10];
    let n = direct.read_at(&mut buf, 12_345).expect("O_DIRECT read");
    assert_eq!(n, buf.len());
    assert!(
        buf == data[12_345..12_345 + n],
        "O_DIRECT read at an odd offset"
    );

    let chmod = t.same("chmod (metadata-only copy-up)", |root| {
        errno(fs::set_permissions(
            root.join("big"),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        ))
    });
    assert_eq!(chmod, Ok(()));
    assert_eq!(
        t.same("reads after a metadata-only copy-up", read_ranges),
        expected
    );
}

/// A lower layer on a filesystem that can't map its files (a FUSE layer with
/// `direct_io`) is still read, large reads included: the daemon reads what it can't
/// map into its buffer. The `O_DIRECT` read asks for its whole range in one READ, which
/// the kernel would not retry in pages if it failed.
#[test]
fn a_lower_layer_that_cannot_be_mapped_is_read_through_the_buffer() {
    let data: Vec<u8> = (0..(1usize << 20)).map(|i| (i % 241) as u8).collect();
    let s = LayerStack::new(1);
    let src = s.extra_dir("src");
    layers::file(&src.join("big"), &data, 0o644).expect("file");
    // unionfs-fuse serving `src` with `direct_io`: its files can't be mapped (`mmap`
    // fails with ENODEV).
    let layer = FuseMount::spawn_program(
        Path::new("unionfs"),
        &[
            "-f".into(),
            "-o".into(),
            "direct_io".into(),
            format!("{}=RO", src.display()).into(),
        ],
        s.lower(0),
    )
    .expect("unionfs-fuse (apt: unionfs-fuse) mounts the layer");
    let m = FuseMount::mount(&s, "");
    assert!(
        fs::read(s.mnt.join("big")).expect("read") == data,
        "buffered read"
    );
    let direct = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(s.mnt.join("big"))
        .expect("O_DIRECT open");
    let mut buf = vec![0u8; 200 << 10];
    let n = direct.read_at(&mut buf, 12_345).expect("O_DIRECT read");
    assert_eq!(n, buf.len());
    assert!(buf == data[12_345..12_345 + n], "O_DIRECT read");
    drop(direct);
    drop(m);
    drop(layer);
}

/// A page-aligned buffer of `len` bytes inside `storage` (direct I/O wants aligned
/// memory).
fn aligned(storage: &mut Vec<u8>, len: usize) -> &mut [u8] {
    storage.resize(len + 4096, 0);
    let skip = storage.as_ptr().align_offset(4096);
    &mut storage[skip..skip + len]
}

/// `O_DIRECT` reads and writes, aligned as direct I/O wants, work as on kernel overlayfs:
/// on lower files (served by the daemon, whose own I/O on the layer is buffered), on
/// files it creates, through a copy-up, and with passthrough off, where upper files are
/// served too. (Before, every served `O_DIRECT` read or write failed with EINVAL.)
#[test]
fn o_direct_reads_and_writes_work_as_on_overlayfs() {
    let data: Vec<u8> = (0..(1usize << 20)).map(|i| (i % 239) as u8).collect();
    for daemon_opts in ["", "passthrough=off"] {
        let t = Twin::new(1, "", daemon_opts, |s| {
            layers::file(&s.lower(0).join("big"), &data, 0o644).expect("file");
        });
        let direct = |path: &Path, flags: i32| {
            fs::OpenOptions::new()
                .read(true)
                .write(flags & libc::O_ACCMODE == libc::O_RDWR)
                .create(flags & libc::O_CREAT != 0)
                .custom_flags(libc::O_DIRECT)
                .open(path)
        };
        let seen = t.same(&format!("O_DIRECT I/O ({daemon_opts:?})"), |root| {
            let mut storage = Vec::new();
            let mut out = Vec::new();
            let lower = direct(&root.join("big"), libc::O_RDONLY).map_err(|e| e.kind())?;
            for (offset, len) in [(0usize, 4096usize), (8192, 200 << 10)] {
                let buf = aligned(&mut storage, len);
                let n = lower.read_at(buf, offset as u64).map_err(|e| e.kind())?;
                out.push((n, buf[..n] == data[offset..offset + n]));
            }
            let block: Vec<u8> = (0..(64usize << 10)).map(|i| (i % 13) as u8).collect();
            for (name, flags) in [("new", libc::O_RDWR | libc::O_CREAT), ("big", libc::O_RDWR)] {
                let file = direct(&root.join(name), flags).map_err(|e| e.kind())?;
                let buf = aligned(&mut storage, block.len());
                buf.copy_from_slice(&block);
                let n = file.write_at(buf, 4096).map_err(|e| e.kind())?;
                let buf = aligned(&mut storage, block.len());
                let m = file.read_at(buf, 4096).map_err(|e| e.kind())?;
                out.push((n, buf[..m] == block[..]));
            }
            Ok::<_, std::io::ErrorKind>(out)
        });
        let whole = 64 << 10;
        assert_eq!(
            seen,
            Ok(vec![
                (4096, true),
                (200 << 10, true),
                (whole, true),
                (whole, true)
            ])
        );
        let after = t.same("the files after O_DIRECT writes", |root| {
            (
                fs::read(root.join("new")).ok(),
                fs::read(root.join("big")).ok(),
            )
        });
        assert!(after.0.is_some_and(|f| f.len() == 4096 + whole));
        assert!(after.1.is_some_and(|f| f.len() == data.len()));
    }
}
