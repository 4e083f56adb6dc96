//! Holds: images in use by a container or a mount. GC keeps what is held, and `rmi`
//! refuses to delete a held image.

use std::fs;

use serde::{Deserialize, Serialize};

use super::{Store, atomic};
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};

#[derive(Serialize, Deserialize)]
struct HoldFile {
    manifest: Digest,
}

fn check_holder(holder: &str) -> Result<()> {
    if holder.is_empty()
        || !holder
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        || holder.starts_with('.')
    {
        return Err(Error::Other(format!("invalid holder name {holder:?}")));
    }
    Ok(())
}

impl Store {
    /// Records that `holder` (e.g. `container-ID`, `mount-HASH`) uses the image whose
    /// manifest is `manifest`.
    pub fn hold(&self, holder: &str, manifest: &Digest) -> Result<()> {
        check_holder(holder)?;
        let bytes = serde_json::to_vec(&HoldFile {
            manifest: manifest.clone(),
        })
        .map_err(|e| Error::json("hold", e))?;
        let _g = self.index_lock()?;
        atomic::write_file(
            &self.root.join("holds").join(format!("{holder}.json")),
            &bytes,
        )
    }

    /// Drops a hold (no error if it is gone already).
    pub fn release(&self, holder: &str) -> Result<()> {
        check_holder(holder)?;
        let _g = self.index_lock()?;
        let p = self.root.join("holds").join(format!("{holder}.json"));
        match fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::Io { path: p, source: e })
            }
            _ => Ok(()),
        }
    }

    /// Every hold: (holder, manifest digest).
    pub fn holds(&self) -> Result<Vec<(String, Digest)>> {
        let dir = self.root.join("holds");
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).at(&dir)? {
            let e = e.at(&dir)?;
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(holder) = name.strip_suffix(".json") else {
                continue;
            };
            let bytes = fs::read(e.path()).at(e.path())?;
            if let Ok(h) = serde_json::from_slice::<HoldFile>(&bytes) {
                out.push((holder.to_string(), h.manifest));
            }
        }
        Ok(out)
    }
}
