//! The build cache: one record per step, keyed by what decides the step's result.
//!
//! A key is the SHA-256 of its [`KeyParts`]: the parent (the image ID before the step,
//! or `scratch`), the instruction after variable substitution, the ARG/ENV values in
//! effect, and for COPY/ADD a checksum of every source file's content and metadata
//! (path, type, mode, uid/gid, link target; never mtime, so a `touch` keeps the cache).
//! Records live in `ROOT/build-cache/HEX.json`, written atomically, so concurrent builds
//! share the cache safely and it outlives untagging the final image.
//!
//! Because the parts are stored, a miss can be explained against the closest cached
//! step ([`Cache::explain`]): which part of the key changed.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::store::{Store, write_file_atomic};

/// Everything a step's cache key is made of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyParts {
    /// The image ID (config digest) before the step, or `scratch`.
    pub parent: String,
    /// The instruction as written in the Dockerfile (what `--explain-cache` shows).
    pub instruction: String,
    /// The instruction after substitution, in a canonical text form (heredoc bodies
    /// and flags included).
    pub detail: String,
    /// The ARG and ENV values in effect, by name.
    pub env: BTreeMap<String, String>,
    /// COPY/ADD: per source file (context-relative path) a checksum of content and
    /// metadata.
    pub sources: BTreeMap<String, String>,
}

impl KeyParts {
    /// The key: SHA-256 over the canonical JSON of the parts (maps are sorted).
    pub fn key(&self) -> Digest {
        let json = serde_json::to_vec(self).unwrap_or_default();
        Digest::of(&json)
    }
}

/// A stored step result.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    /// What the key was made of.
    pub parts: KeyParts,
    /// The manifest of the image state after the step (kept alive by a store hold).
    pub manifest: Digest,
    /// The image ID after the step.
    pub image_id: Digest,
}

/// The cache of one store.
#[derive(Clone, Debug)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// The cache under `store`'s root (created on demand).
    pub fn open(store: &Store) -> Result<Cache> {
        let dir = store.root().join("build-cache");
        fs::create_dir_all(&dir).at(&dir)?;
        Ok(Cache { dir })
    }

    fn path(&self, key: &Digest) -> PathBuf {
        self.dir.join(format!("{}.json", key.hex()))
    }

    /// The record for `parts`, if cached. A damaged record counts as a miss.
    pub fn lookup(&self, parts: &KeyParts) -> Option<Record> {
        let bytes = fs::read(self.path(&parts.key())).ok()?;
        let rec: Record = serde_json::from_slice(&bytes).ok()?;
        (rec.parts == *parts).then_some(rec)
    }

    /// Stores a step result (atomically: temp file, fsync, rename).
    pub fn insert(&self, rec: &Record) -> Result<()> {
        let bytes = serde_json::to_vec(rec).map_err(|e| Error::json("build cache record", e))?;
        write_file_atomic(&self.path(&rec.parts.key()), &bytes)
    }

    /// Every readable record.
    pub fn records(&self) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.dir).at(&self.dir)? {
            let p = e.at(&self.dir)?.path();
            if p.extension().is_some_and(|x| x == "json")
                && let Ok(bytes) = fs::read(&p)
                && let Ok(rec) = serde_json::from_slice::<Record>(&bytes)
            {
                out.push(rec);
            }
        }
        Ok(out)
    }

    /// Why `parts` missed: the differences against the closest cached step (same parent
    /// first, then same instruction), one line each.
    pub fn explain(&self, parts: &KeyParts) -> Result<Vec<String>> {
        let records = self.records()?;
        let same_parent: Vec<&Record> = records
            .iter()
            .filter(|r| r.parts.parent == parts.parent)
            .collect();
        let closest = same_parent
            .iter()
            .copied()
            .max_by_key(|r| similarity(&r.parts, parts));
        let closest = closest.or_else(|| {
            // Nothing on this parent: compare with the same instruction on another
            // parent (the usual case after an earlier step was rebuilt).
            records
                .iter()
                .filter(|r| r.parts.instruction == parts.instruction)
                .max_by_key(|r| similarity(&r.parts, parts))
        });
        let Some(closest) = closest else {
            return Ok(vec![format!(
                "no cached step on parent {} with this instruction (first build of this step)",
                short(&parts.parent)
            )]);
        };
        Ok(differences(&closest.parts, parts))
    }
}

/// The store hold that keeps a cache record's snapshot (and its layers) alive.
pub fn holder_name(key: &Digest) -> String {
    format!("build-cache-{}", key.hex())
}

impl Cache {
    /// Forgets every cached step (`imagectl builder prune`): drops the records and
    /// their holds, then collects what nothing else uses. Returns how many records
    /// went and the GC report.
    pub fn prune(&self, store: &Store) -> Result<(usize, crate::store::GcReport)> {
        let mut n = 0;
        for rec in self.records()? {
            let key = rec.parts.key();
            store.release(&holder_name(&key))?;
            let p = self.path(&key);
            match fs::remove_file(&p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::Io { path: p, source: e });
                }
                _ => n += 1,
            }
        }
        // Holds whose record was unreadable.
        for (holder, _) in store.holds()? {
            if holder.starts_with("build-cache-") {
                store.release(&holder)?;
            }
        }
        let report = store.gc()?;
        Ok((n, report))
    }
}

fn short(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}

fn similarity(a: &KeyParts, b: &KeyParts) -> (bool, usize, usize) {
    let env_same = a
        .env
        .iter()
        .filter(|(k, v)| b.env.get(*k) == Some(v))
        .count();
    let src_same = a
        .sources
        .iter()
        .filter(|(k, v)| b.sources.get(*k) == Some(v))
        .count();
    (a.instruction == b.instruction, src_same, env_same)
}

/// The changes from `old` (cached) to `new`, one human-readable line each.
pub fn differences(old: &KeyParts, new: &KeyParts) -> Vec<String> {
    let mut out = Vec::new();
    if old.parent != new.parent {
        out.push(format!(
            "parent changed: {} -> {}",
            short(&old.parent),
            short(&new.parent)
        ));
    }
    if old.instruction != new.instruction {
        out.push(format!(
            "instruction changed: was {:?}, now {:?}",
            old.instruction, new.instruction
        ));
    }
    if old.instruction == new.instruction && old.detail != new.detail {
        out.push(
            "instruction changed after variable substitution (or a heredoc body changed)".into(),
        );
    }
    diff_maps("ARG/ENV", "variable", &old.env, &new.env, true, &mut out);
    diff_maps(
        "source",
        "file",
        &old.sources,
        &new.sources,
        false,
        &mut out,
    );
    out
}

fn diff_maps(
    what: &str,
    item: &str,
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
    show_values: bool,
    out: &mut Vec<String>,
) {
    for (k, v) in new {
        match old.get(k) {
            None => out.push(format!("{what}: {item} {k} added")),
            Some(o) if o != v && show_values => {
                out.push(format!("{what}: {k} changed: {o:?} -> {v:?}"))
            }
            Some(o) if o != v => out.push(format!("{what}: {k} changed (content or metadata)")),
            _ => {}
        }
    }
    for k in old.keys().filter(|k| !new.contains_key(*k)) {
        out.push(format!("{what}: {item} {k} removed"));
    }
}

/// Checksums of the files under `path` (a file, symlink or directory), keyed by their
/// path relative to `base` (`/`-separated): type, mode, uid, gid, symlink target and
/// content, never mtime. `include` decides which relative paths count (the
/// `.dockerignore` filter); an excluded directory is still descended into, since a
/// `!` exception may re-include something below it.
pub fn checksum_tree(
    base: &Path,
    path: &Path,
    include: &dyn Fn(&str) -> bool,
    out: &mut BTreeMap<String, String>,
) -> Result<()> {
    let md = fs::symlink_metadata(path).at(path)?;
    let rel = path
        .strip_prefix(base)
        .map(|r| r.to_string_lossy().into_owned())
        .unwrap_or_else(|_| path.to_string_lossy().into_owned());
    let rel = if rel.is_empty() { ".".to_string() } else { rel };
    let mut h = Sha256::new();
    h.update(format!("{:o} {} {}\n", md.mode(), md.uid(), md.gid()).as_bytes());
    let ft = md.file_type();
    if ft.is_symlink() {
        let target = fs::read_link(path).at(path)?;
        h.update(target.as_os_str().as_encoded_bytes());
    } else if ft.is_file() {
        let mut f = fs::File::open(path).at(path)?;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = f.read(&mut buf).at(path)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    }
    if rel == "." || include(&rel) {
        out.insert(rel, hex::encode(h.finalize()));
    }
    if ft.is_dir() {
        let mut names: Vec<_> = fs::read_dir(path)
            .at(path)?
            .map(|e| e.map(|e| e.path()))
            .collect::<std::io::Result<_>>()
            .at(path)?;
        names.sort();
        for p in names {
            checksum_tree(base, &p, include, out)?;
        }
    }
    Ok(())
}

/// One checksum over a set of per-file checksums: what docker shows as
/// `COPY file:HEX` / `dir:HEX` in history.
pub fn combined(sources: &BTreeMap<String, String>) -> String {
    let mut h = Sha256::new();
    for (k, v) in sources {
        h.update(k.as_bytes());
        h.update(b"\0");
        h.update(v.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn parts(parent: &str, instr: &str) -> KeyParts {
        KeyParts {
            parent: parent.into(),
            instruction: instr.into(),
            detail: instr.into(),
            env: BTreeMap::new(),
            sources: BTreeMap::new(),
        }
    }

    #[test]
    fn insert_lookup_and_explain() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("root")).unwrap();
        let cache = Cache::open(&store).unwrap();
        let mut p = parts("sha256:aaaa", "RUN make");
        p.env.insert("V".into(), "1".into());
        let id = Digest::of(b"x");
        cache
            .insert(&Record {
                parts: p.clone(),
                manifest: id.clone(),
                image_id: id.clone(),
            })
            .unwrap();
        assert_eq!(cache.lookup(&p).unwrap().image_id, id);

        let mut q = p.clone();
        q.env.insert("V".into(), "2".into());
        assert!(cache.lookup(&q).is_none());
        let why = cache.explain(&q).unwrap();
        assert_eq!(why, vec!["ARG/ENV: V changed: \"1\" -> \"2\"".to_string()]);

        let other = parts("sha256:bbbb", "RUN make");
        let why = cache.explain(&other).unwrap();
        assert_eq!(
            why,
            vec![
                "parent changed: aaaa -> bbbb".to_string(),
                "ARG/ENV: variable V removed".to_string()
            ]
        );
    }

    #[test]
    fn checksum_ignores_mtime_but_sees_mode_and_content() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a");
        fs::write(&f, "one").unwrap();
        let sum = |include: &dyn Fn(&str) -> bool| {
            let mut m = BTreeMap::new();
            checksum_tree(dir.path(), dir.path(), include, &mut m).unwrap();
            m
        };
        let all = |_: &str| true;
        let first = sum(&all);
        let t = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1000);
        fs::File::options()
            .write(true)
            .open(&f)
            .unwrap()
            .set_modified(t)
            .unwrap();
        assert_eq!(sum(&all)["a"], first["a"]);
        fs::set_permissions(&f, fs::Permissions::from_mode(0o600)).unwrap();
        assert_ne!(sum(&all)["a"], first["a"]);
        fs::write(&f, "two").unwrap();
        let changed = sum(&all);
        let p_old = KeyParts {
            sources: first,
            ..parts("p", "COPY a /")
        };
        let p_new = KeyParts {
            sources: changed,
            ..parts("p", "COPY a /")
        };
        assert_eq!(
            differences(&p_old, &p_new),
            vec!["source: a changed (content or metadata)".to_string()]
        );
        assert!(!sum(&|p: &str| p != "a").contains_key("a"));
    }
}
