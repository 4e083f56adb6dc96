//! The merged entries of one directory, stored compactly.
//!
//! A `HashMap<OsString, MergedEntry>` costs about 130 bytes an entry: the name in its own
//! heap block, a 56-byte value, and the table's slack around both. A walk of an image
//! holds one such entry for every name, and an `ls -l` of a 10,000-entry directory
//! builds 10,000 at once, so here the names share one byte buffer, each entry is a
//! 32-byte slot, and the hash table holds only slot numbers: about 60 bytes an entry.
//! Values go in and come out as [`MergedEntry`]; a directory's list of merged layers
//! lives in a shared buffer too.

use std::ffi::OsStr;
use std::hash::{BuildHasher, RandomState};
use std::os::unix::ffi::OsStrExt;

use hashbrown::HashTable;

use super::dirindex::MergedEntry;
use crate::layer::LayerIdx;

/// No layer (`LayerIdx::MAX` is never one: see [`crate::layer::MAX_LAYERS`]).
const NO_LAYER: u16 = LayerIdx::MAX;
/// No record in the persistent index.
const NO_RECORD: u32 = u32::MAX;

/// One entry, with its name and merged layers as ranges of the shared buffers.
#[derive(Clone, Copy, Debug)]
struct Slot {
    raw_ino: u64,
    name_off: u32,
    prebuilt: u32,
    dirs_off: u32,
    dirs_len: u16,
    layer: LayerIdx,
    top_lower: LayerIdx,
    name_len: u16,
    /// `S_IFMT` bits shifted down by 12; 0 marks a removed entry.
    kind: u8,
    upper: bool,
}

/// A directory's merged names, each with its [`MergedEntry`].
#[derive(Clone, Debug, Default)]
pub struct EntryMap {
    /// Slot numbers, hashed by name.
    table: HashTable<u32>,
    slots: Vec<Slot>,
    names: Vec<u8>,
    dirs: Vec<LayerIdx>,
    /// Layer-list elements no live entry points at any more.
    stale_dirs: usize,
    live: usize,
    hasher: RandomState,
}

fn name_of<'a>(names: &'a [u8], slot: &Slot) -> &'a [u8] {
    let start = slot.name_off as usize;
    &names[start..start + slot.name_len as usize]
}

impl EntryMap {
    /// Number of names.
    pub fn len(&self) -> usize {
        self.live
    }

    /// True when the directory is empty.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// True when `name` is a merged name here.
    pub fn contains_key(&self, name: &OsStr) -> bool {
        self.position(name.as_bytes()).is_some()
    }

    /// The entry of `name`.
    pub fn get(&self, name: &OsStr) -> Option<MergedEntry> {
        self.position(name.as_bytes())
            .map(|i| self.decode(&self.slots[i as usize]))
    }

    /// Sets the entry of `name`, adding the name if new. (Names are at most 255 bytes:
    /// every one comes from a layer directory or passed the union's checks.)
    pub fn insert(&mut self, name: &OsStr, entry: MergedEntry) {
        let name = name.as_bytes();
        if let Some(i) = self.position(name) {
            self.encode_into(i as usize, &entry);
            return;
        }
        let i = u32::try_from(self.slots.len()).expect("fewer than 2^32 entries");
        let name_off = u32::try_from(self.names.len()).expect("names under 4 GiB");
        self.names.extend_from_slice(name);
        self.slots.push(Slot {
            raw_ino: 0,
            name_off,
            prebuilt: NO_RECORD,
            dirs_off: 0,
            dirs_len: 0,
            layer: NO_LAYER,
            top_lower: NO_LAYER,
            name_len: name.len().min(u16::MAX as usize) as u16,
            kind: 0,
            upper: false,
        });
        self.encode_into(i as usize, &entry);
        let (slots, names, hasher) = (&self.slots, &self.names, &self.hasher);
        self.table.insert_unique(hasher.hash_one(name), i, |&j| {
            hasher.hash_one(name_of(names, &slots[j as usize]))
        });
        self.live += 1;
    }

    /// Removes `name`, returning its entry.
    pub fn remove(&mut self, name: &OsStr) -> Option<MergedEntry> {
        let name = name.as_bytes();
        let (slots, names) = (&self.slots, &self.names);
        let hash = self.hasher.hash_one(name);
        let found = self
            .table
            .find_entry(hash, |&i| name_of(names, &slots[i as usize]) == name)
            .ok()?;
        let (i, _) = found.remove();
        let entry = self.decode(&self.slots[i as usize]);
        self.slots[i as usize].kind = 0;
        self.stale_dirs += entry.lower_dirs.len();
        self.live -= 1;
        if self.slots.len() > 2 * self.live + 64 {
            self.compact();
        }
        Some(entry)
    }

    /// Changes the entry of `name` in place; false when there is no such name.
    pub fn update(&mut self, name: &OsStr, change: impl FnOnce(&mut MergedEntry)) -> bool {
        let Some(i) = self.position(name.as_bytes()) else {
            return false;
        };
        let mut entry = self.decode(&self.slots[i as usize]);
        change(&mut entry);
        self.encode_into(i as usize, &entry);
        true
    }

    /// Every name with its entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&OsStr, MergedEntry)> + '_ {
        self.slots
            .iter()
            .filter(|s| s.kind != 0)
            .map(|s| (OsStr::from_bytes(name_of(&self.names, s)), self.decode(s)))
    }

    /// Returns spare capacity and drops superseded layer lists (after a build: the map is
    /// then mostly only read).
    pub fn shrink_to_fit(&mut self) {
        if self.stale_dirs > 0 || self.slots.len() > self.live {
            self.compact();
            return;
        }
        self.slots.shrink_to_fit();
        self.names.shrink_to_fit();
        self.dirs.shrink_to_fit();
        let (slots, names, hasher) = (&self.slots, &self.names, &self.hasher);
        self.table
            .shrink_to_fit(|&j| hasher.hash_one(name_of(names, &slots[j as usize])));
    }

    fn position(&self, name: &[u8]) -> Option<u32> {
        if name.len() > u16::MAX as usize {
            return None;
        }
        let hash = self.hasher.hash_one(name);
        self.table
            .find(hash, |&i| {
                name_of(&self.names, &self.slots[i as usize]) == name
            })
            .copied()
    }

    fn decode(&self, s: &Slot) -> MergedEntry {
        let layer = |l: LayerIdx| (l != NO_LAYER).then_some(l);
        let start = s.dirs_off as usize;
        MergedEntry {
            kind: (s.kind as u32) << 12,
            upper: s.upper,
            top_lower: layer(s.top_lower),
            lower_dirs: self.dirs[start..start + s.dirs_len as usize].to_vec(),
            raw_ino: s.raw_ino,
            layer: s.layer,
            prebuilt: (s.prebuilt != NO_RECORD).then_some(s.prebuilt),
        }
    }

    fn encode_into(&mut self, i: usize, e: &MergedEntry) {
        let old = self.slots[i];
        let start = old.dirs_off as usize;
        let same_dirs = self.dirs[start..start + old.dirs_len as usize] == e.lower_dirs[..];
        let (dirs_off, dirs_len) = if same_dirs {
            (old.dirs_off, old.dirs_len)
        } else if e.lower_dirs.is_empty() {
            self.stale_dirs += old.dirs_len as usize;
            (0, 0)
        } else {
            self.stale_dirs += old.dirs_len as usize;
            // Appended; the old range becomes garbage until the next compaction.
            let off = u32::try_from(self.dirs.len()).expect("layer lists under 4 GiB");
            self.dirs.extend_from_slice(&e.lower_dirs);
            (off, e.lower_dirs.len() as u16)
        };
        let kind = (e.kind >> 12) as u8;
        debug_assert!(kind != 0, "an entry has a file type");
        self.slots[i] = Slot {
            raw_ino: e.raw_ino,
            name_off: old.name_off,
            prebuilt: e.prebuilt.unwrap_or(NO_RECORD),
            dirs_off,
            dirs_len,
            layer: e.layer,
            top_lower: e.top_lower.unwrap_or(NO_LAYER),
            name_len: old.name_len,
            kind,
            upper: e.upper,
        };
    }

    /// Rebuilds the buffers without removed entries and superseded layer lists.
    fn compact(&mut self) {
        let mut fresh = EntryMap {
            hasher: self.hasher.clone(),
            ..EntryMap::default()
        };
        fresh.table.reserve(self.live, |_| 0);
        fresh.slots.reserve_exact(self.live);
        for (name, entry) in self.iter() {
            fresh.insert(name, entry);
        }
        fresh.names.shrink_to_fit();
        fresh.dirs.shrink_to_fit();
        *self = fresh;
    }
}

#[cfg(test)]
#[path = "entrymap_tests.rs"]
mod tests;
