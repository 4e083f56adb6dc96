//! A container's root filesystem: the image's shared read-only layers under one
//! private writable layer, served by the workspace's `unionfsd`.
//!
//! ```text
//! DIR/upper/    the container's writable layer (what `diff` and `commit` read)
//! DIR/work/     unionfsd's scratch space for atomic copy-up
//! DIR/merged/   the union mount: the container's `/`
//! ```
//!
//! Builds reuse this for each `RUN` step: [`ContainerRoot::prepare`] on the layer
//! directories of the step's base, run the step, [`ContainerRoot::unmount`], then turn
//! `upper` into a layer with [`crate::Store::add_layer_dir`].

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::store::Store;

/// The directories of one container's root filesystem and the lower layers under it.
#[derive(Debug, Clone)]
pub struct ContainerRoot {
    /// The container directory holding the three below.
    pub dir: PathBuf,
    /// The writable layer.
    pub upper: PathBuf,
    /// unionfsd's work directory (same file system as `upper`).
    pub work: PathBuf,
    /// The mount point of the union.
    pub merged: PathBuf,
    /// Read-only layer directories, top first (the `lowerdir=` order).
    pub lowers: Vec<PathBuf>,
}

impl ContainerRoot {
    /// The paths of a container root in `dir` over `lowers` (top first), without
    /// touching the disk: for reopening a container made earlier.
    pub fn at(dir: &Path, lowers: Vec<PathBuf>) -> ContainerRoot {
        ContainerRoot {
            dir: dir.to_path_buf(),
            upper: dir.join("upper"),
            work: dir.join("work"),
            merged: dir.join("merged"),
            lowers,
        }
    }

    /// Creates `dir/{upper,work,merged}` (keeping an existing upper, so a stopped
    /// container's changes survive a remount) and mounts the union at `merged`.
    pub fn prepare(lowers: &[PathBuf], dir: &Path) -> Result<ContainerRoot> {
        let root = ContainerRoot::at(dir, lowers.to_vec());
        for d in [&root.upper, &root.work, &root.merged] {
            fs::create_dir_all(d).at(d)?;
        }
        root.mount()?;
        Ok(root)
    }

    /// [`ContainerRoot::prepare`] over an image's layers (unpacking any that are missing).
    pub fn for_image(store: &Store, image: &crate::store::Image, dir: &Path) -> Result<Self> {
        let lowers = store.layer_dirs(image)?;
        Self::prepare(&lowers, dir)
    }

    /// Whether the union is mounted at `merged` and its daemon answers.
    pub fn is_mounted(&self) -> bool {
        crate::mount::is_mounted(&self.merged) && fs::symlink_metadata(&self.merged).is_ok()
    }

    /// Mounts the union at `merged` unless it is mounted and alive already. A mount
    /// whose daemon died (ENOTCONN) is cleared first.
    pub fn mount(&self) -> Result<()> {
        if crate::mount::is_mounted(&self.merged) {
            if fs::symlink_metadata(&self.merged).is_ok() {
                return Ok(());
            }
            self.unmount()?;
        }
        if self.lowers.is_empty() {
            // An image without layers (FROM scratch): the union still needs a lower.
            let empty = self.dir.join("empty");
            fs::create_dir_all(&empty).at(&empty)?;
        }
        let lowers: Vec<PathBuf> = if self.lowers.is_empty() {
            vec![self.dir.join("empty")]
        } else {
            self.lowers.clone()
        };
        crate::mount::mount_union(&lowers, Some((&self.upper, &self.work)), &self.merged)
            .map_err(|e| Error::Other(format!("mounting the container's root filesystem: {e}")))?;
        Ok(())
    }

    /// Unmounts the union if it is mounted, also when its daemon is dead or the mount
    /// is busy (then it is detached lazily). Never touches `upper`.
    pub fn unmount(&self) -> Result<()> {
        unmount_path(&self.merged)
    }
}

/// Unmounts `dir` robustly (see [`crate::mount::unmount_path`]).
pub use crate::mount::unmount_path;
