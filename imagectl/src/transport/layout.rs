//! OCI image layouts as sources (`oci:DIR[:REF]`, `oci-archive:FILE`, `load`) and as
//! save targets (`--format oci-dir|oci-archive`).

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::fetch::BlobSource;
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::oci::{ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, Descriptor, Index};
use crate::reference::Reference;
use crate::store::{Image, Store, write_file_atomic};

/// An OCI layout directory read as a blob source.
pub struct LayoutDir {
    dir: PathBuf,
}

impl LayoutDir {
    /// Opens `dir`, checking it looks like an OCI layout.
    pub fn open(dir: &Path) -> Result<Self> {
        if !dir.join("index.json").is_file() {
            return Err(Error::Other(format!(
                "{}: not an OCI image layout (no index.json)",
                dir.display()
            )));
        }
        Ok(LayoutDir {
            dir: dir.to_path_buf(),
        })
    }

    /// The layout's `index.json`.
    pub fn index(&self) -> Result<Index> {
        let p = self.dir.join("index.json");
        let bytes = fs::read(&p).at(&p)?;
        serde_json::from_slice(&bytes).map_err(|e| Error::json(p.display().to_string(), e))
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join("blobs/sha256").join(digest.hex())
    }

    /// Picks the index entry named `reference`, or the only entry when `reference` is None.
    pub fn find(&self, reference: Option<&str>) -> Result<Descriptor> {
        let idx = self.index()?;
        match reference {
            Some(r) => idx
                .manifests
                .iter()
                .find(|d| d.annotation(ANNOTATION_REF_NAME) == Some(r))
                .cloned()
                .ok_or_else(|| {
                    Error::Other(format!("{}: no image named {r:?}", self.dir.display()))
                }),
            None if idx.manifests.len() == 1 => Ok(idx.manifests[0].clone()),
            None => Err(Error::Other(format!(
                "{}: holds {} images; name one as oci:DIR:REF",
                self.dir.display(),
                idx.manifests.len()
            ))),
        }
    }

    /// Reads a manifest blob.
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>> {
        let p = self.blob_path(digest);
        fs::read(&p).at(&p)
    }
}

impl BlobSource for LayoutDir {
    fn open_blob(&self, desc: &Descriptor) -> Result<Box<dyn Read + Send + '_>> {
        let p = self.blob_path(&desc.digest);
        Ok(Box::new(std::io::BufReader::new(File::open(&p).at(&p)?)))
    }

    fn read_manifest(&self, digest: &Digest) -> Result<(Vec<u8>, Option<String>)> {
        Ok((self.read(digest)?, None))
    }
}

/// The name an index entry of a foreign layout carries, if any: containerd's full-name
/// annotation, else a ref.name that is a full reference (has a `:` or `/`).
pub fn entry_name(desc: &Descriptor) -> Option<Reference> {
    if let Some(n) = desc.annotation(ANNOTATION_IMAGE_NAME)
        && let Ok(r) = Reference::parse(n)
    {
        return Some(r);
    }
    let n = desc.annotation(ANNOTATION_REF_NAME)?;
    if n.contains(':') || n.contains('/') {
        return Reference::parse(n).ok();
    }
    None
}

/// One image to save and the names to save it under.
pub struct SaveItem {
    /// The image.
    pub image: Image,
    /// Its names in the archive (empty: saved by ID).
    pub names: Vec<Reference>,
}

/// The blobs an image consists of: manifest, config, layers.
fn image_blobs(img: &Image) -> Vec<Digest> {
    let mut v = vec![img.manifest_digest().clone(), img.id().clone()];
    v.extend(img.manifest.layers.iter().map(|l| l.digest.clone()));
    v
}

/// The layout `index.json` for `items`: one entry per name, annotated with the full
/// reference as ref.name (what the store itself uses) and containerd's name annotation.
fn layout_index(items: &[SaveItem]) -> Index {
    let mut idx = Index::empty();
    for it in items {
        let base = &it.image.manifest_descriptor;
        if it.names.is_empty() {
            idx.manifests.push(Descriptor::new(
                &base.media_type,
                base.digest.clone(),
                base.size,
            ));
        }
        for n in &it.names {
            let mut d = Descriptor::new(&base.media_type, base.digest.clone(), base.size);
            let mut ann = BTreeMap::new();
            ann.insert(ANNOTATION_REF_NAME.to_string(), n.to_string());
            ann.insert(ANNOTATION_IMAGE_NAME.to_string(), n.to_string());
            d.annotations = Some(ann);
            idx.manifests.push(d);
        }
    }
    idx
}

const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Writes `items` as an OCI layout directory (created if missing; blobs already there
/// are kept, the index is replaced).
pub fn save_oci_dir(store: &Store, items: &[SaveItem], dir: &Path) -> Result<()> {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).at(&blobs)?;
    write_file_atomic(&dir.join("oci-layout"), OCI_LAYOUT)?;
    let mut seen = HashSet::new();
    for it in items {
        for d in image_blobs(&it.image) {
            if !seen.insert(d.clone()) {
                continue;
            }
            let dest = blobs.join(d.hex());
            if dest.exists() {
                continue;
            }
            let src = store.blob_path(&d);
            let tmp = blobs.join(format!(".tmp-{}", d.hex()));
            if fs::hard_link(&src, &tmp).is_err() {
                fs::copy(&src, &tmp).at(&src)?;
            }
            fs::rename(&tmp, &dest).at(&dest)?;
        }
    }
    let bytes = serde_json::to_vec_pretty(&layout_index(items))
        .map_err(|e| Error::json("index.json", e))?;
    write_file_atomic(&dir.join("index.json"), &bytes)
}

/// Streams `items` as an OCI layout in a tar (`oci-archive`).
pub fn save_oci_archive<W: Write>(store: &Store, items: &[SaveItem], out: W) -> Result<W> {
    let mut b = tar::Builder::new(out);
    let err = |e: std::io::Error| Error::Other(format!("writing archive: {e}"));
    append_bytes(&mut b, "oci-layout", OCI_LAYOUT).map_err(err)?;
    let index =
        serde_json::to_vec(&layout_index(items)).map_err(|e| Error::json("index.json", e))?;
    append_bytes(&mut b, "index.json", &index).map_err(err)?;
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    for d in ["blobs/", "blobs/sha256/"] {
        b.append_data(&mut dir.clone(), d, std::io::empty())
            .map_err(err)?;
    }
    let mut seen = HashSet::new();
    for it in items {
        for d in image_blobs(&it.image) {
            if !seen.insert(d.clone()) {
                continue;
            }
            let f = store.open_blob(&d)?;
            let len = f.metadata().at(store.blob_path(&d))?.len();
            let mut h = file_header(len);
            b.append_data(&mut h, format!("blobs/sha256/{}", d.hex()), f)
                .map_err(err)?;
        }
    }
    b.into_inner().map_err(err)
}

/// A regular-file tar header of `len` bytes, mode 0644, mtime 0 (reproducible archives).
pub fn file_header(len: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(len);
    h.set_mtime(0);
    h
}

/// Appends a small in-memory file to a tar.
pub fn append_bytes<W: Write>(
    b: &mut tar::Builder<W>,
    name: &str,
    data: &[u8],
) -> std::io::Result<()> {
    let mut h = file_header(data.len() as u64);
    b.append_data(&mut h, name, data)
}
