//! The table of inodes the kernel knows about, and what each one stands for.
//!
//! A node is one merged name: where its upper copy lives (its merged path, since the upper
//! tree mirrors the merged namespace), where its lower data or directory contents come
//! from, and, for directories, the lazily built index of the merged entries.

use std::borrow::Borrow;
use std::ffi::{OsStr, OsString};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use dashmap::DashMap;
use once_cell::race::OnceBox;
use parking_lot::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::children::ChildMap;
use super::dirindex::DirIndex;
pub use super::nodestate::{LowerPath, NodeName, NodeState};

/// FUSE node id; 1 is the root.
pub type NodeId = u64;

/// The root's node id, fixed by the FUSE protocol.
pub const ROOT_ID: NodeId = 1;

/// One inode as the kernel sees it. Its FUSE node id *is* the inode number `stat`
/// reports (the FUSE library ties the two), so all names of one file share a node.
#[derive(Debug)]
pub struct Node {
    /// Its FUSE node id (and, but for the root, its reported inode number).
    pub id: NodeId,
    kind: AtomicU32,
    generation: AtomicU64,
    lookups: AtomicU64,
    /// Location state, read through [`Node::read_state`] or [`Node::snapshot`] and
    /// changed through [`Node::state_mut`]. (The node's locks are `parking_lot`'s: a
    /// word for this one and a byte for the copy lock, where the standard library's,
    /// with their poison flags, take 16 bytes more in every node.)
    state: RwLock<NodeState>,
    /// Serialises copy-up of this node.
    pub copy_lock: Mutex<()>,
    /// Directory-only parts, allocated on first use: most nodes are files and never
    /// need them (a reused inode number may still turn a file's node into a directory's).
    dir: OnceBox<DirNode>,
}

/// What only a directory node carries.
#[derive(Debug, Default)]
pub struct DirNode {
    /// The merged index of entries; `None` until first needed. Holding its write lock is
    /// also what serialises namespace changes inside this directory.
    pub index: std::sync::RwLock<Option<Box<DirIndex>>>,
    /// Child names that currently have a node.
    pub children: std::sync::Mutex<ChildMap>,
    /// The index was used since the directory cache last passed it (its CLOCK bit).
    pub used: AtomicBool,
}

impl DirNode {
    /// Sets the CLOCK bit of the directory cache (a plain load first: most uses find it
    /// set, and a store would bounce the cache line between threads reading the
    /// directory).
    pub fn mark_used(&self) {
        if !self.used.load(Ordering::Relaxed) {
            self.used.store(true, Ordering::Relaxed);
        }
    }
}

impl Node {
    fn new(id: NodeId, kind: u32, generation: u64, state: NodeState) -> Self {
        Node {
            id,
            kind: AtomicU32::new(kind),
            generation: AtomicU64::new(generation),
            lookups: AtomicU64::new(1),
            state: RwLock::new(state),
            copy_lock: Mutex::new(()),
            dir: OnceBox::new(),
        }
    }

    /// The node's current state, cloned (cheap: a few small fields).
    pub fn snapshot(&self) -> NodeState {
        self.read_state().clone()
    }

    /// The parent and the name, without cloning the rest of the state (for walking up
    /// to the root).
    pub fn parent_and_name(&self) -> (NodeId, NodeName) {
        let st = self.read_state();
        (st.parent(), st.node_name().clone())
    }

    /// Read access to the state, for reading a field or two without cloning it all.
    /// Not to be held across system calls: renames and unlinks wait for it.
    pub fn read_state(&self) -> RwLockReadGuard<'_, NodeState> {
        self.state.read()
    }

    /// Mutable access to the state.
    pub fn state_mut(&self) -> RwLockWriteGuard<'_, NodeState> {
        self.state.write()
    }

    /// `S_IFMT` bits.
    pub fn kind(&self) -> u32 {
        self.kind.load(Ordering::Relaxed)
    }

    /// True for directories.
    pub fn is_dir(&self) -> bool {
        self.kind() == libc::S_IFDIR
    }

    /// The FUSE generation: node ids are inode numbers, which the layer filesystems
    /// reuse, so each new file behind an id gets a new generation and the kernel never
    /// mistakes it for the deleted file it may still cache.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// The directory part, created when first asked for.
    pub fn dir_part(&self) -> &DirNode {
        self.dir.get_or_init(Box::default)
    }

    /// The directory part if it was ever created.
    pub fn dir_part_if_any(&self) -> Option<&DirNode> {
        self.dir.get()
    }
}

/// A node in the table, hashed and compared by its id (which never changes): each slot
/// of the table is then one pointer, where keeping the id beside it would double it.
#[derive(Clone, Debug)]
struct ById(Arc<Node>);

impl PartialEq for ById {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id
    }
}

impl Eq for ById {}

impl Hash for ById {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.id.hash(state);
    }
}

impl Borrow<NodeId> for ById {
    fn borrow(&self) -> &NodeId {
        &self.0.id
    }
}

/// All live nodes, by id.
#[derive(Debug)]
pub struct NodeTable {
    nodes: DashMap<ById, ()>,
    generations: AtomicU64,
    /// The root's reported inode number (its node id is fixed at 1).
    root_ino: u64,
}

impl NodeTable {
    /// A table holding only the root.
    pub fn new(root_state: NodeState, root_ino: u64) -> Self {
        let nodes = DashMap::new();
        nodes.insert(
            ById(Arc::new(Node::new(ROOT_ID, libc::S_IFDIR, 0, root_state))),
            (),
        );
        NodeTable {
            nodes,
            generations: AtomicU64::new(1),
            root_ino,
        }
    }

    /// The inode number `stat` reports for `node`: its id, but for the root.
    pub fn ino(&self, node: &Node) -> u64 {
        if node.id == ROOT_ID {
            self.root_ino
        } else {
            node.id
        }
    }

    /// The node with `id`, if the kernel still holds it.
    pub fn get(&self, id: NodeId) -> Option<Arc<Node>> {
        self.nodes.get(&id).map(|n| n.key().0.clone())
    }

    /// Counts one more kernel reference to an existing node.
    pub fn touch(&self, node: &Node) {
        node.lookups.fetch_add(1, Ordering::Relaxed);
    }

    /// Registers `name` under `parent` as a name of the file with inode number `ino`,
    /// counting one kernel lookup. A live node of that number gains the name as an alias
    /// (a hard link); a dead one (the number was reused) starts over with `make()`.
    pub fn bind(
        &self,
        parent: &Node,
        name: &OsStr,
        kind: u32,
        ino: u64,
        make: impl FnOnce() -> NodeState,
    ) -> Arc<Node> {
        let mut children = parent
            .dir_part()
            .children
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // One probe of the table: a new node is made up front, because the number
        // nearly always has none yet, and dropped again when it has one.
        let generation = self.generations.fetch_add(1, Ordering::Relaxed);
        let fresh = Arc::new(Node::new(ino, kind, generation, make()));
        let live = match self.nodes.entry(ById(fresh.clone())) {
            dashmap::Entry::Vacant(v) => {
                v.insert(());
                None
            }
            dashmap::Entry::Occupied(o) => Some(o.key().0.clone()),
        };
        let node = match live {
            None => fresh,
            Some(node) => {
                let state = match Arc::try_unwrap(fresh) {
                    Ok(unused) => unused.state.into_inner(),
                    Err(shared) => shared.snapshot(),
                };
                self.rebind(node, parent.id, name, kind, || state)
            }
        };
        children.insert(name, node.id, self.named(parent.id, name));
        node
    }

    /// Binds `parent/name` to the live node of its inode number: a further name (hard
    /// link) of the same file, or, when that node's file is gone (the number was reused),
    /// a new file behind the same id with a new generation.
    fn rebind(
        &self,
        node: Arc<Node>,
        parent: NodeId,
        name: &OsStr,
        kind: u32,
        make: impl FnOnce() -> NodeState,
    ) -> Arc<Node> {
        {
            let mut st = node.state_mut();
            if st.unlinked || node.kind() != kind {
                *st = make();
                let generation = self.generations.fetch_add(1, Ordering::Relaxed);
                node.generation.store(generation, Ordering::Relaxed);
                node.kind.store(kind, Ordering::Relaxed);
                // A directory part left from the old file is emptied; a file's node
                // that never had one does not get one here.
                if let Some(d) = node.dir_part_if_any() {
                    *d.index.write().unwrap_or_else(|e| e.into_inner()) = None;
                    d.children.lock().unwrap_or_else(|e| e.into_inner()).clear();
                }
            } else if !st.has_name(parent, name) {
                st.aliases.push((parent, name.to_os_string()));
            }
        }
        node.lookups.fetch_add(1, Ordering::Relaxed);
        node
    }

    /// Whether a node (by id) has `parent/name` among its names: what confirms a
    /// [`ChildMap`] entry, which keeps only the name's hash.
    fn named<'a>(&'a self, parent: NodeId, name: &'a OsStr) -> impl Fn(NodeId) -> bool + 'a {
        move |id| {
            self.get(id)
                .is_some_and(|n| n.read_state().has_name(parent, name))
        }
    }

    /// The existing node for `name` under `parent`, without counting a lookup.
    pub fn existing_child(&self, parent: &Node, name: &OsStr) -> Option<Arc<Node>> {
        let children = parent
            .dir_part()
            .children
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        children
            .get(name, self.named(parent.id, name))
            .and_then(|id| self.get(id))
    }

    /// Detaches `name` from `parent`'s children (after unlink or rename away).
    pub fn detach_child(&self, parent: &Node, name: &OsStr) -> Option<NodeId> {
        parent
            .dir_part()
            .children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name, self.named(parent.id, name))
    }

    /// Attaches an existing node as `name` under `parent` (after rename).
    pub fn attach_child(&self, parent: &Node, name: &OsStr, id: NodeId) {
        parent
            .dir_part()
            .children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name, id, self.named(parent.id, name));
    }

    /// The kernel forgot `n` lookups of `id`; the node goes when none are left.
    pub fn forget(&self, id: NodeId, n: u64) {
        if id == ROOT_ID {
            return;
        }
        let Some(node) = self.get(id) else { return };
        let mut current = node.lookups.load(Ordering::Acquire);
        loop {
            let next = current.saturating_sub(n);
            match node
                .lookups
                .compare_exchange(current, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(actual) => current = actual,
            }
        }
        if current > n {
            return;
        }
        self.nodes
            .remove_if(&id, |n, _| n.0.lookups.load(Ordering::Acquire) == 0);
        // Only the names are needed, not a copy of the whole state.
        let names: Vec<(NodeId, OsString)> = {
            let st = node.read_state();
            std::iter::once((st.parent(), st.name().to_os_string()))
                .chain(st.aliases.iter().cloned())
                .collect()
        };
        for (parent, name) in names {
            if let Some(parent) = self.get(parent) {
                parent
                    .dir_part()
                    .children
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove_node(&name, id);
            }
        }
    }

    /// Number of live nodes (for tests and statistics).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when nothing is held (never: the root stays).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}
