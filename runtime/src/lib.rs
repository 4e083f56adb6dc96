//! A small OCI runtime: it runs an OCI runtime bundle (config.json + rootfs) in new
//! namespaces with `pivot_root`, cgroup limits, a tiny init as PID 1 and on-disk
//! state, so the same bundle also runs under runc. [`Runtime`] is the typed API that
//! the `ctr-runtime` CLI and imagectl's container commands use; [`config::generate`]
//! writes the config.json of a container made from an image, and [`user`] resolves
//! `USER` strings against the image's /etc/passwd.

pub mod cgroups;
pub mod config;
pub mod container;
pub mod error;
pub mod linux;
pub mod paths;
pub mod process;
pub mod signal;
pub mod state;
pub mod user;

pub use container::{CreateOptions, DEFAULT_ROOT, ExecOptions, Output, Runtime};
pub use error::{Error, Result};
pub use state::{State, Status};
