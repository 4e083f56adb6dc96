//! Moving images in and out of the store: registries, OCI layouts, archives.
//!
//! [`Source`] parses what `pull` accepts: `NAME[:TAG|@DIGEST]` from a registry, or
//! `oci:DIR[:REF]`, `oci-archive:FILE[:REF]`, `docker-archive:FILE`.

pub mod docker_archive;
pub mod fetch;
pub mod layout;
pub mod progress;
pub mod registry;
pub mod rootfs;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::oci::Platform;
use crate::reference::Reference;
use crate::store::{Image, Store};
use fetch::{ImportOptions, import_image};
use layout::{LayoutDir, entry_name};
use progress::Progress;

/// Where `pull` takes an image from.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// A registry.
    Registry(Reference),
    /// An OCI layout directory and the ref.name of the image in it.
    OciDir(PathBuf, Option<String>),
    /// A tar of an OCI layout.
    OciArchive(PathBuf, Option<String>),
    /// A `docker save` archive.
    DockerArchive(PathBuf),
}

fn split_path_ref(s: &str) -> (PathBuf, Option<String>) {
    match s.split_once(':') {
        Some((p, r)) if !r.is_empty() => (PathBuf::from(p), Some(r.to_string())),
        Some((p, _)) => (PathBuf::from(p), None),
        None => (PathBuf::from(s), None),
    }
}

impl Source {
    /// Parses a pull source.
    pub fn parse(s: &str) -> Result<Self> {
        if let Some(rest) = s.strip_prefix("oci:") {
            let (p, r) = split_path_ref(rest);
            return Ok(Source::OciDir(p, r));
        }
        if let Some(rest) = s.strip_prefix("oci-archive:") {
            let (p, r) = split_path_ref(rest);
            return Ok(Source::OciArchive(p, r));
        }
        if let Some(rest) = s.strip_prefix("docker-archive:") {
            return Ok(Source::DockerArchive(PathBuf::from(rest)));
        }
        let s = s.strip_prefix("docker://").unwrap_or(s);
        Ok(Source::Registry(Reference::parse(s)?))
    }
}

/// Options for [`pull`].
pub struct PullOptions {
    /// Platform to pick from an index.
    pub platform: Platform,
    /// Plain HTTP to a non-loopback registry.
    pub insecure: bool,
    /// No progress output.
    pub quiet: bool,
}

/// The name an image pulled from a layout gets: the ref if it is a full reference,
/// else `BASENAME:REF`.
fn layout_name(path: &Path, r: Option<&str>) -> Result<Option<Reference>> {
    match r {
        Some(r) if r.contains(':') || r.contains('/') => Ok(Some(Reference::parse(r)?)),
        other => {
            let base = path
                .file_name()
                .map(|b| b.to_string_lossy().to_ascii_lowercase())
                .unwrap_or_else(|| "image".into());
            let base: String = base
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                        c
                    } else {
                        '-'
                    }
                })
                .collect();
            let base = base
                .trim_matches(|c: char| !c.is_ascii_alphanumeric())
                .to_string();
            let tag = other.unwrap_or("latest");
            Ok(Reference::parse(&format!("{base}:{tag}")).ok())
        }
    }
}

/// Pulls one image from `source` into the store; returns it and the name it got.
pub fn pull(
    store: &Store,
    source: &Source,
    opts: &PullOptions,
) -> Result<(Image, Option<Reference>)> {
    let _content = store.content_lock()?;
    let progress = Progress::new(opts.quiet);
    match source {
        Source::Registry(r) => {
            let iopts = ImportOptions {
                platform: opts.platform.clone(),
                name: r.tag.as_ref().map(|_| r),
                progress: &progress,
            };
            let img = registry::pull::pull(store, r, opts.insecure, &iopts)?;
            let name = r.tag.as_ref().map(|_| Reference {
                digest: None,
                ..r.clone()
            });
            Ok((img, name))
        }
        Source::OciDir(dir, r) => {
            let layout = LayoutDir::open(dir)?;
            pull_layout(store, &layout, dir, r.as_deref(), opts, &progress)
        }
        Source::OciArchive(file, r) => {
            let tmp = docker_archive::unpack_archive(store, file)?;
            let layout = LayoutDir::open(tmp.path())?;
            pull_layout(store, &layout, file, r.as_deref(), opts, &progress)
        }
        Source::DockerArchive(file) => {
            let tmp = docker_archive::unpack_archive(store, file)?;
            if !docker_archive::is_docker_archive(tmp.path()) {
                return Err(Error::Other(format!(
                    "{}: no manifest.json: not a docker archive",
                    file.display()
                )));
            }
            let mut loaded = docker_archive::load_docker_dir(store, tmp.path(), &progress)?;
            if loaded.len() != 1 {
                return Err(Error::Other(format!(
                    "{}: holds {} images; use `imagectl load -i` for several",
                    file.display(),
                    loaded.len()
                )));
            }
            let (img, names) = loaded.remove(0);
            Ok((img, names.into_iter().next()))
        }
    }
}

fn pull_layout(
    store: &Store,
    layout: &LayoutDir,
    path: &Path,
    r: Option<&str>,
    opts: &PullOptions,
    progress: &Progress,
) -> Result<(Image, Option<Reference>)> {
    let desc = layout.find(r)?;
    let name = match r {
        Some(_) => layout_name(path, r)?,
        None => entry_name(&desc)
            .map(Some)
            .unwrap_or(layout_name(path, None)?),
    };
    let bytes = layout.read(&desc.digest)?;
    let actual = crate::digest::Digest::of(&bytes);
    if actual != desc.digest {
        return Err(Error::DigestMismatch {
            what: "manifest",
            expected: desc.digest.to_string(),
            actual: actual.to_string(),
        });
    }
    let iopts = ImportOptions {
        platform: opts.platform.clone(),
        name: name.as_ref(),
        progress,
    };
    let img = import_image(store, layout, bytes, Some(desc.media_type.clone()), &iopts)?;
    Ok((img, name))
}

/// Loads every image of an archive (`docker save` legacy, docker 25+, or OCI layout).
pub fn load(store: &Store, file: &Path, quiet: bool) -> Result<Vec<(Image, Vec<Reference>)>> {
    let _content = store.content_lock()?;
    let progress = Progress::new(quiet);
    let tmp = docker_archive::unpack_archive(store, file)?;
    if docker_archive::is_docker_archive(tmp.path()) {
        return docker_archive::load_docker_dir(store, tmp.path(), &progress);
    }
    if !tmp.path().join("index.json").is_file() {
        return Err(Error::Other(format!(
            "{}: neither a docker archive (manifest.json) nor an OCI layout (index.json)",
            file.display()
        )));
    }
    let layout = LayoutDir::open(tmp.path())?;
    let mut out = Vec::new();
    for desc in layout.index()?.manifests {
        let name = entry_name(&desc);
        let bytes = layout.read(&desc.digest)?;
        let iopts = ImportOptions {
            platform: Platform::host(),
            name: name.as_ref(),
            progress: &progress,
        };
        let img = import_image(store, &layout, bytes, Some(desc.media_type.clone()), &iopts)?;
        out.push((img, name.into_iter().collect()));
    }
    Ok(out)
}
