//! `docker save` archives: written by `save --format docker-archive`, read by `load` and
//! `pull docker-archive:FILE` (the legacy layout with `manifest.json`, as docker before
//! 25 and skopeo write it, and docker 25+'s OCI-plus-manifest.json layout).

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::layout::{SaveItem, append_bytes, file_header};
use super::progress::Progress;
use crate::digest::{Digest, HashingReader};
use crate::error::{Error, IoContext, Result};
use crate::layer::{self, Compression};
use crate::oci::{Descriptor, ImageConfig, Manifest, media};
use crate::reference::Reference;
use crate::store::{Image, Store};

/// One entry of an archive's `manifest.json`.
#[derive(Debug, Serialize, Deserialize)]
struct ArchiveEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// Writes `items` as a docker-archive tar: `manifest.json`, `repositories`, the configs
/// and one uncompressed `DIFFID/layer.tar` per layer.
pub fn save_docker_archive<W: Write>(store: &Store, items: &[SaveItem], out: W) -> Result<W> {
    let err = |e: io::Error| Error::Other(format!("writing archive: {e}"));
    let mut b = tar::Builder::new(out);
    let mut entries = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut written = HashSet::new();
    for it in items {
        let img = &it.image;
        let records = store.ensure_layers(img)?;
        let config_name = format!("{}.json", img.id().hex());
        if written.insert(config_name.clone()) {
            append_bytes(&mut b, &config_name, &img.config_bytes).map_err(err)?;
        }
        let mut layers = Vec::new();
        for (desc, rec) in img.manifest.layers.iter().zip(&records) {
            let name = format!("{}/layer.tar", rec.diff_id.hex());
            if written.insert(name.clone()) {
                let f = store.open_blob(&desc.digest)?;
                let (_, plain) =
                    layer::decompress(BufReader::new(f)).at(store.blob_path(&desc.digest))?;
                let mut h = file_header(rec.tar_size);
                b.append_data(&mut h, &name, plain.take(rec.tar_size))
                    .map_err(err)?;
            }
            layers.push(name);
        }
        let tags: Vec<String> = it.names.iter().map(|n| n.familiar()).collect();
        for n in &it.names {
            if let (Some(t), Some(top)) = (&n.tag, records.last()) {
                repositories
                    .entry(n.familiar_name())
                    .or_default()
                    .insert(t.clone(), top.diff_id.hex().to_string());
            }
        }
        entries.push(ArchiveEntry {
            config: config_name,
            repo_tags: if tags.is_empty() { None } else { Some(tags) },
            layers,
        });
    }
    let manifest = serde_json::to_vec(&entries).map_err(|e| Error::json("manifest.json", e))?;
    append_bytes(&mut b, "manifest.json", &manifest).map_err(err)?;
    if !repositories.is_empty() {
        let repos =
            serde_json::to_vec(&repositories).map_err(|e| Error::json("repositories", e))?;
        append_bytes(&mut b, "repositories", &repos).map_err(err)?;
    }
    b.into_inner().map_err(err)
}

/// Unpacks an archive file (any compression) into a fresh temp dir under the store.
pub fn unpack_archive(store: &Store, file: &Path) -> Result<tempfile::TempDir> {
    let f = File::open(file).at(file)?;
    let (_, reader) = layer::decompress(f).at(file)?;
    let dir = store.temp_dir("archive-")?;
    let mut ar = tar::Archive::new(reader);
    ar.set_preserve_permissions(false);
    ar.set_overwrite(true);
    ar.unpack(dir.path()).map_err(|e| {
        Error::Other(format!(
            "{}: not a readable tar archive: {e}",
            file.display()
        ))
    })?;
    Ok(dir)
}

fn inside(dir: &Path, rel: &str) -> Result<PathBuf> {
    let p = Path::new(rel);
    if p.components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(Error::Other(format!(
            "archive names a path outside itself: {rel:?}"
        )));
    }
    // docker's legacy archives link duplicate layers with symlinks, so they are
    // followed, but the target must still be inside the archive: never a host file.
    let joined = dir.join(p);
    let real = fs::canonicalize(&joined).at(&joined)?;
    let base = fs::canonicalize(dir).at(dir)?;
    if !real.starts_with(&base) {
        return Err(Error::Other(format!(
            "archive path {rel:?} points outside the archive"
        )));
    }
    Ok(real)
}

/// Whether an unpacked archive is a docker-archive (has `manifest.json`).
pub fn is_docker_archive(dir: &Path) -> bool {
    dir.join("manifest.json").is_file()
}

/// Loads every image of an unpacked docker-archive into the store.
pub fn load_docker_dir(
    store: &Store,
    dir: &Path,
    progress: &Progress,
) -> Result<Vec<(Image, Vec<Reference>)>> {
    let _content = store.content_lock()?;
    let mpath = dir.join("manifest.json");
    let bytes = fs::read(&mpath).at(&mpath)?;
    let entries: Vec<ArchiveEntry> =
        serde_json::from_slice(&bytes).map_err(|e| Error::json("archive manifest.json", e))?;
    let mut out = Vec::new();
    for e in entries {
        let cpath = inside(dir, &e.config)?;
        let config_bytes = fs::read(&cpath).at(&cpath)?;
        let config: ImageConfig = serde_json::from_slice(&config_bytes)
            .map_err(|err| Error::json(format!("archive config {}", e.config), err))?;
        if config.rootfs.diff_ids.len() != e.layers.len() {
            return Err(Error::Other(format!(
                "archive config {} lists {} layers, manifest.json {}",
                e.config,
                config.rootfs.diff_ids.len(),
                e.layers.len()
            )));
        }
        let mut parent: Option<Digest> = None;
        let mut descs = Vec::new();
        for (lpath, diff_id) in e.layers.iter().zip(&config.rootfs.diff_ids) {
            let p = inside(dir, lpath)?;
            let (digest, size, kind) = hash_file(&p)?;
            let item = progress.item(digest.short(), Some(size));
            if !store.has_blob(&digest) {
                let f = File::open(&p).at(&p)?;
                store.put_blob_stream(BufReader::new(f), Some(&digest))?;
            }
            let rec = store.unpack_blob(&digest, diff_id, parent.as_ref())?;
            item.done("Loaded");
            parent = Some(rec.chain_id);
            let mt = match kind {
                Compression::Gzip => media::OCI_LAYER_GZIP,
                Compression::Zstd => media::OCI_LAYER_ZSTD,
                Compression::None => media::OCI_LAYER_TAR,
                _ => {
                    return Err(Error::Other(format!(
                        "{lpath}: bzip2/xz layers can not be described in a manifest"
                    )));
                }
            };
            descs.push(Descriptor::new(mt, digest, size));
        }
        let config_digest = store.put_blob(&config_bytes)?;
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.to_string()),
            config: Descriptor::new(media::OCI_CONFIG, config_digest, config_bytes.len() as u64),
            layers: descs,
            annotations: None,
            extra: BTreeMap::new(),
        };
        let mb = serde_json::to_vec(&manifest).map_err(|e| Error::json("manifest", e))?;
        let md = store.put_blob(&mb)?;
        let desc = Descriptor::new(media::OCI_MANIFEST, md, mb.len() as u64);
        let mut names = Vec::new();
        for t in e.repo_tags.unwrap_or_default() {
            let r = Reference::parse(&t)?;
            store.register_manifest(&desc, Some(&r))?;
            names.push(r);
        }
        if names.is_empty() {
            store.register_manifest(&desc, None)?;
        }
        out.push((store.load_image(&desc)?, names));
    }
    Ok(out)
}

fn hash_file(p: &Path) -> Result<(Digest, u64, Compression)> {
    let mut f = File::open(p).at(p)?;
    let mut head = [0u8; 8];
    let n = f.read(&mut head).at(p)?;
    let kind = layer::compress::sniff(&head[..n]);
    let f = File::open(p).at(p)?;
    let (d, size) = HashingReader::new(BufReader::new(f)).finish().at(p)?;
    Ok((d, size, kind))
}
