//! Reading an index in place: the file is memory-mapped and records borrow the mapping.
//!
//! Every offset in the file is checked once at [`PersistentIndex::open`] (with a checksum
//! over the whole body), so the accessors afterwards are plain loads; they still read
//! through bounds-checked slices, so even a file changed behind our back yields wrong
//! values at worst, never a panic or undefined behaviour in safe code.

use std::borrow::Cow;
use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use memmap2::Mmap;

use super::PindexError;
use super::format::{self, HEADER_LEN, NONE, dir, entry, hdr, layer};
use crate::union::Attr;

/// An opened, validated index file.
#[derive(Debug)]
pub struct PersistentIndex {
    map: Mmap,
    path: PathBuf,
    layer_count: usize,
    dir_count: usize,
    entry_count: usize,
    entry_slots: usize,
    dir_slots: usize,
    layers_off: usize,
    dirs_off: usize,
    entries_off: usize,
    entry_slots_off: usize,
    dir_slots_off: usize,
    lists_off: usize,
    lists_len: usize,
    strings_off: usize,
    strings_len: usize,
}

fn le32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_le_bytes)
        .unwrap_or(0)
}

fn le64(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map(u64::from_le_bytes)
        .unwrap_or(0)
}

/// A merged path as the bytes stored in the file: relative, `/`-separated, no `.` or
/// empty components; the root is empty. Borrowed when already in that form.
fn normalize(path: &Path) -> Cow<'_, [u8]> {
    let b = path.as_os_str().as_bytes();
    let clean = !b.starts_with(b"/")
        && !b.ends_with(b"/")
        && b.split(|&c| c == b'/').all(|c| !c.is_empty() && c != b".")
        || b.is_empty();
    if clean {
        return Cow::Borrowed(b);
    }
    let mut out = Vec::with_capacity(b.len());
    for c in path.components() {
        let part = match c {
            Component::Normal(n) => n.as_bytes(),
            Component::ParentDir => b"..",
            Component::RootDir | Component::CurDir | Component::Prefix(_) => continue,
        };
        if !out.is_empty() {
            out.push(b'/');
        }
        out.extend_from_slice(part);
    }
    Cow::Owned(out)
}

impl PersistentIndex {
    /// Opens the index at `path` for the layer chain `lowers` (top first), refusing it if
    /// it is damaged, of another format version, or was built for other layers.
    pub fn open(path: &Path, lowers: &[PathBuf]) -> Result<Self, PindexError> {
        let ix = Self::open_unchecked_chain(path)?;
        ix.check_chain(lowers)?;
        Ok(ix)
    }

    /// Opens and validates the file without comparing its layer chain with anything: for
    /// tools that only show what a file holds (`unionfs-index show`).
    pub fn open_unchecked_chain(path: &Path) -> Result<Self, PindexError> {
        let io = |source| PindexError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        if len < HEADER_LEN as u64 {
            if len >= 8 {
                let mut magic = [0u8; 8];
                std::io::Read::read_exact(&mut &file, &mut magic).map_err(io)?;
                if &magic != format::MAGIC {
                    return Err(PindexError::BadMagic {
                        path: path.to_path_buf(),
                    });
                }
            }
            return Err(PindexError::Truncated {
                path: path.to_path_buf(),
                expected: HEADER_LEN as u64,
                actual: len,
            });
        }
        // SAFETY: index files are only ever replaced by rename, never written in place,
        // so the mapped bytes do not change while mapped. Were one modified anyway, every
        // read below goes through bounds-checked slices of the mapping.
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        Self::validate(map, path)
    }

    fn corrupt(path: &Path, what: impl Into<String>) -> PindexError {
        PindexError::Corrupt {
            path: path.to_path_buf(),
            what: what.into(),
        }
    }

    fn validate(map: Mmap, path: &Path) -> Result<Self, PindexError> {
        let b: &[u8] = &map;
        if &b[..8] != format::MAGIC {
            return Err(PindexError::BadMagic {
                path: path.to_path_buf(),
            });
        }
        let version = le32(b, hdr::VERSION);
        if version != format::VERSION {
            return Err(PindexError::Version {
                path: path.to_path_buf(),
                found: version,
                expected: format::VERSION,
            });
        }
        if format::checksum(&b[..hdr::HEADER_SUM]) != le64(b, hdr::HEADER_SUM) {
            return Err(Self::corrupt(path, "header checksum mismatch"));
        }
        if le32(b, hdr::HEADER_LEN) as usize != HEADER_LEN {
            return Err(Self::corrupt(path, "unexpected header length"));
        }
        let file_len = le64(b, hdr::FILE_LEN);
        if file_len != b.len() as u64 {
            return Err(PindexError::Truncated {
                path: path.to_path_buf(),
                expected: file_len,
                actual: b.len() as u64,
            });
        }
        if format::checksum(&b[HEADER_LEN..]) != le64(b, hdr::BODY_SUM) {
            return Err(Self::corrupt(path, "body checksum mismatch"));
        }
        let section = |off_at: usize, count: u64, size: u64, what: &str| {
            let off = le64(b, off_at);
            let end = count
                .checked_mul(size)
                .and_then(|n| n.checked_add(off))
                .filter(|&end| off >= HEADER_LEN as u64 && end <= b.len() as u64);
            match end {
                Some(_) => Ok(off as usize),
                None => Err(Self::corrupt(path, format!("{what} section out of bounds"))),
            }
        };
        let layer_count = le32(b, hdr::LAYER_COUNT) as usize;
        let dir_count = le32(b, hdr::DIR_COUNT) as usize;
        let entry_count = le32(b, hdr::ENTRY_COUNT) as usize;
        let entry_slots = le32(b, hdr::ENTRY_SLOTS) as usize;
        let dir_slots = le32(b, hdr::DIR_SLOTS) as usize;
        let lists_len = le64(b, hdr::LISTS_LEN);
        let strings_len = le64(b, hdr::STRINGS_LEN);
        if layer_count == 0 || dir_count == 0 || entry_count == 0 {
            return Err(Self::corrupt(path, "no layers, directories or entries"));
        }
        if !entry_slots.is_power_of_two()
            || !dir_slots.is_power_of_two()
            || entry_slots <= entry_count
            || dir_slots <= dir_count
        {
            return Err(Self::corrupt(path, "bad hash table size"));
        }
        let ix = PersistentIndex {
            layers_off: section(
                hdr::LAYERS_OFF,
                layer_count as u64,
                format::LAYER_REC as u64,
                "layer",
            )?,
            dirs_off: section(
                hdr::DIRS_OFF,
                dir_count as u64,
                format::DIR_REC as u64,
                "directory",
            )?,
            entries_off: section(
                hdr::ENTRIES_OFF,
                entry_count as u64,
                format::ENTRY_REC as u64,
                "entry",
            )?,
            entry_slots_off: section(hdr::ENTRY_SLOTS_OFF, entry_slots as u64, 8, "entry table")?,
            dir_slots_off: section(hdr::DIR_SLOTS_OFF, dir_slots as u64, 8, "directory table")?,
            lists_off: section(hdr::LISTS_OFF, lists_len, 4, "list")?,
            strings_off: section(hdr::STRINGS_OFF, strings_len, 1, "string")?,
            lists_len: lists_len as usize,
            strings_len: strings_len as usize,
            layer_count,
            dir_count,
            entry_count,
            entry_slots,
            dir_slots,
            path: path.to_path_buf(),
            map,
        };
        ix.validate_records()?;
        Ok(ix)
    }

    /// Checks every offset and index held by the records, once.
    fn validate_records(&self) -> Result<(), PindexError> {
        let bad = |what: String| Err(Self::corrupt(&self.path, what));
        let str_ok = |off: u32, len: u32| (off as u64 + len as u64) <= self.strings_len as u64;
        let list_ok = |off: u32, n: u64| (off as u64 + n) <= self.lists_len as u64;
        for i in 0..self.layer_count {
            let r = self.layers_off + i * format::LAYER_REC;
            if !str_ok(self.u32(r + layer::PATH_OFF), self.u32(r + layer::PATH_LEN)) {
                return bad(format!("layer {i}: path out of bounds"));
            }
        }
        for i in 0..self.dir_count {
            let r = self.dirs_off + i * format::DIR_REC;
            let u = |f| self.u32(r + f);
            if !str_ok(u(dir::PATH_OFF), u(dir::PATH_LEN))
                || !str_ok(u(dir::LOWER_OFF), u(dir::LOWER_LEN))
            {
                return bad(format!("directory {i}: path out of bounds"));
            }
            if u(dir::ENTRY) as usize >= self.entry_count
                || u(dir::FIRST) as u64 + u(dir::COUNT) as u64 > self.entry_count as u64
            {
                return bad(format!("directory {i}: entries out of bounds"));
            }
            if !list_ok(u(dir::LDIRS_OFF), u(dir::LDIRS_LEN) as u64)
                || !list_ok(u(dir::WHITED_OFF), 2 * u(dir::WHITED_LEN) as u64)
            {
                return bad(format!("directory {i}: lists out of bounds"));
            }
            for k in 0..u(dir::LDIRS_LEN) as usize {
                if self.list(u(dir::LDIRS_OFF) as usize + k) as usize >= self.layer_count {
                    return bad(format!("directory {i}: layer number out of range"));
                }
            }
            for k in 0..u(dir::WHITED_LEN) as usize {
                let at = u(dir::WHITED_OFF) as usize + 2 * k;
                if !str_ok(self.list(at), self.list(at + 1)) {
                    return bad(format!("directory {i}: whited name out of bounds"));
                }
            }
        }
        for i in 0..self.entry_count {
            let r = self.entries_off + i * format::ENTRY_REC;
            let u = |f| self.u32(r + f);
            if u(entry::PARENT) as usize >= self.dir_count {
                return bad(format!("entry {i}: parent out of range"));
            }
            let child = u(entry::CHILD_DIR);
            let lower = u(entry::LOWER);
            if (child != NONE && child as usize >= self.dir_count)
                || (lower != NONE && lower as usize >= self.layer_count)
            {
                return bad(format!("entry {i}: directory or layer out of range"));
            }
            let lpath_len = u(entry::LPATH_LEN);
            if !str_ok(u(entry::NAME_OFF), u(entry::NAME_LEN))
                || !str_ok(u(entry::LINK_OFF), u(entry::LINK_LEN))
                || (lpath_len != NONE && !str_ok(u(entry::LPATH_OFF), lpath_len))
            {
                return bad(format!("entry {i}: string out of bounds"));
            }
        }
        for (off, n, count, what) in [
            (
                self.entry_slots_off,
                self.entry_slots,
                self.entry_count,
                "entry",
            ),
            (
                self.dir_slots_off,
                self.dir_slots,
                self.dir_count,
                "directory",
            ),
        ] {
            for k in 0..n {
                let v = self.u64(off + 8 * k) & 0xffff_ffff;
                if v as usize > count {
                    return bad(format!("{what} table slot {k} out of range"));
                }
            }
        }
        Ok(())
    }

    /// Refuses the index unless it was built over exactly these layer directories.
    fn check_chain(&self, lowers: &[PathBuf]) -> Result<(), PindexError> {
        let mismatch = |what: String| PindexError::Mismatch {
            path: self.path.clone(),
            what,
        };
        if lowers.len() != self.layer_count {
            return Err(mismatch(format!(
                "it has {} layers, {} given",
                self.layer_count,
                lowers.len()
            )));
        }
        for (i, (lower, rec)) in lowers.iter().zip(self.layers()).enumerate() {
            let md = std::fs::metadata(lower).map_err(|source| PindexError::Io {
                path: lower.clone(),
                source,
            })?;
            if (md.dev(), md.ino()) != (rec.dev(), rec.ino()) {
                return Err(mismatch(format!(
                    "layer {i} is {} (dev {}, inode {}), the index was built over {} (dev {}, inode {})",
                    lower.display(),
                    md.dev(),
                    md.ino(),
                    rec.path().display(),
                    rec.dev(),
                    rec.ino()
                )));
            }
        }
        Ok(())
    }

    fn u32(&self, at: usize) -> u32 {
        le32(&self.map, at)
    }

    fn u64(&self, at: usize) -> u64 {
        le64(&self.map, at)
    }

    fn list(&self, i: usize) -> u32 {
        self.u32(self.lists_off + 4 * i)
    }

    fn bytes(&self, off: u32, len: u32) -> &[u8] {
        let start = self.strings_off + off as usize;
        self.map.get(start..start + len as usize).unwrap_or(&[])
    }

    /// The file this index was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Size of the file in bytes.
    pub fn file_len(&self) -> usize {
        self.map.len()
    }

    /// Number of merged directories (the root included).
    pub fn dir_count(&self) -> usize {
        self.dir_count
    }

    /// Number of merged entries (the root included).
    pub fn entry_count(&self) -> usize {
        self.entry_count
    }

    /// The layers the index was built over, top first.
    pub fn layers(&self) -> impl ExactSizeIterator<Item = LayerRecord<'_>> + '_ {
        (0..self.layer_count).map(move |i| LayerRecord { ix: self, i })
    }

    /// The root directory.
    pub fn root(&self) -> DirRecord<'_> {
        DirRecord { ix: self, id: 0 }
    }

    /// A directory by its record number (see [`DirRecord::id`]), e.g. one a union node
    /// remembered so its lookups skip hashing the path.
    pub fn dir_by_id(&self, id: u32) -> Option<DirRecord<'_>> {
        ((id as usize) < self.dir_count).then_some(DirRecord { ix: self, id })
    }

    /// An entry by its record number (see [`EntryRecord::id`]).
    pub fn entry_by_id(&self, id: u32) -> Option<EntryRecord<'_>> {
        ((id as usize) < self.entry_count).then_some(EntryRecord { ix: self, id })
    }

    /// Linear probing from `hash`; `is_match` verifies the candidate record (collisions).
    fn probe(
        &self,
        table: usize,
        slots: usize,
        hash: u64,
        mut is_match: impl FnMut(u32) -> bool,
    ) -> Option<u32> {
        let mask = slots - 1;
        let tag = hash >> 32;
        let mut i = hash as usize & mask;
        for _ in 0..slots {
            let v = self.u64(table + 8 * i);
            if v == 0 {
                return None;
            }
            if v >> 32 == tag {
                let idx = (v & 0xffff_ffff) as u32 - 1;
                if is_match(idx) {
                    return Some(idx);
                }
            }
            i = (i + 1) & mask;
        }
        None
    }

    /// The merged directory at `dir_path` (relative to the union root; a leading `/` is
    /// accepted, `""` or `/` is the root).
    pub fn dir(&self, dir_path: &Path) -> Option<DirRecord<'_>> {
        let p = normalize(dir_path);
        let hash = format::dir_hash(&p);
        let id = self.probe(self.dir_slots_off, self.dir_slots, hash, |id| {
            DirRecord { ix: self, id }.path_bytes() == &*p
        })?;
        Some(DirRecord { ix: self, id })
    }

    /// The entry `name` of the merged directory `dir_path`: one probe of the table.
    pub fn lookup(&self, dir_path: &Path, name: &OsStr) -> Option<EntryRecord<'_>> {
        let p = normalize(dir_path);
        let hash = format::fnv(format::dir_hash(&p), name.as_bytes());
        let id = self.probe(self.entry_slots_off, self.entry_slots, hash, |id| {
            let e = EntryRecord { ix: self, id };
            e.name().as_bytes() == name.as_bytes() && e.parent().path_bytes() == &*p
        })?;
        Some(EntryRecord { ix: self, id })
    }

    /// The entry at a full merged path (the root for `""` or `/`).
    pub fn stat(&self, path: &Path) -> Option<EntryRecord<'_>> {
        let p = normalize(path);
        let p = Path::new(OsStr::from_bytes(&p));
        match (p.parent(), p.file_name()) {
            (Some(parent), Some(name)) => self.lookup(parent, name),
            _ => Some(self.root().entry()),
        }
    }
}

/// One layer the index was built over.
#[derive(Clone, Copy, Debug)]
pub struct LayerRecord<'a> {
    ix: &'a PersistentIndex,
    i: usize,
}

impl<'a> LayerRecord<'a> {
    fn at(&self, f: usize) -> usize {
        self.ix.layers_off + self.i * format::LAYER_REC + f
    }

    /// `st_dev` of the layer root when built.
    pub fn dev(&self) -> u64 {
        self.ix.u64(self.at(layer::DEV))
    }

    /// `st_ino` of the layer root when built.
    pub fn ino(&self) -> u64 {
        self.ix.u64(self.at(layer::INO))
    }

    /// The path it was given as when built (for messages; identity is `dev`/`ino`).
    pub fn path(&self) -> &'a Path {
        let (off, len) = (
            self.ix.u32(self.at(layer::PATH_OFF)),
            self.ix.u32(self.at(layer::PATH_LEN)),
        );
        Path::new(OsStr::from_bytes(self.ix.bytes(off, len)))
    }
}

/// One merged directory: its listing, where the lower layers hold it, what is whited out.
#[derive(Clone, Copy, Debug)]
pub struct DirRecord<'a> {
    ix: &'a PersistentIndex,
    id: u32,
}

impl<'a> DirRecord<'a> {
    fn u32(&self, f: usize) -> u32 {
        self.ix
            .u32(self.ix.dirs_off + self.id as usize * format::DIR_REC + f)
    }

    fn path_bytes(&self) -> &'a [u8] {
        self.ix
            .bytes(self.u32(dir::PATH_OFF), self.u32(dir::PATH_LEN))
    }

    /// Its record number, stable for the file: a handle for [`PersistentIndex::dir_by_id`].
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Its merged path, relative to the union root (empty for the root).
    pub fn path(&self) -> &'a Path {
        Path::new(OsStr::from_bytes(self.path_bytes()))
    }

    /// The path the lower layers merge in (its merged path unless redirected).
    pub fn lower_path(&self) -> &'a Path {
        let b = self
            .ix
            .bytes(self.u32(dir::LOWER_OFF), self.u32(dir::LOWER_LEN));
        Path::new(OsStr::from_bytes(b))
    }

    /// The lower layers merged into it, top first (numbered among the lower layers).
    pub fn lower_dirs(&self) -> impl ExactSizeIterator<Item = usize> + 'a {
        let ix = self.ix;
        let off = self.u32(dir::LDIRS_OFF) as usize;
        (0..self.u32(dir::LDIRS_LEN) as usize).map(move |k| ix.list(off + k) as usize)
    }

    /// The directory's own entry (its attributes).
    pub fn entry(&self) -> EntryRecord<'a> {
        EntryRecord {
            ix: self.ix,
            id: self.u32(dir::ENTRY),
        }
    }

    /// Number of visible entries (without `.` and `..`).
    pub fn len(&self) -> usize {
        self.u32(dir::COUNT) as usize
    }

    /// True when the directory shows nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Its visible entries, sorted by name (byte order), as the union lists them.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = EntryRecord<'a>> + 'a {
        let ix = self.ix;
        let first = self.u32(dir::FIRST);
        (first..first + self.u32(dir::COUNT)).map(move |id| EntryRecord { ix, id })
    }

    /// Names hidden here by a whiteout in some layer, sorted (byte order).
    pub fn whited(&self) -> impl ExactSizeIterator<Item = &'a OsStr> + 'a {
        let ix = self.ix;
        let off = self.u32(dir::WHITED_OFF) as usize;
        (0..self.u32(dir::WHITED_LEN) as usize).map(move |k| {
            let at = off + 2 * k;
            OsStr::from_bytes(ix.bytes(ix.list(at), ix.list(at + 1)))
        })
    }

    /// True when `name` is whited out here (so creating and then removing it needs a
    /// whiteout again).
    pub fn is_whited(&self, name: &OsStr) -> bool {
        let off = self.u32(dir::WHITED_OFF) as usize;
        let (mut lo, mut hi) = (0usize, self.u32(dir::WHITED_LEN) as usize);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let at = off + 2 * mid;
            let probe = self.ix.bytes(self.ix.list(at), self.ix.list(at + 1));
            match probe.cmp(name.as_bytes()) {
                std::cmp::Ordering::Equal => return true,
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        false
    }

    /// The entry `name` in this directory: one probe, no path hashing.
    pub fn lookup(&self, name: &OsStr) -> Option<EntryRecord<'a>> {
        let hash = format::fnv(self.u64_hash(), name.as_bytes());
        let ix = self.ix;
        let me = self.id;
        let id = ix.probe(ix.entry_slots_off, ix.entry_slots, hash, |id| {
            let e = EntryRecord { ix, id };
            e.parent_id() == me && e.name().as_bytes() == name.as_bytes()
        })?;
        Some(EntryRecord { ix, id })
    }

    fn u64_hash(&self) -> u64 {
        self.ix
            .u64(self.ix.dirs_off + self.id as usize * format::DIR_REC + dir::HASH)
    }
}

/// One merged entry with everything the union reports about it.
#[derive(Clone, Copy, Debug)]
pub struct EntryRecord<'a> {
    ix: &'a PersistentIndex,
    id: u32,
}

impl<'a> EntryRecord<'a> {
    fn base(&self) -> usize {
        self.ix.entries_off + self.id as usize * format::ENTRY_REC
    }

    fn u32(&self, f: usize) -> u32 {
        self.ix.u32(self.base() + f)
    }

    fn u64(&self, f: usize) -> u64 {
        self.ix.u64(self.base() + f)
    }

    fn time(&self, s: usize, ns: usize) -> (i64, i64) {
        (self.u64(s) as i64, i64::from(self.u32(ns)))
    }

    fn parent_id(&self) -> u32 {
        self.u32(entry::PARENT)
    }

    /// Its record number, stable for the file (see [`PersistentIndex::entry_by_id`]).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Its name (empty for the root).
    pub fn name(&self) -> &'a OsStr {
        OsStr::from_bytes(
            self.ix
                .bytes(self.u32(entry::NAME_OFF), self.u32(entry::NAME_LEN)),
        )
    }

    /// The directory holding it (the root's is the root).
    pub fn parent(&self) -> DirRecord<'a> {
        DirRecord {
            ix: self.ix,
            id: self.parent_id(),
        }
    }

    /// Its merged path, relative to the root (allocated: records store names only).
    pub fn path(&self) -> PathBuf {
        if self.id == 0 {
            return PathBuf::new();
        }
        self.parent().path().join(self.name())
    }

    /// `S_IFMT` bits.
    pub fn kind(&self) -> u32 {
        self.mode() & libc::S_IFMT
    }

    /// True for directories.
    pub fn is_dir(&self) -> bool {
        self.kind() == libc::S_IFDIR
    }

    /// The inode number the read-only union reports.
    pub fn ino(&self) -> u64 {
        self.u64(entry::INO)
    }

    /// `st_dev` of the visible entry in its layer.
    pub fn raw_dev(&self) -> u64 {
        self.u64(entry::RAW_DEV)
    }

    /// `st_ino` of the visible entry in its layer (for `LayerStack::map_ino` in a union
    /// whose layers map inode numbers differently).
    pub fn raw_ino(&self) -> u64 {
        self.u64(entry::RAW_INO)
    }

    /// Full `st_mode`.
    pub fn mode(&self) -> u32 {
        self.u32(entry::MODE)
    }

    /// Owner.
    pub fn uid(&self) -> u32 {
        self.u32(entry::UID)
    }

    /// Group.
    pub fn gid(&self) -> u32 {
        self.u32(entry::GID)
    }

    /// Link count as the union reports it (1 for directories merged from several layers).
    pub fn nlink(&self) -> u64 {
        self.u64(entry::NLINK)
    }

    /// Device number of a device node.
    pub fn rdev(&self) -> u64 {
        self.u64(entry::RDEV)
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.u64(entry::SIZE)
    }

    /// 512-byte blocks allocated.
    pub fn blocks(&self) -> u64 {
        self.u64(entry::BLOCKS)
    }

    /// Preferred I/O size.
    pub fn blksize(&self) -> u64 {
        u64::from(self.u32(entry::BLKSIZE))
    }

    /// Access time (seconds, nanoseconds).
    pub fn atime(&self) -> (i64, i64) {
        self.time(entry::ATIME, entry::ATIME_NS)
    }

    /// Modification time.
    pub fn mtime(&self) -> (i64, i64) {
        self.time(entry::MTIME, entry::MTIME_NS)
    }

    /// Status change time.
    pub fn ctime(&self) -> (i64, i64) {
        self.time(entry::CTIME, entry::CTIME_NS)
    }

    /// The attributes as [`Union::getattr`](crate::union::Union::getattr) gives them.
    pub fn attr(&self) -> Attr {
        Attr {
            ino: self.ino(),
            mode: self.mode(),
            nlink: self.nlink(),
            uid: self.uid(),
            gid: self.gid(),
            rdev: self.rdev(),
            size: self.size(),
            blocks: self.blocks(),
            blksize: self.blksize(),
            atime: self.atime(),
            mtime: self.mtime(),
            ctime: self.ctime(),
        }
    }

    /// For a directory, its record.
    pub fn dir(&self) -> Option<DirRecord<'a>> {
        let id = self.u32(entry::CHILD_DIR);
        (id != NONE).then_some(DirRecord { ix: self.ix, id })
    }

    /// The lower layer holding the visible entry: for a non-directory the one it is read
    /// from, for a directory the top of its merged layers (numbered among lower layers).
    pub fn lower_layer(&self) -> Option<usize> {
        match self.u32(entry::LOWER) {
            NONE => self.dir().and_then(|d| d.lower_dirs().next()),
            l => Some(l as usize),
        }
    }

    /// For a directory: the lower layers merged into it, top first.
    pub fn lower_dirs(&self) -> Vec<usize> {
        self.dir()
            .map(|d| d.lower_dirs().collect())
            .unwrap_or_default()
    }

    /// Its path inside the lower layer(s): usually the parent's lower path plus its name,
    /// recorded separately when not (a redirected directory).
    pub fn lower_path(&self) -> Cow<'a, Path> {
        match self.own_lower_path() {
            Some(path) => Cow::Borrowed(path),
            None => Cow::Owned(self.parent().lower_path().join(self.name())),
        }
    }

    /// Its lower path when that is recorded (directories, and entries a rename moved),
    /// `None` when the parent's lower path and the name give it.
    pub fn own_lower_path(&self) -> Option<&'a Path> {
        if let Some(d) = self.dir() {
            return Some(d.lower_path());
        }
        match self.u32(entry::LPATH_LEN) {
            NONE => None,
            len => Some(Path::new(OsStr::from_bytes(
                self.ix.bytes(self.u32(entry::LPATH_OFF), len),
            ))),
        }
    }

    /// A symlink's target.
    pub fn symlink_target(&self) -> Option<&'a OsStr> {
        (self.kind() == libc::S_IFLNK).then(|| {
            OsStr::from_bytes(
                self.ix
                    .bytes(self.u32(entry::LINK_OFF), self.u32(entry::LINK_LEN)),
            )
        })
    }
}
