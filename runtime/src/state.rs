//! A container's state on disk: one directory per container under the runtime's
//! root, holding `state.json` (rewritten atomically by the monitor process as the
//! container moves through its life), the config snapshot taken at create time,
//! the start fifo and the log of detached containers.
//!
//! Keeping this on disk, not in a daemon, is what lets `state` and `ps` give the
//! right answer after every CLI process is gone.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The OCI runtime spec version this state format reports.
pub const OCI_VERSION: &str = "1.0.2";

/// Where a container is in its life, as the OCI runtime spec names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The namespaces and mounts are being prepared.
    Creating,
    /// Ready: the process waits for `start`.
    Created,
    /// The user process runs.
    Running,
    /// Frozen through the cgroup freezer.
    Paused,
    /// The process has exited (or the container was never fully created).
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// The recorded state of one container (`state.json`), a superset of the OCI
/// state document so `ctr-runtime state` prints what `runc state` prints.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    /// OCI version of this document.
    pub oci_version: String,
    /// The container id.
    pub id: String,
    /// Status as last recorded by the monitor (see [`State::refresh`] for the live one).
    pub status: Status,
    /// Host pid of the container's PID 1, once it exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// Start time (clock ticks since boot) of `pid`, to notice pid reuse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_start_time: Option<u64>,
    /// Host pid of the monitor process that waits for the container and records its exit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor_pid: Option<i32>,
    /// Start time of `monitor_pid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor_start_time: Option<u64>,
    /// The bundle directory.
    pub bundle: PathBuf,
    /// The absolute rootfs path.
    pub rootfs: PathBuf,
    /// Seconds since the epoch when the container was created.
    pub created: u64,
    /// Seconds since the epoch when the process was started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<u64>,
    /// Seconds since the epoch when the process exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<u64>,
    /// The exit code (128+N when killed by signal N), once the monitor saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The container's cgroups, resolved to directories at create time.
    pub cgroups: crate::cgroups::Cgroups,
    /// Where stdout and stderr of a detached container go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_path: Option<PathBuf>,
    /// Annotations from config.json.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Why the container stopped abnormally (setup failure, monitor lost), if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The file names inside a container's state directory.
pub mod files {
    /// The state document.
    pub const STATE: &str = "state.json";
    /// The config snapshot (rootfs made absolute) taken at create time.
    pub const CONFIG: &str = "config.json";
    /// The fifo `start` writes to.
    pub const START_FIFO: &str = "start.fifo";
    /// The default log of detached containers.
    pub const LOG: &str = "container.log";
}

impl State {
    /// Loads `dir/state.json`.
    pub fn load(dir: &Path) -> Result<State> {
        let path = dir.join(files::STATE);
        let bytes = std::fs::read(&path).map_err(Error::io(format!("read {}", path.display())))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Config {
            path,
            reason: e.to_string(),
        })
    }

    /// Writes `dir/state.json` atomically (temp file, fsync, rename), so a reader never
    /// sees half a document and a crash leaves the previous one.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(|e| Error::Setup(e.to_string()))?;
        write_atomic(&dir.join(files::STATE), &json)
    }

    /// The live status: the recorded one, corrected by looking at the processes
    /// (a dead PID 1 means stopped even if the monitor was killed before it could
    /// record it) and at the freezer (paused).
    ///
    /// `monitor_was_alive` is whether the monitor lived *before* this copy was read:
    /// only a monitor already dead then can be blamed for a missing exit record. One
    /// that died after may have written the record since (read again to see it).
    pub fn refresh(&mut self, monitor_was_alive: bool, frozen: impl FnOnce(&State) -> bool) {
        if matches!(
            self.status,
            Status::Created | Status::Running | Status::Paused
        ) && !self.init_alive()
        {
            self.status = Status::Stopped;
            if self.error.is_none() && self.exit_code.is_none() && !monitor_was_alive {
                self.error = Some("the monitor process died before the container".into());
            }
        }
        if matches!(self.status, Status::Running | Status::Paused) {
            self.status = if frozen(self) {
                Status::Paused
            } else {
                Status::Running
            };
        }
    }

    /// Whether the container's PID 1 still exists (and is the same process).
    pub fn init_alive(&self) -> bool {
        match (self.pid, self.pid_start_time) {
            (Some(pid), Some(start)) => process_start_time(pid) == Some(start),
            _ => false,
        }
    }

    /// Whether the monitor process still exists.
    pub fn monitor_alive(&self) -> bool {
        match (self.monitor_pid, self.monitor_start_time) {
            (Some(pid), Some(start)) => process_start_time(pid) == Some(start),
            _ => false,
        }
    }
}

/// Writes `data` to `path` via a temp file in the same directory, fsync and rename.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    let mut f =
        std::fs::File::create(&tmp).map_err(Error::io(format!("create {}", tmp.display())))?;
    f.write_all(data)
        .and_then(|_| f.sync_all())
        .map_err(Error::io(format!("write {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(Error::io(format!("rename to {}", path.display())))?;
    Ok(())
}

/// The start time of a process (field 22 of /proc/PID/stat), `None` when it is gone.
/// A zombie counts as gone: it has exited and only waits to be reaped.
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    // after ')' come fields 3.. ; starttime is field 22 -> index 19
    let fields: Vec<&str> = after.split_whitespace().collect();
    if fields.first() == Some(&"Z") || fields.first() == Some(&"X") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// Seconds since the epoch, for the timestamps of [`State`].
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
