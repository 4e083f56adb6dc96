//! Test helpers: registry.
