//! Serving lower-only directories from the persistent index instead of the layers.
//!
//! When the union was given a [`PersistentIndex`] of its lower chain, a directory that has
//! no upper copy is exactly what the index recorded: its merged entries, their layers and
//! their attributes come out of the memory-mapped file with no system call. Anything with
//! an upper copy, or any place where the index does not describe the same lower
//! directory, goes to the layers as usual.

use std::ffi::OsStr;

use nix::sys::stat::FileStat;

use super::Union;
use super::dirindex::{DirIndex, MergedEntry};
use super::node::{LowerPath, NodeState};
use crate::layer::LayerIdx;
use crate::pindex::{DirRecord, EntryRecord};

impl Union {
    /// Offset of the index's layer numbers (counted among lower layers) in this stack.
    fn lower_offset(&self) -> LayerIdx {
        self.layers.lower_indexes().start
    }

    /// The stack's number for lower layer `l` of the index. The index was checked to
    /// describe this very lower chain when it was opened, so `l` is one of its layers.
    fn stack_layer(&self, l: usize) -> LayerIdx {
        self.lower_offset() + l as LayerIdx
    }

    /// The index record of a directory whose contents are purely lower, when the index
    /// describes that very lower directory.
    pub(crate) fn prebuilt_dir(&self, state: &NodeState) -> Option<DirRecord<'_>> {
        let ix = self.pindex.as_ref()?;
        if state.upper {
            return None;
        }
        let rec = match state.prebuilt {
            Some(id) => ix.entry_by_id(id)?.dir()?,
            None => ix.dir(&state.lower_path())?,
        };
        let same_layers = rec
            .lower_dirs()
            .map(|l| self.stack_layer(l))
            .eq(state.lower_dirs.iter().copied());
        (same_layers && rec.lower_path() == &*state.lower_path()).then_some(rec)
    }

    /// The merged index of a directory, from its record.
    pub(crate) fn dirindex_from(&self, rec: &DirRecord<'_>) -> DirIndex {
        let off = self.lower_offset();
        let mut index = DirIndex::default();
        for e in rec.entries() {
            let top = e.lower_layer().map(|l| self.stack_layer(l));
            let entry = MergedEntry {
                kind: e.kind(),
                upper: false,
                top_lower: top,
                lower_dirs: e
                    .lower_dirs()
                    .into_iter()
                    .map(|l| self.stack_layer(l))
                    .collect(),
                raw_ino: e.raw_ino(),
                layer: top.unwrap_or(off),
                prebuilt: Some(e.id()),
            };
            index.entries.insert(e.name(), entry);
        }
        for name in rec.whited() {
            index.whited.insert(name.to_os_string());
        }
        index.entries.shrink_to_fit();
        index
    }

    /// The state of a lower-only child, from its record.
    pub(crate) fn state_from(
        &self,
        parent: &super::node::Node,
        name: &OsStr,
        e: &EntryRecord<'_>,
    ) -> NodeState {
        let lower_path = match e.own_lower_path() {
            Some(path) => LowerPath::at(path),
            None => parent.read_state().child_lower_path(name, false),
        };
        let mut state = NodeState::new(parent.id, name, lower_path);
        if !e.is_dir() {
            state.lower = e.lower_layer().map(|l| self.stack_layer(l));
        }
        state.lower_dirs = e
            .lower_dirs()
            .into_iter()
            .map(|l| self.stack_layer(l))
            .collect();
        state.prebuilt = Some(e.id());
        state
    }

    /// The record of what a lower-only node's state points at, if the index has it.
    pub(crate) fn prebuilt_entry(&self, state: &NodeState) -> Option<EntryRecord<'_>> {
        if state.upper || state.indexed.is_some() {
            return None;
        }
        self.pindex.as_ref()?.entry_by_id(state.prebuilt?)
    }

    /// The record of a merged entry of a directory served from the index.
    pub(crate) fn prebuilt_record(&self, entry: &MergedEntry) -> Option<EntryRecord<'_>> {
        self.pindex.as_ref()?.entry_by_id(entry.prebuilt?)
    }
}

/// A `stat` built from a record, as the layer would have answered.
pub(crate) fn record_stat(e: &EntryRecord<'_>) -> FileStat {
    // SAFETY: `stat` is plain old data; all-zero is a valid value.
    let mut st: FileStat = unsafe { std::mem::zeroed() };
    st.st_dev = e.raw_dev();
    st.st_ino = e.raw_ino();
    st.st_mode = e.mode();
    st.st_nlink = e.nlink();
    st.st_uid = e.uid();
    st.st_gid = e.gid();
    st.st_rdev = e.rdev();
    st.st_size = e.size() as i64;
    st.st_blksize = e.blksize() as i64;
    st.st_blocks = e.blocks() as i64;
    (st.st_atime, st.st_atime_nsec) = e.atime();
    (st.st_mtime, st.st_mtime_nsec) = e.mtime();
    (st.st_ctime, st.st_ctime_nsec) = e.ctime();
    st
}
