//! The Linux mechanisms a container is made of, one module each: namespaces,
//! mounts and pivot_root, device nodes, the loopback network, capabilities, and the
//! process attributes (user, rlimits, no_new_privileges, pty) applied before exec.

pub mod caps;
pub mod devices;
pub mod mounts;
pub mod namespaces;
pub mod net;
pub mod process;
pub mod pty;
