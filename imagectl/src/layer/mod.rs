//! Layer tars: decompression, safe extraction into the on-disk layer format, and packing
//! a directory back into an OCI layer tar.

pub mod compress;
pub mod extract;
pub mod pack;

pub use compress::{Compression, decompress};
pub use extract::{ExtractOptions, ExtractStats, extract_layer};
pub use pack::pack_dir;
