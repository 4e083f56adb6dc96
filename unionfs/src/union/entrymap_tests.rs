//! The compact map against a plain `HashMap` on the same operations.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};

use super::EntryMap;
use crate::union::dirindex::MergedEntry;

fn entry(n: u64) -> MergedEntry {
    let dir = n.is_multiple_of(3);
    MergedEntry {
        kind: if dir { libc::S_IFDIR } else { libc::S_IFREG },
        upper: n.is_multiple_of(2),
        top_lower: (!n.is_multiple_of(5)).then_some((n % 7) as u16),
        lower_dirs: if dir {
            (0..(n % 4) as u16).collect()
        } else {
            Vec::new()
        },
        raw_ino: n * 1000 + 7,
        layer: (n % 11) as u16,
        prebuilt: (n % 4 == 1).then_some(n as u32),
    }
}

fn same(map: &EntryMap, model: &HashMap<OsString, MergedEntry>) {
    assert_eq!(map.len(), model.len());
    let mut got: Vec<(OsString, MergedEntry)> =
        map.iter().map(|(n, e)| (n.to_os_string(), e)).collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let mut want: Vec<(OsString, MergedEntry)> =
        model.iter().map(|(n, e)| (n.clone(), e.clone())).collect();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got, want);
    for (name, e) in model {
        assert_eq!(map.get(name).as_ref(), Some(e));
    }
}

#[test]
fn behaves_like_a_hash_map_through_inserts_updates_removals_and_compaction() {
    let mut map = EntryMap::default();
    let mut model = HashMap::new();
    for n in 0..2000u64 {
        let name = OsString::from(format!("name-{n}"));
        map.insert(&name, entry(n));
        model.insert(name, entry(n));
    }
    same(&map, &model);
    map.shrink_to_fit();
    same(&map, &model);
    // Replace some, change layer lists in place, remove most (forcing compaction).
    for n in (0..2000u64).step_by(3) {
        let name = OsString::from(format!("name-{n}"));
        map.insert(&name, entry(n + 1));
        model.insert(name, entry(n + 1));
    }
    for n in (0..2000u64).step_by(6) {
        let name = OsString::from(format!("name-{n}"));
        let changed = map.update(&name, |e| e.lower_dirs.push(42));
        assert!(changed);
        model.get_mut(&name).expect("present").lower_dirs.push(42);
    }
    assert!(!map.update(OsStr::new("absent"), |_| {}));
    same(&map, &model);
    for n in 0..1900u64 {
        let name = OsString::from(format!("name-{n}"));
        assert_eq!(map.remove(&name), model.remove(&name));
    }
    assert_eq!(map.remove(OsStr::new("name-0")), None);
    same(&map, &model);
    assert!(
        map.slots.len() < 2 * map.len() + 65,
        "removed slots were compacted away"
    );
    for n in 1900..2000u64 {
        let name = OsString::from(format!("name-{n}"));
        map.remove(&name);
    }
    assert!(map.is_empty());
    assert!(!map.contains_key(OsStr::new("name-1999")));
}

#[test]
fn names_of_every_length_and_byte() {
    let mut map = EntryMap::default();
    let long = OsString::from("x".repeat(255));
    let raw = <OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"\xff\x01a");
    for (i, name) in [OsStr::new("a"), &long, raw].into_iter().enumerate() {
        map.insert(name, entry(i as u64));
        assert_eq!(map.get(name), Some(entry(i as u64)));
    }
    assert_eq!(map.get(OsStr::new("b")), None);
}
