//! The steps of a stage: metadata changes ([`meta`]), RUN in a container ([`run`]),
//! and COPY/ADD into the union mount ([`copy`]).

pub mod copy;
pub mod meta;
pub mod run;
