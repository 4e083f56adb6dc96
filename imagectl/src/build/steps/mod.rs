//! The steps of a stage: metadata changes ([`meta`]), RUN in a container ([`run`]),
//! COPY/ADD into the step's layer ([`copy`]) and URL downloads for ADD ([`fetch`]).

pub mod copy;
pub mod fetch;
pub mod meta;
pub mod run;
