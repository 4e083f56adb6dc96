//! Descriptors, manifests and indexes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::media;
use super::platform::Platform;
use crate::digest::Digest;
use crate::error::{Error, Result};

/// A content descriptor: what a blob is, its digest and size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    pub media_type: String,
    /// Digest of the referenced content.
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
    /// Where foreign layers may be fetched from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    /// Free-form annotations (tags in an OCI layout's index.json).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// For index entries: the platform the manifest is built for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Fields this type does not know, kept as they were.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl Descriptor {
    /// A descriptor with no annotations.
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Self {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            urls: None,
            annotations: None,
            platform: None,
            extra: BTreeMap::new(),
        }
    }

    /// The value of one annotation.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }
}

/// An image manifest (OCI or Docker v2s2: the same shape).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always 2.
    pub schema_version: u32,
    /// The manifest's own media type (optional in OCI, required by Docker).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The image config.
    pub config: Descriptor,
    /// Layers, bottom first.
    pub layers: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Fields this type does not know.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// An image index or Docker manifest list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Always 2.
    pub schema_version: u32,
    /// The index's media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The manifests it lists.
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Fields this type does not know.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl Index {
    /// An empty OCI index, as a new layout starts with.
    pub fn empty() -> Self {
        Index {
            schema_version: 2,
            media_type: Some(media::OCI_INDEX.to_string()),
            manifests: Vec::new(),
            annotations: None,
            extra: BTreeMap::new(),
        }
    }

    /// Picks the entry for `platform` out of a multi-platform index.
    pub fn select(&self, platform: &Platform) -> Result<&Descriptor> {
        self.manifests
            .iter()
            .filter(|d| media::is_manifest(&d.media_type))
            .find(|d| d.platform.as_ref().is_some_and(|p| platform.matches(p)))
            .ok_or_else(|| {
                let offered: Vec<String> = self
                    .manifests
                    .iter()
                    .filter_map(|d| d.platform.as_ref().map(|p| p.to_string()))
                    .collect();
                Error::Other(format!(
                    "no image for platform {platform} in the index (it has: {})",
                    offered.join(", ")
                ))
            })
    }
}

/// A manifest-ish document of unknown kind, sniffed from its media type or fields.
pub enum AnyManifest {
    /// A single image.
    Image(Box<Manifest>),
    /// A list of images.
    Index(Index),
}

impl AnyManifest {
    /// Parses `bytes`, using `media_type` (from a descriptor or Content-Type) if known
    /// and the document's own `mediaType`/shape otherwise.
    pub fn parse(bytes: &[u8], media_type: Option<&str>) -> Result<Self> {
        let v: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| Error::json("manifest", e))?;
        let own = v
            .get("mediaType")
            .and_then(|m| m.as_str())
            .map(str::to_string);
        let mt = own.as_deref().or(media_type).unwrap_or("");
        let is_index = media::is_index(mt) || (mt.is_empty() && v.get("manifests").is_some());
        if is_index {
            Ok(AnyManifest::Index(
                serde_json::from_value(v).map_err(|e| Error::json("image index", e))?,
            ))
        } else if v.get("schemaVersion").and_then(|s| s.as_u64()) == Some(1) {
            Err(Error::Other(
                "Docker schema 1 manifests are not supported".to_string(),
            ))
        } else {
            Ok(AnyManifest::Image(Box::new(
                serde_json::from_value(v).map_err(|e| Error::json("image manifest", e))?,
            )))
        }
    }
}

impl Manifest {
    /// The media type to announce for this manifest when the document does not say.
    pub fn effective_media_type(&self) -> &str {
        match &self.media_type {
            Some(m) => m,
            None if self.config.media_type == media::DOCKER_CONFIG => media::DOCKER_MANIFEST,
            None => media::OCI_MANIFEST,
        }
    }
}
