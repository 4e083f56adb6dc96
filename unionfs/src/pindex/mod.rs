//! The persistent index of a read-only layer chain: what the union sees, computed once.
//!
//! An image's layers never change once unpacked, so everything a union learns about them
//! by reading layer directories — which names each merged directory holds, which layer
//! each comes from, their attributes, what is whited out — can be worked out once and
//! kept in a file beside the layers. [`build`] walks a read-only [`Union`](crate::union::Union)
//! over the chain (so the file has exactly the union's semantics: whiteouts in every
//! format, opaque directories, redirects) and writes that file; [`PersistentIndex`]
//! memory-maps it, so a lookup or `getattr` of a lower-only entry is one hash probe in the
//! mapping, with no system call, however deep the stack, and the page cache shares the
//! file among every mount of the same image.
//!
//! Layer numbers in the file count the *lower* layers only, 0 being the top lower layer;
//! a union with an upper layer adds its offset (`LayerStack::lower_indexes().start`).
//! Inode numbers are those of the read-only union; the raw `(st_dev, st_ino)` of each
//! entry is kept too, since a union whose upper layer sits on another filesystem maps
//! inode numbers differently (`LayerStack::map_ino`).

mod build;
mod error;
pub mod format;
mod read;
mod write;

#[cfg(test)]
mod tests;

pub use self::build::{BuildStats, build, verify};
pub use self::error::PindexError;
pub use self::read::{DirRecord, EntryRecord, LayerRecord, PersistentIndex};
