//! Why an index could not be built or opened; every variant names the file or path at fault.

use std::path::PathBuf;

use nix::errno::Errno;

/// Why an index could not be built, written or opened.
#[derive(Debug, thiserror::Error)]
pub enum PindexError {
    /// A layer directory could not be opened.
    #[error(transparent)]
    Layers(#[from] crate::layer::LayerError),
    /// The union over the layers could not be set up.
    #[error("setting up the union: {0}")]
    Setup(#[from] crate::union::SetupError),
    /// Walking the union failed at a merged path.
    #[error("walking the union: {op} /{path}: {errno}")]
    Walk {
        /// What was being done.
        op: &'static str,
        /// The merged path (relative to the union root).
        path: PathBuf,
        /// What the union answered.
        errno: Errno,
    },
    /// Reading or writing the index file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file (or its temporary sibling).
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The union is too big for the format's 32-bit fields.
    #[error("too large for the index format: {0}")]
    TooLarge(&'static str),
    /// The file is not an index at all.
    #[error("{path}: not a unionfs layer index (bad magic)")]
    BadMagic {
        /// The file.
        path: PathBuf,
    },
    /// The file was written by another version of the format.
    #[error(
        "{path}: index format version {found}, this build reads version {expected}: rebuild it"
    )]
    Version {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: u32,
        /// Ours.
        expected: u32,
    },
    /// The file is shorter (or longer) than its header says.
    #[error("{path}: truncated index: header says {expected} bytes, file has {actual}")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Length recorded in the header.
        expected: u64,
        /// Length on disk.
        actual: u64,
    },
    /// The file's contents are inconsistent (a checksum or a bound does not hold).
    #[error("{path}: corrupt index: {what}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Which check failed.
        what: String,
    },
    /// The file describes another layer chain than the one given.
    #[error("{path}: built for another layer chain: {what}")]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// How the chains differ.
        what: String,
    },
}
