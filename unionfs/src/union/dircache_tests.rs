//! Dropping directory indexes changes nothing anyone can see: the same operations on a
//! union that keeps no index beyond its use and on one that keeps all give the same
//! listings and the same upper layer.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use super::super::node::{NodeId, ROOT_ID};
use super::super::{Caller, NewEntry, Union, UnionConfig};
use crate::layer::LayerStack;

const ROOT: Caller = Caller {
    uid: 0,
    gid: 0,
    umask: 0o022,
};

/// Two lower layers: the bottom one has `a/{x,y,z}`, `b/{p,q}` and `c/gone`; the top
/// one adds `a/w` and whites out `c/gone`.
fn make_layers(dir: &Path) {
    for (path, is_dir) in [
        ("bottom/a", true),
        ("bottom/a/x", false),
        ("bottom/a/y", false),
        ("bottom/a/z", false),
        ("bottom/b", true),
        ("bottom/b/p", false),
        ("bottom/b/q", false),
        ("bottom/c", true),
        ("bottom/c/gone", false),
        ("top/a", true),
        ("top/a/w", false),
        ("top/c", true),
        ("upper", true),
        ("work", true),
    ] {
        let p = dir.join(path);
        if is_dir {
            std::fs::create_dir_all(&p).expect("mkdir");
        } else {
            std::fs::write(&p, path).expect("write");
        }
    }
    nix::sys::stat::mknod(
        &dir.join("top/c/gone"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
        0,
    )
    .expect("mknod whiteout");
}

fn union_over(dir: &Path, dir_cache_entries: usize) -> Union {
    let stack = LayerStack::open(
        &[dir.join("top"), dir.join("bottom")],
        Some(&dir.join("upper")),
    )
    .expect("stack");
    let cfg = UnionConfig {
        dir_cache_entries,
        ..UnionConfig::default()
    };
    Union::new(stack, Some(&dir.join("work")), cfg).expect("union")
}

fn id(union: &Union, path: &str) -> NodeId {
    let mut id = ROOT_ID;
    for part in path.split('/').filter(|p| !p.is_empty()) {
        id = union.lookup(id, OsStr::new(part)).expect(path).0.id;
    }
    id
}

/// Every merged directory's listing, by path.
fn listings(union: &Union) -> BTreeMap<String, Vec<OsString>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![String::new()];
    while let Some(path) = todo.pop() {
        let fh = union.opendir(id(union, &path)).expect("opendir");
        let entries = union.readdir(fh, 0).expect("readdir");
        union.releasedir(fh);
        let mut names = Vec::new();
        for e in entries.iter().filter(|e| e.name != "." && e.name != "..") {
            if e.kind == libc::S_IFDIR {
                todo.push(format!("{path}/{}", e.name.to_string_lossy()));
            }
            names.push(e.name.clone());
        }
        out.insert(path, names);
    }
    out
}

/// The upper layer as (path, kind) pairs.
fn upper_tree(upper: &Path) -> Vec<(String, &'static str)> {
    let mut out = Vec::new();
    let mut todo = vec![upper.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for e in std::fs::read_dir(&dir).expect("read upper") {
            let e = e.expect("entry");
            let t = e.file_type().expect("type");
            let rel = e
                .path()
                .strip_prefix(upper)
                .expect("inside")
                .to_string_lossy()
                .into_owned();
            let kind = if t.is_dir() {
                todo.push(e.path());
                "dir"
            } else if t.is_char_device() {
                "whiteout"
            } else {
                "file"
            };
            out.push((rel, kind));
        }
    }
    out.sort();
    out
}

fn file() -> NewEntry<'static> {
    NewEntry::File {
        mode: 0o644,
        flags: libc::O_RDWR,
    }
}

#[test]
fn a_union_that_drops_indexes_behaves_like_one_that_keeps_them() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (small, all) = (tmp.path().join("small"), tmp.path().join("all"));
    make_layers(&small);
    make_layers(&all);
    let unions = [union_over(&small, 0), union_over(&all, usize::MAX)];

    type Step = fn(&Union);
    let steps: [(&str, Step); 9] = [
        ("look names up", |u| {
            for p in ["a/x", "a/y", "b/p", "a/w"] {
                id(u, p);
            }
        }),
        ("create c/new and mkdir d", |u| {
            u.create_entry(id(u, "c"), OsStr::new("new"), file(), ROOT)
                .expect("create");
            u.create_entry(
                ROOT_ID,
                OsStr::new("d"),
                NewEntry::Dir { mode: 0o755 },
                ROOT,
            )
            .expect("mkdir");
        }),
        ("unlink a lower file", |u| {
            u.unlink(id(u, "a"), OsStr::new("y")).expect("unlink");
        }),
        ("rename a/x to b/x2", |u| {
            u.rename(id(u, "a"), OsStr::new("x"), id(u, "b"), OsStr::new("x2"), 0)
                .expect("rename");
        }),
        ("unlink the renamed file", |u| {
            u.unlink(id(u, "b"), OsStr::new("x2")).expect("unlink");
        }),
        ("create over a whiteout", |u| {
            u.create_entry(id(u, "a"), OsStr::new("y"), file(), ROOT)
                .expect("create");
            u.create_entry(id(u, "c"), OsStr::new("gone"), file(), ROOT)
                .expect("create");
        }),
        ("rename b/p into d", |u| {
            u.rename(id(u, "b"), OsStr::new("p"), id(u, "d"), OsStr::new("p"), 0)
                .expect("rename");
        }),
        ("rename directory b to e", |u| {
            u.rename(ROOT_ID, OsStr::new("b"), ROOT_ID, OsStr::new("e"), 0)
                .expect("rename dir");
        }),
        ("empty and remove c", |u| {
            let c = id(u, "c");
            for n in ["new", "gone"] {
                u.unlink(c, OsStr::new(n)).expect("unlink");
            }
            u.rmdir(ROOT_ID, OsStr::new("c")).expect("rmdir");
        }),
    ];
    for (what, step) in steps {
        for u in &unions {
            step(u);
        }
        assert_eq!(listings(&unions[0]), listings(&unions[1]), "after: {what}");
        assert_eq!(
            upper_tree(&small.join("upper")),
            upper_tree(&all.join("upper")),
            "upper after: {what}"
        );
    }
    // A look into four directories, one after another: with a budget of nothing, the
    // earlier ones' indexes go as the later ones are built.
    let indexed = |u: &Union| {
        let nodes: Vec<_> = ["", "a", "d", "e"]
            .iter()
            .map(|p| u.nodes.get(id(u, p)).expect("node"))
            .collect();
        for node in &nodes {
            let fh = u.opendir(node.id).expect("opendir");
            u.readdir(fh, 0).expect("readdir");
            u.releasedir(fh);
        }
        nodes
            .iter()
            .filter(|n| {
                let d = n.dir_part();
                d.index.read().map(|g| g.is_some()).unwrap_or(false)
            })
            .count()
    };
    let (small_count, all_count) = (indexed(&unions[0]), indexed(&unions[1]));
    assert!(
        small_count < 4,
        "the small union dropped some: {small_count} of 4 left"
    );
    assert_eq!(all_count, 4, "the unbounded one kept them all");
}
