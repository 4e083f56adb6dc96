//! Unit tests of the persistent index.
