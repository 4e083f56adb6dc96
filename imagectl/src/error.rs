//! The library's error type: one variant per failure a user can act on.
//!
//! Messages are written to be printed as the single line a user sees (`imagectl: ...`),
//! so each names the thing at fault: the image, the blob, the tar entry, the URL.

use std::path::PathBuf;

/// Everything that can go wrong in the store and the transports.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The image name or ID matches nothing in the store.
    #[error("no such image: {0}")]
    NoSuchImage(String),
    /// The image reference does not parse.
    #[error("invalid reference format: {0}")]
    InvalidReference(String),
    /// A string that should be `sha256:<64 hex>` is not.
    #[error("invalid digest: {0}")]
    InvalidDigest(String),
    /// Content does not hash to what its descriptor promises.
    #[error("{what} {expected}: content has digest {actual}")]
    DigestMismatch {
        /// "blob", "layer diffID", "manifest"...
        what: &'static str,
        /// The digest that was promised.
        expected: String,
        /// The digest the bytes really have.
        actual: String,
    },
    /// A layer tar holds an entry that would escape or corrupt the layer directory.
    #[error("refusing layer entry {entry:?}: {reason}")]
    UnsafeEntry {
        /// The entry's name as written in the tar.
        entry: String,
        /// Why it was refused.
        reason: String,
    },
    /// A file system operation failed; `path` says where.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON document (manifest, config, index) does not parse.
    #[error("{what}: {source}")]
    Json {
        /// What was being read.
        what: String,
        /// The parser's complaint.
        #[source]
        source: serde_json::Error,
    },
    /// A registry could not be reached or answered with an error.
    #[error("{url}: {message}")]
    Registry {
        /// The URL of the failed request.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The image is used by a container or a mount and can not be removed.
    #[error("image {image} is in use by {holder}")]
    InUse {
        /// The image.
        image: String,
        /// Who holds it.
        holder: String,
    },
    /// Anything else, described in words.
    #[error("{0}")]
    Other(String),
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches a path to an `io::Error`, the way every file operation here reports failures.
pub trait IoContext<T> {
    /// Wraps the error with the path it concerns.
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Io {
            path: path.into(),
            source,
        })
    }
}

impl Error {
    /// Builds an [`Error::Json`] for a document described by `what`.
    pub fn json(what: impl Into<String>, source: serde_json::Error) -> Self {
        Error::Json {
            what: what.into(),
            source,
        }
    }
}
