//! The union itself: every filesystem operation, expressed on layers, without FUSE.
//!
//! Each submodule holds one family of operations (`lookup`, `create`, `remove`, `rename`,
//! `attr`, `files`, `readdir`) as `impl Union` blocks; `copyup` and `workdir` are the
//! machinery they share. Errors are plain errnos: that is what a filesystem answers.

pub mod dircache;
pub mod dirindex;
pub mod entrymap;
pub mod node;
pub mod nodestate;
pub mod workdir;

mod attr;
mod children;
mod copyup;
mod create;
mod files;
mod hardlinks;
mod lookup;
mod lower_map;
mod prebuilt;
mod readdir;
mod remove;
mod rename;

use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::FileStat;

pub use self::attr::{FsStats, SetAttr, SetTime};
pub use self::create::NewEntry;
pub use self::files::{OpenFile, open_changes_data};
pub use self::lower_map::MappedRange;
use self::node::{LowerPath, NodeState, NodeTable};
pub use self::node::{Node, NodeId, ROOT_ID};
pub use self::readdir::DirEntry;
use self::workdir::WorkDir;
use crate::layer::{LayerIdx, LayerStack};
use crate::sys::{self, SysResult};
use crate::whiteout::WhiteoutFormat;

/// Settings that change how the union writes to its upper layer and what it keeps in
/// memory.
#[derive(Clone, Debug)]
pub struct UnionConfig {
    /// How whiteouts and opaque markers are written.
    pub whiteout: WhiteoutFormat,
    /// Skip the `fsync` of copied-up data (kernel overlayfs' `volatile`): faster, but a
    /// crash may leave copied-up files empty.
    pub volatile: bool,
    /// How many merged directory entries the directory indexes keep in memory at once
    /// (see [`dircache`]); `usize::MAX` keeps every index built.
    pub dir_cache_entries: usize,
}

impl Default for UnionConfig {
    fn default() -> Self {
        UnionConfig {
            whiteout: WhiteoutFormat::Kernel,
            volatile: false,
            dir_cache_entries: dircache::DEFAULT_DIR_CACHE_ENTRIES,
        }
    }
}

impl UnionConfig {
    /// The xattr name under which a copied-up entry keeps its original inode number.
    pub fn origin_xattr(&self) -> &'static str {
        match self.whiteout {
            WhiteoutFormat::Kernel => "trusted.overlay.unionfs.origin",
            WhiteoutFormat::Oci => "user.overlay.unionfs.origin",
        }
    }

    /// The xattr marking an upper directory whose entries may carry origins.
    pub fn impure_xattr(&self) -> &'static str {
        match self.whiteout {
            WhiteoutFormat::Kernel => "trusted.overlay.impure",
            WhiteoutFormat::Oci => "user.overlay.impure",
        }
    }

    /// The merged link count of an indexed hard-link group (overlayfs' `overlay.nlink`).
    pub fn nlink_xattr(&self) -> &'static str {
        match self.whiteout {
            WhiteoutFormat::Kernel => "trusted.overlay.nlink",
            WhiteoutFormat::Oci => "user.overlay.nlink",
        }
    }

    /// Overlayfs' record of where a copied-up entry came from (a file handle).
    pub fn kernel_origin_xattr(&self) -> &'static str {
        match self.whiteout {
            WhiteoutFormat::Kernel => "trusted.overlay.origin",
            WhiteoutFormat::Oci => "user.overlay.origin",
        }
    }

    /// The xattr that redirects a renamed directory to its lower contents (kernel format).
    pub fn redirect_xattr(&self) -> &'static str {
        match self.whiteout {
            WhiteoutFormat::Kernel => "trusted.overlay.redirect",
            WhiteoutFormat::Oci => "user.overlay.redirect",
        }
    }
}

/// Who asks: new entries belong to them.
#[derive(Clone, Copy, Debug)]
pub struct Caller {
    /// Effective uid of the calling process.
    pub uid: u32,
    /// Effective gid of the calling process.
    pub gid: u32,
    /// The process's umask: it applies to new entries unless their directory has a
    /// default ACL, which then decides their permissions instead (POSIX.1e).
    pub umask: u32,
}

/// Attributes as the union reports them (a `stat` with the union's inode number).
#[derive(Clone, Copy, Debug)]
pub struct Attr {
    /// Inode number, stable across copy-up and remount.
    pub ino: u64,
    /// Full `st_mode` (type and permission bits).
    pub mode: u32,
    /// Link count.
    pub nlink: u64,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Device number for device nodes.
    pub rdev: u64,
    /// Size in bytes.
    pub size: u64,
    /// 512-byte blocks allocated.
    pub blocks: u64,
    /// Preferred I/O size.
    pub blksize: u64,
    /// Access time (seconds, nanoseconds).
    pub atime: (i64, i64),
    /// Modification time.
    pub mtime: (i64, i64),
    /// Status change time.
    pub ctime: (i64, i64),
}

impl Attr {
    fn from_stat(st: &FileStat, ino: u64) -> Self {
        Attr {
            ino,
            mode: st.st_mode,
            nlink: st.st_nlink,
            uid: st.st_uid,
            gid: st.st_gid,
            rdev: st.st_rdev,
            size: st.st_size as u64,
            blocks: st.st_blocks as u64,
            blksize: st.st_blksize as u64,
            atime: (st.st_atime, st.st_atime_nsec),
            mtime: (st.st_mtime, st.st_mtime_nsec),
            ctime: (st.st_ctime, st.st_ctime_nsec),
        }
    }
}

/// A mounted (or mountable) union of layers.
#[derive(Debug)]
pub struct Union {
    layers: LayerStack,
    work: Option<WorkDir>,
    cfg: UnionConfig,
    nodes: NodeTable,
    dircache: dircache::DirCache,
    files: files::FileTable,
    dirs: readdir::DirHandles,
    pindex: Option<crate::pindex::PersistentIndex>,
}

/// Why a union could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The work directory is unusable.
    #[error(transparent)]
    Work(#[from] workdir::WorkDirError),
    /// An upper layer needs a work directory.
    #[error("upperdir given without workdir")]
    NoWorkdir,
    /// The hard-link index could not be opened.
    #[error(transparent)]
    Index(#[from] crate::layer::LayerError),
    /// The layers' roots could not be read.
    #[error("reading the layer roots: {0}")]
    Root(Errno),
}

impl Union {
    /// Builds a union over `layers`, staging upper-layer changes in `workdir`.
    pub fn new(
        mut layers: LayerStack,
        workdir: Option<&Path>,
        cfg: UnionConfig,
    ) -> Result<Self, SetupError> {
        let work = match (layers.upper(), workdir) {
            (Some(_), Some(w)) => {
                let work = WorkDir::open(w)?;
                let index = crate::layer::Layer::open("workdir", &w.join(workdir::INDEX_DIR))?;
                layers.set_index(index);
                Some(work)
            }
            (Some(_), None) => return Err(SetupError::NoWorkdir),
            (None, _) => None,
        };
        let mut lower_dirs = thin_vec::ThinVec::new();
        for idx in layers.lower_indexes() {
            lower_dirs.push(idx);
            let opaque =
                dirindex::layer_dir_opaque(layers.get(idx).fd()).map_err(SetupError::Root)?;
            if opaque {
                break;
            }
        }
        let mut root_state = NodeState::new(ROOT_ID, OsStr::new(""), LowerPath::at(Path::new("")));
        root_state.upper = layers.upper().is_some();
        root_state.lower_dirs = lower_dirs;
        let top = layers.get(0);
        let st = sys::stat_fd(top.fd()).map_err(SetupError::Root)?;
        let root_ino = layers.map_ino(st.st_dev, st.st_ino);
        Ok(Union {
            nodes: NodeTable::new(root_state, root_ino),
            dircache: dircache::DirCache::new(cfg.dir_cache_entries),
            layers,
            work,
            cfg,
            files: Default::default(),
            dirs: Default::default(),
            pindex: None,
        })
    }

    /// Serves lower-only directories from a persistent index of the lower chain (built by
    /// [`crate::pindex::build`] for exactly these lower layers).
    pub fn with_persistent_index(mut self, index: crate::pindex::PersistentIndex) -> Self {
        self.pindex = Some(index);
        self
    }

    /// The layer stack.
    pub fn layers(&self) -> &LayerStack {
        &self.layers
    }

    /// The configuration in force.
    pub fn config(&self) -> &UnionConfig {
        &self.cfg
    }

    /// True when the union has no writable layer.
    pub fn read_only(&self) -> bool {
        self.layers.upper().is_none()
    }

    pub(crate) fn node(&self, id: NodeId) -> SysResult<Arc<Node>> {
        self.nodes.get(id).ok_or(Errno::ESTALE)
    }

    /// The merged path of a node (also its path in the upper layer).
    pub fn path_of(&self, node: &Node) -> PathBuf {
        let mut names = Vec::new();
        let mut id = node.id;
        let (mut parent, mut name) = node.parent_and_name();
        while id != ROOT_ID {
            names.push(name);
            id = parent;
            match self.nodes.get(id) {
                Some(p) => (parent, name) = p.parent_and_name(),
                None => break,
            }
        }
        names.iter().rev().map(|n| &**n).collect()
    }

    fn upper_idx(&self) -> SysResult<LayerIdx> {
        self.layers.upper_idx().ok_or(Errno::EROFS)
    }

    fn work(&self) -> SysResult<&WorkDir> {
        self.work.as_ref().ok_or(Errno::EROFS)
    }

    /// `lstat` of `path` inside a layer.
    fn stat_in(&self, layer: LayerIdx, path: &Path) -> SysResult<FileStat> {
        let root = self.layers.get(layer).fd();
        if path.as_os_str().is_empty() {
            return sys::stat_fd(root);
        }
        if path.as_os_str().len() < 3072 {
            return nix::sys::stat::fstatat(root, path, AtFlags::AT_SYMLINK_NOFOLLOW);
        }
        let (parent, name) = self.open_parent(layer, path)?;
        sys::stat_child(parent.as_fd(), &name)
    }

    /// Opens the directory containing `path` in a layer (`O_PATH`), returning it with
    /// the last component. The root has no parent: it comes back as itself with name ".".
    fn open_parent(
        &self,
        layer: LayerIdx,
        path: &Path,
    ) -> SysResult<(OwnedFd, std::ffi::OsString)> {
        let root = self.layers.get(layer).fd();
        match (path.parent(), path.file_name()) {
            (Some(parent), Some(name)) => {
                let fd = sys::open_beneath(root, parent, OFlag::O_PATH | OFlag::O_DIRECTORY)?;
                Ok((fd, name.to_os_string()))
            }
            _ => Ok((
                sys::open_beneath(root, Path::new(""), OFlag::O_PATH | OFlag::O_DIRECTORY)?,
                OsStr::new(".").to_os_string(),
            )),
        }
    }

    /// Opens `path` inside a layer with `flags`, never following symlinks.
    fn open_in(&self, layer: LayerIdx, path: &Path, flags: OFlag) -> SysResult<OwnedFd> {
        sys::open_beneath(self.layers.get(layer).fd(), path, flags)
    }

    /// Where a node's visible content is now: (layer, path in that layer).
    fn top_location(&self, node: &Node, state: &NodeState) -> SysResult<(LayerIdx, PathBuf)> {
        if state.upper {
            return Ok((self.upper_idx()?, self.path_of(node)));
        }
        if let Some(group) = &state.indexed {
            let index = self.layers.index_idx().ok_or(Errno::ESTALE)?;
            return Ok((index, PathBuf::from(&**group)));
        }
        if node.is_dir() {
            let layer = *state.lower_dirs.first().ok_or(Errno::ESTALE)?;
            return Ok((layer, state.lower_path().into_owned()));
        }
        let layer = state.lower.ok_or(Errno::ESTALE)?;
        Ok((layer, state.lower_path().into_owned()))
    }

    /// Where a node's *data* is read from: the lower file while the upper copy holds
    /// metadata only, else the top location.
    fn data_location(&self, node: &Node, state: &NodeState) -> SysResult<(LayerIdx, PathBuf)> {
        if state.upper
            && state.metacopy
            && let Some(layer) = state.lower
        {
            return Ok((layer, state.lower_path().into_owned()));
        }
        self.top_location(node, state)
    }

    /// Number of live nodes: for tests and statistics.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }
}
