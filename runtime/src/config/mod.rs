//! OCI runtime bundles: reading one (config.json + rootfs) and generating the
//! config.json for a container made from an image.

pub mod generate;

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

use crate::error::{Error, Result};

/// A loaded bundle.
pub struct Bundle {
    /// The bundle directory, absolute.
    pub dir: PathBuf,
    /// Its config.json.
    pub spec: Spec,
    /// The rootfs, absolute and canonical.
    pub rootfs: PathBuf,
}

/// Loads and checks `dir/config.json`: a process with arguments and a rootfs that
/// exists are required; everything else has defaults.
pub fn load_bundle(dir: &Path) -> Result<Bundle> {
    let dir = std::fs::canonicalize(dir).map_err(Error::io(format!("bundle {}", dir.display())))?;
    let path = dir.join("config.json");
    let bad = |reason: String| Error::Config {
        path: path.clone(),
        reason,
    };
    if !path.exists() {
        return Err(bad("no config.json in the bundle".into()));
    }
    let spec = Spec::load(&path).map_err(|e| bad(e.to_string()))?;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| bad("no \"process\"".into()))?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(bad("process.args is empty".into()));
    }
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| bad("no \"root\"".into()))?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        dir.join(root.path())
    };
    let rootfs = std::fs::canonicalize(&rootfs)
        .map_err(|e| bad(format!("rootfs {}: {e}", rootfs.display())))?;
    if !rootfs.is_dir() {
        return Err(bad(format!(
            "rootfs {} is not a directory",
            rootfs.display()
        )));
    }
    Ok(Bundle { dir, spec, rootfs })
}
