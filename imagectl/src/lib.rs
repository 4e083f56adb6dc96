//! The image manager library: store, transports, containers and builds.

pub mod dockerfile;
