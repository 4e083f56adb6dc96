//! Directory listings: a merged, deduplicated snapshot per open directory.
//!
//! The snapshot is taken by the first `readdir` (and again by every `readdir` at offset
//! 0, as `rewinddir` expects), so offsets are positions in a fixed list:
//! `telldir`/`seekdir` work, and entries added or removed meanwhile never make a listing
//! skip or repeat. `opendir` lists nothing: the kernel serves most listings of a
//! directory it has read before from its own cache and never asks.

use std::ffi::OsString;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use nix::errno::Errno;

use super::Union;
use super::node::{Node, NodeId};
use crate::sys::SysResult;

/// One entry of a listing.
#[derive(Clone, Debug)]
pub struct DirEntry {
    /// The name.
    pub name: OsString,
    /// `S_IFMT` bits.
    pub kind: u32,
    /// The inode number `stat` would report.
    pub ino: u64,
}

#[derive(Debug)]
struct OpenDir {
    node: Arc<Node>,
    /// The listing served from; `None` until the first `readdir`.
    entries: std::sync::RwLock<Option<Arc<Vec<DirEntry>>>>,
}

/// Open directories, by handle number.
#[derive(Debug, Default)]
pub struct DirHandles {
    dirs: DashMap<u64, Arc<OpenDir>>,
    next: AtomicU64,
}

impl Union {
    /// Opens a directory for listing.
    pub fn opendir(&self, id: NodeId) -> SysResult<u64> {
        let node = self.node(id)?;
        if !node.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        let fh = self.dirs.next.fetch_add(1, Ordering::Relaxed) + 1;
        self.dirs.dirs.insert(
            fh,
            Arc::new(OpenDir {
                node,
                entries: std::sync::RwLock::new(None),
            }),
        );
        Ok(fh)
    }

    /// The entries of an open directory from position `offset` on; an entry's position
    /// plus one is the offset that resumes after it.
    pub fn readdir(&self, fh: u64, offset: u64) -> SysResult<Arc<Vec<DirEntry>>> {
        let dir = self
            .dirs
            .dirs
            .get(&fh)
            .map(|d| d.clone())
            .ok_or(Errno::EBADF)?;
        if offset != 0
            && let Some(entries) = &*dir.entries.read().unwrap_or_else(|e| e.into_inner())
        {
            return Ok(entries.clone());
        }
        let fresh = Arc::new(self.list(&dir.node)?);
        *dir.entries.write().unwrap_or_else(|e| e.into_inner()) = Some(fresh.clone());
        Ok(fresh)
    }

    /// The node an open directory handle is on.
    pub fn dir_node(&self, fh: u64) -> SysResult<NodeId> {
        self.dirs
            .dirs
            .get(&fh)
            .map(|d| d.node.id)
            .ok_or(Errno::EBADF)
    }

    /// Closes a directory handle.
    pub fn releasedir(&self, fh: u64) {
        self.dirs.dirs.remove(&fh);
    }

    fn list(&self, node: &Node) -> SysResult<Vec<DirEntry>> {
        let parent = node.read_state().parent();
        let parent_ino = self
            .nodes
            .get(parent)
            .map(|p| self.nodes.ino(&p))
            .unwrap_or(self.nodes.ino(node));
        let mut out = vec![
            DirEntry {
                name: ".".into(),
                kind: libc::S_IFDIR,
                ino: self.nodes.ino(node),
            },
            DirEntry {
                name: "..".into(),
                kind: libc::S_IFDIR,
                ino: parent_ino,
            },
        ];
        let guard = self.index(node)?;
        let index = guard.as_ref().ok_or(Errno::EIO)?;
        let upper_path = if index.impure {
            Some(self.path_of(node))
        } else {
            None
        };
        let mut names: Vec<_> = index.entries.iter().collect();
        names.sort_by(|a, b| a.0.cmp(b.0));
        for (name, entry) in names {
            let ino = if let Some(child) = self.nodes.existing_child(node, name) {
                self.nodes.ino(&child)
            } else {
                let origin = match (&upper_path, entry.upper) {
                    (Some(p), true) => self.read_origin(&p.join(name)),
                    _ => None,
                };
                origin.unwrap_or_else(|| {
                    self.layers
                        .map_ino(self.layers.get(entry.layer).dev, entry.raw_ino)
                })
            };
            out.push(DirEntry {
                name: name.to_os_string(),
                kind: entry.kind,
                ino,
            });
        }
        Ok(out)
    }
}
