//! The lower path a node derives from its directory, and what a rename does to it.

use std::ffi::OsStr;
use std::path::Path;
use std::sync::Arc;

use super::{LowerPath, NodeName, NodeState};

fn dir_state() -> NodeState {
    NodeState::new(1, OsStr::new("etc"), LowerPath::at(Path::new("etc")))
}

#[test]
fn files_share_their_directorys_path_and_directories_get_their_own() {
    let dir = dir_state();
    let a = NodeState::new(
        7,
        OsStr::new("passwd"),
        dir.child_lower_path(OsStr::new("passwd"), false),
    );
    let b = NodeState::new(
        7,
        OsStr::new("group"),
        dir.child_lower_path(OsStr::new("group"), false),
    );
    assert_eq!(a.lower_path(), Path::new("etc/passwd"));
    assert_eq!(b.lower_path(), Path::new("etc/group"));
    match (&a.lower_path, &b.lower_path, &dir.lower_path) {
        (LowerPath::In(one), LowerPath::In(two), LowerPath::At(own)) => {
            assert!(
                Arc::ptr_eq(one, two) && Arc::ptr_eq(one, own),
                "one shared path"
            );
        }
        other => panic!("files share their directory's own path, not {other:?}"),
    }
    let sub = dir.child_lower_path(OsStr::new("apt"), true);
    assert_eq!(sub, LowerPath::at(Path::new("etc/apt")));
}

#[test]
fn a_rename_keeps_the_lower_entry_where_it_was() {
    let dir = dir_state();
    let mut file = NodeState::new(
        7,
        OsStr::new("hosts"),
        dir.child_lower_path(OsStr::new("hosts"), false),
    );
    file.rename(9, OsStr::new("hosts.old"));
    assert_eq!((file.parent(), file.name()), (9, OsStr::new("hosts.old")));
    assert_eq!(
        file.lower_path(),
        Path::new("etc/hosts"),
        "the lower copy did not move"
    );

    let mut sub = NodeState::new(
        7,
        OsStr::new("apt"),
        dir.child_lower_path(OsStr::new("apt"), true),
    );
    sub.rename(9, OsStr::new("apt2"));
    assert_eq!(
        sub.lower_path(),
        Path::new("etc/apt"),
        "a directory keeps its merge source"
    );
}

#[test]
fn names_of_any_length_and_bytes_round_trip() {
    use std::os::unix::ffi::OsStrExt;
    for name in [
        &b""[..],
        b"a",
        b"fifteen-bytes..",
        b"sixteen-bytes...",
        b"\xff\xfe not utf-8 and longer than fifteen",
    ] {
        let n = NodeName::new(OsStr::from_bytes(name));
        assert_eq!((*n).as_bytes(), name);
        assert_eq!(n.clone(), n);
    }
}
