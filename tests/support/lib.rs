//! Shared helpers for the integration tests in `tests/`.
//!
//! Each area keeps its helpers in a module of its own so the tests of the union
//! filesystem, the image store and the runtime can grow without stepping on each other.

pub mod bins;
pub mod build;
pub mod containers;
pub mod images;
pub mod mount;
pub mod registry;
pub mod runtime;
