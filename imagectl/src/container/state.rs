//! A container's live state, docker's way: `created`, `running`, `paused` or `exited`,
//! computed from the runtime's on-disk state and the record, so it is right after
//! imagectl (or the runtime's monitor) was killed.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::record::{ContainerRecord, ExitRecord, RuntimeKind};
use super::runc::Runc;

/// docker's `State.Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Made but never started (or its start failed).
    Created,
    /// Its process runs.
    Running,
    /// Frozen.
    Paused,
    /// Its process has exited.
    Exited,
}

impl Status {
    /// The lowercase name docker prints.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Exited => "exited",
        }
    }

    /// Running or paused: something still executes.
    pub fn is_live(self) -> bool {
        matches!(self, Status::Running | Status::Paused)
    }
}

/// What `ps` and `inspect` show about a container's process.
#[derive(Debug, Clone)]
pub struct LiveState {
    /// The status.
    pub status: Status,
    /// Host pid of the container's PID 1 (0 when not running).
    pub pid: i32,
    /// The exit code once exited.
    pub exit_code: Option<i32>,
    /// Seconds since the epoch when it was (last) started.
    pub started: Option<u64>,
    /// Seconds since the epoch when it exited.
    pub finished: Option<u64>,
    /// Why the exit code is a guess, or why the container failed.
    pub error: Option<String>,
}

impl LiveState {
    /// A container whose process was never started: `Created`, nothing to report yet.
    /// Also what a container without runtime state reads as.
    pub fn never_started() -> LiveState {
        LiveState {
            status: Status::Created,
            pid: 0,
            exit_code: None,
            started: None,
            finished: None,
            error: None,
        }
    }
}

/// Exit code shown when a container's process is gone but nobody recorded its code.
pub const EXIT_UNKNOWN: i32 = 255;

/// The path of the exit record written for runc-run containers.
pub fn exit_record_path(dir: &Path) -> std::path::PathBuf {
    dir.join("exit.json")
}

/// Reads `exit.json`.
pub fn read_exit_record(dir: &Path) -> Option<ExitRecord> {
    let bytes = std::fs::read(exit_record_path(dir)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The live state of `rec` (`dir` is its container directory).
pub fn live_state(
    rec: &ContainerRecord,
    dir: &Path,
    rt: &runtime::Runtime,
    runc: &Runc,
) -> LiveState {
    match rec.runtime {
        RuntimeKind::Builtin => builtin_state(rec, rt),
        RuntimeKind::Runc => runc_state(rec, dir, runc),
    }
}

fn builtin_state(rec: &ContainerRecord, rt: &runtime::Runtime) -> LiveState {
    use runtime::Status as S;
    let st = match rt.state(&rec.id) {
        Ok(st) => st,
        Err(_) => return LiveState::never_started(),
    };
    let status = match st.status {
        S::Creating | S::Created => Status::Created,
        S::Running => Status::Running,
        S::Paused => Status::Paused,
        S::Stopped if st.started.is_none() => Status::Created,
        S::Stopped => Status::Exited,
    };
    let (exit_code, error) = match (status, st.exit_code) {
        (Status::Exited, Some(c)) => (Some(c), st.error.clone()),
        (Status::Exited, None) => (
            Some(EXIT_UNKNOWN),
            Some(format!(
                "the exit code was not recorded ({}); shown as {EXIT_UNKNOWN}",
                st.error
                    .clone()
                    .unwrap_or_else(|| "the runtime's monitor died".into())
            )),
        ),
        _ => (None, st.error.clone()),
    };
    LiveState {
        status,
        pid: if status.is_live() {
            st.pid.unwrap_or(0)
        } else {
            0
        },
        exit_code,
        started: st.started,
        finished: if status == Status::Exited {
            st.finished.or(st.started)
        } else {
            None
        },
        error,
    }
}

fn runc_state(rec: &ContainerRecord, dir: &Path, runc: &Runc) -> LiveState {
    let exit = read_exit_record(dir);
    let rs = runc.state(&rec.id);
    let started = exit.as_ref().and_then(|e| e.started);
    let live = |status| LiveState {
        status,
        pid: rs.as_ref().map(|s| s.pid).unwrap_or(0),
        exit_code: None,
        started,
        finished: None,
        error: None,
    };
    match rs.as_ref().map(|s| s.status.as_str()) {
        Some("running") => return live(Status::Running),
        Some("paused") => return live(Status::Paused),
        Some("created") => return live(Status::Created),
        _ => {}
    }
    match exit {
        None => LiveState::never_started(),
        Some(e) => LiveState {
            status: Status::Exited,
            pid: 0,
            exit_code: Some(e.code.unwrap_or(EXIT_UNKNOWN)),
            started: e.started,
            finished: e.finished.or(e.started),
            error: e.code.is_none().then(|| {
                format!(
                    "the process that waited for runc died before recording the exit code; shown as {EXIT_UNKNOWN}"
                )
            }),
        },
    }
}
