//! Building an index: walk a read-only union over the layers, breadth first, recording
//! every merged directory and entry as the union reports them.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::FileStat;

use super::format::NONE;
use super::{EntryRecord, PersistentIndex, PindexError};
use crate::layer::{LayerIdx, LayerStack};
use crate::union::{Attr, Node, ROOT_ID, Union, UnionConfig};

/// What a build produced, for the CLI and for timings.
#[derive(Clone, Debug)]
pub struct BuildStats {
    /// Merged directories (the root included).
    pub dirs: usize,
    /// Merged entries (the root included).
    pub entries: usize,
    /// Names whited out, summed over directories.
    pub whited: usize,
    /// Size of the written file.
    pub bytes: u64,
    /// Time spent walking the union.
    pub walk: Duration,
    /// Time spent encoding and writing the file.
    pub write: Duration,
}

/// One merged directory, as collected.
#[derive(Debug)]
pub(super) struct DirModel {
    pub path: PathBuf,
    pub lower_path: PathBuf,
    pub entry: u32,
    pub first: u32,
    pub count: u32,
    pub lower_dirs: Vec<u32>,
    pub whited: Vec<OsString>,
}

/// One merged entry, as collected.
#[derive(Debug)]
pub(super) struct EntryModel {
    pub parent: u32,
    pub name: OsString,
    pub attr: Attr,
    pub raw_dev: u64,
    pub raw_ino: u64,
    pub child_dir: u32,
    pub lower: u32,
    pub link: Option<OsString>,
    pub lower_path: Option<PathBuf>,
}

/// Everything that goes into the file.
#[derive(Debug, Default)]
pub(super) struct Model {
    /// Each layer's root `(st_dev, st_ino)` and path, top first.
    pub layers: Vec<(u64, u64, PathBuf)>,
    pub dirs: Vec<DirModel>,
    pub entries: Vec<EntryModel>,
}

/// Builds the index of the read-only union of `lowers` (top first) into `out`, replacing
/// it atomically (readers of an older copy keep their mapping).
pub fn build(lowers: &[PathBuf], out: &Path) -> Result<BuildStats, PindexError> {
    let started = Instant::now();
    let stack = LayerStack::open(lowers, None)?;
    let union = Union::new(stack, None, UnionConfig::default())?;
    let model = collect(&union)?;
    let walk = started.elapsed();
    let started = Instant::now();
    let bytes = super::write::encode(&model)?;
    super::write::write_atomic(out, &bytes)?;
    Ok(BuildStats {
        dirs: model.dirs.len(),
        entries: model.entries.len(),
        whited: model.dirs.iter().map(|d| d.whited.len()).sum(),
        bytes: bytes.len() as u64,
        walk,
        write: started.elapsed(),
    })
}

fn walk_err(op: &'static str, path: &Path) -> impl FnOnce(Errno) -> PindexError + use<> {
    let path = path.to_path_buf();
    move |errno| PindexError::Walk { op, path, errno }
}

/// Layer numbers as the file counts them: among the lower layers, top first.
fn lower_no(union: &Union, idx: LayerIdx) -> u32 {
    (idx - union.layers().lower_indexes().start) as u32
}

/// Walks the whole union into a [`Model`].
pub(super) fn collect(union: &Union) -> Result<Model, PindexError> {
    let root_path = PathBuf::new();
    let mut model = Model::default();
    for layer in union.layers().all() {
        let st = crate::sys::stat_fd(layer.fd()).map_err(walk_err("stat layer", &root_path))?;
        model
            .layers
            .push((st.st_dev, st.st_ino, layer.path.clone()));
    }
    let root = union.node(ROOT_ID).map_err(walk_err("root", &root_path))?;
    let root_attr = union
        .getattr(ROOT_ID)
        .map_err(walk_err("getattr", &root_path))?;
    let root_state = root.snapshot();
    let raw = raw_stat(union, root_state.lower_dirs.first().copied(), Path::new(""))
        .map_err(walk_err("stat", &root_path))?;
    model.entries.push(EntryModel {
        parent: 0,
        name: OsString::new(),
        attr: root_attr,
        raw_dev: raw.st_dev,
        raw_ino: raw.st_ino,
        child_dir: 0,
        lower: NONE,
        link: None,
        lower_path: None,
    });
    model.dirs.push(dir_model(union, root_path, &root, 0));
    let mut queue: VecDeque<(u32, Arc<Node>)> = VecDeque::from([(0, root)]);
    while let Some((dir_id, node)) = queue.pop_front() {
        let result = collect_dir(union, &mut model, dir_id, &node, &mut queue);
        if node.id != ROOT_ID {
            union.forget(node.id, 1);
        }
        if let Err(e) = result {
            for (_, pending) in queue {
                union.forget(pending.id, 1);
            }
            return Err(e);
        }
    }
    Ok(model)
}

fn dir_model(union: &Union, path: PathBuf, node: &Node, entry: u32) -> DirModel {
    let state = node.snapshot();
    DirModel {
        path,
        lower_path: state.lower_path().into_owned(),
        entry,
        first: 0,
        count: 0,
        lower_dirs: state
            .lower_dirs
            .iter()
            .map(|&l| lower_no(union, l))
            .collect(),
        whited: Vec::new(),
    }
}

/// Records the children of one directory (contiguously) and queues its subdirectories.
fn collect_dir(
    union: &Union,
    model: &mut Model,
    dir_id: u32,
    node: &Arc<Node>,
    queue: &mut VecDeque<(u32, Arc<Node>)>,
) -> Result<(), PindexError> {
    let path = model.dirs[dir_id as usize].path.clone();
    let dir_lower = node.read_state().lower_path().into_owned();
    let whited = {
        let guard = union.index(node).map_err(walk_err("index", &path))?;
        let mut names: Vec<OsString> = guard
            .as_ref()
            .map(|ix| ix.whited.iter().cloned().collect())
            .unwrap_or_default();
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        names
    };
    model.dirs[dir_id as usize].whited = whited;
    let fh = union.opendir(node.id).map_err(walk_err("opendir", &path))?;
    let listing = union.readdir(fh, 0);
    union.releasedir(fh);
    let listing = listing.map_err(walk_err("readdir", &path))?;
    let first = u32::try_from(model.entries.len()).map_err(|_| PindexError::TooLarge("entries"))?;
    for item in listing.iter() {
        if item.name == "." || item.name == ".." {
            continue;
        }
        let child_path = path.join(&item.name);
        let (child, attr) = union
            .lookup(node.id, &item.name)
            .map_err(walk_err("lookup", &child_path))?;
        let entry_id = model.entries.len() as u32;
        let recorded = record_child(union, model, dir_id, &dir_lower, &item.name, &child, attr);
        match recorded {
            Ok(true) => {
                let sub = dir_model(union, child_path, &child, entry_id);
                let sub_id = u32::try_from(model.dirs.len())
                    .map_err(|_| PindexError::TooLarge("directories"))?;
                model.dirs.push(sub);
                if let Some(e) = model.entries.last_mut() {
                    e.child_dir = sub_id;
                }
                queue.push_back((sub_id, child));
            }
            Ok(false) => union.forget(child.id, 1),
            Err(errno) => {
                union.forget(child.id, 1);
                return Err(walk_err("read", &child_path)(errno));
            }
        }
    }
    let count = model.entries.len() as u32 - first;
    let d = &mut model.dirs[dir_id as usize];
    d.first = first;
    d.count = count;
    if model.entries.len() >= NONE as usize {
        return Err(PindexError::TooLarge("entries"));
    }
    Ok(())
}

/// Appends one child's entry; true when it is a directory (to be walked).
fn record_child(
    union: &Union,
    model: &mut Model,
    dir_id: u32,
    dir_lower: &Path,
    name: &OsStr,
    child: &Node,
    attr: Attr,
) -> Result<bool, Errno> {
    let state = child.snapshot();
    let is_dir = child.is_dir();
    let top = if is_dir {
        state.lower_dirs.first().copied()
    } else {
        state.lower
    };
    let lower_path = state.lower_path();
    let raw = raw_stat(union, top, &lower_path)?;
    let link = if child.kind() == libc::S_IFLNK {
        Some(union.readlink(child.id)?)
    } else {
        None
    };
    let default_lower = dir_lower.join(name);
    model.entries.push(EntryModel {
        parent: dir_id,
        name: name.to_os_string(),
        attr,
        raw_dev: raw.st_dev,
        raw_ino: raw.st_ino,
        child_dir: NONE,
        lower: match (is_dir, state.lower) {
            (false, Some(l)) => lower_no(union, l),
            _ => NONE,
        },
        link,
        lower_path: (*lower_path != *default_lower).then(|| lower_path.into_owned()),
    });
    Ok(is_dir)
}

/// `lstat` of `path` in a layer: the entry's real identity there.
fn raw_stat(union: &Union, layer: Option<LayerIdx>, path: &Path) -> Result<FileStat, Errno> {
    let layer = layer.ok_or(Errno::ESTALE)?;
    let root = union.layers().get(layer).fd();
    if path.as_os_str().is_empty() {
        return crate::sys::stat_fd(root);
    }
    if path.as_os_str().len() < 3072 {
        return nix::sys::stat::fstatat(root, path, AtFlags::AT_SYMLINK_NOFOLLOW);
    }
    let (parent, name) = match (path.parent(), path.file_name()) {
        (Some(p), Some(n)) => (p, n),
        _ => return Err(Errno::EINVAL),
    };
    let dir = crate::sys::open_beneath(root, parent, OFlag::O_PATH | OFlag::O_DIRECTORY)?;
    crate::sys::stat_child(dir.as_fd(), name)
}

/// Most differences [`verify`] lists before summing up the rest.
const MAX_DIFFERENCES: usize = 50;

/// Compares an index with what the union of `lowers` shows now, one line per difference
/// (none when the index is current). The identity check of [`PersistentIndex::open`]
/// notices a replaced layer directory, not a layer edited in place; this notices both,
/// at the cost of a full walk. Access times are not compared: reading a layer through
/// any mount changes them.
pub fn verify(index: &PersistentIndex, lowers: &[PathBuf]) -> Result<Vec<String>, PindexError> {
    let stack = LayerStack::open(lowers, None)?;
    let union = Union::new(stack, None, UnionConfig::default())?;
    let model = collect(&union)?;
    let mut diffs = Vec::new();
    let mut note = |line: String| diffs.push(line);
    if let Some(root) = model.entries.first() {
        let what = entry_differences(root, &index.root().entry(), Path::new(""));
        if !what.is_empty() {
            note(format!("/: {}", what.join(", ")));
        }
    }
    for d in &model.dirs {
        let shown = Path::new("/").join(&d.path);
        let Some(rec) = index.dir(&d.path) else {
            note(format!(
                "{}: directory missing from the index",
                shown.display()
            ));
            continue;
        };
        if rec.lower_path() != d.lower_path {
            note(format!("{}: lower path differs", shown.display()));
        }
        if !rec
            .lower_dirs()
            .map(|l| l as u32)
            .eq(d.lower_dirs.iter().copied())
        {
            note(format!("{}: merged layers differ", shown.display()));
        }
        if !rec.whited().eq(d.whited.iter().map(OsString::as_os_str)) {
            note(format!("{}: whited-out names differ", shown.display()));
        }
        let now = &model.entries[d.first as usize..(d.first + d.count) as usize];
        let indexed: Vec<&OsStr> = rec.entries().map(|e| e.name()).collect();
        for e in now {
            if !indexed.contains(&e.name.as_os_str()) {
                note(format!(
                    "{}: new, not in the index",
                    shown.join(&e.name).display()
                ));
            }
        }
        for name in &indexed {
            match now.iter().find(|e| e.name == *name) {
                None => note(format!(
                    "{}: gone, still in the index",
                    shown.join(name).display()
                )),
                Some(e) => {
                    if let Some(r) = rec.lookup(name) {
                        let what = entry_differences(e, &r, &d.lower_path);
                        if !what.is_empty() {
                            note(format!(
                                "{}: {}",
                                shown.join(name).display(),
                                what.join(", ")
                            ));
                        }
                    }
                }
            }
        }
    }
    if diffs.is_empty() && model.entries.len() != index.entry_count() {
        diffs.push(format!(
            "the index holds {} entries, the union {}",
            index.entry_count(),
            model.entries.len()
        ));
    }
    if diffs.len() > MAX_DIFFERENCES {
        let more = diffs.len() - MAX_DIFFERENCES;
        diffs.truncate(MAX_DIFFERENCES);
        diffs.push(format!("... and {more} more differences"));
    }
    Ok(diffs)
}

/// Which recorded facts of one entry changed (names of the fields).
fn entry_differences(e: &EntryModel, r: &EntryRecord<'_>, dir_lower: &Path) -> Vec<&'static str> {
    let a = &e.attr;
    let mut out = Vec::new();
    let checks: [(&'static str, bool); 12] = [
        ("type or mode", a.mode == r.mode()),
        ("owner", (a.uid, a.gid) == (r.uid(), r.gid())),
        ("size", a.size == r.size()),
        ("blocks", a.blocks == r.blocks()),
        ("link count", a.nlink == r.nlink()),
        ("device number", a.rdev == r.rdev()),
        ("mtime", a.mtime == r.mtime()),
        ("ctime", a.ctime == r.ctime()),
        (
            "inode",
            (a.ino, e.raw_dev, e.raw_ino) == (r.ino(), r.raw_dev(), r.raw_ino()),
        ),
        (
            "layer",
            (e.lower != NONE).then_some(e.lower as usize) == r.lower_layer() || r.is_dir(),
        ),
        (
            "lower path",
            r.is_dir()
                || e.lower_path
                    .clone()
                    .unwrap_or_else(|| dir_lower.join(&e.name))
                    == r.lower_path(),
        ),
        ("symlink target", e.link.as_deref() == r.symlink_target()),
    ];
    for (name, same) in checks {
        if !same {
            out.push(name);
        }
    }
    out
}
