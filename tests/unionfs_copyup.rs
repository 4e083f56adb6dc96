//! Copy-up: which operations trigger it, that parents come first with their metadata,
//! that data goes through workdir (the file appears in upper by rename), that mode,
//! owner, times, xattrs, ACLs and holes are kept, that an O_TRUNC open copies no data,
//! and that chmod/chown/utimens copy metadata only, deferring data to the first write.

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::process::Command;

use integration_tests::mount::inotify::Inotify;
use integration_tests::mount::{FuseMount, LayerStack, Twin, layers, xattr};

/// A lower file with every kind of metadata a copy-up must keep.
fn rich_file(path: &Path, content: &[u8]) {
    layers::file(path, content, 0o2754).expect("file");
    layers::lchown(path, 1000, 1000).expect("chown");
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o2754))
        .expect("chmod after chown");
    xattr::set(path, "user.origin", b"lower layer").expect("xattr");
    let st = Command::new("setfacl")
        .arg("-m")
        .arg("u:65534:rw,g:100:r")
        .arg(path)
        .status()
        .expect("run setfacl (apt: acl)");
    assert!(st.success(), "setfacl");
    layers::set_old_times(path, 444_444_444).expect("times");
}

fn populate(s: &LayerStack) {
    for name in [
        "open_w",
        "truncate",
        "chmod",
        "chown",
        "utimens",
        "setxattr",
        "removexattr",
        "link",
    ] {
        rich_file(
            &s.lower(0).join("d").join(name),
            format!("content of {name}\n").as_bytes(),
        );
    }
    layers::set_old_times(&s.lower(0).join("d"), 333_333_333).expect("dir times");
}

/// Each trigger, as a user would do it.
fn trigger(root: &Path, name: &str) {
    let p = root.join("d").join(name);
    match name {
        "open_w" => drop(
            fs::OpenOptions::new()
                .write(true)
                .open(&p)
                .expect("open for write"),
        ),
        "truncate" => fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .and_then(|f| f.set_len(3))
            .expect("truncate"),
        "chmod" => fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o640))
            .expect("chmod"),
        "chown" => std::os::unix::fs::lchown(&p, Some(65534), None).expect("chown"),
        "utimens" => layers::set_old_times(&p, 123_456_789).expect("utimens"),
        "setxattr" => xattr::set(&p, "user.added", b"1").expect("setxattr"),
        "removexattr" => xattr::remove(&p, "user.origin").expect("removexattr"),
        "link" => fs::hard_link(&p, root.join("d/link-2")).expect("link"),
        other => unreachable!("{other}"),
    }
}

#[test]
fn each_trigger_copies_up_keeping_mode_owner_times_xattrs_and_acls() {
    let t = Twin::new(1, "", "", populate);
    for name in [
        "open_w",
        "truncate",
        "chmod",
        "chown",
        "utimens",
        "setxattr",
        "removexattr",
        "link",
    ] {
        t.both(|root| trigger(root, name));
        t.assert_same(&format!("after {name}"));
        assert!(
            fs::symlink_metadata(t.fs.upper.join("d").join(name)).is_ok(),
            "{name} must copy the file up"
        );
    }
    // The parent was copied up first, with its metadata (its mtime only changed by link).
    let lower_d = fs::metadata(t.fs.lower(0).join("d")).expect("lower d");
    let upper_d = fs::metadata(t.fs.upper.join("d")).expect("upper d");
    assert_eq!(
        (upper_d.mode(), upper_d.uid(), upper_d.gid()),
        (lower_d.mode(), lower_d.uid(), lower_d.gid())
    );
}

#[test]
fn parents_are_copied_up_first_with_their_metadata() {
    let mut t = Twin::new(1, "", "", |s| {
        let l = s.lower(0);
        layers::file(&l.join("a/b/c/file"), b"deep\n", 0o644).expect("file");
        for (d, mode, uid) in [
            ("a", 0o750, 1000),
            ("a/b", 0o711, 65534),
            ("a/b/c", 0o1777, 0),
        ] {
            layers::lchown(&l.join(d), uid, uid).expect("chown");
            fs::set_permissions(
                l.join(d),
                std::os::unix::fs::PermissionsExt::from_mode(mode),
            )
            .expect("chmod");
            xattr::set(&l.join(d), "user.dir", d.as_bytes()).expect("xattr");
        }
        for (d, secs) in [
            ("a/b/c", 133_333_333),
            ("a/b", 122_222_222),
            ("a", 111_111_111),
        ] {
            layers::set_old_times(&l.join(d), secs).expect("times");
        }
    });
    t.both(|root| xattr::set(&root.join("a/b/c/file"), "user.x", b"1").expect("setxattr"));
    t.assert_same("after a copy-up three levels deep");
    for d in ["a", "a/b", "a/b/c"] {
        let l = fs::symlink_metadata(t.fs.lower(0).join(d)).expect("lower");
        let u = fs::symlink_metadata(t.fs.upper.join(d))
            .unwrap_or_else(|e| panic!("{d} not in upper: {e}"));
        assert_eq!(
            (u.mode(), u.uid(), u.gid(), u.mtime()),
            (l.mode(), l.uid(), l.gid(), l.mtime()),
            "{d}: copied-up parent lost metadata"
        );
        assert_eq!(
            xattr::get(&t.fs.upper.join(d), "user.dir")
                .expect("xattr")
                .as_deref(),
            Some(d.as_bytes())
        );
    }
    t.remount();
    t.assert_same("after remount");
}

#[test]
fn copy_up_keeps_holes() {
    const MIB: u64 = 1 << 20;
    let t = Twin::new(1, "", "", |s| {
        let p = s.lower(0).join("sparse");
        let f = fs::File::create(&p).expect("create");
        f.set_len(16 * MIB).expect("extend");
        f.write_all_at(b"head", 0).expect("write");
        f.write_all_at(b"middle", 12 * MIB).expect("write");
        layers::set_old_times(&p, 500_000_000).expect("times");
    });
    t.both(|root| {
        let f = fs::OpenOptions::new()
            .write(true)
            .open(root.join("sparse"))
            .expect("open");
        f.write_all_at(b"X", 4 * MIB).expect("write into a hole");
    });
    t.assert_same("after writing into a sparse lower file");
    let up = fs::metadata(t.fs.upper.join("sparse")).expect("copied up");
    assert_eq!(up.size(), 16 * MIB);
    assert!(
        up.blocks() * 512 < 4 * MIB,
        "copy-up filled the holes: {} bytes allocated for 3 written blocks",
        up.blocks() * 512
    );
    // The holes are visible through the mount as they are under the kernel.
    let seeks = |root: &Path| -> Vec<i64> {
        let f = fs::File::open(root.join("sparse")).expect("open");
        let fd = std::os::fd::AsRawFd::as_raw_fd(&f);
        let mut out = Vec::new();
        // Probes whose answers do not depend on the copy granularity (the kernel copies
        // 1 MiB chunks around data, a finer copy is as good): the hole before the written
        // block, the written block, and the lower data after it.
        for (whence, from) in [
            (libc::SEEK_DATA, 2 * MIB as i64),
            (libc::SEEK_HOLE, 4 * MIB as i64),
            (libc::SEEK_DATA, 4 * MIB as i64 + 4096),
        ] {
            // SAFETY: lseek on an open fd.
            out.push(unsafe { libc::lseek(fd, from, whence) });
        }
        out
    };
    let r = t.same("SEEK_HOLE/SEEK_DATA after copy-up", seeks);
    assert_eq!(r, [4 * MIB as i64, 4 * MIB as i64 + 4096, 12 * MIB as i64]);
}

/// Watches a lower file for reads (IN_ACCESS) by anyone, i.e. by the daemon.
fn watch_reads(path: &Path) -> Inotify {
    let i = Inotify::new().expect("inotify");
    i.watch(path, libc::IN_ACCESS).expect("watch");
    i
}

#[test]
fn o_trunc_open_copies_no_data() {
    let s = LayerStack::new(1);
    let big = vec![7u8; 4 << 20];
    layers::file(&s.lower(0).join("big"), &big, 0o644).expect("file");
    let reads = watch_reads(&s.lower(0).join("big"));
    let _m = FuseMount::mount(&s, "");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(s.m("big"))
        .expect("open O_TRUNC");
    f.write_all(b"new\n").expect("write");
    drop(f);
    let ev = reads.drain();
    assert!(
        ev.is_empty(),
        "the lower file was read for an O_TRUNC open: {ev:?}"
    );
    assert_eq!(fs::read(s.m("big")).expect("read"), b"new\n");
    assert_eq!(fs::read(s.upper.join("big")).expect("upper"), b"new\n");
}

#[test]
fn metadata_changes_copy_metadata_only_until_the_first_write() {
    let s = LayerStack::new(1);
    let mut content = vec![0u8; 1 << 20];
    for (i, b) in content.iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    for name in ["chmod", "chown", "utimens"] {
        layers::file(&s.lower(0).join(name), &content, 0o644).expect("file");
    }
    let watches: Vec<Inotify> = ["chmod", "chown", "utimens"]
        .iter()
        .map(|n| watch_reads(&s.lower(0).join(n)))
        .collect();
    let mut m = Some(FuseMount::mount(&s, ""));
    fs::set_permissions(
        s.m("chmod"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .expect("chmod");
    std::os::unix::fs::lchown(s.m("chown"), Some(1000), Some(1000)).expect("chown");
    layers::set_old_times(&s.m("utimens"), 99_999_999).expect("utimens");
    for (name, w) in ["chmod", "chown", "utimens"].iter().zip(&watches) {
        let ev = w.drain();
        assert!(
            ev.is_empty(),
            "{name}: lower data was read for a metadata change: {ev:?}"
        );
        fs::symlink_metadata(s.upper.join(name))
            .unwrap_or_else(|e| panic!("{name}: metadata not copied up: {e}"));
        // No data extent at all (st_blocks would also count the block that holds the
        // copy's xattrs when they don't fit in the inode, as with the kernel's own
        // metacopy files on ext4).
        let f = fs::File::open(s.upper.join(name)).expect("open upper copy");
        // SAFETY: lseek on an open descriptor.
        let data = unsafe { libc::lseek(std::os::fd::AsRawFd::as_raw_fd(&f), 0, libc::SEEK_DATA) };
        assert_eq!(
            (data, std::io::Error::last_os_error().raw_os_error()),
            (-1, Some(libc::ENXIO)),
            "{name}: the upper file has data before any write"
        );
    }
    let st = fs::metadata(s.m("chmod")).expect("stat");
    assert_eq!(st.mode() & 0o7777, 0o600);
    assert_eq!(
        st.size(),
        content.len() as u64,
        "size must still be the lower file's"
    );
    assert_eq!(fs::metadata(s.m("chown")).expect("stat").uid(), 1000);
    assert_eq!(
        fs::metadata(s.m("utimens")).expect("stat").mtime(),
        99_999_999
    );
    // Reads still see the lower data; the first write copies it.
    for name in ["chmod", "chown", "utimens"] {
        assert_eq!(
            fs::read(s.m(name)).expect("read"),
            content,
            "{name}: content"
        );
        let f = fs::OpenOptions::new()
            .write(true)
            .open(s.m(name))
            .expect("open");
        f.write_all_at(b"WRITTEN", 1000).expect("write");
    }
    let mut expect = content.clone();
    expect[1000..1007].copy_from_slice(b"WRITTEN");
    for round in ["mounted", "remounted"] {
        if round == "remounted" {
            drop(m.take());
            m = Some(FuseMount::mount(&s, ""));
        }
        for name in ["chmod", "chown", "utimens"] {
            assert_eq!(
                fs::read(s.m(name)).expect("read"),
                expect,
                "{name} ({round}): lower data plus the write"
            );
        }
    }
    assert_eq!(
        fs::metadata(s.m("chmod")).expect("stat").mode() & 0o7777,
        0o600
    );
    drop(m);
}

#[test]
fn copied_up_data_appears_in_upper_by_rename_from_workdir() {
    let s = LayerStack::new(1);
    layers::file(&s.lower(0).join("dir/file"), &vec![1u8; 1 << 20], 0o644).expect("file");
    fs::create_dir(s.upper.join("dir"))
        .expect("pre-existing upper dir, so the watch can be placed");
    let i = Inotify::new().expect("inotify");
    i.watch(&s.upper.join("dir"), libc::IN_CREATE | libc::IN_MOVED_TO)
        .expect("watch");
    let _m = FuseMount::mount(&s, "");
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(s.m("dir/file"))
        .expect("open");
    f.write_all(b"tail").expect("append");
    drop(f);
    let ev: Vec<_> = i.drain().into_iter().filter(|e| e.name == "file").collect();
    assert!(!ev.is_empty(), "no copy-up event seen in upper/dir");
    assert!(
        ev.iter().all(|e| e.mask & libc::IN_MOVED_TO != 0),
        "the copy-up must be built in workdir and renamed into upper, never created in place: {ev:?}"
    );
    let mut got = Vec::new();
    fs::File::open(s.m("dir/file"))
        .expect("open")
        .read_to_end(&mut got)
        .expect("read");
    assert_eq!(got.len(), (1 << 20) + 4);
}

#[test]
fn open_for_write_without_writing_keeps_content_and_times() {
    let t = Twin::new(1, "", "", |s| {
        rich_file(&s.lower(0).join("f"), b"unchanged\n")
    });
    t.both(|root| {
        let mut f = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(root.join("f"))
            .expect("open rw");
        f.seek(SeekFrom::End(0)).expect("seek");
    });
    t.assert_same("after open O_RDWR and close");
}

/// A handle opened on the lower file, or on a metadata-only copy (whose data is still
/// read from below), must not make the kernel see the lower file's attributes when its
/// cached ones expire and it asks again through the handle (`lseek(SEEK_END)`, a read past
/// the cached size).
#[test]
fn open_handles_report_the_copied_up_attributes() {
    let s = LayerStack::new(1);
    layers::file(&s.lower(0).join("f"), &vec![7u8; 1 << 20], 0o644).expect("file");
    let m = FuseMount::mount(&s, "");
    let opened_on_lower = fs::File::open(s.m("f")).expect("open before the copy-up");
    layers::set_old_times(&s.m("f"), 99_999_999).expect("utimens");
    let opened_on_metacopy = fs::File::open(s.m("f")).expect("open after the copy-up");
    // Past the upper entries' attribute timeout (1 s), so the kernel asks again.
    std::thread::sleep(std::time::Duration::from_millis(1300));
    for (what, mut h) in [
        ("opened on the lower file", opened_on_lower),
        ("opened on the metadata-only copy", opened_on_metacopy),
    ] {
        assert_eq!(h.seek(SeekFrom::End(0)).expect("seek"), 1 << 20, "{what}");
        assert_eq!(h.metadata().expect("fstat").mtime(), 99_999_999, "{what}");
        assert_eq!(
            fs::metadata(s.m("f")).expect("stat").mtime(),
            99_999_999,
            "{what}: stat after the handle's refresh"
        );
    }
    drop(m);
}

/// A handle reading a large lower file stays open while another handle appends to it:
/// the append goes to a copy-up, the reader's next read sees the copy (as under
/// overlayfs since Linux 4.19, which is the oracle here), and the lower layer is never
/// written. The file is large enough that `passthrough=all` would pass it through; by
/// default it is served, so the writer is not refused. (fuse-overlayfs 2.0.0, which
/// passes such readers through, writes this append into the lower file.)
#[test]
fn a_writer_beside_a_reader_of_a_lower_file_copies_up() {
    let data: Vec<u8> = (0..512 << 10).map(|i: u32| (i % 253) as u8).collect();
    let appended = [&data[..], b"appended\n"].concat();
    let t = Twin::new(1, "", "", |s| {
        layers::file(&s.lower(0).join("f"), &data, 0o644).expect("file");
    });
    let errno = |e: std::io::Error| e.raw_os_error().unwrap_or(-1);
    let seen = t.same("a reader held open across an append", |root| {
        let reader = fs::File::open(root.join("f")).map_err(errno)?;
        let mut head = vec![0u8; 64 << 10];
        reader.read_at(&mut head, 0).map_err(errno)?;
        fs::OpenOptions::new()
            .append(true)
            .open(root.join("f"))
            .and_then(|mut w| w.write_all(b"appended\n"))
            .map_err(errno)?;
        let mut all = vec![0u8; appended.len() + 64];
        let n = reader.read_at(&mut all, 0).map_err(errno)?;
        Ok::<_, i32>((n, all[..n] == appended[..]))
    });
    assert_eq!(
        seen,
        Ok((appended.len(), true)),
        "the reader sees the append"
    );
    for (stack, who) in [(&t.ks, "kernel overlayfs"), (&t.fs, "the daemon")] {
        assert!(
            fs::read(stack.lower(0).join("f")).expect("lower") == data,
            "{who} wrote into the lower layer"
        );
        assert!(
            fs::read(stack.upper.join("f")).expect("copied up") == appended,
            "{who}: the append is in the upper copy"
        );
    }
}

/// With `-o passthrough=all`, a large lower file opened for reading passes through to
/// the kernel, which can't move that handle to a copy-up nor open the copy beside it. So
/// while the lower file is held, opening it for writing or truncating it fails with
/// ETXTBSY (as for a running program), renaming it still works and keeps the data the
/// reader sees, and once the reader closes, the writer gets its copy-up. Programs in
/// lower layers still run (exec maps the file through its passthrough handle).
#[test]
fn passthrough_all_holds_lower_files_still_while_read() {
    let s = LayerStack::new(1);
    // Past the size below which lower files are served from the page cache instead.
    let data: Vec<u8> = (0..256 << 10).map(|i: u32| (i % 251) as u8).collect();
    layers::file(&s.lower(0).join("f"), &data, 0o644).expect("file");
    layers::file(&s.lower(0).join("small"), b"small\n", 0o644).expect("file");
    fs::copy("/bin/true", s.lower(0).join("true")).expect("copy /bin/true into the layer");
    let m = FuseMount::mount(&s, "passthrough=all");
    let passes_through = !m.stderr().contains("no FUSE passthrough");
    // As root on Linux 6.9 or later (every machine these tests are meant for), the kernel
    // offers passthrough: a warning there means the check below silently did nothing.
    assert!(
        passes_through || !kernel_has_passthrough(),
        "the daemon found no FUSE passthrough on a kernel that has it: {}",
        m.stderr()
    );
    let append = |name: &str, data: &[u8]| {
        fs::OpenOptions::new()
            .append(true)
            .open(s.m(name))
            .and_then(|mut w| w.write_all(data))
    };

    let small = fs::File::open(s.m("small")).expect("open a small file for reading");
    append("small", b"appended\n").expect("small files are served: they can be written");
    drop(small);
    let reader = fs::File::open(s.m("f")).expect("open for reading");
    let read_back = |f: &fs::File| {
        let mut buf = vec![0u8; data.len() + 64];
        let n = f.read_at(&mut buf, 0).expect("pread");
        buf.truncate(n);
        buf
    };
    assert!(read_back(&reader) == data);
    if passes_through {
        let busy = append("f", b"x").expect_err("a writer beside a reader of the lower file");
        assert_eq!(busy.raw_os_error(), Some(libc::ETXTBSY), "{busy}");
        let busy = fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(s.m("f"))
            .expect_err("O_TRUNC beside a reader of the lower file");
        assert_eq!(busy.raw_os_error(), Some(libc::ETXTBSY), "{busy}");
        let c = std::ffi::CString::new(s.m("f").as_os_str().as_encoded_bytes()).expect("path");
        // SAFETY: plain syscall on a NUL-terminated path.
        let rc = unsafe { libc::truncate(c.as_ptr(), 3) };
        assert_eq!(rc, -1, "truncate beside a reader of the lower file");
        assert_eq!(
            std::io::Error::last_os_error().raw_os_error(),
            Some(libc::ETXTBSY)
        );
        assert!(
            !s.upper.join("f").exists(),
            "a refused writer copied nothing up"
        );
    }
    fs::rename(s.m("f"), s.m("g")).expect("rename beside a reader");
    assert!(fs::read(s.m("g")).expect("read the new name") == data);
    assert!(read_back(&reader) == data, "read after the rename");
    drop(reader);

    append("g", b"appended\n").expect("a writer once the reader closed");
    let new = [&data[..], b"appended\n"].concat();
    assert!(fs::read(s.m("g")).expect("read anew") == new);
    assert!(fs::read(s.upper.join("g")).expect("copied up") == new);
    assert!(
        fs::read(s.lower(0).join("f")).expect("lower") == data,
        "the lower layer is never written"
    );

    let st = Command::new(s.m("true"))
        .status()
        .expect("run a lower program");
    assert!(st.success(), "{st}");
    drop(m);
}

/// Whether this kernel offers FUSE passthrough to this process: Linux 6.9 or later, as root.
fn kernel_has_passthrough() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return false;
    }
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release
        .trim()
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= (6, 9),
        _ => false,
    }
}
