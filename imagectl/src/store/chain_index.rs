//! The persistent index of a layer chain (`layers/CHAINHEX/unionfs.index`).
//!
//! Unpacked layers never change, so what a union of a chain sees — which layer holds
//! each path, what is whited out, every attribute — is worked out once, when the top
//! layer of the chain is unpacked, and kept beside it. `unionfsd -o index=FILE` then
//! memory-maps it: a lookup is one probe whatever the depth of the stack, and the page
//! cache shares the file among all mounts and containers of the image.
//!
//! The index is an optimisation only: failing to build it is a warning, and a missing or
//! stale file just means unionfsd builds its in-memory index as it goes. A layer found
//! without a valid index when an image's layers are next checked (mount, container
//! start) gets one then.

use std::path::PathBuf;
use std::time::Instant;

use super::Store;
use crate::digest::Digest;

/// File name of a chain's index inside `layers/CHAINHEX/`.
pub const INDEX_FILE: &str = "unionfs.index";

/// Environment variable that turns persistent indexes off (neither built nor used) when
/// set to anything but `0`: for measuring what they bring, or ruling them out.
pub const NO_INDEX_ENV: &str = "IMAGECTL_NO_INDEX";

/// Whether persistent indexes are built and used (see [`NO_INDEX_ENV`]).
pub fn indexes_enabled() -> bool {
    std::env::var_os(NO_INDEX_ENV).is_none_or(|v| v == "0")
}

impl Store {
    /// `layers/CHAINHEX/unionfs.index`: where the index of the chain ending in `chain_id`
    /// lives (it may not exist).
    pub fn chain_index_path(&self, chain_id: &Digest) -> PathBuf {
        self.layer_path(chain_id).join(INDEX_FILE)
    }

    /// The `diff` directories of the chain ending in `chain_id`, top first, or `None`
    /// while a layer below it is not unpacked yet (pulls unpack layers in parallel).
    fn complete_chain(&self, chain_id: &Digest) -> Option<Vec<PathBuf>> {
        let mut dirs = Vec::new();
        let mut next = Some(chain_id.clone());
        while let Some(id) = next {
            if !self.has_layer(&id) || dirs.len() > 4096 {
                return None;
            }
            next = self.layer_record(&id).ok()?.parent;
            dirs.push(self.layer_diff_dir(&id));
        }
        Some(dirs)
    }

    /// Makes sure the chain ending in `chain_id` — just unpacked — and every chain above
    /// it that it completes have a valid index, building what is missing or unusable.
    ///
    /// Layers of one pull are unpacked in parallel, so a layer may land before its
    /// parent: its chain is then indexed when the parent lands (whichever of the two
    /// renames comes second sees both layers). Never fails: an index only makes mounts
    /// faster, so a failure is logged as a warning and the layer stays usable.
    pub fn ensure_chain_index(&self, chain_id: &Digest) {
        if !indexes_enabled() {
            return;
        }
        let mut todo = vec![chain_id.clone()];
        while let Some(id) = todo.pop() {
            let Some(lowers) = self.complete_chain(&id) else {
                continue;
            };
            self.ensure_one_index(&id, &lowers);
            todo.extend(self.children_of(&id));
        }
    }

    /// Makes sure the chain ending in `chain_id` — already in the store — has a valid
    /// index (built by an older imagectl, or its build failed then). Unlike
    /// [`Store::ensure_chain_index`] it leaves the chains above alone: they were
    /// complete, and indexed, when their own top layer landed.
    pub fn ensure_existing_chain_index(&self, chain_id: &Digest) {
        if !indexes_enabled() {
            return;
        }
        if let Some(lowers) = self.complete_chain(chain_id) {
            self.ensure_one_index(chain_id, &lowers);
        }
    }

    /// Unpacked layers whose parent is `chain_id`.
    fn children_of(&self, chain_id: &Digest) -> Vec<Digest> {
        let Ok(all) = self.list_layers() else {
            return Vec::new();
        };
        all.into_iter()
            .filter(|c| {
                self.layer_record(c)
                    .is_ok_and(|r| r.parent.as_ref() == Some(chain_id))
            })
            .collect()
    }

    fn ensure_one_index(&self, chain_id: &Digest, lowers: &[PathBuf]) {
        let path = self.chain_index_path(chain_id);
        if path.is_file() && unionfs::pindex::PersistentIndex::open(&path, lowers).is_ok() {
            return;
        }
        let started = Instant::now();
        match unionfs::pindex::build(lowers, &path) {
            Ok(stats) => log::debug!(
                "layer {}: index of {} entries built in {:.2?}",
                chain_id.short(),
                stats.entries,
                started.elapsed()
            ),
            Err(e) => log::warn!(
                "layer {}: no persistent index ({e}); mounts will index as they go",
                chain_id.short()
            ),
        }
    }
}
