//! Which node each child name of a directory has, without a second copy of the names.
//!
//! The kernel holds a node for every name it has looked up, and each node already carries
//! its names. A map keyed by a copy of the name cost about 80 bytes a child (the name's
//! own heap block and a 32-byte bucket with slack); this table keeps the name's hash and
//! the node id, 16 bytes, and a probe asks the caller whether a candidate node is really
//! named so.

use std::ffi::OsStr;
use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;

use super::node::NodeId;

/// The child nodes of one directory, by name.
#[derive(Debug, Default)]
pub struct ChildMap {
    table: HashTable<(u64, NodeId)>,
    hasher: RandomState,
}

impl ChildMap {
    /// The node named `name`; `named(id)` says whether node `id` has that name here.
    pub fn get(&self, name: &OsStr, named: impl Fn(NodeId) -> bool) -> Option<NodeId> {
        let hash = self.hasher.hash_one(name);
        self.table
            .find(hash, |&(h, id)| h == hash && named(id))
            .map(|&(_, id)| id)
    }

    /// Makes `id` the node of `name`, replacing whichever node had it (`named` as for
    /// [`ChildMap::get`]).
    pub fn insert(&mut self, name: &OsStr, id: NodeId, named: impl Fn(NodeId) -> bool) {
        let hash = self.hasher.hash_one(name);
        while let Ok(old) = self.table.find_entry(hash, |&(h, other)| {
            h == hash && (other == id || named(other))
        }) {
            old.remove();
        }
        self.table.insert_unique(hash, (hash, id), |&(h, _)| h);
    }

    /// Removes the node of `name`, returning its id.
    pub fn remove(&mut self, name: &OsStr, named: impl Fn(NodeId) -> bool) -> Option<NodeId> {
        let hash = self.hasher.hash_one(name);
        let found = self
            .table
            .find_entry(hash, |&(h, id)| h == hash && named(id))
            .ok()?;
        Some(found.remove().0.1)
    }

    /// Removes `name`'s entry if it is node `id` (a node that is going: its own state
    /// can no longer be asked).
    pub fn remove_node(&mut self, name: &OsStr, id: NodeId) {
        let hash = self.hasher.hash_one(name);
        if let Ok(found) = self.table.find_entry(hash, |&e| e == (hash, id)) {
            found.remove();
        }
    }

    /// Forgets every child.
    pub fn clear(&mut self) {
        self.table.clear();
    }
}
