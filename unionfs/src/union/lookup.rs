//! Name lookup through the merged directory index, and the attributes of what is found.

use std::ffi::OsStr;
use std::path::Path;
use std::sync::{Arc, RwLockReadGuard, RwLockWriteGuard};

use nix::errno::Errno;
use nix::sys::stat::FileStat;

use super::dirindex::{self, DirIndex, MergedEntry, Source};
use super::node::{LowerPath, Node, NodeId, NodeState};
use super::{Attr, Union};
use crate::layer::LayerIdx;
use crate::sys::xattr::{self, Target};
use crate::sys::{self, SysResult};

/// Longest name a layer filesystem accepts.
pub(crate) const NAME_MAX: usize = 255;

impl Union {
    pub(crate) fn build_index(&self, dir: &Node) -> SysResult<DirIndex> {
        let state = dir.snapshot();
        if let Some(rec) = self.prebuilt_dir(&state) {
            return Ok(self.dirindex_from(&rec));
        }
        let upper_path = self.path_of(dir);
        let lower_path = state.lower_path();
        let mut sources = Vec::new();
        if state.upper {
            sources.push(Source {
                layer: self.upper_idx()?,
                path: &upper_path,
            });
        }
        for &layer in &state.lower_dirs {
            sources.push(Source {
                layer,
                path: &lower_path,
            });
        }
        dirindex::build(&self.layers, &sources)
    }

    /// Read access to a directory's index, building it first if needed.
    pub(crate) fn index<'a>(
        &self,
        dir: &'a Node,
    ) -> SysResult<RwLockReadGuard<'a, Option<Box<DirIndex>>>> {
        let d = dir.dir_part();
        loop {
            let guard = d.index.read().unwrap_or_else(|e| e.into_inner());
            if guard.is_some() {
                d.mark_used();
                return Ok(guard);
            }
            drop(guard);
            // Built and marked used, so the directory cache passes it over once: the
            // read above finds it unless it was dropped again meanwhile.
            drop(self.index_mut(dir)?);
        }
    }

    /// Write access to a directory's index, building it first if needed: the lock that
    /// serialises namespace changes.
    pub(crate) fn index_mut<'a>(
        &self,
        dir: &'a Node,
    ) -> SysResult<RwLockWriteGuard<'a, Option<Box<DirIndex>>>> {
        let d = dir.dir_part();
        let mut guard = d.index.write().unwrap_or_else(|e| e.into_inner());
        d.mark_used();
        if guard.is_none() {
            let index = self.build_index(dir)?;
            let entries = index.entries.len();
            *guard = Some(Box::new(index));
            // Cannot drop this very index: its lock is held here.
            self.dircache.admit(&self.nodes, dir.id, entries);
        }
        Ok(guard)
    }

    /// Looks `name` up in directory `parent`; the kernel now holds one more reference.
    pub fn lookup(&self, parent: NodeId, name: &OsStr) -> SysResult<(Arc<Node>, Attr)> {
        if name.len() > NAME_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let pnode = self.node(parent)?;
        let entry = {
            let guard = self.index(&pnode)?;
            let index = guard.as_ref().ok_or(Errno::EIO)?;
            index.entries.get(name).ok_or(Errno::ENOENT)?
        };
        self.node_for_entry(&pnode, name, &entry)
    }

    /// The node for a merged entry (existing or new), with fresh attributes; counts one
    /// kernel lookup.
    pub(crate) fn node_for_entry(
        &self,
        pnode: &Node,
        name: &OsStr,
        entry: &MergedEntry,
    ) -> SysResult<(Arc<Node>, Attr)> {
        if let Some(node) = self.nodes.existing_child(pnode, name)
            && node.kind() == entry.kind
        {
            let state = node.snapshot();
            if !state.unlinked
                && let Ok(st) = self.stat_node(&node, &state)
            {
                self.nodes.touch(&node);
                let attr = self.attr_of(&node, &state, &st);
                return Ok((node, attr));
            }
        }
        let (state, st, ino) = self.child_state(pnode, name, entry)?;
        let node = self.nodes.bind(pnode, name, entry.kind, ino, || state);
        let attr = self.attr_of(&node, &node.snapshot(), &st);
        Ok((node, attr))
    }

    /// Works out where a newly seen child lives, its `lstat` and its inode number.
    fn child_state(
        &self,
        pnode: &Node,
        name: &OsStr,
        entry: &MergedEntry,
    ) -> SysResult<(NodeState, FileStat, u64)> {
        if !entry.upper
            && let Some(e) = self.prebuilt_record(entry)
            && !(e.kind() == libc::S_IFREG && e.nlink() > 1 && self.layers.index_idx().is_some())
        {
            // A lower-only entry described by the persistent index: no system call.
            // (Hard-link group members still look at the hard-link index.)
            let st = super::prebuilt::record_stat(&e);
            return Ok((
                self.state_from(pnode, name, &e),
                st,
                self.layers.map_ino(st.st_dev, st.st_ino),
            ));
        }
        let is_dir = entry.kind == libc::S_IFDIR;
        let lower_path = pnode.read_state().child_lower_path(name, is_dir);
        let mut state = NodeState::new(pnode.id, name, lower_path);
        state.upper = entry.upper;
        if !is_dir {
            state.lower = entry.top_lower;
        }
        let upper_path = if entry.upper {
            Some(self.path_of(pnode).join(name))
        } else {
            None
        };
        if entry.kind == libc::S_IFDIR {
            let mut redirect = None;
            let mut opaque = false;
            if let Some(path) = &upper_path {
                let upper = self.upper_idx()?;
                let fd = dirindex::open_layer_dir(&self.layers, upper, path)?;
                opaque = dirindex::layer_dir_opaque(std::os::fd::AsFd::as_fd(&fd))?;
                redirect = xattr::get(
                    Target::Child(std::os::fd::AsFd::as_fd(&fd), OsStr::new("")),
                    self.cfg.redirect_xattr(),
                )
                .ok()
                .flatten();
            }
            if !opaque {
                state.lower_dirs = match redirect {
                    Some(target) => {
                        let parent_lower = pnode.read_state().lower_path().into_owned();
                        let target = redirect_target(&parent_lower, &target);
                        state.set_lower_path(LowerPath::at(&target));
                        self.probe_lower_dirs(&target, self.layers.lower_indexes().collect())?
                    }
                    None => self.trim_opaque(&state.lower_path(), &entry.lower_dirs)?,
                }
                .into();
            }
        }
        let st = match &upper_path {
            Some(p) => self.stat_in(self.upper_idx()?, p)?,
            None => {
                let layer = if entry.kind == libc::S_IFDIR {
                    *state.lower_dirs.first().ok_or(Errno::ENOENT)?
                } else {
                    state.lower.ok_or(Errno::ENOENT)?
                };
                self.stat_in(layer, &state.lower_path())?
            }
        };
        let ino = self.ino_for(&state, upper_path.as_deref(), &st);
        let st = if upper_path.is_none()
            && entry.kind == libc::S_IFREG
            && st.st_nlink > 1
            && let Some(index) = self.layers.index_idx()
            && let Some(layer) = state.lower
            && let Some(group) = self.group_of(layer, &state.lower_path())
        {
            match self.stat_in(index, Path::new(&group)) {
                Ok(indexed) => {
                    state.indexed = Some(group.into());
                    indexed
                }
                Err(_) => st,
            }
        } else {
            st
        };
        if sys::file_type(st.st_mode) != entry.kind {
            // The layer changed under us; report what the disk says now.
            return Err(Errno::ESTALE);
        }
        if let Some(p) = &upper_path
            && sys::file_type(st.st_mode) == libc::S_IFREG
            && let Ok((parent, nm)) = self.open_parent(self.upper_idx()?, p)
        {
            state.metacopy = xattr::get(
                Target::Child(std::os::fd::AsFd::as_fd(&parent), &nm),
                self.metacopy_xattr(),
            )
            .ok()
            .flatten()
            .is_some()
                && state.lower.is_some();
        }
        Ok((state, st, ino))
    }

    /// The xattr marking a metadata-only copy-up (kernel overlayfs' `metacopy` format:
    /// the data is still the lower file's at the same path).
    pub(crate) fn metacopy_xattr(&self) -> &'static str {
        match self.cfg.whiteout {
            crate::whiteout::WhiteoutFormat::Kernel => "trusted.overlay.metacopy",
            crate::whiteout::WhiteoutFormat::Oci => "user.overlay.metacopy",
        }
    }

    /// The reported inode number: a copied-up entry keeps the one it had below.
    pub(crate) fn ino_for(
        &self,
        state: &NodeState,
        upper_path: Option<&Path>,
        st: &FileStat,
    ) -> u64 {
        if let Some(path) = upper_path
            && state.upper
            && let Some(origin) = self.read_origin(path)
        {
            return origin;
        }
        self.layers.map_ino(st.st_dev, st.st_ino)
    }

    /// The origin inode number stored on an upper entry by copy-up, if any.
    pub(crate) fn read_origin(&self, upper_path: &Path) -> Option<u64> {
        let upper = self.layers.upper_idx()?;
        let (parent, name) = self.open_parent(upper, upper_path).ok()?;
        let target = if upper_path.as_os_str().is_empty() {
            Target::Child(std::os::fd::AsFd::as_fd(&parent), OsStr::new(""))
        } else {
            Target::Child(std::os::fd::AsFd::as_fd(&parent), &name)
        };
        if let Some(v) = xattr::get(target, self.cfg.origin_xattr()).ok()? {
            return Some(u64::from_le_bytes(v.get(..8)?.try_into().ok()?));
        }
        let fb = xattr::get(target, self.cfg.kernel_origin_xattr()).ok()??;
        self.origin_ino(&fb)
    }

    /// The union inode number of the lower file an overlayfs origin handle names (as
    /// overlayfs reports a copied-up file's number: that of its origin).
    pub(crate) fn origin_ino(&self, fb: &[u8]) -> Option<u64> {
        let uuid = crate::sys::handle::origin_uuid(fb)?;
        self.layers
            .lower_indexes()
            .filter(|&l| self.layers.get(l).uuid == uuid)
            .find_map(|l| {
                let fd = crate::sys::handle::open_origin(
                    std::os::fd::AsFd::as_fd(&self.layers.get(l).real),
                    fb,
                )
                .ok()?;
                let st = sys::stat_fd(std::os::fd::AsFd::as_fd(&fd)).ok()?;
                Some(self.layers.map_ino(st.st_dev, st.st_ino))
            })
    }

    /// The lower layers in which `path` is a directory, cut at the first opaque one.
    fn trim_opaque(&self, path: &Path, candidates: &[LayerIdx]) -> SysResult<Vec<LayerIdx>> {
        let mut out = Vec::with_capacity(candidates.len());
        for &layer in candidates {
            let fd = match dirindex::open_layer_dir(&self.layers, layer, path) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => break,
                Err(e) => return Err(e),
            };
            out.push(layer);
            if dirindex::layer_dir_opaque(std::os::fd::AsFd::as_fd(&fd))? {
                break;
            }
        }
        Ok(out)
    }

    /// For a redirected directory: which lower layers hold `path` as a directory.
    fn probe_lower_dirs(&self, path: &Path, layers: Vec<LayerIdx>) -> SysResult<Vec<LayerIdx>> {
        let mut found = Vec::new();
        // As overlayfs follows a redirect: a layer without the path is skipped; a
        // non-directory anywhere on it (a file, a whiteout, a symlink) ends the search.
        for layer in layers {
            match dirindex::open_layer_dir(&self.layers, layer, path) {
                Ok(_) => found.push(layer),
                Err(Errno::ENOENT) => continue,
                Err(Errno::ENOTDIR) | Err(Errno::ELOOP) => break,
                Err(e) => return Err(e),
            }
        }
        self.trim_opaque(path, &found)
    }

    /// Attributes of a node, read from where its content is now.
    pub(crate) fn getattr_node(&self, node: &Node) -> SysResult<Attr> {
        let state = node.snapshot();
        if state.unlinked {
            let file = self.any_open_file(node.id).ok_or(Errno::ENOENT)?;
            let st = sys::stat_fd(std::os::fd::AsFd::as_fd(&*file.backing()))?;
            return Ok(self.attr_of(node, &state, &st));
        }
        let st = self.stat_node(node, &state)?;
        let mut attr = self.attr_of(node, &state, &st);
        if state.metacopy
            && let Ok((dl, dp)) = self.data_location(node, &state)
            && let Ok(data) = self.stat_in(dl, &dp)
        {
            // The blocks are where the data is.
            attr.blocks = data.st_blocks as u64;
        }
        Ok(attr)
    }

    /// `lstat` of where a node's visible copy is (from the persistent index when it has it).
    fn stat_node(&self, node: &Node, state: &NodeState) -> SysResult<FileStat> {
        if let Some(rec) = self.prebuilt_entry(state) {
            return Ok(super::prebuilt::record_stat(&rec));
        }
        let (layer, path) = self.top_location(node, state)?;
        self.stat_in(layer, &path)
    }

    /// Attributes of a node by id.
    pub fn getattr(&self, id: NodeId) -> SysResult<Attr> {
        self.getattr_node(&*self.node(id)?)
    }

    /// Combines a `stat` with what the union knows better (inode number, link count,
    /// size of a metadata-only copy).
    pub(crate) fn attr_of(&self, node: &Node, state: &NodeState, st: &FileStat) -> Attr {
        let mut attr = Attr::from_stat(st, self.nodes.ino(node));
        if node.is_dir() {
            let sources = state.lower_dirs.len() + state.upper as usize;
            if sources > 1 {
                // As overlayfs: counting subdirectories of every layer isn't worth it,
                // and 1 tells `find` not to rely on the count.
                attr.nlink = 1;
            }
        }
        if node.kind() == libc::S_IFREG
            && ((st.st_nlink >= 2 && state.upper) || state.indexed.is_some())
            && self.layers.index_idx().is_some()
            && let Ok((layer, path)) = self.top_location(node, state)
            && let Ok((dir, name)) = self.open_parent(layer, &path)
            && let Some(n) = self.group_nlink(std::os::fd::AsFd::as_fd(&dir), &name, st.st_nlink)
        {
            attr.nlink = n;
        }
        if state.unlinked {
            attr.nlink = 0;
        }
        attr
    }

    /// Reads the target of a symlink.
    pub fn readlink(&self, id: NodeId) -> SysResult<std::ffi::OsString> {
        let node = self.node(id)?;
        let state = node.snapshot();
        let (layer, path) = self.top_location(&node, &state)?;
        let (parent, name) = self.open_parent(layer, &path)?;
        nix::fcntl::readlinkat(std::os::fd::AsFd::as_fd(&parent), name.as_os_str())
    }

    /// The kernel dropped `n` references to `id`.
    pub fn forget(&self, id: NodeId, n: u64) {
        self.nodes.forget(id, n);
    }
}

/// Resolves a redirect xattr against the parent's lower path: absolute values are paths
/// from the layer root, relative ones are a new name in the same parent.
fn redirect_target(parent_lower: &Path, value: &[u8]) -> std::path::PathBuf {
    let s = <OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(value);
    let p = Path::new(s);
    if let Ok(abs) = p.strip_prefix("/") {
        abs.to_path_buf()
    } else {
        parent_lower.join(p)
    }
}
