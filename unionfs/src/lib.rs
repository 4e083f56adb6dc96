//! A union filesystem that behaves like kernel overlayfs, and the layer logic behind it.
//!
//! The crate is split so the union logic (layer stack, merged directory index, whiteouts,
//! copy-up, rename) is usable and testable without FUSE: the image manager uses the same
//! code to commit, diff and answer "which layer holds this path". The `fuse` module is
//! only the adapter that serves that logic to the kernel.

pub mod daemon;
pub mod fuse;
pub mod layer;
pub mod options;
pub mod pindex;
pub mod sys;
pub mod union;
pub mod whiteout;
