//! Registries over the OCI distribution API: pull, push and login.

pub mod client;
pub mod credentials;
pub mod pull;
pub mod push;

pub use client::Client;
