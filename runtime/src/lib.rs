//! The runtime library.
