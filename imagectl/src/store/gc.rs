//! Removing images and collecting garbage.
//!
//! `rmi` only edits `index.json`; what is no longer reachable from the index or a hold
//! is then deleted by [`Store::gc`] under the exclusive content lock, so a blob or layer
//! shared with another image (a common base) always survives.

use std::collections::HashSet;
use std::fs;

use super::Store;
use crate::digest::{Digest, chain_ids};
use crate::error::{Error, IoContext, Result};
use crate::oci::ImageConfig;
use crate::oci::manifest::AnyManifest;
use crate::reference::Reference;

/// What garbage collection deleted.
#[derive(Clone, Debug, Default)]
pub struct GcReport {
    /// Blobs deleted.
    pub blobs: Vec<Digest>,
    /// Layer directories deleted (ChainIDs).
    pub layers: Vec<Digest>,
    /// Bytes freed (blobs plus layer contents).
    pub bytes: u64,
}

/// One line of `rmi` output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Removal {
    /// A tag was removed.
    Untagged(String),
    /// An image (config digest) was deleted.
    Deleted(Digest),
}

impl Store {
    /// Removes an image by tag or ID, the way `docker rmi` does: a tag is untagged and
    /// the image deleted once no tag is left; an ID with several tags needs `force`. An
    /// image held by a container or mount is never deleted.
    pub fn remove_image(&self, what: &str, force: bool) -> Result<(Vec<Removal>, GcReport)> {
        let image = self.resolve(what)?;
        let mut out = Vec::new();
        let holders: Vec<String> = self
            .holds()?
            .into_iter()
            .filter(|(_, d)| d == image.manifest_digest())
            .map(|(h, _)| h)
            .collect();
        let by_tag = Reference::parse(what)
            .ok()
            .filter(|r| r.digest.is_none())
            .and_then(|r| {
                let s = r.to_string();
                image.names.iter().find(|n| n.stored == s).cloned()
            });
        if let Some(name) = by_tag {
            let last = image.names.len() == 1;
            if last && !holders.is_empty() && !force {
                return Err(Error::InUse {
                    image: what.to_string(),
                    holder: holders.join(", "),
                });
            }
            self.remove_tag(&name.stored, last && !holders.is_empty())?;
            out.push(Removal::Untagged(name.familiar()));
            if !last || !holders.is_empty() {
                return Ok((out, GcReport::default()));
            }
        } else {
            if !holders.is_empty() {
                return Err(Error::InUse {
                    image: what.to_string(),
                    holder: holders.join(", "),
                });
            }
            if image.names.len() > 1 && !force {
                return Err(Error::Other(format!(
                    "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                    image.id().short()
                )));
            }
            for n in &image.names {
                out.push(Removal::Untagged(n.familiar()));
            }
        }
        self.remove_manifest_entries(image.manifest_digest())?;
        out.push(Removal::Deleted(image.id().clone()));
        let report = self.gc()?;
        Ok((out, report))
    }

    /// Deletes unnamed images (or, with `all`, every image not held), then collects
    /// garbage. Returns the deleted image IDs.
    pub fn prune(&self, all: bool) -> Result<(Vec<Digest>, GcReport)> {
        let held: HashSet<Digest> = self.holds()?.into_iter().map(|(_, d)| d).collect();
        let mut deleted = Vec::new();
        for img in self.list_images()? {
            if held.contains(img.manifest_digest()) {
                continue;
            }
            if all || img.names.is_empty() {
                self.remove_manifest_entries(img.manifest_digest())?;
                deleted.push(img.id().clone());
            }
        }
        let report = self.gc()?;
        Ok((deleted, report))
    }

    /// Deletes blobs and layers nothing refers to, leftovers in `tmp/` and unfinished
    /// downloads in `partial/`.
    pub fn gc(&self) -> Result<GcReport> {
        let _g = self.gc_lock()?;
        let idx = self.read_index()?;
        let mut roots: Vec<(Digest, String)> = idx
            .manifests
            .iter()
            .map(|d| (d.digest.clone(), d.media_type.clone()))
            .collect();
        for (_, d) in self.holds()? {
            roots.push((d, String::new()));
        }
        let mut live_blobs: HashSet<Digest> = HashSet::new();
        let mut live_layers: HashSet<Digest> = HashSet::new();
        while let Some((digest, mt)) = roots.pop() {
            if !live_blobs.insert(digest.clone()) || !self.has_blob(&digest) {
                continue;
            }
            let bytes = self.read_blob(&digest)?;
            match AnyManifest::parse(&bytes, Some(&mt))? {
                AnyManifest::Index(i) => {
                    roots.extend(i.manifests.into_iter().map(|d| (d.digest, d.media_type)));
                }
                AnyManifest::Image(m) => {
                    live_blobs.insert(m.config.digest.clone());
                    live_blobs.extend(m.layers.iter().map(|l| l.digest.clone()));
                    if self.has_blob(&m.config.digest) {
                        let cb = self.read_blob(&m.config.digest)?;
                        let cfg: ImageConfig = serde_json::from_slice(&cb).map_err(|e| {
                            Error::json(format!("image config {}", m.config.digest), e)
                        })?;
                        live_layers.extend(chain_ids(&cfg.rootfs.diff_ids));
                    }
                }
            }
        }
        let mut report = GcReport::default();
        for b in self.list_blobs()? {
            if !live_blobs.contains(&b) {
                report.bytes += self.blob_size(&b).unwrap_or(0);
                let p = self.blob_path(&b);
                fs::remove_file(&p).at(&p)?;
                report.blobs.push(b);
            }
        }
        for l in self.list_layers()? {
            if !live_layers.contains(&l) {
                report.bytes += self.layer_record(&l).map(|r| r.size).unwrap_or(0);
                let p = self.layer_path(&l);
                fs::remove_dir_all(&p).at(&p)?;
                report.layers.push(l);
            }
        }
        let partial = self.root.join("partial");
        if partial.is_dir() {
            for e in fs::read_dir(&partial).at(&partial)? {
                let _ = fs::remove_file(e.at(&partial)?.path());
            }
        }
        let tmp = self.root.join("tmp");
        for e in fs::read_dir(&tmp).at(&tmp)? {
            let p = e.at(&tmp)?.path();
            let _ = if p.is_dir() {
                fs::remove_dir_all(&p)
            } else {
                fs::remove_file(&p)
            };
        }
        Ok(report)
    }
}
