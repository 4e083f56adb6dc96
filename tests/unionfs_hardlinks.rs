//! Hardlinks: link() works on lower and upper files; names of one lower hardlink group
//! stay one file after copy-up (a write through one name shows through the others);
//! nlink is right, and 0 for an open unlinked file. The reference is kernel overlayfs
//! with `index=on` (which keeps lower hardlinks together), or ext4 where noted.

use std::fs;
use std::os::unix::fs::{FileExt, MetadataExt};

use integration_tests::mount::{FuseMount, LayerStack, Twin, layers};

const INDEX: &str = "index=on";

fn group(s: &LayerStack) {
    let l = s.lower(0);
    layers::file(&l.join("g1"), b"original\n", 0o644).expect("file");
    fs::create_dir(l.join("d")).expect("dir");
    fs::hard_link(l.join("g1"), l.join("g2")).expect("link");
    fs::hard_link(l.join("g1"), l.join("d/g3")).expect("link");
    layers::file(&l.join("single"), b"single\n", 0o644).expect("file");
}

#[test]
fn link_of_lower_and_upper_files() {
    let mut t = Twin::new(1, INDEX, "", group);
    t.both(|r| {
        fs::hard_link(r.join("single"), r.join("single-link")).expect("link a lower file");
        fs::write(r.join("upper"), b"upper\n").expect("create");
        fs::hard_link(r.join("upper"), r.join("d/upper-link")).expect("link an upper file");
        let a = fs::metadata(r.join("single")).expect("stat");
        let b = fs::metadata(r.join("single-link")).expect("stat");
        assert_eq!(
            (a.ino(), a.nlink()),
            (b.ino(), 2),
            "linked names share an inode, nlink 2"
        );
        fs::OpenOptions::new()
            .write(true)
            .open(r.join("single-link"))
            .expect("open")
            .write_all_at(b"S", 0)
            .expect("write");
        assert_eq!(
            fs::read(r.join("single")).expect("read"),
            b"Single\n",
            "write through one name shows through the other"
        );
    });
    t.assert_same("after link()");
    t.remount();
    t.assert_same("after remount");
}

#[test]
fn a_lower_hardlink_group_stays_one_file_after_copy_up() {
    let mut t = Twin::new(1, INDEX, "", group);
    t.both(|r| {
        let f = fs::OpenOptions::new()
            .write(true)
            .open(r.join("g2"))
            .expect("open g2");
        f.write_all_at(b"O", 0).expect("write through g2");
        drop(f);
        for other in ["g1", "d/g3"] {
            assert_eq!(
                fs::read(r.join(other)).expect("read"),
                b"Original\n",
                "{other} must see the write to g2"
            );
        }
        let inos: Vec<(u64, u64)> = ["g1", "g2", "d/g3"]
            .iter()
            .map(|n| {
                let m = fs::metadata(r.join(n)).expect("stat");
                (m.ino(), m.nlink())
            })
            .collect();
        assert!(
            inos.iter().all(|x| *x == (inos[0].0, 3)),
            "one inode, nlink 3: {inos:?}"
        );
    });
    t.assert_same("after writing through one name of a lower hardlink group");
    t.remount();
    t.assert_same("after remount");
    t.both(|r| {
        fs::OpenOptions::new()
            .write(true)
            .open(r.join("d/g3"))
            .expect("open")
            .write_all_at(b"!", 8)
            .expect("write");
        assert_eq!(
            fs::read(r.join("g1")).expect("read"),
            b"Original!",
            "still one file after a remount"
        );
    });
}

#[test]
fn nlink_follows_unlink_and_link_in_a_lower_group() {
    let mut t = Twin::new(1, INDEX, "", group);
    let r = t.same("nlink after unlink and link", |r| {
        fs::remove_file(r.join("g1")).expect("unlink one name");
        let after_unlink = fs::metadata(r.join("g2")).expect("stat").nlink();
        fs::hard_link(r.join("g2"), r.join("g4")).expect("link");
        let after_link = fs::metadata(r.join("d/g3")).expect("stat").nlink();
        (after_unlink, after_link)
    });
    assert_eq!(r, (2, 3));
    t.assert_same("after unlink and link in a group");
    t.remount();
    t.assert_same("after remount");
}

#[test]
fn an_open_unlinked_file_has_nlink_zero_and_stays_usable() {
    let s = LayerStack::new(1);
    layers::file(&s.lower(0).join("lower"), b"lower data\n", 0o644).expect("file");
    let _m = FuseMount::mount(&s, "");
    fs::write(s.m("upper"), b"upper data\n").expect("create");
    for name in ["upper", "lower"] {
        let f = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(s.m(name))
            .expect("open");
        fs::remove_file(s.m(name)).expect("unlink");
        assert_eq!(
            f.metadata().expect("fstat").nlink(),
            0,
            "{name}: fstat of an open unlinked file (ext4 says 0)"
        );
        f.write_all_at(b"X", 0).expect("write after unlink");
        let mut buf = [0u8; 3];
        f.read_exact_at(&mut buf, 0).expect("read after unlink");
        assert_eq!(buf[0], b'X', "{name}");
        assert!(
            fs::symlink_metadata(s.m(name)).is_err(),
            "{name} still visible"
        );
    }
}
