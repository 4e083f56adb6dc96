//! The runtime's processes: the monitor that owns a container's life and records its
//! exit, the container's PID 1, the exec helper, and the channel between them.

pub mod channel;
pub mod exec;
pub mod fork;
pub mod init;
pub mod monitor;
pub mod relay;
