//! What a node stands for: its name, and where its entry is in the layers.
//!
//! Kept small on purpose: a walk of an image makes one per entry, and after it these
//! states are most of the daemon's memory.

use std::borrow::Cow;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

use byteyarn::ByteYarn;
use thin_vec::ThinVec;

use super::node::NodeId;
use crate::layer::LayerIdx;

/// A node's name: two words, holding a name of up to 15 bytes (nine names in ten in a
/// Debian tree) inline and a longer one in an allocation of its exact length, where a
/// boxed name would cost every node an allocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeName(ByteYarn);

impl NodeName {
    /// A copy of `name`.
    pub fn new(name: &OsStr) -> Self {
        NodeName(ByteYarn::copy(name.as_bytes()))
    }
}

impl std::ops::Deref for NodeName {
    type Target = OsStr;

    fn deref(&self) -> &OsStr {
        OsStr::from_bytes(self.0.as_slice())
    }
}

/// Where a node's entry is in the lower layers.
///
/// Most nodes are files that were never renamed: their lower path is their parent
/// directory's plus their own name, so they share the parent's path instead of each
/// keeping a copy of it (most of a node's memory after a walk, were it copied).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LowerPath {
    /// The node's own name inside this lower directory, which its siblings share.
    In(Arc<Path>),
    /// This very path: a directory's (its children share it), or one a rename or a
    /// redirect left behind, which the node's name no longer gives.
    At(Arc<Path>),
}

impl LowerPath {
    /// A path of its own.
    pub fn at(path: &Path) -> Self {
        LowerPath::At(Arc::from(path))
    }
}

/// Where a node's content is found, changing as it is copied up, renamed or unlinked.
#[derive(Clone, Debug)]
pub struct NodeState {
    /// Parent directory's node.
    parent: NodeId,
    /// Name inside the parent.
    name: NodeName,
    /// Where the entry is in the lower layers; see [`NodeState::lower_path`].
    lower_path: LowerPath,
    /// Other names of the same file (hard links), as (parent, name); a thin vector,
    /// since nearly every node has none.
    pub aliases: ThinVec<(NodeId, OsString)>,
    /// The entry exists in the upper layer (at the node's merged path).
    pub upper: bool,
    /// For a non-directory not (yet) in the upper layer: the lower layer holding it.
    pub lower: Option<LayerIdx>,
    /// For a directory: the lower layers merged into it, top first (empty for files).
    pub lower_dirs: ThinVec<LayerIdx>,
    /// A name of a lower hard-link group whose upper copy lives in the hard-link index:
    /// content and attributes come from there until this name itself is copied up.
    /// (Boxed twice: rare, so it costs most nodes one pointer.)
    pub indexed: Option<Box<String>>,
    /// The node's record in the persistent index while it is lower-only and described
    /// there (cleared by anything that moves it).
    pub prebuilt: Option<u32>,
    /// Hidden from the namespace, possibly still open.
    pub unlinked: bool,
    /// The upper copy holds metadata only; the data still lives in `lower`.
    pub metacopy: bool,
}

impl NodeState {
    /// The state of `parent/name` found at `lower_path`, in no layer yet: the caller
    /// fills in where it is.
    pub fn new(parent: NodeId, name: &OsStr, lower_path: LowerPath) -> Self {
        NodeState {
            parent,
            name: NodeName::new(name),
            lower_path,
            aliases: ThinVec::new(),
            upper: false,
            lower: None,
            lower_dirs: ThinVec::new(),
            indexed: None,
            prebuilt: None,
            unlinked: false,
            metacopy: false,
        }
    }

    /// Whether the file's data is in the upper layer: it has an upper copy that is not
    /// metadata only.
    pub fn data_upper(&self) -> bool {
        self.upper && !self.metacopy
    }

    /// Parent directory's node.
    pub fn parent(&self) -> NodeId {
        self.parent
    }

    /// Name inside the parent.
    pub fn name(&self) -> &OsStr {
        &self.name
    }

    /// Name inside the parent, in the form a cheap copy can be taken of.
    pub fn node_name(&self) -> &NodeName {
        &self.name
    }

    /// True when `parent/name` is this node's name or one of its aliases.
    pub fn has_name(&self, parent: NodeId, name: &OsStr) -> bool {
        (self.parent == parent && self.name() == name)
            || self.aliases.iter().any(|(p, n)| *p == parent && n == name)
    }

    /// Path of the entry inside the lower layers: where a file's lower copy is, or
    /// which directory the lower layers merge in (a renamed directory keeps its old one).
    pub fn lower_path(&self) -> Cow<'_, Path> {
        match &self.lower_path {
            LowerPath::In(dir) => Cow::Owned(dir.join(self.name())),
            LowerPath::At(path) => Cow::Borrowed(path),
        }
    }

    /// Points the node at another lower path.
    pub fn set_lower_path(&mut self, lower_path: LowerPath) {
        self.lower_path = lower_path;
    }

    /// The lower path of `name` in this directory: a directory gets a path of its own
    /// (for its children to share); a file shares this directory's.
    pub fn child_lower_path(&self, name: &OsStr, dir: bool) -> LowerPath {
        let here = match &self.lower_path {
            LowerPath::At(path) => path.clone(),
            LowerPath::In(parent) => Arc::from(parent.join(self.name())),
        };
        if dir {
            LowerPath::At(Arc::from(here.join(name)))
        } else {
            LowerPath::In(here)
        }
    }

    /// Gives the node another primary name. Its lower entry does not move: a lower path
    /// that came from the old name is kept as a path of its own.
    pub fn rename(&mut self, parent: NodeId, name: &OsStr) {
        if let LowerPath::In(dir) = &self.lower_path {
            self.lower_path = LowerPath::At(Arc::from(dir.join(self.name())));
        }
        self.parent = parent;
        self.name = NodeName::new(name);
    }
}

#[cfg(test)]
#[path = "nodestate_tests.rs"]
mod tests;
