//! The runtime's error type: one variant per kind of failure a caller may want to
//! tell apart (a missing container is not the same as a broken config).

use std::path::PathBuf;

/// Everything the runtime library can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O call failed; `what` names the operation and the path involved.
    #[error("{what}: {source}")]
    Io {
        /// The operation that failed, with its path.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A system call failed.
    #[error("{what}: {source}")]
    Sys {
        /// The operation that failed.
        what: String,
        /// The errno.
        #[source]
        source: nix::Error,
    },
    /// The bundle's config.json is missing or invalid.
    #[error("invalid bundle config {path}: {reason}")]
    Config {
        /// The config file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The configuration asks for something this runtime does not support.
    #[error("unsupported configuration: {0}")]
    Unsupported(String),
    /// No container with this id exists in the state directory.
    #[error("container {0} does not exist")]
    NotFound(String),
    /// A container with this id already exists.
    #[error("container {0} already exists")]
    AlreadyExists(String),
    /// The container id is empty or contains characters that are not allowed.
    #[error("invalid container id {0:?}: use letters, digits, '_', '-' and '.' only")]
    InvalidId(String),
    /// The operation is not valid in the container's current status.
    #[error("container {id} is {status}: {reason}")]
    InvalidState {
        /// The container.
        id: String,
        /// Its status.
        status: String,
        /// Why the operation is refused.
        reason: String,
    },
    /// A `USER` string could not be resolved against the rootfs.
    #[error("unable to find user {0}")]
    UnknownUser(String),
    /// A group name could not be resolved against the rootfs.
    #[error("unable to find group {0}")]
    UnknownGroup(String),
    /// The container setup failed inside the new namespaces.
    #[error("container setup failed: {0}")]
    Setup(String),
    /// A signal name or number was not recognised.
    #[error("unknown signal {0:?}")]
    UnknownSignal(String),
}

/// Short alias used across the crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Builds a closure that wraps an `io::Error` with a description; used as
    /// `.map_err(Error::io(format!("open {}", p.display())))`.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }

    /// Same as [`Error::io`] for `nix` results.
    pub fn sys(what: impl Into<String>) -> impl FnOnce(nix::Error) -> Error {
        let what = what.into();
        move |source| Error::Sys { what, source }
    }
}
