//! Inode numbers: one st_dev for the whole mount; st_ino stable for a file across
//! copy-up and across remount; readdir's d_ino equals st_ino; two different files never
//! share an st_ino, even with layers on different filesystems.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use integration_tests::mount::{FuseMount, LayerStack, Tmpfs, layers, snapshot};

fn populate(s: &LayerStack) {
    let (top, bottom) = (s.lower(0), s.lower(1));
    layers::file(&bottom.join("dir/lower-file"), b"l\n", 0o644).expect("file");
    layers::file(&bottom.join("dir/sub/deep"), b"d\n", 0o644).expect("file");
    layers::file(&top.join("dir/top-file"), b"t\n", 0o644).expect("file");
    layers::file(&bottom.join("plain"), b"p\n", 0o644).expect("file");
    layers::file(&top.join("shadow"), b"top\n", 0o644).expect("file");
    layers::file(&bottom.join("shadow"), b"bottom\n", 0o644).expect("file");
    std::os::unix::fs::symlink("plain", bottom.join("link")).expect("symlink");
    layers::mknod(&bottom.join("fifo"), libc::S_IFIFO | 0o644, 0).expect("fifo");
}

/// Path -> (st_dev, st_ino) of every entry below `root`.
fn inodes(root: &Path) -> BTreeMap<String, (u64, u64)> {
    let snap = snapshot(root).expect("walk");
    snap.entries
        .keys()
        .map(|k| {
            let md = fs::symlink_metadata(if k.is_empty() {
                root.to_path_buf()
            } else {
                root.join(k)
            })
            .expect("lstat");
            (k.clone(), (md.dev(), md.ino()))
        })
        .collect()
}

#[test]
fn one_st_dev_and_stable_st_ino_across_copy_up_and_remount() {
    let s = LayerStack::new(2);
    populate(&s);
    let mut m = Some(FuseMount::mount(&s, ""));
    let before = inodes(&s.mnt);
    let devs: Vec<u64> = before.values().map(|(d, _)| *d).collect();
    assert!(
        devs.iter().all(|d| *d == devs[0]),
        "more than one st_dev in one mount: {before:?}"
    );
    // Copy-ups of every kind.
    fs::set_permissions(
        s.m("plain"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .expect("chmod");
    fs::write(s.m("dir/lower-file"), b"rewritten\n").expect("write");
    fs::write(s.m("dir/sub/new"), b"n\n").expect("create in a lower dir");
    std::os::unix::fs::lchown(s.m("link"), Some(1000), Some(1000)).expect("lchown symlink");
    std::os::unix::fs::lchown(s.m("fifo"), Some(1000), Some(1000)).expect("lchown fifo");
    let after_copy_up = inodes(&s.mnt);
    for (path, id) in &before {
        assert_eq!(
            after_copy_up.get(path),
            Some(id),
            "{path}: (st_dev, st_ino) changed by copy-up"
        );
    }
    drop(m.take());
    m = Some(FuseMount::mount(&s, ""));
    let after_remount = inodes(&s.mnt);
    for (path, (_, ino)) in &after_copy_up {
        assert_eq!(
            after_remount.get(path).map(|x| x.1),
            Some(*ino),
            "{path}: st_ino changed by remount"
        );
    }
    drop(m);
}

/// Every (name, d_ino) of a directory through readdir(3).
fn readdir_inos(dir: &Path) -> Vec<(String, u64)> {
    let mut d = nix::dir::Dir::open(
        dir,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY,
        nix::sys::stat::Mode::empty(),
    )
    .expect("opendir");
    d.iter()
        .map(|e| e.expect("readdir"))
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.ino()))
        .filter(|(n, _)| n != "." && n != "..")
        .collect()
}

#[test]
fn readdir_d_ino_equals_st_ino() {
    let s = LayerStack::new(2);
    populate(&s);
    let _m = FuseMount::mount(&s, "");
    fs::write(s.m("dir/upper-only"), b"u\n").expect("create");
    fs::set_permissions(
        s.m("dir/lower-file"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .expect("copy-up");
    let mut checked = 0;
    for dir in ["", "dir", "dir/sub"] {
        let d = if dir.is_empty() {
            s.mnt.clone()
        } else {
            s.m(dir)
        };
        for (name, d_ino) in readdir_inos(&d) {
            let st = fs::symlink_metadata(d.join(&name)).expect("lstat").ino();
            assert_eq!(d_ino, st, "{dir}/{name}: d_ino {d_ino} != st_ino {st}");
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} entries checked");
}

#[test]
fn different_files_never_share_st_ino_even_across_filesystems() {
    // Two fresh tmpfs instances number their inodes the same way, so their files
    // collide unless the daemon maps inode numbers; an ext4 layer sits on top.
    let s = LayerStack::new(1);
    let t1 = s.root().join("tmpfs1");
    let t2 = s.root().join("tmpfs2");
    let _a = Tmpfs::mount(&t1).expect("tmpfs 1");
    let _b = Tmpfs::mount(&t2).expect("tmpfs 2");
    for (i, l) in [&t1, &t2].iter().enumerate() {
        for n in 0..40 {
            fs::write(l.join(format!("layer{i}-file{n}")), b"x").expect("file");
        }
        fs::create_dir(l.join(format!("layer{i}-dir"))).expect("dir");
    }
    for n in 0..40 {
        fs::write(s.lower(0).join(format!("ext4-file{n}")), b"x").expect("file");
    }
    let raw1 = fs::metadata(t1.join("layer0-file0")).expect("stat").ino();
    let raw2 = fs::metadata(t2.join("layer1-file0")).expect("stat").ino();
    assert_eq!(
        raw1, raw2,
        "the two tmpfs layers should have colliding raw inode numbers"
    );
    let opts = format!(
        "lowerdir={}:{}:{},upperdir={},workdir={}",
        s.lower(0).display(),
        t1.display(),
        t2.display(),
        s.upper.display(),
        s.work.display()
    );
    let check = |label: &str| {
        let ids = inodes(&s.mnt);
        let devs: std::collections::HashSet<u64> = ids.values().map(|x| x.0).collect();
        assert_eq!(devs.len(), 1, "{label}: one st_dev expected, got {devs:?}");
        let mut seen: HashMap<u64, &String> = HashMap::new();
        for (path, (_, ino)) in &ids {
            if let Some(other) = seen.insert(*ino, path) {
                panic!("{label}: {path} and {other} share st_ino {ino}");
            }
        }
    };
    {
        let _m = FuseMount::spawn_foreground(
            &[std::ffi::OsString::from("-o"), opts.clone().into()],
            &s.mnt,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        check("mounted");
        fs::write(s.m("layer1-file3"), b"copied up").expect("copy-up from tmpfs to ext4");
        check("after a copy-up across filesystems");
    }
    let _m = FuseMount::spawn_foreground(&[std::ffi::OsString::from("-o"), opts.into()], &s.mnt)
        .unwrap_or_else(|e| panic!("{e}"));
    check("after remount");
}
