//! Unit tests of the persistent index: real layer trees in temporary directories, the
//! index compared with a fresh read-only union walked independently (and, as root, with
//! kernel overlayfs over the same layers), damaged files, and a 20k-entry stack.

use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::format::{self, HEADER_LEN, hdr};
use super::{PersistentIndex, PindexError, build, verify};
use crate::layer::{LayerIdx, LayerStack};
use crate::union::{NodeId, ROOT_ID, Union, UnionConfig};

/// A temporary directory, in memory when possible (tmpfs takes xattrs, device nodes and
/// overlay mounts like any disk filesystem, and the 20k-file test stays quick on a busy
/// disk).
fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("pindex-test")
        .tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap()
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn write(path: &Path, data: &[u8]) {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).unwrap();
    }
    std::fs::write(path, data).unwrap();
}

fn mkdir(path: &Path) {
    std::fs::create_dir_all(path).unwrap();
}

fn symlink(target: &str, path: &Path) {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).unwrap();
    }
    std::os::unix::fs::symlink(target, path).unwrap();
}

fn setxattr(path: &Path, name: &str, value: &[u8]) {
    let p = CString::new(path.as_os_str().as_bytes()).unwrap();
    let n = CString::new(name).unwrap();
    let r = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(r, 0, "setxattr {name} on {}", path.display());
}

/// A kernel whiteout (character device 0/0); needs root.
fn kernel_whiteout(path: &Path) {
    nix::sys::stat::mknod(
        path,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::empty(),
        0,
    )
    .unwrap();
}

/// Puts every access time of a tree an hour into the future, so that reading it (the
/// build, the reference walk, kernel overlayfs) does not change them under `relatime`,
/// and every view compares equal.
fn freeze_atimes(root: &Path) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let atime = nix::sys::time::TimeSpec::new(now + 3600, 0);
    let omit = nix::sys::time::TimeSpec::new(0, libc::UTIME_OMIT);
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let md = std::fs::symlink_metadata(&p).unwrap();
        if md.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            &p,
            &atime,
            &omit,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
    }
}

/// Layer numbers as the index stores them (the reference union has no upper layer,
/// so the two count alike).
fn widen(layers: &[LayerIdx]) -> Vec<usize> {
    layers.iter().map(|&l| usize::from(l)).collect()
}

/// A read-only union over `lowers`, as the reference.
fn union_over(lowers: &[PathBuf]) -> Union {
    let stack = LayerStack::open(lowers, None).unwrap();
    Union::new(stack, None, UnionConfig::default()).unwrap()
}

/// Walks a fresh union depth-first and checks every directory and entry against the
/// index: same names in the same order, same attributes, layers, paths and targets.
/// Returns the number of entries checked.
fn assert_matches_union(ix: &PersistentIndex, lowers: &[PathBuf]) -> usize {
    let union = union_over(lowers);
    let root = ix.root();
    let root_attr = union.getattr(ROOT_ID).unwrap();
    assert_eq!(
        format!("{root_attr:?}"),
        format!("{:?}", root.entry().attr())
    );
    let mut checked = 0;
    check_dir(&union, ix, ROOT_ID, Path::new(""), &mut checked);
    assert_eq!(
        checked + 1,
        ix.entry_count(),
        "entries in the file but not the union"
    );
    checked
}

fn check_dir(union: &Union, ix: &PersistentIndex, id: NodeId, path: &Path, checked: &mut usize) {
    let dir = ix
        .dir(path)
        .unwrap_or_else(|| panic!("/{} missing from the index", path.display()));
    assert_eq!(dir.path(), path);
    let node = union.node(id).unwrap();
    let state = node.snapshot();
    assert_eq!(
        dir.lower_path(),
        &*state.lower_path(),
        "/{}",
        path.display()
    );
    assert_eq!(
        dir.lower_dirs().collect::<Vec<_>>(),
        widen(&state.lower_dirs)
    );
    let mut whited: Vec<OsString> = union
        .index(&node)
        .unwrap()
        .as_ref()
        .unwrap()
        .whited
        .iter()
        .cloned()
        .collect();
    whited.sort();
    assert_eq!(
        dir.whited().map(OsStr::to_os_string).collect::<Vec<_>>(),
        whited
    );
    for w in &whited {
        assert!(dir.is_whited(w));
        assert!(ix.lookup(path, w).is_none(), "whited {w:?} is visible");
    }
    let fh = union.opendir(id).unwrap();
    let listing = union.readdir(fh, 0).unwrap();
    union.releasedir(fh);
    let names: Vec<&OsStr> = listing
        .iter()
        .map(|e| e.name.as_os_str())
        .filter(|n| *n != "." && *n != "..")
        .collect();
    let indexed: Vec<&OsStr> = dir.entries().map(|e| e.name()).collect();
    assert_eq!(names, indexed, "listing of /{}", path.display());
    for item in listing.iter().filter(|e| e.name != "." && e.name != "..") {
        let (child, attr) = union.lookup(id, &item.name).unwrap();
        let cpath = path.join(&item.name);
        let e = ix.lookup(path, &item.name).expect("indexed");
        let by_dir = dir.lookup(&item.name).expect("indexed in its dir");
        assert_eq!(e.id(), by_dir.id());
        assert_eq!(ix.stat(&cpath).map(|s| s.id()), Some(e.id()));
        assert_eq!(
            format!("{attr:?}"),
            format!("{:?}", e.attr()),
            "attributes of /{}",
            cpath.display()
        );
        assert_eq!(item.ino, e.ino(), "readdir inode of /{}", cpath.display());
        assert_eq!(e.kind(), item.kind);
        assert_eq!(e.path(), cpath);
        let cstate = child.snapshot();
        assert_eq!(
            &*e.lower_path(),
            &*cstate.lower_path(),
            "lower path of /{}",
            cpath.display()
        );
        if child.is_dir() {
            assert_eq!(e.lower_dirs(), widen(&cstate.lower_dirs));
            assert_eq!(
                e.lower_layer(),
                cstate.lower_dirs.first().copied().map(usize::from)
            );
        } else {
            assert_eq!(
                e.lower_layer(),
                cstate.lower.map(usize::from),
                "layer of /{}",
                cpath.display()
            );
            assert!(e.dir().is_none());
        }
        let layer = union
            .layers()
            .get(LayerIdx::try_from(e.lower_layer().unwrap()).unwrap());
        let lower_path = e.lower_path();
        let raw = nix::sys::stat::fstatat(
            layer.fd(),
            if lower_path.as_os_str().is_empty() {
                Path::new(".")
            } else {
                &lower_path
            },
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .unwrap();
        assert_eq!((raw.st_dev, raw.st_ino), (e.raw_dev(), e.raw_ino()));
        if child.kind() == libc::S_IFLNK {
            assert_eq!(
                Some(union.readlink(child.id).unwrap().as_os_str()),
                e.symlink_target()
            );
        } else {
            assert!(e.symlink_target().is_none());
        }
        *checked += 1;
        if child.is_dir() {
            check_dir(union, ix, child.id, &cpath, checked);
        }
        union.forget(child.id, 1);
    }
}

/// Kernel overlayfs mounted read-only over lower layers, unmounted on drop.
struct KernelOverlay {
    mnt: tempfile::TempDir,
}

impl KernelOverlay {
    fn mount(lowers: &[PathBuf]) -> Self {
        let mnt = scratch();
        let lower: Vec<String> = lowers.iter().map(|p| p.display().to_string()).collect();
        let opts = format!("ro,lowerdir={}", lower.join(":"));
        nix::mount::mount(
            Some("overlay"),
            mnt.path(),
            Some("overlay"),
            nix::mount::MsFlags::MS_RDONLY,
            Some(opts.as_str()),
        )
        .unwrap_or_else(|e| panic!("mount overlay {opts}: {e}"));
        KernelOverlay { mnt }
    }
}

impl Drop for KernelOverlay {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(self.mnt.path(), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Checks the index against what kernel overlayfs shows over the same (kernel-format)
/// layers: every name, type, mode, owner, size, times, link count and symlink target.
fn assert_matches_kernel(ix: &PersistentIndex, lowers: &[PathBuf]) -> usize {
    let ovl = KernelOverlay::mount(lowers);
    let mut checked = 0;
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = ix.dir(&rel).unwrap();
        // Kernel quirk: in a directory that is not merged (one layer only) the kernel
        // lists the real directory, whiteouts included, though looking them up fails
        // (`ls` shows `c?????????`). The union hides them, as fuse-overlayfs does.
        let mut names: Vec<OsString> = std::fs::read_dir(ovl.mnt.path().join(&rel))
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| std::fs::symlink_metadata(e.path()).is_ok())
            .map(|e| e.file_name())
            .collect();
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        let indexed: Vec<OsString> = dir.entries().map(|e| e.name().to_os_string()).collect();
        assert_eq!(names, indexed, "kernel listing of /{}", rel.display());
        for e in dir.entries() {
            let p = ovl.mnt.path().join(rel.join(e.name()));
            let md = std::fs::symlink_metadata(&p).unwrap();
            let what = format!("/{}", rel.join(e.name()).display());
            assert_eq!(md.mode(), e.mode(), "mode of {what}");
            assert_eq!((md.uid(), md.gid()), (e.uid(), e.gid()), "owner of {what}");
            assert_eq!((md.mtime(), md.mtime_nsec()), e.mtime(), "mtime of {what}");
            assert_eq!((md.atime(), md.atime_nsec()), e.atime(), "atime of {what}");
            assert_eq!(md.rdev(), e.rdev(), "rdev of {what}");
            if e.is_dir() {
                stack.push(rel.join(e.name()));
            } else {
                assert_eq!(md.size(), e.size(), "size of {what}");
                assert_eq!(md.nlink(), e.nlink(), "nlink of {what}");
                assert_eq!(md.ino(), e.ino(), "inode of {what}");
            }
            if let Some(t) = e.symlink_target() {
                assert_eq!(std::fs::read_link(&p).unwrap().as_os_str(), t);
            }
            checked += 1;
        }
    }
    checked
}

/// Three layers exercising every whiteout form, opaque directories (xattr and OCI marker),
/// type changes between layers, hard links, symlinks, special files and a deep path.
/// `kernel_only` leaves out the OCI forms, so kernel overlayfs can read the same layers.
fn semantic_stack(root: &Path, kernel_only: bool) -> Vec<PathBuf> {
    let (top, mid, bottom) = (root.join("l0"), root.join("l1"), root.join("l2"));
    // Bottom layer.
    write(&bottom.join("a/keep"), b"keep");
    write(&bottom.join("a/gone_kernel"), b"x");
    write(&bottom.join("a/gone_oci"), b"x");
    write(&bottom.join("a/gone_xattr"), b"x");
    write(&bottom.join("a/sub/inner"), b"inner");
    write(&bottom.join("a/gonedir/f"), b"f");
    write(&bottom.join("opq/old1"), b"1");
    write(&bottom.join("ociopq/old"), b"1");
    write(&bottom.join("xopq/old"), b"1");
    write(&bottom.join("was_file"), b"file below");
    write(&bottom.join("was_dir/child"), b"c");
    write(&bottom.join("hl/one"), b"linked");
    std::fs::hard_link(bottom.join("hl/one"), bottom.join("hl/two")).unwrap();
    symlink("a/keep", &bottom.join("link"));
    symlink("/absolute/dangling", &bottom.join("a/dangling"));
    let deep: PathBuf = (0..40).map(|i| format!("d{i:02}")).collect();
    write(&bottom.join(&deep).join("bottom"), b"deep");
    let setuid = bottom.join("a/setuid");
    write(&setuid, b"#!/bin/sh\n");
    if is_root() {
        // Before the chmod: a chown clears the set-user-ID bit.
        nix::unistd::chown(&setuid, Some(1234.into()), Some(5678.into())).unwrap();
        nix::sys::stat::mknod(
            &bottom.join("a/null"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            libc::makedev(1, 3),
        )
        .unwrap();
    }
    std::fs::set_permissions(&setuid, std::fs::Permissions::from_mode(0o4755)).unwrap();
    nix::unistd::mkfifo(
        &bottom.join("a/fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();

    // Middle layer: deletions of every form, opaque directories.
    mkdir(&mid.join("a"));
    write(&mid.join("a/midfile"), b"mid");
    write(&mid.join("a/sub/midinner"), b"mid");
    if is_root() {
        kernel_whiteout(&mid.join("a/gone_kernel"));
        kernel_whiteout(&mid.join("a/gonedir"));
    }
    if !kernel_only {
        write(&mid.join("a/.wh.gone_oci"), b"");
        write(&mid.join("ociopq/.wh..wh..opq"), b"");
        write(&mid.join("ociopq/new"), b"2");
    }
    write(&mid.join("opq/new1"), b"2");
    if is_root() {
        setxattr(&mid.join("opq"), "trusted.overlay.opaque", b"y");
        // Xattr-only whiteout: a zero-size file marked as one, in a directory marked "x".
        setxattr(&mid.join("a"), "trusted.overlay.opaque", b"x");
        write(&mid.join("a/gone_xattr"), b"");
        setxattr(&mid.join("a/gone_xattr"), "trusted.overlay.whiteout", b"y");
    }
    write(&mid.join("xopq/new"), b"2");
    write(&mid.join(&deep).join("middle"), b"deep");

    // Top layer: type changes both ways, a whiteout of a whole directory, new names.
    write(&top.join("a/top"), b"top");
    write(&top.join("a/sub/inner"), b"replaced on top");
    mkdir(&top.join("was_file"));
    write(&top.join("was_file/now_dir_child"), b"c");
    write(&top.join("was_dir"), b"now a file");
    write(&top.join(&deep).join("top"), b"deep");
    symlink("../hl/one", &top.join("a/uplink"));
    if !kernel_only {
        write(&top.join(".wh.link"), b"");
    }
    for l in [&top, &mid, &bottom] {
        freeze_atimes(l);
    }
    vec![top, mid, bottom]
}

#[test]
fn whiteouts_opaque_dirs_links_and_deep_paths_match_the_union() {
    let tmp = scratch();
    let lowers = semantic_stack(&tmp.path().join("layers"), false);
    let out = tmp.path().join("chain.idx");
    let stats = build(&lowers, &out).unwrap();
    let ix = PersistentIndex::open(&out, &lowers).unwrap();
    assert_eq!(stats.entries, ix.entry_count());
    assert_eq!(stats.dirs, ix.dir_count());
    let checked = assert_matches_union(&ix, &lowers);
    assert!(checked > 60, "only {checked} entries");

    // What the union must show, spelled out.
    let look = |d: &str, n: &str| ix.lookup(Path::new(d), OsStr::new(n));
    assert!(look("a", "keep").is_some());
    assert_eq!(look("a", "keep").unwrap().lower_layer(), Some(2));
    assert!(look("a", "gone_oci").is_none());
    assert!(look("", ".wh.link").is_none() && look("", "link").is_none());
    assert!(
        ix.dir(Path::new("/"))
            .unwrap()
            .is_whited(OsStr::new("link"))
    );
    assert!(look("ociopq", "old").is_none() && look("ociopq", "new").is_some());
    assert!(look("ociopq", ".wh..wh..opq").is_none());
    assert_eq!(
        ix.dir(Path::new("ociopq"))
            .unwrap()
            .lower_dirs()
            .collect::<Vec<_>>(),
        [1]
    );
    assert_eq!(
        ix.dir(Path::new("xopq"))
            .unwrap()
            .lower_dirs()
            .collect::<Vec<_>>(),
        [1, 2]
    );
    if is_root() {
        assert!(look("a", "gone_kernel").is_none() && look("a", "gone_xattr").is_none());
        assert!(look("a", "gonedir").is_none());
        assert!(ix.dir(Path::new("a/gonedir")).is_none());
        let a = ix.dir(Path::new("/a")).unwrap();
        for n in ["gone_kernel", "gone_oci", "gone_xattr", "gonedir"] {
            assert!(a.is_whited(OsStr::new(n)), "{n} whited");
        }
        assert!(look("opq", "old1").is_none() && look("opq", "new1").is_some());
        let null = look("a", "null").unwrap();
        assert_eq!(
            (null.kind(), null.rdev()),
            (libc::S_IFCHR, libc::makedev(1, 3))
        );
        let suid = look("a", "setuid").unwrap();
        assert_eq!(
            (suid.mode() & 0o7777, suid.uid(), suid.gid()),
            (0o4755, 1234, 5678)
        );
    }
    let was_file = look("", "was_file").unwrap();
    assert!(was_file.is_dir());
    assert_eq!(
        was_file.lower_dirs(),
        [0],
        "the file below does not merge in"
    );
    let was_dir = look("", "was_dir").unwrap();
    assert_eq!(
        (was_dir.kind(), was_dir.lower_layer()),
        (libc::S_IFREG, Some(0))
    );
    assert!(ix.dir(Path::new("was_dir")).is_none());
    let (one, two) = (look("hl", "one").unwrap(), look("hl", "two").unwrap());
    assert_eq!((one.ino(), one.nlink()), (two.ino(), 2));
    assert_eq!(
        look("a", "dangling").unwrap().symlink_target(),
        Some(OsStr::new("/absolute/dangling"))
    );
    assert_eq!(
        look("a", "uplink").unwrap().symlink_target(),
        Some(OsStr::new("../hl/one"))
    );
    assert_eq!(look("a/sub", "inner").unwrap().size(), 15);
    assert_eq!(look("a/sub", "inner").unwrap().lower_layer(), Some(0));
    let deep: PathBuf = (0..40).map(|i| format!("d{i:02}")).collect();
    let deep_dir = ix.dir(&deep).unwrap();
    let names: Vec<_> = deep_dir
        .entries()
        .map(|e| e.name().to_os_string())
        .collect();
    assert_eq!(names, ["bottom", "middle", "top"]);
    assert_eq!(deep_dir.lower_dirs().collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(
        deep_dir.entry().nlink(),
        1,
        "merged directories report one link"
    );
    // Path spellings all reach the same record.
    for p in ["a/sub", "/a/sub", "a/sub/", "/a//sub/", "./a/./sub"] {
        assert_eq!(
            ix.dir(Path::new(p)).map(|d| d.path()),
            Some(Path::new("a/sub")),
            "{p}"
        );
    }
    assert!(ix.stat(Path::new("/")).unwrap().is_dir());
    assert!(ix.stat(Path::new("/a/nothing")).is_none());
    assert!(
        ix.lookup(Path::new("nothing"), OsStr::new("keep"))
            .is_none()
    );
    assert_eq!(verify(&ix, &lowers).unwrap(), Vec::<String>::new());
}

#[test]
fn layers_edited_in_place_are_found_by_verify() {
    let tmp = scratch();
    let lowers = semantic_stack(&tmp.path().join("layers"), false);
    let out = tmp.path().join("chain.idx");
    build(&lowers, &out).unwrap();
    let ix = PersistentIndex::open(&out, &lowers).unwrap();
    assert!(verify(&ix, &lowers).unwrap().is_empty());
    // Edits inside the layers keep the layer roots: open() cannot tell, verify() can.
    write(&lowers[2].join("a/keep"), b"longer than before");
    write(&lowers[1].join("a/brand_new"), b"");
    std::fs::remove_file(lowers[0].join("a/top")).unwrap();
    write(&lowers[0].join("a/.wh.midfile"), b"");
    let ix = PersistentIndex::open(&out, &lowers).unwrap();
    let diffs = verify(&ix, &lowers).unwrap();
    let text = diffs.join("\n");
    for expected in [
        "/a/keep: size",
        "/a/brand_new: new, not in the index",
        "/a/top: gone, still in the index",
        "/a/midfile: gone, still in the index",
        "/a: whited-out names differ",
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
    build(&lowers, &out).unwrap();
    let ix = PersistentIndex::open(&out, &lowers).unwrap();
    assert_eq!(verify(&ix, &lowers).unwrap(), Vec::<String>::new());
}

#[test]
fn kernel_overlayfs_shows_what_the_index_holds() {
    if !is_root() {
        eprintln!("skipped: mounting kernel overlayfs needs root");
        return;
    }
    let tmp = scratch();
    let lowers = semantic_stack(&tmp.path().join("layers"), true);
    let out = tmp.path().join("chain.idx");
    build(&lowers, &out).unwrap();
    let ix = PersistentIndex::open(&out, &lowers).unwrap();
    let checked = assert_matches_kernel(&ix, &lowers);
    assert_eq!(checked + 1, ix.entry_count());
}

/// A small deterministic generator (xorshift64*), so random stacks are reproducible
/// from the seed printed on failure.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Fills layers with random trees over a small name space, so names collide between
/// layers as files, directories, symlinks, whiteouts and opaque markers.
fn random_stack(root: &Path, seed: u64, layers: usize, kernel_only: bool) -> Vec<PathBuf> {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let names = ["a", "b", "c", "d", "e", "f", "g"];
    let mut out = Vec::new();
    for l in 0..layers {
        let layer = root.join(format!("l{l}"));
        mkdir(&layer);
        let mut dirs = vec![layer.clone()];
        for _ in 0..120 {
            let parent = dirs[rng.below(dirs.len() as u64) as usize].clone();
            let name = names[rng.below(names.len() as u64) as usize];
            let p = parent.join(name);
            if std::fs::symlink_metadata(&p).is_ok() {
                continue;
            }
            match rng.below(10) {
                0..=2 => {
                    mkdir(&p);
                    if dirs.len() < 40 {
                        dirs.push(p.clone());
                    }
                    if rng.below(6) == 0 {
                        if kernel_only || rng.below(2) == 0 {
                            if is_root() {
                                setxattr(&p, "trusted.overlay.opaque", b"y");
                            }
                        } else {
                            write(&p.join(".wh..wh..opq"), b"");
                        }
                    }
                }
                3..=5 => write(&p, &vec![b'x'; rng.below(100) as usize]),
                6 => symlink(names[rng.below(names.len() as u64) as usize], &p),
                _ => {
                    if kernel_only || rng.below(2) == 0 {
                        if is_root() {
                            kernel_whiteout(&p);
                        }
                    } else {
                        write(&parent.join(format!(".wh.{name}")), b"");
                    }
                }
            }
        }
        out.push(layer);
    }
    for l in &out {
        freeze_atimes(l);
    }
    out
}

#[test]
fn random_stacks_match_the_union_and_the_kernel() {
    for seed in 1..=24u64 {
        let tmp = scratch();
        let kernel_only = seed % 2 == 0;
        let lowers = random_stack(tmp.path(), seed, 2 + (seed % 3) as usize, kernel_only);
        let out = tmp.path().join("chain.idx");
        build(&lowers, &out).unwrap();
        let ix = PersistentIndex::open(&out, &lowers).unwrap();
        eprintln!("random stack, seed {seed}: {} entries", ix.entry_count());
        let n = assert_matches_union(&ix, &lowers);
        if kernel_only && is_root() {
            assert_eq!(assert_matches_kernel(&ix, &lowers), n, "seed {seed}");
        }
    }
}

/// Rewrites both checksums after a deliberate edit, so only structural checks can catch it.
fn reseal(bytes: &mut [u8]) {
    let body = format::checksum(&bytes[HEADER_LEN..]);
    bytes[hdr::BODY_SUM..hdr::BODY_SUM + 8].copy_from_slice(&body.to_le_bytes());
    let head = format::checksum(&bytes[..hdr::HEADER_SUM]);
    bytes[hdr::HEADER_SUM..hdr::HEADER_SUM + 8].copy_from_slice(&head.to_le_bytes());
}

fn open_bytes(
    dir: &Path,
    bytes: &[u8],
    lowers: &[PathBuf],
) -> Result<PersistentIndex, PindexError> {
    let p = dir.join("damaged.idx");
    std::fs::write(&p, bytes).unwrap();
    PersistentIndex::open(&p, lowers)
}

/// Uses every accessor of every record (an opened file must never make them panic).
fn touch_everything(ix: &PersistentIndex) {
    let mut stack = vec![ix.root()];
    let mut seen = 0usize;
    while let Some(d) = stack.pop() {
        seen += 1;
        assert!(seen <= ix.dir_count() * 2, "directory cycle");
        let _ = (
            d.path(),
            d.lower_path(),
            d.lower_dirs().count(),
            d.whited().count(),
        );
        let _ = d.is_whited(OsStr::new("x"));
        for e in d.entries() {
            let _ = (
                e.attr(),
                e.name(),
                e.lower_path(),
                e.symlink_target(),
                e.lower_layer(),
            );
            let _ = ix.lookup(d.path(), e.name());
            let _ = d.lookup(e.name());
            if let Some(sub) = e.dir()
                && sub.id() > d.id()
            {
                stack.push(sub);
            }
        }
    }
}

#[test]
fn damaged_truncated_and_mismatched_files_are_refused() {
    let tmp = scratch();
    let lowers = semantic_stack(&tmp.path().join("layers"), false);
    let out = tmp.path().join("chain.idx");
    build(&lowers, &out).unwrap();
    let good = std::fs::read(&out).unwrap();
    let scratch = tmp.path();

    // Not an index at all, or cut short anywhere.
    let e = open_bytes(scratch, b"hello, this is not an index at all, but it is long enough to have a header, or is it? no, it has to be a bit longer than that to reach the full header size.", &lowers).unwrap_err();
    assert!(matches!(e, PindexError::BadMagic { .. }), "{e}");
    for len in [
        0,
        7,
        8,
        HEADER_LEN - 1,
        HEADER_LEN,
        good.len() / 2,
        good.len() - 1,
    ] {
        let e = open_bytes(scratch, &good[..len], &lowers).unwrap_err();
        assert!(
            matches!(
                e,
                PindexError::Truncated { .. } | PindexError::Corrupt { .. }
            ),
            "cut at {len}: {e}"
        );
        assert!(e.to_string().contains("damaged.idx"), "{e}");
    }
    let mut longer = good.clone();
    longer.extend_from_slice(&[0; 8]);
    let e = open_bytes(scratch, &longer, &lowers).unwrap_err();
    assert!(matches!(e, PindexError::Truncated { .. }), "{e}");

    // A flipped bit anywhere is caught by a checksum.
    let mut rng = Rng(7);
    for _ in 0..200 {
        let mut bad = good.clone();
        let at = rng.below(bad.len() as u64) as usize;
        bad[at] ^= 1 << rng.below(8);
        let e = open_bytes(scratch, &bad, &lowers).unwrap_err();
        assert!(
            matches!(
                e,
                PindexError::Corrupt { .. }
                    | PindexError::BadMagic { .. }
                    | PindexError::Version { .. }
                    | PindexError::Truncated { .. }
            ),
            "flip at {at}: {e}"
        );
    }

    // Another format version is refused by name, not misread.
    let mut v2 = good.clone();
    v2[hdr::VERSION..hdr::VERSION + 4].copy_from_slice(&2u32.to_le_bytes());
    reseal(&mut v2);
    let e = open_bytes(scratch, &v2, &lowers).unwrap_err();
    assert!(matches!(e, PindexError::Version { found: 2, .. }), "{e}");

    // Bad offsets with valid checksums: caught by the structural checks.
    let entries_off =
        u64::from_le_bytes(good[hdr::ENTRIES_OFF..][..8].try_into().unwrap()) as usize;
    let name_off = entries_off + format::ENTRY_REC + format::entry::NAME_OFF;
    let mut bad = good.clone();
    bad[name_off..name_off + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    reseal(&mut bad);
    let e = open_bytes(scratch, &bad, &lowers).unwrap_err();
    assert!(
        e.to_string().contains("entry 1: string out of bounds"),
        "{e}"
    );
    let mut bad = good.clone();
    bad[hdr::DIRS_OFF..hdr::DIRS_OFF + 8].copy_from_slice(&(u64::MAX - 3).to_le_bytes());
    reseal(&mut bad);
    let e = open_bytes(scratch, &bad, &lowers).unwrap_err();
    assert!(
        e.to_string().contains("directory section out of bounds"),
        "{e}"
    );

    // Random damage with valid checksums: refused or usable, never a panic.
    let mut opened = 0;
    for _ in 0..300 {
        let mut bad = good.clone();
        for _ in 0..1 + rng.below(4) {
            let at = HEADER_LEN + rng.below((bad.len() - HEADER_LEN) as u64) as usize;
            bad[at] = rng.next() as u8;
        }
        if rng.below(4) == 0 {
            let at = rng.below(hdr::HEADER_SUM as u64) as usize;
            bad[at] = rng.next() as u8;
        }
        reseal(&mut bad);
        if let Ok(ix) = open_bytes(scratch, &bad, &lowers) {
            opened += 1;
            touch_everything(&ix);
        }
    }
    eprintln!("random damage: {opened} of 300 damaged files passed the structural checks");

    // The right file for other layers.
    let e = PersistentIndex::open(&out, &lowers[..2]).unwrap_err();
    assert!(
        matches!(e, PindexError::Mismatch { .. }) && e.to_string().contains("3 layers, 2 given"),
        "{e}"
    );
    let swapped = vec![lowers[1].clone(), lowers[0].clone(), lowers[2].clone()];
    let e = PersistentIndex::open(&out, &swapped).unwrap_err();
    assert!(
        matches!(e, PindexError::Mismatch { .. }) && e.to_string().contains("layer 0"),
        "{e}"
    );
    let missing = vec![
        lowers[0].clone(),
        lowers[1].clone(),
        tmp.path().join("nope"),
    ];
    let e = PersistentIndex::open(&out, &missing).unwrap_err();
    assert!(
        matches!(e, PindexError::Io { .. }) && e.to_string().contains("nope"),
        "{e}"
    );
    // A layer replaced by a new directory of the same name is another layer.
    let replaced = tmp.path().join("layers/l2-old");
    std::fs::rename(&lowers[2], &replaced).unwrap();
    mkdir(&lowers[2]);
    let e = PersistentIndex::open(&out, &lowers).unwrap_err();
    assert!(
        matches!(e, PindexError::Mismatch { .. }) && e.to_string().contains("layer 2"),
        "{e}"
    );
    std::fs::remove_dir(&lowers[2]).unwrap();
    std::fs::rename(&replaced, &lowers[2]).unwrap();
    PersistentIndex::open(&out, &lowers).unwrap();
}

#[test]
fn rebuilding_replaces_the_file_atomically() {
    let tmp = scratch();
    let lowers = vec![tmp.path().join("top"), tmp.path().join("bottom")];
    write(&lowers[0].join("one"), b"1");
    write(&lowers[1].join("two"), b"2");
    let dir = tmp.path().join("out");
    mkdir(&dir);
    let out = dir.join("chain.idx");
    build(&lowers, &out).unwrap();
    let old = PersistentIndex::open(&out, &lowers).unwrap();
    write(&lowers[0].join("three"), b"3");
    build(&lowers, &out).unwrap();
    let new = PersistentIndex::open(&out, &lowers).unwrap();
    // The old mapping still reads the old file; the new one sees the change.
    assert!(old.lookup(Path::new(""), OsStr::new("three")).is_none());
    assert_eq!(old.root().len(), 2);
    assert!(new.lookup(Path::new(""), OsStr::new("three")).is_some());
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["chain.idx"], "temporary files left behind");
    // Unwritable destinations and missing layers fail with the path named.
    let e = build(&lowers, &tmp.path().join("no/such/dir/x.idx")).unwrap_err();
    assert!(
        matches!(e, PindexError::Io { .. }) && e.to_string().contains("no/such/dir"),
        "{e}"
    );
    let e = build(&[tmp.path().join("absent")], &out).unwrap_err();
    assert!(e.to_string().contains("absent"), "{e}");
    PersistentIndex::open(&out, &lowers).unwrap();
}

#[test]
fn twenty_thousand_entries_build_and_probe() {
    let tmp = scratch();
    let lowers: Vec<PathBuf> = (0..3).map(|i| tmp.path().join(format!("l{i}"))).collect();
    let started = Instant::now();
    let mut names = Vec::new();
    for d in 0..100 {
        for layer in &lowers {
            for s in 0..4 {
                mkdir(&layer.join(format!("dir{d:03}/sub{s}")));
            }
        }
        for f in 0..200 {
            let layer = &lowers[(d * 7 + f) % 3];
            let rel = PathBuf::from(format!("dir{d:03}/sub{}", f % 4)).join(format!("file-{f:04}"));
            std::fs::File::create(layer.join(&rel)).unwrap();
            names.push(rel);
        }
        // Whiteouts on top of some bottom-layer names.
        write(&lowers[2].join(format!("dir{d:03}/hidden")), b"");
        write(&lowers[0].join(format!("dir{d:03}/.wh.hidden")), b"");
    }
    eprintln!("made 20000 files in {:?}", started.elapsed());
    let out = tmp.path().join("big.idx");
    let stats = build(&lowers, &out).unwrap();
    eprintln!(
        "built: {} entries, {} dirs, {} bytes ({} bytes/entry), walk {:?}, write {:?}",
        stats.entries,
        stats.dirs,
        stats.bytes,
        stats.bytes / stats.entries as u64,
        stats.walk,
        stats.write
    );
    assert_eq!(stats.entries, 1 + 100 + 400 + 20000);
    let started = Instant::now();
    let ix = PersistentIndex::open(&out, &lowers).unwrap();
    eprintln!("opened and validated in {:?}", started.elapsed());
    let started = Instant::now();
    for rel in &names {
        let e = ix.lookup(rel.parent().unwrap(), rel.file_name().unwrap());
        assert!(
            e.is_some_and(|e| e.kind() == libc::S_IFREG),
            "{}",
            rel.display()
        );
    }
    let by_path = started.elapsed();
    let dirs: Vec<_> = (0..100)
        .flat_map(|d| (0..4).map(move |s| format!("dir{d:03}/sub{s}")))
        .map(|p| ix.dir(Path::new(&p)).unwrap())
        .collect();
    let started = Instant::now();
    let mut found = 0;
    for d in &dirs {
        for e in d.entries() {
            found += d.lookup(e.name()).is_some() as usize;
        }
    }
    let by_dir = started.elapsed();
    let started = Instant::now();
    let mut missing = 0;
    for rel in &names {
        let mut n = rel.file_name().unwrap().to_os_string();
        n.push("-missing");
        missing += ix.lookup(rel.parent().unwrap(), &n).is_none() as usize;
    }
    let misses = started.elapsed();
    assert_eq!((found, missing), (20000, 20000));
    for d in 0..100 {
        let dir = ix.dir(Path::new(&format!("dir{d:03}"))).unwrap();
        assert!(dir.is_whited(OsStr::new("hidden")));
        assert!(dir.lookup(OsStr::new("hidden")).is_none());
    }
    eprintln!(
        "20000 lookups by path {:?} ({} ns each), by directory record {:?}, 20000 misses {:?}",
        by_path,
        by_path.as_nanos() / 20000,
        by_dir,
        misses
    );
}
