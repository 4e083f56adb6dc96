//! Tags: the entries of the layout's `index.json`.
//!
//! Each tag is one manifest descriptor annotated with
//! `org.opencontainers.image.ref.name` = the normalized reference. A manifest whose last
//! tag moves elsewhere stays listed without a name (docker's `<none>` image) until
//! `image prune` or `rmi` removes it.

use std::collections::BTreeMap;
use std::fs;

use super::{Store, atomic};
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::oci::{ANNOTATION_REF_NAME, Descriptor, Index};

impl Store {
    /// Reads `index.json`.
    pub fn read_index(&self) -> Result<Index> {
        let p = self.root.join("index.json");
        let bytes = fs::read(&p).at(&p)?;
        serde_json::from_slice(&bytes).map_err(|e| Error::json(p.display().to_string(), e))
    }

    /// Read-modify-writes `index.json` under the index lock.
    pub fn update_index<T>(&self, f: impl FnOnce(&mut Index) -> Result<T>) -> Result<T> {
        let _g = self.index_lock()?;
        let mut idx = self.read_index()?;
        let out = f(&mut idx)?;
        let bytes = serde_json::to_vec_pretty(&idx).map_err(|e| Error::json("index.json", e))?;
        atomic::write_file(&self.root.join("index.json"), &bytes)?;
        Ok(out)
    }

    /// Points `name` (a normalized reference string) at the manifest `desc`, keeping the
    /// manifest it pointed at before as an unnamed entry if nothing else names it.
    pub fn set_tag(&self, name: &str, desc: &Descriptor) -> Result<()> {
        let mut entry = Descriptor::new(&desc.media_type, desc.digest.clone(), desc.size);
        let mut ann = BTreeMap::new();
        ann.insert(ANNOTATION_REF_NAME.to_string(), name.to_string());
        entry.annotations = Some(ann);
        self.update_index(|idx| {
            let old = take_named(idx, name);
            // An unnamed entry for the same manifest is superseded by the tag.
            idx.manifests.retain(|d| {
                !(d.digest == desc.digest && d.annotation(ANNOTATION_REF_NAME).is_none())
            });
            idx.manifests.push(entry);
            if let Some(old) = old {
                keep_unnamed(idx, old);
            }
            Ok(())
        })
    }

    /// Records a manifest with no name (pulled by digest, loaded without a tag).
    pub fn add_unnamed(&self, desc: &Descriptor) -> Result<()> {
        let entry = Descriptor::new(&desc.media_type, desc.digest.clone(), desc.size);
        self.update_index(|idx| {
            keep_unnamed(idx, entry);
            Ok(())
        })
    }

    /// Removes the tag `name`; returns the manifest it named. When `keep_image` the
    /// manifest stays listed without a name if no other tag names it.
    pub fn remove_tag(&self, name: &str, keep_image: bool) -> Result<Option<Digest>> {
        self.update_index(|idx| {
            let old = take_named(idx, name);
            let digest = old.as_ref().map(|d| d.digest.clone());
            if let Some(old) = old
                && keep_image
            {
                keep_unnamed(idx, old);
            }
            Ok(digest)
        })
    }

    /// Drops every index entry (named or not) for `digest`.
    pub fn remove_manifest_entries(&self, digest: &Digest) -> Result<()> {
        self.update_index(|idx| {
            idx.manifests.retain(|d| &d.digest != digest);
            Ok(())
        })
    }
}

fn take_named(idx: &mut Index, name: &str) -> Option<Descriptor> {
    let pos = idx
        .manifests
        .iter()
        .position(|d| d.annotation(ANNOTATION_REF_NAME) == Some(name))?;
    Some(idx.manifests.remove(pos))
}

fn keep_unnamed(idx: &mut Index, mut desc: Descriptor) {
    if idx.manifests.iter().any(|d| d.digest == desc.digest) {
        return;
    }
    desc.annotations = None;
    idx.manifests.push(desc);
}
