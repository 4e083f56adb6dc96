//! Pushing to a registry: blobs the registry lacks (checked with `HEAD`), then the
//! manifest, byte for byte, so the pushed digest equals the local one.

use std::io::BufReader;

use super::Client;
use crate::digest::Digest;
use crate::error::Result;
use crate::reference::Reference;
use crate::store::{Image, Store};
use crate::transport::progress::Progress;

/// Pushes `image` to `dest`; returns the manifest digest.
pub fn push(
    store: &Store,
    image: &Image,
    dest: &Reference,
    insecure: bool,
    progress: &Progress,
) -> Result<Digest> {
    let client = Client::new(dest, insecure, true);
    let mut blobs: Vec<(Digest, u64)> = image
        .manifest
        .layers
        .iter()
        .map(|l| (l.digest.clone(), l.size))
        .collect();
    blobs.push((
        image.manifest.config.digest.clone(),
        image.manifest.config.size,
    ));
    for (digest, _) in &blobs {
        let item = progress.item(digest.short(), None);
        if client.has_blob(digest)? {
            item.done("Layer already exists");
            continue;
        }
        item.phase("Pushing");
        let size = store.blob_size(digest)?;
        let path = store.blob_path(digest);
        client.upload_blob(digest, size, || {
            let f = std::fs::File::open(&path).map_err(|e| crate::error::Error::Io {
                path: path.clone(),
                source: e,
            })?;
            Ok(Box::new(BufReader::new(f)))
        })?;
        item.done("Pushed");
    }
    let bytes = store.read_blob(image.manifest_digest())?;
    let tag = dest
        .tag
        .clone()
        .unwrap_or_else(|| image.manifest_digest().to_string());
    client.put_manifest(&tag, &bytes, &image.manifest_descriptor.media_type)?;
    Ok(image.manifest_digest().clone())
}
