//! Images: resolving a name or ID to manifest + config + layers, listing, committing.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::Store;
use crate::digest::{Digest, chain_ids};
use crate::error::{Error, Result};
use crate::oci::manifest::AnyManifest;
use crate::oci::{ANNOTATION_REF_NAME, Descriptor, ImageConfig, Manifest, media};
use crate::reference::Reference;

/// A tag of an image, as stored and as shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageName {
    /// The stored, normalized form (`docker.io/library/busybox:latest`).
    pub stored: String,
    /// The parsed reference, when the stored name parses as one.
    pub reference: Option<Reference>,
}

impl ImageName {
    /// `REPOSITORY` and `TAG` as docker prints them.
    pub fn repo_and_tag(&self) -> (String, String) {
        match &self.reference {
            Some(r) => (
                r.familiar_name(),
                r.tag.clone().unwrap_or_else(|| "<none>".into()),
            ),
            None => (self.stored.clone(), "<none>".into()),
        }
    }

    /// `repo:tag` in docker's short form.
    pub fn familiar(&self) -> String {
        match &self.reference {
            Some(r) => r.familiar(),
            None => self.stored.clone(),
        }
    }
}

/// One image in the store.
#[derive(Clone, Debug)]
pub struct Image {
    /// Descriptor of the manifest (media type, digest, size).
    pub manifest_descriptor: Descriptor,
    /// The manifest.
    pub manifest: Manifest,
    /// The config as parsed.
    pub config: ImageConfig,
    /// The config bytes as stored (what `inspect` and `save` use).
    pub config_bytes: Vec<u8>,
    /// Tags naming this image.
    pub names: Vec<ImageName>,
}

impl Image {
    /// The image ID: the config digest, as docker defines it.
    pub fn id(&self) -> &Digest {
        &self.manifest.config.digest
    }

    /// The manifest digest (what `repo@sha256:...` pins).
    pub fn manifest_digest(&self) -> &Digest {
        &self.manifest_descriptor.digest
    }

    /// ChainIDs of the layers, bottom first.
    pub fn chain_ids(&self) -> Vec<Digest> {
        chain_ids(&self.config.rootfs.diff_ids)
    }

    /// The name to show for the image: its first tag, else the short ID.
    pub fn display_name(&self) -> String {
        self.names
            .first()
            .map(|n| n.familiar())
            .unwrap_or_else(|| self.id().short().to_string())
    }
}

impl Store {
    /// Loads the image whose manifest is `desc`.
    pub fn load_image(&self, desc: &Descriptor) -> Result<Image> {
        let bytes = self.read_blob(&desc.digest)?;
        let manifest = match AnyManifest::parse(&bytes, Some(&desc.media_type))? {
            AnyManifest::Image(m) => *m,
            AnyManifest::Index(_) => {
                return Err(Error::Other(format!(
                    "{}: is an index, not an image manifest",
                    desc.digest
                )));
            }
        };
        let config_bytes = self.read_blob(&manifest.config.digest)?;
        let config: ImageConfig = serde_json::from_slice(&config_bytes)
            .map_err(|e| Error::json(format!("image config {}", manifest.config.digest), e))?;
        if config.rootfs.diff_ids.len() != manifest.layers.len() {
            return Err(Error::Other(format!(
                "image {}: config lists {} layers, manifest {}",
                manifest.config.digest,
                config.rootfs.diff_ids.len(),
                manifest.layers.len()
            )));
        }
        let names = self.names_of(&desc.digest)?;
        Ok(Image {
            manifest_descriptor: Descriptor::new(&desc.media_type, desc.digest.clone(), desc.size),
            manifest,
            config,
            config_bytes,
            names,
        })
    }

    fn names_of(&self, digest: &Digest) -> Result<Vec<ImageName>> {
        let idx = self.read_index()?;
        Ok(idx
            .manifests
            .iter()
            .filter(|d| &d.digest == digest)
            .filter_map(|d| d.annotation(ANNOTATION_REF_NAME))
            .map(|n| ImageName {
                stored: n.to_string(),
                reference: Reference::parse(n).ok(),
            })
            .collect())
    }

    /// Every image in the store, once per manifest, in index order.
    pub fn list_images(&self) -> Result<Vec<Image>> {
        let idx = self.read_index()?;
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for d in &idx.manifests {
            if !media::is_manifest(&d.media_type) && !d.media_type.is_empty() {
                continue;
            }
            if seen.insert(d.digest.clone()) {
                out.push(self.load_image(d)?);
            }
        }
        Ok(out)
    }

    /// Resolves what a user typed: a name (`busybox`, `reg/x:tag`, `x@sha256:..`), a
    /// full or short image ID, or a manifest digest.
    pub fn resolve(&self, what: &str) -> Result<Image> {
        let idx = self.read_index()?;
        if let Ok(r) = Reference::parse(what) {
            if let Some(d) = &r.digest {
                if let Some(desc) = idx.manifests.iter().find(|m| &m.digest == d) {
                    return self.load_image(desc);
                }
            } else {
                let name = r.to_string();
                if let Some(desc) = idx
                    .manifests
                    .iter()
                    .find(|m| m.annotation(ANNOTATION_REF_NAME) == Some(name.as_str()))
                {
                    return self.load_image(desc);
                }
            }
        }
        // An ID: config digest (image ID) or manifest digest, full or a prefix of >= 4 hex.
        let hex = what.strip_prefix("sha256:").unwrap_or(what);
        if hex.len() >= 4 && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut found: Option<Image> = None;
            for img in self.list_images()? {
                if img.id().hex().starts_with(hex) || img.manifest_digest().hex().starts_with(hex) {
                    if let Some(prev) = &found
                        && prev.id() != img.id()
                    {
                        return Err(Error::Other(format!("ambiguous image ID prefix: {what}")));
                    }
                    found = Some(img);
                }
            }
            if let Some(img) = found {
                return Ok(img);
            }
        }
        Err(Error::NoSuchImage(what.to_string()))
    }

    /// Makes sure every layer of `image` is unpacked (re-extracting from its blob if a
    /// directory was lost), returning their records bottom first.
    pub fn ensure_layers(&self, image: &Image) -> Result<Vec<super::LayerRecord>> {
        let missing = image.chain_ids().iter().any(|c| !self.has_layer(c));
        let _content = if missing {
            Some(self.content_lock()?)
        } else {
            None
        };
        let mut parent: Option<Digest> = None;
        let mut out = Vec::new();
        for (desc, diff_id) in image
            .manifest
            .layers
            .iter()
            .zip(&image.config.rootfs.diff_ids)
        {
            let rec = self.unpack_blob(&desc.digest, diff_id, parent.as_ref())?;
            parent = Some(rec.chain_id.clone());
            out.push(rec);
        }
        Ok(out)
    }

    /// The image's layer directories top first, the order `lowerdir=` wants.
    pub fn layer_dirs(&self, image: &Image) -> Result<Vec<PathBuf>> {
        let recs = self.ensure_layers(image)?;
        Ok(recs
            .iter()
            .rev()
            .map(|r| self.layer_diff_dir(&r.chain_id))
            .collect())
    }

    /// Uncompressed size of the image: the sum of its layers' file sizes.
    pub fn image_size(&self, image: &Image) -> u64 {
        image
            .chain_ids()
            .iter()
            .zip(&image.manifest.layers)
            .map(|(c, d)| self.layer_record(c).map(|r| r.size).unwrap_or(d.size))
            .sum()
    }

    /// Stores `config` and a new OCI manifest over `layers` (already stored, bottom
    /// first, matching `config.rootfs.diff_ids`) and tags it `name` if given. The
    /// building block of import, commit and build. Docker layer media types (from a
    /// pulled base) are rewritten to their OCI equivalents; the blobs are the same.
    ///
    /// A commit on top of an existing image, holding [`Store::content_lock`] throughout:
    ///
    /// ```no_run
    /// # fn demo(store: &imagectl::Store, upper: &std::path::Path) -> imagectl::Result<()> {
    /// let _content = store.content_lock()?;
    /// let base = store.resolve("busybox")?;
    /// let layer = store.add_layer_dir(upper, base.chain_ids().last())?;
    /// let mut config = base.config.clone();
    /// config.created = Some(imagectl::oci::config::now_rfc3339());
    /// config.rootfs.diff_ids.push(layer.diff_id.clone());
    /// config.history.push(imagectl::oci::History {
    ///     created: config.created.clone(),
    ///     created_by: Some("/bin/sh -c make".into()),
    ///     ..Default::default()
    /// });
    /// let mut layers = base.manifest.layers.clone();
    /// layers.push(layer.descriptor);
    /// let name = imagectl::Reference::parse("myimage:1")?;
    /// store.commit_image(&config, &layers, Some(&name))?;
    /// # Ok(()) }
    /// ```
    pub fn commit_image(
        &self,
        config: &ImageConfig,
        layers: &[Descriptor],
        name: Option<&Reference>,
    ) -> Result<Image> {
        if config.rootfs.diff_ids.len() != layers.len() {
            return Err(Error::Other(format!(
                "commit: {} diff IDs for {} layers",
                config.rootfs.diff_ids.len(),
                layers.len()
            )));
        }
        let config_bytes =
            serde_json::to_vec(config).map_err(|e| Error::json("image config", e))?;
        let config_digest = self.put_blob(&config_bytes)?;
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.to_string()),
            config: Descriptor::new(media::OCI_CONFIG, config_digest, config_bytes.len() as u64),
            layers: layers.iter().map(oci_layer).collect(),
            annotations: None,
            extra: BTreeMap::new(),
        };
        let manifest_bytes =
            serde_json::to_vec(&manifest).map_err(|e| Error::json("manifest", e))?;
        let digest = self.put_blob(&manifest_bytes)?;
        let desc = Descriptor::new(media::OCI_MANIFEST, digest, manifest_bytes.len() as u64);
        self.register_manifest(&desc, name)?;
        self.load_image(&desc)
    }

    /// Lists an already stored manifest in the index, tagged `name` or unnamed.
    pub fn register_manifest(&self, desc: &Descriptor, name: Option<&Reference>) -> Result<()> {
        match name {
            Some(r) if r.tag.is_some() => {
                let tagged = Reference {
                    digest: None,
                    ..r.clone()
                };
                self.set_tag(&tagged.to_string(), desc)
            }
            _ => self.add_unnamed(desc),
        }
    }
}

/// The descriptor with Docker layer media types mapped to the OCI ones.
fn oci_layer(d: &Descriptor) -> Descriptor {
    let mut d = d.clone();
    d.media_type = match d.media_type.as_str() {
        media::DOCKER_LAYER_GZIP => media::OCI_LAYER_GZIP.to_string(),
        media::DOCKER_LAYER_TAR => media::OCI_LAYER_TAR.to_string(),
        other => other.to_string(),
    };
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::History;

    fn tar_with(name: &str, data: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn add_layers_commit_resolve_and_gc() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("root")).unwrap();
        let _content = store.content_lock().unwrap();
        let base_layer = store.add_layer_tar(&tar_with("a", b"a")[..], None).unwrap();
        let mut config = ImageConfig::new_for_host();
        config.rootfs.diff_ids.push(base_layer.diff_id.clone());
        let base_name = Reference::parse("base:1").unwrap();
        let base = store
            .commit_image(
                &config,
                std::slice::from_ref(&base_layer.descriptor),
                Some(&base_name),
            )
            .unwrap();

        let upper = tempfile::tempdir().unwrap();
        std::fs::write(upper.path().join("b"), "b").unwrap();
        let top = store
            .add_layer_dir(upper.path(), base.chain_ids().last())
            .unwrap();
        let mut cfg = base.config.clone();
        cfg.rootfs.diff_ids.push(top.diff_id.clone());
        cfg.history.push(History {
            created_by: Some("test".into()),
            ..Default::default()
        });
        let mut layers = base.manifest.layers.clone();
        layers.push(top.descriptor.clone());
        let child_name = Reference::parse("child:1").unwrap();
        store
            .commit_image(&cfg, &layers, Some(&child_name))
            .unwrap();
        drop(_content);

        let child = store.resolve("child:1").unwrap();
        assert_eq!(child.chain_ids().last(), Some(&top.chain_id));
        let dirs = store.layer_dirs(&child).unwrap();
        assert_eq!(dirs.len(), 2);
        assert!(dirs[0].join("b").is_file() && dirs[1].join("a").is_file());
        assert_eq!(store.resolve(child.id().short()).unwrap().id(), child.id());

        // GC keeps what is referenced; removing the child frees only its own layer.
        assert!(store.gc().unwrap().blobs.is_empty());
        store.remove_image("child:1", false).unwrap();
        assert!(!store.has_layer(&top.chain_id));
        assert!(store.has_layer(&base_layer.chain_id));
        assert!(matches!(
            store.resolve("child:1"),
            Err(Error::NoSuchImage(_))
        ));
    }
}
