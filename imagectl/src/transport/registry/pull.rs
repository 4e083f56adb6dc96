//! Pulling from a registry.

use std::io::Read;

use super::Client;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::oci::Descriptor;
use crate::reference::Reference;
use crate::store::{Image, Store};
use crate::transport::fetch::{BlobSource, ImportOptions, import_image};

impl BlobSource for Client {
    fn open_blob(&self, desc: &Descriptor) -> Result<Box<dyn Read + Send + '_>> {
        self.get_blob(&desc.digest)
    }

    fn read_manifest(&self, digest: &Digest) -> Result<(Vec<u8>, Option<String>)> {
        self.get_manifest(digest.as_str())
    }

    fn open_blob_from(
        &self,
        desc: &Descriptor,
        offset: u64,
    ) -> Result<Option<Box<dyn Read + Send + '_>>> {
        self.get_blob_from(&desc.digest, offset)
    }

    fn resumable(&self) -> bool {
        true
    }
}

/// Pulls `reference` into the store and tags it (untagged when pulled by digest only).
pub fn pull(
    store: &Store,
    reference: &Reference,
    insecure: bool,
    opts: &ImportOptions<'_>,
) -> Result<Image> {
    let client = Client::new(reference, insecure, false);
    let (bytes, mt) = client.get_manifest(&reference.manifest_ref())?;
    if let Some(d) = &reference.digest {
        let actual = Digest::of(&bytes);
        if &actual != d {
            return Err(Error::DigestMismatch {
                what: "manifest",
                expected: d.to_string(),
                actual: actual.to_string(),
            });
        }
    }
    import_image(store, &client, bytes, mt, opts)
}
