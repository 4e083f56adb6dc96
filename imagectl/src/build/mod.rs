//! Dockerfile builds (issue 5): the parts of `imagectl build` that do not need a
//! container yet.
//!
//! - [`history`]: the `created_by` text of each step, as docker's classic builder
//!   writes it, so `imagectl history` reads like the Dockerfile.
//! - [`context`]: the build context, `.dockerignore` and COPY/ADD source checksums.
//! - [`cache`]: build-cache keys (parent image, expanded instruction, ARG/ENV in effect,
//!   COPY/ADD source checksums) and the `--explain-cache` comparison of a miss against
//!   the closest cached step.
//!
//! Execution (RUN in a container over a union mount, COPY/ADD layers) and the
//! `imagectl build` command are not written yet.

pub mod cache;
pub mod context;
pub mod history;
