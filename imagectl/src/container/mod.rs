//! Containers: "an image plus one writable layer".
//!
//! - [`rootfs::ContainerRoot`]: the union mount of an image's layers under a private
//!   upper directory (shared with `imagectl build`'s RUN steps).
//! - [`bundle`]: the image config plus docker-style options as an OCI runtime bundle.
//! - [`record`]: `container.json`, names and ids; [`state`]: the live, docker-style state.
//! - [`manager::Containers`]: create/start/stop/kill/pause/rm/exec/logs over a runtime
//!   (the built-in one, or [`runc`]).
//! - [`changes`]: `diff` from the upper directory; [`commit`]: `commit` and `export`.
//! - [`etc_files`]: the `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf` every
//!   container and build step gets.

pub mod bundle;
pub mod changes;
pub mod commit;
pub mod etc_files;
pub mod manager;
pub mod record;
pub mod rootfs;
pub mod runc;
pub mod state;

pub use bundle::{Bundle, ProcessOptions};
pub use manager::{Containers, CreateRequest};
pub use rootfs::ContainerRoot;
