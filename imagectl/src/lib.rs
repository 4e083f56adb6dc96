//! The image manager library: store, transports, containers and builds.
//!
//! - [`store::Store`]: the embedded image store (an OCI layout plus unpacked layers).
//! - [`layer`]: layer tars in and out, safely.
//! - [`transport`]: registries, OCI layouts and archives.
//! - [`mount`]: serving an image's layers through `unionfsd`.

pub mod build;
pub mod digest;
pub mod dockerfile;
pub mod error;
pub mod layer;
pub mod oci;
pub mod reference;
pub mod store;

pub use digest::Digest;
pub use error::{Error, Result};
pub use reference::Reference;
pub use store::Store;
pub mod container;
pub mod mount;
pub mod transport;
