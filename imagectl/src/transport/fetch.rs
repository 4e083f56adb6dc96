//! Copying an image from any blob source (registry, OCI layout) into the store.
//!
//! Order matters for crash safety: layers first (each verified against its digest and
//! DiffID, then unpacked), then the config, then the manifest, and the tag last. An
//! interrupted run leaves complete blobs and layers behind, which the next run skips.

use std::io::Read;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::progress::Progress;
use crate::digest::{Digest, chain_ids};
use crate::error::{Error, Result};
use crate::oci::manifest::AnyManifest;
use crate::oci::{Descriptor, ImageConfig, Manifest, Platform, media};
use crate::reference::Reference;
use crate::store::{Image, Store};

/// Somewhere blobs and manifests can be read from.
pub trait BlobSource: Sync {
    /// Opens a blob; the caller verifies the digest.
    fn open_blob(&self, desc: &Descriptor) -> Result<Box<dyn Read + Send + '_>>;

    /// Reads a manifest by digest; returns its bytes and media type if known.
    fn read_manifest(&self, digest: &Digest) -> Result<(Vec<u8>, Option<String>)>;

    /// Opens a blob from byte `offset` on when the source can skip (HTTP Range);
    /// `None` when it can only send the whole blob.
    fn open_blob_from(
        &self,
        desc: &Descriptor,
        offset: u64,
    ) -> Result<Option<Box<dyn Read + Send + '_>>> {
        let _ = (desc, offset);
        Ok(None)
    }

    /// Whether blobs are worth resuming (remote sources) rather than re-read.
    fn resumable(&self) -> bool {
        false
    }
}

/// How many layers are fetched at once.
pub const PARALLEL_LAYERS: usize = 3;

/// Options for [`import_image`].
pub struct ImportOptions<'a> {
    /// Which image to take out of an index.
    pub platform: Platform,
    /// The tag to give it (None: list it unnamed).
    pub name: Option<&'a Reference>,
    /// Progress display.
    pub progress: &'a Progress,
}

fn verify(what: &'static str, expected: &Digest, bytes: &[u8]) -> Result<()> {
    let actual = Digest::of(bytes);
    if &actual != expected {
        return Err(Error::DigestMismatch {
            what,
            expected: expected.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(())
}

/// Resolves an index down to one image manifest for `platform`.
pub fn resolve_manifest(
    src: &dyn BlobSource,
    mut bytes: Vec<u8>,
    mut media_type: Option<String>,
    platform: &Platform,
) -> Result<(Vec<u8>, Manifest, String)> {
    for _ in 0..4 {
        match AnyManifest::parse(&bytes, media_type.as_deref())? {
            AnyManifest::Image(m) => {
                let mt = m
                    .media_type
                    .clone()
                    .or(media_type)
                    .unwrap_or_else(|| m.effective_media_type().to_string());
                return Ok((bytes, *m, mt));
            }
            AnyManifest::Index(idx) => {
                let desc = idx.select(platform)?.clone();
                let (b, mt) = src.read_manifest(&desc.digest)?;
                verify("manifest", &desc.digest, &b)?;
                bytes = b;
                media_type = mt.or(Some(desc.media_type));
            }
        }
    }
    Err(Error::Other("index nesting too deep".into()))
}

/// Copies the image whose manifest is `manifest_bytes` from `src` into `store`.
pub fn import_image(
    store: &Store,
    src: &dyn BlobSource,
    manifest_bytes: Vec<u8>,
    media_type: Option<String>,
    opts: &ImportOptions<'_>,
) -> Result<Image> {
    let _content = store.content_lock()?;
    let (bytes, manifest, mt) = resolve_manifest(src, manifest_bytes, media_type, &opts.platform)?;
    if !media::is_manifest(&mt) {
        return Err(Error::Other(format!(
            "unsupported manifest media type {mt}"
        )));
    }
    // The config first in memory (small): it names the DiffIDs the layers must match.
    let config_bytes = if store.has_blob(&manifest.config.digest) {
        store.read_blob(&manifest.config.digest)?
    } else {
        let mut r = src.open_blob(&manifest.config)?;
        let mut buf = Vec::new();
        r.read_to_end(&mut buf)
            .map_err(|e| Error::Other(format!("reading config {}: {e}", manifest.config.digest)))?;
        verify("blob", &manifest.config.digest, &buf)?;
        buf
    };
    let config: ImageConfig = serde_json::from_slice(&config_bytes)
        .map_err(|e| Error::json(format!("image config {}", manifest.config.digest), e))?;
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        return Err(Error::Other(format!(
            "image config lists {} layers but the manifest has {}",
            config.rootfs.diff_ids.len(),
            manifest.layers.len()
        )));
    }
    let chains = chain_ids(&config.rootfs.diff_ids);
    fetch_layers(store, src, &manifest, &config, &chains, opts.progress)?;
    store.put_blob(&config_bytes)?;
    let digest = store.put_blob(&bytes)?;
    let desc = Descriptor::new(&mt, digest, bytes.len() as u64);
    store.register_manifest(&desc, opts.name)?;
    opts.progress.line(&format!("Digest: {}", desc.digest));
    store.load_image(&desc)
}

fn fetch_layers(
    store: &Store,
    src: &dyn BlobSource,
    manifest: &Manifest,
    config: &ImageConfig,
    chains: &[Digest],
    progress: &Progress,
) -> Result<()> {
    let next = AtomicUsize::new(0);
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    let n = manifest.layers.len();
    let items: Vec<_> = manifest
        .layers
        .iter()
        .map(|l| progress.item(l.digest.short(), Some(l.size)))
        .collect();
    std::thread::scope(|s| {
        for _ in 0..PARALLEL_LAYERS.min(n.max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= n || first_error.lock().map(|e| e.is_some()).unwrap_or(true) {
                        break;
                    }
                    let layer = &manifest.layers[i];
                    let parent = if i == 0 { None } else { Some(&chains[i - 1]) };
                    let r = fetch_one(
                        store,
                        src,
                        layer,
                        &config.rootfs.diff_ids[i],
                        parent,
                        &chains[i],
                        &items[i],
                    );
                    if let Err(e) = r {
                        if let Ok(mut slot) = first_error.lock()
                            && slot.is_none()
                        {
                            *slot = Some(e);
                        }
                        break;
                    }
                }
            });
        }
    });
    match first_error.into_inner() {
        Ok(Some(e)) => Err(e),
        Ok(None) => Ok(()),
        Err(_) => Err(Error::Other("layer worker panicked".into())),
    }
}

fn fetch_one(
    store: &Store,
    src: &dyn BlobSource,
    layer: &Descriptor,
    diff_id: &Digest,
    parent: Option<&Digest>,
    chain: &Digest,
    item: &super::progress::Item,
) -> Result<()> {
    let have_blob = store.has_blob(&layer.digest);
    if store.has_layer(chain) && have_blob {
        item.done("Already exists");
        return Ok(());
    }
    if !have_blob {
        if layer.urls.is_some() && !layer.media_type.contains("oci.image.layer") {
            return Err(Error::Other(format!(
                "layer {} is a foreign layer; fetching from its URLs is not supported",
                layer.digest
            )));
        }
        item.phase("Downloading");
        if src.resumable() {
            let fetch = |offset: u64| -> Result<(u64, Box<dyn Read + Send + '_>)> {
                if offset > 0
                    && let Some(r) = src.open_blob_from(layer, offset)?
                {
                    item.skip(offset);
                    return Ok((offset, item.wrap(r)));
                }
                Ok((0, item.wrap(src.open_blob(layer)?)))
            };
            store.put_blob_resumable(&layer.digest, &fetch)?;
        } else {
            let r = src.open_blob(layer)?;
            store.put_blob_stream(item.wrap(r), Some(&layer.digest))?;
        }
    }
    if !store.has_layer(chain) {
        item.phase("Extracting");
        store.unpack_blob(&layer.digest, diff_id, parent)?;
    }
    item.done("Pull complete");
    Ok(())
}
