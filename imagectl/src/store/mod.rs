//! The image store: an OCI image layout plus unpacked layers, embedded (no daemon).
//!
//! ```text
//! ROOT/oci-layout, ROOT/index.json     OCI layout; tags in org.opencontainers.image.ref.name
//! ROOT/blobs/sha256/HEX                manifests, configs, layer blobs, byte for byte
//! ROOT/layers/CHAINHEX/diff/           one unpacked layer per ChainID (overlay on-disk format)
//! ROOT/layers/CHAINHEX/layer.json      its DiffID, parent and sizes
//! ROOT/layers/CHAINHEX/unionfs.index   persistent index of the chain it ends (optional)
//! ROOT/holds/NAME.json                 images in use by containers and mounts (GC roots)
//! ROOT/tmp/                            work in progress; renamed into place when complete
//! ROOT/partial/HEX                     downloads in progress, resumed by the next pull
//! ```
//!
//! Because the root *is* an OCI layout, `skopeo copy oci:ROOT:NAME ...` and `umoci`
//! read it directly. Every file appears by rename, so a killed process leaves at most
//! garbage in `tmp/`, which GC clears; a re-run redoes only what is missing.

mod atomic;
mod blobs;
mod chain_index;
mod gc;
mod holds;
mod images;
mod index;
mod layers;
mod lock;

use std::path::{Path, PathBuf};

pub use atomic::write_file as write_file_atomic;
pub use chain_index::{INDEX_FILE, NO_INDEX_ENV, indexes_enabled};
pub use gc::{GcReport, Removal};
pub use images::{Image, ImageName};
pub use layers::{LayerRecord, NewLayer};
pub use lock::LockGuard;

use crate::error::{IoContext, Result};
use crate::layer::ExtractOptions;
use crate::oci::Index;

/// Environment variable that overrides the store root.
pub const ROOT_ENV: &str = "IMAGECTL_ROOT";

/// An open store. Cheap to clone; all state is on disk.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
    extract: ExtractOptions,
}

impl Store {
    /// The default root: `$IMAGECTL_ROOT`, else `/var/lib/imagectl` for root, else
    /// `$XDG_DATA_HOME/imagectl` (`~/.local/share/imagectl`).
    pub fn default_root() -> PathBuf {
        if let Some(r) = std::env::var_os(ROOT_ENV).filter(|r| !r.is_empty()) {
            return PathBuf::from(r);
        }
        if nix::unistd::geteuid().is_root() {
            return PathBuf::from("/var/lib/imagectl");
        }
        let data = std::env::var_os("XDG_DATA_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
            .unwrap_or_else(|| PathBuf::from("."));
        data.join("imagectl")
    }

    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        for sub in ["blobs/sha256", "layers", "holds", "tmp"] {
            atomic::ensure_dir(&root.join(sub))?;
        }
        let layout = root.join("oci-layout");
        if !layout.exists() {
            atomic::write_file(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        let index = root.join("index.json");
        if !index.exists() {
            let _g = LockGuard::exclusive(&root.join("index.lock"))?;
            if !index.exists() {
                let bytes = serde_json::to_vec(&Index::empty())
                    .map_err(|e| crate::error::Error::json("index.json", e))?;
                atomic::write_file(&index, &bytes)?;
            }
        }
        let store = Store {
            root,
            extract: ExtractOptions::for_current_user(),
        };
        store.clear_stale_tmp()?;
        Ok(store)
    }

    /// Removes what killed processes left in `tmp/`, but only when no other process is
    /// adding content (everything that writes to `tmp/` holds the content lock).
    fn clear_stale_tmp(&self) -> Result<()> {
        let tmp = self.root.join("tmp");
        let is_empty = std::fs::read_dir(&tmp).at(&tmp)?.next().is_none();
        if is_empty {
            return Ok(());
        }
        if let Some(_g) = LockGuard::try_exclusive(&self.root.join("content.lock"))? {
            for e in std::fs::read_dir(&tmp).at(&tmp)? {
                let p = e.at(&tmp)?.path();
                let _ = if p.is_dir() {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                };
            }
        }
        Ok(())
    }

    /// Opens the store at [`Store::default_root`].
    pub fn open_default() -> Result<Self> {
        Self::open(Self::default_root())
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// How layers are extracted (whiteout format, ownership).
    pub fn extract_options(&self) -> &ExtractOptions {
        &self.extract
    }

    /// Takes the shared content lock: hold it while adding content (and while using
    /// `tmp/`), so GC and the stale-tmp sweep wait. Builders and container commits
    /// adding layers with [`Store::add_layer_tar`] must hold it until the image is
    /// committed.
    pub fn content_lock(&self) -> Result<LockGuard> {
        LockGuard::shared(&self.root.join("content.lock"))
    }

    fn gc_lock(&self) -> Result<LockGuard> {
        LockGuard::exclusive(&self.root.join("content.lock"))
    }

    fn index_lock(&self) -> Result<LockGuard> {
        LockGuard::exclusive(&self.root.join("index.lock"))
    }

    /// A fresh private directory under `tmp/` for work in progress. Hold
    /// [`Store::content_lock`] while it exists, or another process may clear it.
    pub fn temp_dir(&self, prefix: &str) -> Result<tempfile::TempDir> {
        let tmp = self.root.join("tmp");
        tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(&tmp)
            .at(&tmp)
    }
}
