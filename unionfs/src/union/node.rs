//! The table of inodes the kernel knows about, and what each one stands for.
//!
//! A node is one merged name: where its upper copy lives (its merged path, since the upper
//! tree mirrors the merged namespace), where its lower data or directory contents come
//! from, and, for directories, the lazily built index of the merged entries.

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use dashmap::DashMap;

use super::children::ChildMap;
use super::dirindex::DirIndex;
use crate::layer::LayerIdx;

/// FUSE node id; 1 is the root.
pub type NodeId = u64;

/// The root's node id, fixed by the FUSE protocol.
pub const ROOT_ID: NodeId = 1;

/// Where a node's content is found, changing as it is copied up, renamed or unlinked.
#[derive(Clone, Debug)]
pub struct NodeState {
    /// Parent directory's node.
    pub parent: NodeId,
    /// Name inside the parent (boxed: exactly as long as the name, 8 bytes less than a
    /// growable string in every node).
    pub name: Box<OsStr>,
    /// Other names of the same file (hard links), as (parent, name).
    pub aliases: Vec<(NodeId, OsString)>,
    /// The entry exists in the upper layer (at the node's merged path).
    pub upper: bool,
    /// For a non-directory not (yet) in the upper layer: the lower layer holding it.
    pub lower: Option<LayerIdx>,
    /// Path of the entry inside the lower layers: where a file's lower copy is, or which
    /// directory the lower layers merge in (a renamed directory keeps its old one).
    pub lower_path: Box<Path>,
    /// For a directory: the lower layers merged into it, top first.
    pub lower_dirs: Vec<LayerIdx>,
    /// A name of a lower hard-link group whose upper copy lives in the hard-link index:
    /// content and attributes come from there until this name itself is copied up.
    pub indexed: Option<Box<str>>,
    /// The node's record in the persistent index while it is lower-only and described
    /// there (cleared by anything that moves it).
    pub prebuilt: Option<u32>,
    /// Hidden from the namespace, possibly still open.
    pub unlinked: bool,
    /// The upper copy holds metadata only; the data still lives in `lower`.
    pub metacopy: bool,
}

impl NodeState {
    /// True when `parent/name` is this node's name or one of its aliases.
    pub fn has_name(&self, parent: NodeId, name: &OsStr) -> bool {
        (self.parent == parent && &*self.name == name)
            || self.aliases.iter().any(|(p, n)| *p == parent && n == name)
    }
}

/// One inode as the kernel sees it. Its FUSE node id *is* the inode number `stat`
/// reports (the FUSE library ties the two), so all names of one file share a node.
#[derive(Debug)]
pub struct Node {
    /// Its FUSE node id (and, but for the root, its reported inode number).
    pub id: NodeId,
    kind: AtomicU32,
    root_ino: u64,
    generation: AtomicU64,
    lookups: AtomicU64,
    /// Location state.
    pub state: RwLock<NodeState>,
    /// Serialises copy-up of this node.
    pub copy_lock: Mutex<()>,
    /// Directory-only parts, allocated on first use: most nodes are files and never
    /// need them (a reused inode number may still turn a file's node into a directory's).
    dir: OnceLock<Box<DirNode>>,
}

/// What only a directory node carries.
#[derive(Debug, Default)]
pub struct DirNode {
    /// The merged index of entries; `None` until first needed. Holding its write lock is
    /// also what serialises namespace changes inside this directory.
    pub index: RwLock<Option<DirIndex>>,
    /// Child names that currently have a node.
    pub children: Mutex<ChildMap>,
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
    fn new(id: NodeId, kind: u32, root_ino: u64, generation: u64, state: NodeState) -> Self {
        Node {
            id,
            kind: AtomicU32::new(kind),
            root_ino,
            generation: AtomicU64::new(generation),
            lookups: AtomicU64::new(1),
            state: RwLock::new(state),
            copy_lock: Mutex::new(()),
            dir: OnceLock::new(),
        }
    }

    /// The node's current state, cloned (cheap: a few small fields).
    pub fn snapshot(&self) -> NodeState {
        self.state.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The parent and the name, without cloning the rest of the state (for walking up
    /// to the root).
    pub fn parent_and_name(&self) -> (NodeId, Box<OsStr>) {
        let st = self.state.read().unwrap_or_else(|e| e.into_inner());
        (st.parent, st.name.clone())
    }

    /// Mutable access to the state.
    pub fn state_mut(&self) -> std::sync::RwLockWriteGuard<'_, NodeState> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
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

    /// The reported inode number.
    pub fn ino(&self) -> u64 {
        if self.id == ROOT_ID {
            self.root_ino
        } else {
            self.id
        }
    }

    /// The directory part, created when first asked for.
    pub fn dir_part(&self) -> &DirNode {
        self.dir.get_or_init(Box::default)
    }

    /// The directory part if it was ever created.
    pub fn dir_part_if_any(&self) -> Option<&DirNode> {
        self.dir.get().map(|d| &**d)
    }
}

/// All live nodes, by id.
#[derive(Debug)]
pub struct NodeTable {
    nodes: DashMap<NodeId, Arc<Node>>,
    generations: AtomicU64,
}

impl NodeTable {
    /// A table holding only the root.
    pub fn new(root_state: NodeState, root_ino: u64) -> Self {
        let nodes = DashMap::new();
        nodes.insert(
            ROOT_ID,
            Arc::new(Node::new(ROOT_ID, libc::S_IFDIR, root_ino, 0, root_state)),
        );
        NodeTable {
            nodes,
            generations: AtomicU64::new(1),
        }
    }

    /// The node with `id`, if the kernel still holds it.
    pub fn get(&self, id: NodeId) -> Option<Arc<Node>> {
        self.nodes.get(&id).map(|n| n.clone())
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
        let node = match self.nodes.entry(ino) {
            dashmap::Entry::Occupied(o) => {
                let node = o.get().clone();
                drop(o);
                {
                    let mut st = node.state_mut();
                    if st.unlinked || node.kind() != kind {
                        *st = make();
                        let generation = self.generations.fetch_add(1, Ordering::Relaxed);
                        node.generation.store(generation, Ordering::Relaxed);
                        node.kind.store(kind, Ordering::Relaxed);
                        // A directory part left from the old file is emptied; a file's
                        // node that never had one does not get one here.
                        if let Some(d) = node.dir_part_if_any() {
                            *d.index.write().unwrap_or_else(|e| e.into_inner()) = None;
                            d.children.lock().unwrap_or_else(|e| e.into_inner()).clear();
                        }
                    } else if !st.has_name(parent.id, name) {
                        st.aliases.push((parent.id, name.to_os_string()));
                    }
                }
                node.lookups.fetch_add(1, Ordering::Relaxed);
                node
            }
            dashmap::Entry::Vacant(v) => {
                let generation = self.generations.fetch_add(1, Ordering::Relaxed);
                let node = Arc::new(Node::new(ino, kind, 0, generation, make()));
                v.insert(node.clone());
                node
            }
        };
        children.insert(name, node.id, self.named(parent.id, name));
        node
    }

    /// Whether a node (by id) has `parent/name` among its names: what confirms a
    /// [`ChildMap`] entry, which keeps only the name's hash.
    fn named<'a>(&'a self, parent: NodeId, name: &'a OsStr) -> impl Fn(NodeId) -> bool + 'a {
        move |id| {
            self.get(id).is_some_and(|n| {
                n.state
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .has_name(parent, name)
            })
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
            .remove_if(&id, |_, n| n.lookups.load(Ordering::Acquire) == 0);
        // Only the names are needed, not a copy of the whole state.
        let names: Vec<(NodeId, OsString)> = {
            let st = node.state.read().unwrap_or_else(|e| e.into_inner());
            std::iter::once((st.parent, st.name.to_os_string()))
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
