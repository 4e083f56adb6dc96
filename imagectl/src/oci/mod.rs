//! The JSON documents of the OCI image spec and Docker's v2 schema 2, as far as the store
//! needs to read and write them.
//!
//! Received documents are stored byte for byte; these types are only a view for reading
//! them. Unknown fields are kept (`extra`) so a config rewritten by `commit` or `build`
//! loses nothing.

pub mod config;
pub mod manifest;
pub mod media;
pub mod platform;

pub use config::{ContainerConfig, History, ImageConfig, RootFs};
pub use manifest::{Descriptor, Index, Manifest};
pub use platform::Platform;

/// Annotation holding a tag in an OCI layout's `index.json`.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Annotation containerd and docker put next to the ref name with the full image name.
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
