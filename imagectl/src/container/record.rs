//! A container's record on disk: `ROOT/containers/<64-hex id>/container.json`, written
//! atomically, so `ps`, `inspect` and every other command work after imagectl exits
//! (there is no daemon). Lookup accepts a unique id prefix or the name.
//!
//! ```text
//! ROOT/containers/ID/container.json   this record
//! ROOT/containers/ID/upper, work      the writable layer and unionfsd's scratch
//! ROOT/containers/ID/init             mount points the image lacks (/proc, /dev, volumes)
//! ROOT/containers/ID/merged           the union mount: the container's /
//! ROOT/containers/ID/bundle/          the OCI bundle (config.json) both runtimes run
//! ROOT/containers/ID/log              output of detached containers
//! ROOT/containers/ID/exit.json        exit code of a runc-run container
//! ```

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::store::write_file_atomic;

/// Which OCI runtime runs the container's bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeKind {
    /// The workspace's own runtime (the `runtime` crate), in process.
    #[default]
    Builtin,
    /// `runc`, for comparison (`--runtime runc`).
    Runc,
}

impl RuntimeKind {
    /// The name `inspect` shows (docker's `HostConfig.Runtime`).
    pub fn name(self) -> &'static str {
        match self {
            RuntimeKind::Builtin => "ctr-runtime",
            RuntimeKind::Runc => "runc",
        }
    }
}

/// One mount of the container, as `inspect` shows it (docker's `Mounts` entries).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MountPoint {
    /// `bind` or `volume`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// The volume's name (`volume` only).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The host path.
    pub source: PathBuf,
    /// The path inside the container.
    pub destination: PathBuf,
    /// Writable.
    #[serde(rename = "RW")]
    pub rw: bool,
    /// Anonymous volumes (from the image's VOLUME) are removed by `rm -v`.
    #[serde(default)]
    pub anonymous: bool,
}

/// The container's settings in docker's `Config` shape, for `inspect` and `commit -c`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RecordConfig {
    /// Hostname.
    pub hostname: String,
    /// `-u` or the image's USER.
    pub user: String,
    /// `-t`.
    pub tty: bool,
    /// `-i`.
    pub open_stdin: bool,
    /// The merged environment.
    pub env: Vec<String>,
    /// The Cmd part of the argv.
    pub cmd: Option<Vec<String>>,
    /// The Entrypoint part of the argv.
    pub entrypoint: Option<Vec<String>>,
    /// The image as the user named it.
    pub image: String,
    /// Working directory.
    pub working_dir: String,
    /// Labels (the image's).
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// The signal `stop` sends first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
}

/// When a runtime that keeps no exit codes (runc) ran the container: recorded by the
/// watcher or by the foreground `run` that waited for it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExitRecord {
    /// The exit code (128+N for signal N).
    pub code: Option<i32>,
    /// Seconds since the epoch when the process started.
    pub started: Option<u64>,
    /// Seconds since the epoch when it exited.
    pub finished: Option<u64>,
}

/// `container.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerRecord {
    /// 64 hex digits.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// RFC 3339 creation time.
    pub created: String,
    /// The image as the user named it.
    pub image: String,
    /// The image ID (config digest).
    pub image_id: Digest,
    /// The image's manifest digest (what the store hold names).
    pub manifest: Digest,
    /// Lower directories of the union, top first (the init layer, then the image's).
    pub lowers: Vec<PathBuf>,
    /// argv[0].
    pub path: String,
    /// argv[1..].
    pub args: Vec<String>,
    /// docker's `Config`.
    pub config: RecordConfig,
    /// Binds and volumes.
    pub mounts: Vec<MountPoint>,
    /// Which runtime runs it.
    pub runtime: RuntimeKind,
    /// `--rm`.
    pub auto_remove: bool,
    /// `--network host`.
    #[serde(default)]
    pub network_host: bool,
}

/// Where records live and how they are found.
#[derive(Debug, Clone)]
pub struct Records {
    dir: PathBuf,
}

impl Records {
    /// Records under `dir` (`ROOT/containers`).
    pub fn new(dir: PathBuf) -> Records {
        Records { dir }
    }

    /// `ROOT/containers`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The directory of container `id`.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Writes the record atomically.
    pub fn save(&self, rec: &ContainerRecord) -> Result<()> {
        let dir = self.container_dir(&rec.id);
        fs::create_dir_all(&dir).at(&dir)?;
        let bytes = serde_json::to_vec_pretty(rec).map_err(|e| Error::json("container.json", e))?;
        write_file_atomic(&dir.join("container.json"), &bytes)
    }

    /// Loads the record of `id` (a full id).
    pub fn load(&self, id: &str) -> Result<ContainerRecord> {
        let p = self.container_dir(id).join("container.json");
        let bytes = fs::read(&p).at(&p)?;
        serde_json::from_slice(&bytes).map_err(|e| Error::json(p.display().to_string(), e))
    }

    /// Every readable record, oldest first. A directory without a record (a create
    /// that was interrupted) is skipped.
    pub fn list(&self) -> Result<Vec<ContainerRecord>> {
        let mut out = Vec::new();
        let rd = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => {
                return Err(Error::Io {
                    path: self.dir.clone(),
                    source: e,
                });
            }
        };
        for e in rd.flatten() {
            if let Some(id) = e.file_name().to_str()
                && is_full_id(id)
                && let Ok(r) = self.load(id)
            {
                out.push(r);
            }
        }
        out.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Reserves `name` for container `id` atomically (`ROOT/containers/.names/NAME`
    /// created exclusively), so two concurrent creates can not both take one name. A
    /// reservation whose container no longer exists (a killed create) is taken over.
    pub fn reserve_name(&self, name: &str, id: &str) -> Result<bool> {
        let dir = self.dir.join(".names");
        fs::create_dir_all(&dir).at(&dir)?;
        let p = dir.join(name);
        // The id is written to a private file first and linked into place, so the
        // reservation appears atomically with its owner in it.
        let tmp = dir.join(format!(".{id}.tmp"));
        fs::write(&tmp, id.as_bytes()).at(&tmp)?;
        let mut reserved = false;
        for _ in 0..2 {
            match fs::hard_link(&tmp, &p) {
                Ok(()) => {
                    reserved = true;
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let owner = fs::read_to_string(&p).unwrap_or_default();
                    let owner = owner.trim();
                    if is_full_id(owner) && self.container_dir(owner).exists() {
                        break;
                    }
                    let _ = fs::remove_file(&p);
                }
                Err(e) => {
                    let _ = fs::remove_file(&tmp);
                    return Err(Error::Io { path: p, source: e });
                }
            }
        }
        let _ = fs::remove_file(&tmp);
        Ok(reserved)
    }

    /// Drops the reservation of `name` if `id` holds it.
    pub fn release_name(&self, name: &str, id: &str) {
        let p = self.dir.join(".names").join(name);
        if fs::read_to_string(&p).is_ok_and(|o| o.trim() == id) {
            let _ = fs::remove_file(&p);
        }
    }

    /// Finds a container by exact name, full id or unique id prefix (docker's rules:
    /// a name wins over an id prefix).
    pub fn find(&self, what: &str) -> Result<ContainerRecord> {
        let all = self.list()?;
        if let Some(r) = all.iter().find(|r| r.name == what || r.id == what) {
            return Ok(r.clone());
        }
        let hits: Vec<&ContainerRecord> = if !what.is_empty() && is_hex(what) {
            all.iter().filter(|r| r.id.starts_with(what)).collect()
        } else {
            Vec::new()
        };
        match hits.len() {
            1 => Ok(hits[0].clone()),
            0 => Err(Error::Other(format!("no such container: {what}"))),
            n => Err(Error::Other(format!(
                "multiple containers ({n}) match the id prefix {what}: use more characters"
            ))),
        }
    }
}

fn is_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

fn is_full_id(s: &str) -> bool {
    s.len() == 64 && is_hex(s)
}

/// A new random container id (64 hex digits, from the kernel's random pool).
pub fn new_id() -> Result<String> {
    let mut buf = [0u8; 32];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .at("/dev/urandom")?;
    Ok(hex::encode(buf))
}

const ADJECTIVES: &[&str] = &[
    "admiring",
    "affectionate",
    "agitated",
    "amazing",
    "angry",
    "awesome",
    "blissful",
    "bold",
    "boring",
    "brave",
    "busy",
    "charming",
    "clever",
    "compassionate",
    "competent",
    "confident",
    "cool",
    "cranky",
    "crazy",
    "dazzling",
    "determined",
    "distracted",
    "dreamy",
    "eager",
    "ecstatic",
    "elastic",
    "elated",
    "elegant",
    "eloquent",
    "epic",
    "exciting",
    "fervent",
    "festive",
    "flamboyant",
    "focused",
    "friendly",
    "frosty",
    "funny",
    "gallant",
    "gifted",
    "goofy",
    "gracious",
    "great",
    "happy",
    "hardcore",
    "heuristic",
    "hopeful",
    "hungry",
    "infallible",
    "inspiring",
    "intelligent",
    "interesting",
    "jolly",
    "jovial",
    "keen",
    "kind",
    "laughing",
    "loving",
    "lucid",
    "magical",
    "modest",
    "musing",
    "mystifying",
    "naughty",
    "nervous",
    "nice",
    "nifty",
    "nostalgic",
    "objective",
    "optimistic",
    "peaceful",
    "pedantic",
    "pensive",
    "practical",
    "priceless",
    "quirky",
    "quizzical",
    "relaxed",
    "reverent",
    "romantic",
    "sad",
    "serene",
    "sharp",
    "silly",
    "sleepy",
    "stoic",
    "strange",
    "stupefied",
    "suspicious",
    "sweet",
    "tender",
    "thirsty",
    "trusting",
    "unruffled",
    "upbeat",
    "vibrant",
    "vigilant",
    "vigorous",
    "wizardly",
    "wonderful",
    "xenodochial",
    "youthful",
    "zealous",
    "zen",
];

const NOUNS: &[&str] = &[
    "albattani",
    "allen",
    "archimedes",
    "babbage",
    "bardeen",
    "bell",
    "bhabha",
    "blackwell",
    "bohr",
    "booth",
    "borg",
    "bose",
    "brahmagupta",
    "brattain",
    "cannon",
    "carson",
    "cerf",
    "chandrasekhar",
    "clarke",
    "curie",
    "darwin",
    "davinci",
    "dijkstra",
    "einstein",
    "elion",
    "engelbart",
    "euclid",
    "euler",
    "fermat",
    "fermi",
    "feynman",
    "franklin",
    "galileo",
    "gates",
    "goldberg",
    "goodall",
    "hamilton",
    "hawking",
    "heisenberg",
    "hertz",
    "hodgkin",
    "hopper",
    "hypatia",
    "jackson",
    "jang",
    "johnson",
    "kepler",
    "knuth",
    "lalande",
    "lamarr",
    "leakey",
    "lovelace",
    "lumiere",
    "mayer",
    "mccarthy",
    "meitner",
    "mendel",
    "mirzakhani",
    "moore",
    "morse",
    "napier",
    "newton",
    "nobel",
    "noether",
    "pare",
    "pasteur",
    "payne",
    "perlman",
    "pike",
    "poincare",
    "ptolemy",
    "raman",
    "ride",
    "ritchie",
    "rosalind",
    "sammet",
    "shannon",
    "shirley",
    "sinoussi",
    "stallman",
    "swanson",
    "tesla",
    "thompson",
    "torvalds",
    "turing",
    "villani",
    "volhard",
    "wescoff",
    "wiles",
    "williams",
    "wilson",
    "wing",
    "wozniak",
    "wright",
    "yalow",
    "yonath",
];

/// A docker-style `adjective_noun` name derived from `id`, unique among `taken` (a
/// digit is appended on a clash, as docker does).
pub fn generate_name(id: &str, taken: &[String]) -> String {
    let bytes = hex::decode(id).unwrap_or_default();
    let a = bytes.first().copied().unwrap_or(0) as usize
        | (bytes.get(1).copied().unwrap_or(0) as usize) << 8;
    let n = bytes.get(2).copied().unwrap_or(0) as usize
        | (bytes.get(3).copied().unwrap_or(0) as usize) << 8;
    let base = format!(
        "{}_{}",
        ADJECTIVES[a % ADJECTIVES.len()],
        NOUNS[n % NOUNS.len()]
    );
    if !taken.contains(&base) {
        return base;
    }
    (1..)
        .map(|i| format!("{base}{i}"))
        .find(|c| !taken.contains(c))
        .unwrap_or(base)
}

/// Checks a user-given name the way docker does: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub fn check_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::Other(format!(
            "invalid container name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_stable() {
        let id = "00".repeat(32);
        let first = generate_name(&id, &[]);
        assert_eq!(first, "admiring_albattani");
        assert_eq!(
            generate_name(&id, std::slice::from_ref(&first)),
            format!("{first}1")
        );
        assert!(check_name("web-1.a_b").is_ok());
        assert!(check_name("-x").is_err() && check_name("a/b").is_err());
    }
}
