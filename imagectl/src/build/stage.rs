//! The state of one build stage between steps: the image so far (config and layers),
//! the ARG values declared in the stage, and the derived defaults every step reads
//! (environment, user, working directory, shell).
//!
//! After each step the state is an image of its own: its config is stored as a blob and
//! a manifest marked as a build-cache entry points at it (see [`StageState::snapshot`]),
//! so the next step's cache key can name its parent by image ID, as docker's classic
//! builder does.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::digest::{Digest, chain_ids};
use crate::error::{Error, Result};
use crate::oci::manifest::AnyManifest;
use crate::oci::{ContainerConfig, Descriptor, History, ImageConfig, Manifest, media};
use crate::store::{Image, Store};

/// The manifest annotation marking a build-cache snapshot (so it never has the same
/// digest as a tagged image, whose untagging must not be blocked by the cache's hold).
pub const CACHE_ANNOTATION: &str = "org.imagectl.build-cache.key";

/// A stage's image so far plus what the Dockerfile declared in it.
#[derive(Debug, Clone)]
pub struct StageState {
    /// The image config so far.
    pub config: ImageConfig,
    /// The layers so far, bottom first (matching `config.rootfs.diff_ids`).
    pub layers: Vec<Descriptor>,
    /// The current image ID (`scratch` before any step of a scratch stage): the
    /// parent part of the next step's cache key.
    pub image_id: String,
    /// ARGs declared in this stage, with their values (unset ones are absent).
    pub args: BTreeMap<String, String>,
    /// Whether CMD was set in this stage (ENTRYPOINT then keeps it).
    pub cmd_set: bool,
}

impl StageState {
    /// The empty filesystem of `FROM scratch`.
    pub fn scratch() -> StageState {
        let mut config = ImageConfig::new_for_host();
        config.created = None;
        config.config = Some(ContainerConfig {
            env: Some(vec![format!("PATH={DEFAULT_PATH}")]),
            ..Default::default()
        });
        StageState {
            config,
            layers: Vec::new(),
            image_id: "scratch".into(),
            args: BTreeMap::new(),
            cmd_set: false,
        }
    }

    /// A stage starting from `image` (a stored image or a finished earlier stage). An
    /// image without PATH gets the default one, as docker's builder gives it, so RUN
    /// finds its commands and `ENV PATH=/x:$PATH` extends something.
    pub fn from_image(config: ImageConfig, layers: Vec<Descriptor>, image_id: String) -> Self {
        let mut state = StageState {
            config,
            layers,
            image_id,
            args: BTreeMap::new(),
            cmd_set: false,
        };
        if !state.env_list().iter().any(|e| e.starts_with("PATH=")) {
            state.set_env("PATH", DEFAULT_PATH);
        }
        state
    }

    /// The container defaults (created on demand).
    pub fn container(&mut self) -> &mut ContainerConfig {
        self.config.config.get_or_insert_with(Default::default)
    }

    /// `KEY=VALUE` environment of the image.
    pub fn env_list(&self) -> Vec<String> {
        self.config
            .config
            .as_ref()
            .and_then(|c| c.env.clone())
            .unwrap_or_default()
    }

    /// Sets one variable in the image's environment (replacing it in place).
    pub fn set_env(&mut self, key: &str, value: &str) {
        let entry = format!("{key}={value}");
        let env = self.container().env.get_or_insert_with(Vec::new);
        match env.iter_mut().find(|e| e.split('=').next() == Some(key)) {
            Some(slot) => *slot = entry,
            None => env.push(entry),
        }
    }

    /// The variables substitution sees: the stage's ARGs, overridden by ENV.
    pub fn substitution_env(&self) -> BTreeMap<String, String> {
        let mut out = self.args.clone();
        for e in self.env_list() {
            let (k, v) = e.split_once('=').unwrap_or((e.as_str(), ""));
            out.insert(k.to_string(), v.to_string());
        }
        out
    }

    /// The build args a RUN sees beyond the image's ENV (ENV wins), sorted by name.
    pub fn run_args(&self) -> Vec<(String, String)> {
        let env = self.env_list();
        self.args
            .iter()
            .filter(|(k, _)| !env.iter().any(|e| e.split('=').next() == Some(k.as_str())))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The shell for shell-form commands (`SHELL`, default `/bin/sh -c`).
    pub fn shell(&self) -> Vec<String> {
        self.config
            .config
            .as_ref()
            .and_then(|c| c.extra.get("Shell"))
            .and_then(|v| serde_json::from_value::<Vec<String>>(v.clone()).ok())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
    }

    /// The working directory (`/` when unset).
    pub fn workdir(&self) -> String {
        self.config
            .config
            .as_ref()
            .and_then(|c| c.working_dir.clone())
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into())
    }

    /// The user RUN runs as (root when unset).
    pub fn user(&self) -> Option<String> {
        self.config
            .config
            .as_ref()
            .and_then(|c| c.user.clone())
            .filter(|u| !u.is_empty())
    }

    /// The top layer's ChainID (the parent of the next layer).
    pub fn chain_top(&self) -> Option<Digest> {
        chain_ids(&self.config.rootfs.diff_ids).last().cloned()
    }

    /// The layer directories, top first, unpacking any that are missing.
    pub fn lower_dirs(&self, store: &Store) -> Result<Vec<PathBuf>> {
        let image = Image {
            manifest_descriptor: Descriptor::new(media::OCI_MANIFEST, Digest::of(b""), 0),
            manifest: self.manifest(None),
            config: self.config.clone(),
            config_bytes: Vec::new(),
            names: Vec::new(),
        };
        store.layer_dirs(&image)
    }

    fn manifest(&self, config: Option<Descriptor>) -> Manifest {
        Manifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.into()),
            config: config
                .unwrap_or_else(|| Descriptor::new(media::OCI_CONFIG, Digest::of(b""), 0)),
            layers: self.layers.clone(),
            annotations: None,
            extra: BTreeMap::new(),
        }
    }

    /// Appends a history entry (and the layer, if the step made one).
    pub fn push_history(&mut self, created_by: String, layer: Option<(Digest, Descriptor)>) {
        let created = crate::oci::config::now_rfc3339();
        self.config.created = Some(created.clone());
        let empty_layer = layer.is_none().then_some(true);
        if let Some((diff_id, desc)) = layer {
            self.config.rootfs.diff_ids.push(diff_id);
            self.layers.push(desc);
        }
        self.config.history.push(History {
            created: Some(created),
            created_by: Some(created_by),
            empty_layer,
            ..Default::default()
        });
    }

    /// Stores the current config and a build-cache manifest over the layers (marked
    /// with `key`), and returns the manifest digest; `image_id` becomes the config
    /// digest.
    pub fn snapshot(&mut self, store: &Store, key: &Digest) -> Result<Digest> {
        let bytes = serde_json::to_vec(&self.config).map_err(|e| Error::json("image config", e))?;
        let config_digest = store.put_blob(&bytes)?;
        let mut manifest = self.manifest(Some(Descriptor::new(
            media::OCI_CONFIG,
            config_digest.clone(),
            bytes.len() as u64,
        )));
        manifest.annotations = Some(BTreeMap::from([(
            CACHE_ANNOTATION.to_string(),
            key.to_string(),
        )]));
        let mbytes = serde_json::to_vec(&manifest).map_err(|e| Error::json("manifest", e))?;
        let digest = store.put_blob(&mbytes)?;
        self.image_id = config_digest.to_string();
        Ok(digest)
    }

    /// Replaces the image with a cached snapshot (manifest digest), keeping the
    /// stage's ARGs. `None` when the snapshot's blobs are gone.
    pub fn restore(&mut self, store: &Store, manifest: &Digest) -> Option<()> {
        let bytes = store.read_blob(manifest).ok()?;
        let AnyManifest::Image(m) = AnyManifest::parse(&bytes, Some(media::OCI_MANIFEST)).ok()?
        else {
            return None;
        };
        let cbytes = store.read_blob(&m.config.digest).ok()?;
        let config: ImageConfig = serde_json::from_slice(&cbytes).ok()?;
        if m.layers.iter().any(|l| !store.has_blob(&l.digest)) {
            return None;
        }
        self.config = config;
        self.layers = m.layers;
        self.image_id = m.config.digest.to_string();
        Some(())
    }
}

/// The PATH docker gives a scratch image's RUN steps.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
