//! Test helpers: images.
