//! Containers: "an image plus one writable layer".
//!
//! - [`rootfs::ContainerRoot`]: the union mount of an image's layers under a private
//!   upper directory (shared with `imagectl build`'s RUN steps).
//! - [`bundle`]: the image config plus docker-style options as an OCI runtime bundle.

pub mod bundle;
pub mod rootfs;

pub use bundle::{Bundle, ProcessOptions};
pub use rootfs::ContainerRoot;
