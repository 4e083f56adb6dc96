//! Test helpers: mount.
