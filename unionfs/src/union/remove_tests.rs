//! The node table's view of an inode number freed by a removal and reused at once.

use std::ffi::OsStr;

use super::super::node::{NodeState, ROOT_ID};
use super::super::{Caller, NewEntry, Union, UnionConfig};
use crate::layer::LayerStack;

/// A writable union over one empty lower layer, with `d1/f` and an empty `d2`.
fn union_with_a_file(dir: &std::path::Path) -> Union {
    for d in ["lower", "upper", "work"] {
        std::fs::create_dir(dir.join(d)).expect("mkdir");
    }
    let stack = LayerStack::open(&[dir.join("lower")], Some(&dir.join("upper"))).expect("stack");
    let union = Union::new(stack, Some(&dir.join("work")), UnionConfig::default()).expect("union");
    let root = Caller {
        uid: 0,
        gid: 0,
        umask: 0o022,
    };
    for d in ["d1", "d2"] {
        union
            .create_entry(ROOT_ID, OsStr::new(d), NewEntry::Dir { mode: 0o755 }, root)
            .expect("mkdir in the union");
    }
    let (d1, _) = union.lookup(ROOT_ID, OsStr::new("d1")).expect("lookup d1");
    let file = NewEntry::File {
        mode: 0o644,
        flags: libc::O_RDWR,
    };
    union
        .create_entry(d1.id, OsStr::new("f"), file, root)
        .expect("create d1/f");
    union
}

/// While `d1/f` is being removed, its inode number turns up again for a new `d2/g`
/// (the upper filesystem reused it). The new file must get a fresh node generation,
/// not become a hard link of the removed one; and finishing the removal must leave
/// the new file's node alone.
#[test]
fn a_reused_inode_number_is_a_new_file_not_a_hard_link() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let union = union_with_a_file(tmp.path());
    let (d1, _) = union.lookup(ROOT_ID, OsStr::new("d1")).expect("lookup d1");
    let (d2, _) = union.lookup(ROOT_ID, OsStr::new("d2")).expect("lookup d2");
    let (old, _) = union.lookup(d1.id, OsStr::new("f")).expect("lookup d1/f");
    let old_generation = old.generation();

    let mut fresh: NodeState = old.snapshot();
    fresh.rename(d2.id, OsStr::new("g"));
    fresh.unlinked = false;

    let going = union.mark_going(&d1, OsStr::new("f"));
    // ... the upper entry is unlinked here, and its inode number handed out again:
    let reused = union
        .nodes
        .bind(&d2, OsStr::new("g"), libc::S_IFREG, old.id, || fresh);
    going.done();
    union.unbind_name(&d1, OsStr::new("f"));

    assert_eq!(reused.id, old.id, "same inode number, same node id");
    assert_ne!(
        reused.generation(),
        old_generation,
        "a new file behind the id"
    );
    let st = reused.snapshot();
    assert_eq!((st.parent(), st.name()), (d2.id, OsStr::new("g")));
    assert!(st.aliases.is_empty(), "not a hard link of the removed file");
    assert!(!st.unlinked, "the removal of d1/f did not unlink d2/g");
}

/// A removal that fails takes its early mark back.
#[test]
fn a_failed_removal_leaves_the_node_linked() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let union = union_with_a_file(tmp.path());
    let (d1, _) = union.lookup(ROOT_ID, OsStr::new("d1")).expect("lookup d1");
    let (f, _) = union.lookup(d1.id, OsStr::new("f")).expect("lookup d1/f");
    drop(union.mark_going(&d1, OsStr::new("f")));
    assert!(!f.snapshot().unlinked);
}
