//! Encoding a collected model into the file layout, and writing it atomically.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::PindexError;
use super::build::Model;
use super::format::{self, HEADER_LEN, NONE, dir, entry, hdr, layer};

/// Appends strings and hands back (offset, length) pairs that fit the u32 fields.
#[derive(Default)]
struct Strings(Vec<u8>);

impl Strings {
    fn add(&mut self, bytes: &[u8]) -> Result<(u32, u32), PindexError> {
        let off = u32::try_from(self.0.len()).map_err(|_| PindexError::TooLarge("strings"))?;
        let len = u32::try_from(bytes.len()).map_err(|_| PindexError::TooLarge("a string"))?;
        if len == NONE || self.0.len() + bytes.len() > NONE as usize {
            return Err(PindexError::TooLarge("strings"));
        }
        self.0.extend_from_slice(bytes);
        Ok((off, len))
    }
}

fn put32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put64(buf: &mut [u8], at: usize, v: u64) {
    buf[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn lists_index(lists: &[u32]) -> Result<u32, PindexError> {
    u32::try_from(lists.len())
        .ok()
        .filter(|&n| n != NONE)
        .ok_or(PindexError::TooLarge("lists"))
}

/// Lays the model out as the bytes of an index file.
pub(super) fn encode(model: &Model) -> Result<Vec<u8>, PindexError> {
    let mut strings = Strings::default();
    let mut lists: Vec<u32> = Vec::new();

    let mut layers = vec![0u8; model.layers.len() * format::LAYER_REC];
    for (i, (dev, ino, path)) in model.layers.iter().enumerate() {
        let r = &mut layers[i * format::LAYER_REC..][..format::LAYER_REC];
        let (off, len) = strings.add(path.as_os_str().as_bytes())?;
        put64(r, layer::DEV, *dev);
        put64(r, layer::INO, *ino);
        put32(r, layer::PATH_OFF, off);
        put32(r, layer::PATH_LEN, len);
    }

    let mut hashes = Vec::with_capacity(model.dirs.len());
    let mut dirs = vec![0u8; model.dirs.len() * format::DIR_REC];
    for (i, d) in model.dirs.iter().enumerate() {
        let r = &mut dirs[i * format::DIR_REC..][..format::DIR_REC];
        let path = d.path.as_os_str().as_bytes();
        let hash = format::dir_hash(path);
        hashes.push(hash);
        put64(r, dir::HASH, hash);
        let (off, len) = strings.add(path)?;
        put32(r, dir::PATH_OFF, off);
        put32(r, dir::PATH_LEN, len);
        let (off, len) = strings.add(d.lower_path.as_os_str().as_bytes())?;
        put32(r, dir::LOWER_OFF, off);
        put32(r, dir::LOWER_LEN, len);
        put32(r, dir::ENTRY, d.entry);
        put32(r, dir::FIRST, d.first);
        put32(r, dir::COUNT, d.count);
        put32(r, dir::LDIRS_OFF, lists_index(&lists)?);
        put32(r, dir::LDIRS_LEN, d.lower_dirs.len() as u32);
        lists.extend_from_slice(&d.lower_dirs);
        put32(r, dir::WHITED_OFF, lists_index(&lists)?);
        put32(r, dir::WHITED_LEN, d.whited.len() as u32);
        for name in &d.whited {
            let (off, len) = strings.add(name.as_bytes())?;
            lists.extend_from_slice(&[off, len]);
        }
    }

    let entry_slot_count = format::slot_count(model.entries.len());
    let mut entry_slots = vec![0u64; entry_slot_count];
    let mut entries = vec![0u8; model.entries.len() * format::ENTRY_REC];
    for (i, e) in model.entries.iter().enumerate() {
        let r = &mut entries[i * format::ENTRY_REC..][..format::ENTRY_REC];
        let a = &e.attr;
        put64(r, entry::INO, a.ino);
        put64(r, entry::RAW_DEV, e.raw_dev);
        put64(r, entry::RAW_INO, e.raw_ino);
        put64(r, entry::NLINK, a.nlink);
        put64(r, entry::RDEV, a.rdev);
        put64(r, entry::SIZE, a.size);
        put64(r, entry::BLOCKS, a.blocks);
        put64(r, entry::ATIME, a.atime.0 as u64);
        put64(r, entry::MTIME, a.mtime.0 as u64);
        put64(r, entry::CTIME, a.ctime.0 as u64);
        put32(r, entry::ATIME_NS, a.atime.1 as u32);
        put32(r, entry::MTIME_NS, a.mtime.1 as u32);
        put32(r, entry::CTIME_NS, a.ctime.1 as u32);
        put32(r, entry::MODE, a.mode);
        put32(r, entry::UID, a.uid);
        put32(r, entry::GID, a.gid);
        put32(r, entry::BLKSIZE, u32::try_from(a.blksize).unwrap_or(NONE));
        put32(r, entry::PARENT, e.parent);
        let (off, len) = strings.add(e.name.as_bytes())?;
        put32(r, entry::NAME_OFF, off);
        put32(r, entry::NAME_LEN, len);
        put32(r, entry::CHILD_DIR, e.child_dir);
        put32(r, entry::LOWER, e.lower);
        let (off, len) = match &e.link {
            Some(t) => strings.add(t.as_bytes())?,
            None => (0, 0),
        };
        put32(r, entry::LINK_OFF, off);
        put32(r, entry::LINK_LEN, len);
        let (off, len) = match &e.lower_path {
            Some(p) => strings.add(p.as_os_str().as_bytes())?,
            None => (0, NONE),
        };
        put32(r, entry::LPATH_OFF, off);
        put32(r, entry::LPATH_LEN, len);
        if i > 0 {
            let parent_hash = *hashes
                .get(e.parent as usize)
                .ok_or(PindexError::TooLarge("parent out of range"))?;
            let h = format::fnv(parent_hash, e.name.as_bytes());
            insert(&mut entry_slots, h, i as u32);
        }
    }

    let mut dir_slots = vec![0u64; format::slot_count(model.dirs.len())];
    for (i, &h) in hashes.iter().enumerate() {
        insert(&mut dir_slots, h, i as u32);
    }

    // Section offsets.
    let layers_off = HEADER_LEN;
    let dirs_off = format::align8(layers_off + layers.len());
    let entries_off = format::align8(dirs_off + dirs.len());
    let entry_slots_off = format::align8(entries_off + entries.len());
    let dir_slots_off = entry_slots_off + entry_slots.len() * 8;
    let lists_off = dir_slots_off + dir_slots.len() * 8;
    let strings_off = format::align8(lists_off + lists.len() * 4);
    let total = strings_off + strings.0.len();

    let mut out = vec![0u8; total];
    out[layers_off..][..layers.len()].copy_from_slice(&layers);
    out[dirs_off..][..dirs.len()].copy_from_slice(&dirs);
    out[entries_off..][..entries.len()].copy_from_slice(&entries);
    for (i, s) in entry_slots.iter().enumerate() {
        put64(&mut out, entry_slots_off + i * 8, *s);
    }
    for (i, s) in dir_slots.iter().enumerate() {
        put64(&mut out, dir_slots_off + i * 8, *s);
    }
    for (i, v) in lists.iter().enumerate() {
        put32(&mut out, lists_off + i * 4, *v);
    }
    out[strings_off..].copy_from_slice(&strings.0);

    let h = &mut out[..HEADER_LEN];
    h[hdr::MAGIC..hdr::MAGIC + 8].copy_from_slice(format::MAGIC);
    put32(h, hdr::VERSION, format::VERSION);
    put32(h, hdr::HEADER_LEN, HEADER_LEN as u32);
    put64(h, hdr::FILE_LEN, total as u64);
    put32(h, hdr::LAYER_COUNT, model.layers.len() as u32);
    put32(h, hdr::DIR_COUNT, model.dirs.len() as u32);
    put32(h, hdr::ENTRY_COUNT, model.entries.len() as u32);
    let slots32 = |n: usize| u32::try_from(n).map_err(|_| PindexError::TooLarge("hash table"));
    put32(h, hdr::ENTRY_SLOTS, slots32(entry_slots.len())?);
    put32(h, hdr::DIR_SLOTS, slots32(dir_slots.len())?);
    put64(h, hdr::LAYERS_OFF, layers_off as u64);
    put64(h, hdr::DIRS_OFF, dirs_off as u64);
    put64(h, hdr::ENTRIES_OFF, entries_off as u64);
    put64(h, hdr::ENTRY_SLOTS_OFF, entry_slots_off as u64);
    put64(h, hdr::DIR_SLOTS_OFF, dir_slots_off as u64);
    put64(h, hdr::LISTS_OFF, lists_off as u64);
    put64(h, hdr::LISTS_LEN, lists.len() as u64);
    put64(h, hdr::STRINGS_OFF, strings_off as u64);
    put64(h, hdr::STRINGS_LEN, strings.0.len() as u64);
    let body_sum = format::checksum(&out[HEADER_LEN..]);
    put64(&mut out, hdr::BODY_SUM, body_sum);
    let header_sum = format::checksum(&out[..hdr::HEADER_SUM]);
    put64(&mut out, hdr::HEADER_SUM, header_sum);
    Ok(out)
}

/// Linear-probing insertion (the table always has free slots: load is at most 1/2).
fn insert(slots: &mut [u64], hash: u64, idx: u32) {
    let mask = slots.len() - 1;
    let mut i = hash as usize & mask;
    while slots[i] != 0 {
        i = (i + 1) & mask;
    }
    slots[i] = format::slot_value(hash, idx);
}

/// Writes `bytes` to `out` atomically: a temporary sibling, fsync, rename, fsync of the
/// directory. A reader never sees a partial file; a crash leaves the old one or the new.
pub(super) fn write_atomic(out: &Path, bytes: &[u8]) -> Result<(), PindexError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PindexError::Io { path, source }
    };
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = out.file_name().ok_or_else(|| PindexError::Io {
        path: out.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"),
    })?;
    let mut tmp_name = OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(
        ".tmp-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io(&tmp))?;
        f.write_all(bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        drop(f);
        std::fs::rename(&tmp, out).map_err(io(out))?;
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&dir))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
