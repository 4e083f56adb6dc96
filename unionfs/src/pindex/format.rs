//! The on-disk layout of a persistent index, shared by the writer and the reader.
//!
//! Everything is little-endian, at fixed offsets, so the reader works on the mapped bytes
//! directly: no deserialisation pass, nothing copied. Sections start 8-byte aligned:
//!
//! ```text
//! header       HEADER_LEN bytes (below)
//! layers       layer_count  x LAYER_REC   (root st_dev, st_ino, path) top first
//! dirs         dir_count    x DIR_REC     dir 0 is the root
//! entries      entry_count  x ENTRY_REC   entry 0 is the root; a directory's children
//!                                         are contiguous and sorted by name
//! entry slots  entry_slots  x u64         open addressing, keyed by hash(dir path, name)
//! dir slots    dir_slots    x u64         open addressing, keyed by hash(dir path)
//! lists        u32 values                 lower_dirs lists, whited (offset, len) pairs
//! strings      bytes                      names, paths, symlink targets
//! ```
//!
//! A slot is `(hash >> 32) << 32 | (index + 1)`, 0 meaning empty; it sits at
//! `hash & (slots - 1)` or the first free slot after it. The hash is FNV-1a 64 over the
//! directory's merged path (relative, `/`-separated, empty for the root), a 0 byte (which
//! neither a path nor a name can hold), then the name: a directory's slot uses the state
//! after the 0 byte, which its record keeps, so a child's hash continues from it.

/// First bytes of every index file.
pub const MAGIC: &[u8; 8] = b"UFSPIDX\0";
/// Bumped whenever the layout changes; other versions are refused, not misread.
pub const VERSION: u32 = 1;

/// Size of the header.
pub const HEADER_LEN: usize = 136;
/// Header field offsets.
pub mod hdr {
    /// `[u8; 8]` magic.
    pub const MAGIC: usize = 0;
    /// `u32` format version.
    pub const VERSION: usize = 8;
    /// `u32` header length.
    pub const HEADER_LEN: usize = 12;
    /// `u64` total file length (a truncated copy is refused).
    pub const FILE_LEN: usize = 16;
    /// `u64` checksum of everything after the header.
    pub const BODY_SUM: usize = 24;
    /// `u32` number of layers.
    pub const LAYER_COUNT: usize = 32;
    /// `u32` number of directory records.
    pub const DIR_COUNT: usize = 36;
    /// `u32` number of entry records.
    pub const ENTRY_COUNT: usize = 40;
    /// `u32` slots in the entry table (a power of two).
    pub const ENTRY_SLOTS: usize = 44;
    /// `u32` slots in the directory table (a power of two).
    pub const DIR_SLOTS: usize = 48;
    /// `u64` offsets of the sections, then lengths of the two variable ones.
    pub const LAYERS_OFF: usize = 56;
    /// Directory records.
    pub const DIRS_OFF: usize = 64;
    /// Entry records.
    pub const ENTRIES_OFF: usize = 72;
    /// Entry slots.
    pub const ENTRY_SLOTS_OFF: usize = 80;
    /// Directory slots.
    pub const DIR_SLOTS_OFF: usize = 88;
    /// The u32 lists.
    pub const LISTS_OFF: usize = 96;
    /// Number of u32 values in the lists.
    pub const LISTS_LEN: usize = 104;
    /// The string area.
    pub const STRINGS_OFF: usize = 112;
    /// Bytes in the string area.
    pub const STRINGS_LEN: usize = 120;
    /// `u64` checksum of the header bytes before it.
    pub const HEADER_SUM: usize = 128;
}

/// Size of a layer record.
pub const LAYER_REC: usize = 24;
/// Layer record fields.
pub mod layer {
    /// `u64` st_dev of the layer root.
    pub const DEV: usize = 0;
    /// `u64` st_ino of the layer root.
    pub const INO: usize = 8;
    /// `u32` string offset of the path the layer was built from (informative).
    pub const PATH_OFF: usize = 16;
    /// `u32` its length.
    pub const PATH_LEN: usize = 20;
}

/// Size of a directory record.
pub const DIR_REC: usize = 56;
/// Directory record fields.
pub mod dir {
    /// `u64` FNV-1a state after the path and the 0 separator.
    pub const HASH: usize = 0;
    /// `u32` merged path (string offset).
    pub const PATH_OFF: usize = 8;
    /// `u32` merged path length.
    pub const PATH_LEN: usize = 12;
    /// `u32` the path the lower layers merge in (differs after a redirect).
    pub const LOWER_OFF: usize = 16;
    /// `u32` its length.
    pub const LOWER_LEN: usize = 20;
    /// `u32` the directory's own entry.
    pub const ENTRY: usize = 24;
    /// `u32` first child entry.
    pub const FIRST: usize = 28;
    /// `u32` number of children.
    pub const COUNT: usize = 32;
    /// `u32` index in the lists of the lower layers merged here, top first.
    pub const LDIRS_OFF: usize = 36;
    /// `u32` how many.
    pub const LDIRS_LEN: usize = 40;
    /// `u32` index in the lists of the whited names, as (string offset, len) pairs.
    pub const WHITED_OFF: usize = 44;
    /// `u32` how many names.
    pub const WHITED_LEN: usize = 48;
}

/// Size of an entry record.
pub const ENTRY_REC: usize = 144;
/// Entry record fields.
pub mod entry {
    /// `u64` the union's inode number.
    pub const INO: usize = 0;
    /// `u64` st_dev in the layer.
    pub const RAW_DEV: usize = 8;
    /// `u64` st_ino in the layer.
    pub const RAW_INO: usize = 16;
    /// `u64` link count as the union reports it.
    pub const NLINK: usize = 24;
    /// `u64` device number.
    pub const RDEV: usize = 32;
    /// `u64` size.
    pub const SIZE: usize = 40;
    /// `u64` 512-byte blocks.
    pub const BLOCKS: usize = 48;
    /// `i64` access time, seconds.
    pub const ATIME: usize = 56;
    /// `i64` modification time, seconds.
    pub const MTIME: usize = 64;
    /// `i64` change time, seconds.
    pub const CTIME: usize = 72;
    /// `u32` access time, nanoseconds.
    pub const ATIME_NS: usize = 80;
    /// `u32` modification time, nanoseconds.
    pub const MTIME_NS: usize = 84;
    /// `u32` change time, nanoseconds.
    pub const CTIME_NS: usize = 88;
    /// `u32` st_mode.
    pub const MODE: usize = 92;
    /// `u32` owner.
    pub const UID: usize = 96;
    /// `u32` group.
    pub const GID: usize = 100;
    /// `u32` preferred I/O size.
    pub const BLKSIZE: usize = 104;
    /// `u32` parent directory record.
    pub const PARENT: usize = 108;
    /// `u32` name (string offset).
    pub const NAME_OFF: usize = 112;
    /// `u32` name length.
    pub const NAME_LEN: usize = 116;
    /// `u32` directory record of a directory, [`NONE`](super::NONE) otherwise.
    pub const CHILD_DIR: usize = 120;
    /// `u32` layer holding a non-directory, [`NONE`](super::NONE) for directories.
    pub const LOWER: usize = 124;
    /// `u32` symlink target (string offset).
    pub const LINK_OFF: usize = 128;
    /// `u32` symlink target length (0 for other types).
    pub const LINK_LEN: usize = 132;
    /// `u32` path in the lower layer when it is not parent's lower path + name.
    pub const LPATH_OFF: usize = 136;
    /// `u32` its length, [`NONE`](super::NONE) when it is the default one.
    pub const LPATH_LEN: usize = 140;
}

/// "No value" in u32 fields.
pub const NONE: u32 = u32::MAX;

/// FNV-1a 64 offset basis.
pub const FNV_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Continues an FNV-1a 64 hash over `bytes`.
pub fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// The hash state a directory's children continue from: its path, then a 0 byte.
pub fn dir_hash(path: &[u8]) -> u64 {
    fnv(fnv(FNV_BASIS, path), &[0])
}

/// A checksum for detecting damaged files: FNV-1a's step applied to 64-bit words (eight
/// times faster than byte-wise on big files), the tail zero-padded, then the length
/// and a final mix so that every bit of the result depends on every word.
pub fn checksum(bytes: &[u8]) -> u64 {
    let mut h = FNV_BASIS;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(FNV_PRIME);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(FNV_PRIME);
    }
    h = (h ^ bytes.len() as u64).wrapping_mul(FNV_PRIME);
    // Final avalanche (the one of xxh64/murmur3): high bits fold into low ones.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h
}

/// A table size for `n` keys: a power of two with load at most one half.
pub fn slot_count(n: usize) -> usize {
    (n.max(1) * 2).next_power_of_two()
}

/// The slot value for key `hash` naming record `idx`.
pub fn slot_value(hash: u64, idx: u32) -> u64 {
    (hash >> 32) << 32 | (u64::from(idx) + 1)
}

/// Rounds up to a multiple of 8.
pub fn align8(n: usize) -> usize {
    (n + 7) & !7
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_the_published_vectors() {
        // From the FNV reference test suite.
        assert_eq!(fnv(FNV_BASIS, b""), 0xcbf29ce484222325);
        assert_eq!(fnv(FNV_BASIS, b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv(FNV_BASIS, b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn checksum_sees_single_bit_flips_and_length() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let sum = checksum(&data);
        for i in [0, 7, 8, 500, 999] {
            for bit in [0, 7] {
                let mut d = data.clone();
                d[i] ^= 1 << bit;
                assert_ne!(checksum(&d), sum, "flip at {i}:{bit}");
            }
        }
        let mut longer = data.clone();
        longer.push(0);
        assert_ne!(checksum(&longer), sum);
    }
}
