//! Test helpers: runtime.
