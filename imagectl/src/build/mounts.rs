//! The union mounts a build needs, as guards: a step's root filesystem (the stage's
//! layers plus a fresh upper that becomes the step's layer) and the read-only view of
//! another stage or image for `COPY --from`. The mount is a
//! [`crate::container::rootfs::ContainerRoot`] in a private directory under the store's
//! `tmp/`; dropping the guard unmounts it and removes the directory, also when the step
//! fails.

use std::path::{Path, PathBuf};

use crate::container::rootfs::ContainerRoot;
use crate::error::Result;
use crate::store::Store;

/// A mounted union with its scratch directory.
pub struct StepRoot {
    root: ContainerRoot,
    // Dropped after `Drop::drop` has unmounted: removes upper/work/merged.
    _dir: tempfile::TempDir,
}

impl StepRoot {
    /// Mounts `lowers` (top first; empty for `FROM scratch`) under a fresh upper.
    pub fn mount(store: &Store, lowers: &[PathBuf]) -> Result<StepRoot> {
        let dir = store.temp_dir("build-step-")?;
        let root = ContainerRoot::prepare(lowers, dir.path())?;
        Ok(StepRoot { root, _dir: dir })
    }

    /// The merged view: the step's `/`.
    pub fn merged(&self) -> &Path {
        &self.root.merged
    }

    /// The writable layer: what the step changed.
    pub fn upper(&self) -> &Path {
        &self.root.upper
    }

    /// The scratch directory (outside the mount) for files a step needs beside it.
    pub fn scratch(&self) -> &Path {
        &self.root.dir
    }

    /// Unmounts now (before turning the upper into a layer).
    pub fn unmount(&self) -> Result<()> {
        self.root.unmount()
    }

    /// Whether the step changed nothing.
    pub fn upper_is_empty(&self) -> Result<bool> {
        let up = self.upper();
        Ok(std::fs::read_dir(up)
            .map_err(|e| crate::Error::Io {
                path: up.to_path_buf(),
                source: e,
            })?
            .next()
            .is_none())
    }
}

impl Drop for StepRoot {
    fn drop(&mut self) {
        if let Err(e) = self.root.unmount() {
            log::warn!("build: unmounting {}: {e}", self.root.merged.display());
        }
    }
}
