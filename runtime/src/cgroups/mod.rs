//! Resource limits and the freezer through cgroups, for both layouts a Linux host
//! may have: cgroup v1 (one hierarchy per controller; also the "hybrid" layout of
//! this project's test machines, where v2 is mounted but holds no controllers) and
//! the unified v2 hierarchy.
//!
//! Paths are resolved once, at create time, into the directories to use, and stored
//! in the container's state so `delete` from another process finds the same ones.

use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_spec::runtime::{LinuxDevice, LinuxResources};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

mod devices;

/// The v1 controllers a container joins: the ones its limits and the freezer need.
const V1_CONTROLLERS: &[&str] = &["memory", "cpu", "cpuacct", "pids", "freezer", "devices"];

/// A container's cgroups.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "version", rename_all = "lowercase")]
pub enum Cgroups {
    /// One directory per v1 controller, keyed by controller name.
    V1 {
        /// `(controller, directory)` pairs.
        dirs: Vec<(String, PathBuf)>,
    },
    /// One directory in the unified hierarchy.
    V2 {
        /// The directory.
        dir: PathBuf,
    },
}

/// Which cgroup controllers are mounted where, read from /proc/self/mountinfo.
/// v1 mounts: the super options (controller names) and mount point of each.
type V1Mounts = Vec<(Vec<String>, PathBuf)>;

fn cgroup_mounts() -> Result<(V1Mounts, Option<PathBuf>)> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(Error::io("read /proc/self/mountinfo"))?;
    let mut v1 = Vec::new();
    let mut v2 = None;
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mount_point = left.split(' ').nth(4).unwrap_or("");
        let mut r = right.split(' ');
        let fstype = r.next().unwrap_or("");
        let _source = r.next();
        let super_opts = r.next().unwrap_or("");
        match fstype {
            "cgroup" => v1.push((
                super_opts.split(',').map(str::to_string).collect(),
                PathBuf::from(mount_point),
            )),
            "cgroup2" if v2.is_none() => v2 = Some(PathBuf::from(mount_point)),
            _ => {}
        }
    }
    Ok((v1, v2))
}

/// This process's own cgroup path per controller (`""` key for v2), from /proc/self/cgroup.
fn own_cgroups() -> Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(Error::io("read /proc/self/cgroup"))?;
    let mut out = Vec::new();
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrls, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or("/"));
        for c in ctrls.split(',') {
            out.push((c.to_string(), path.to_string()));
        }
    }
    Ok(out)
}

impl Cgroups {
    /// Resolves the directories for a container. `config_path` is `linux.cgroupsPath`:
    /// absolute paths are taken from each hierarchy's root, relative ones (and the
    /// default `ctr-runtime/<id>`) from the calling process's own cgroup, so a runtime
    /// started inside a limited cgroup keeps its containers inside that limit.
    pub fn resolve(config_path: Option<&Path>, id: &str) -> Result<Cgroups> {
        let default = PathBuf::from(format!("ctr-runtime/{id}"));
        let wanted = config_path.unwrap_or(&default);
        let (v1, v2) = cgroup_mounts()?;
        let own = own_cgroups()?;
        let join = |own_path: &str| -> PathBuf {
            if wanted.is_absolute() {
                wanted.strip_prefix("/").unwrap_or(wanted).to_path_buf()
            } else {
                Path::new(own_path.trim_start_matches('/')).join(wanted)
            }
        };
        let has_v1_controllers = v1
            .iter()
            .any(|(opts, _)| opts.iter().any(|o| o == "memory"));
        if !has_v1_controllers {
            let root =
                v2.ok_or_else(|| Error::Unsupported("no cgroup filesystem mounted".into()))?;
            // The v2 "no internal processes" rule forbids nesting under our own,
            // populated cgroup, so relative paths start at the root of the hierarchy.
            let dir = root.join(wanted.strip_prefix("/").unwrap_or(wanted));
            return Ok(Cgroups::V2 { dir });
        }
        let mut dirs = Vec::new();
        for ctrl in V1_CONTROLLERS {
            let Some((_, mnt)) = v1.iter().find(|(opts, _)| opts.iter().any(|o| o == ctrl)) else {
                continue;
            };
            let own_path = own
                .iter()
                .find(|(c, _)| c == ctrl)
                .map(|(_, p)| p.as_str())
                .unwrap_or("/");
            let dir = mnt.join(join(own_path));
            if !dirs.iter().any(|(_, d)| *d == dir) {
                dirs.push((ctrl.to_string(), dir));
            }
        }
        Ok(Cgroups::V1 { dirs })
    }

    /// Every directory of this container, once each.
    fn all_dirs(&self) -> Vec<&Path> {
        match self {
            Cgroups::V1 { dirs } => dirs.iter().map(|(_, d)| d.as_path()).collect(),
            Cgroups::V2 { dir } => vec![dir.as_path()],
        }
    }

    /// The directory of one v1 controller (or the v2 directory).
    fn dir_for(&self, ctrl: &str) -> Option<&Path> {
        match self {
            Cgroups::V1 { dirs } => dirs
                .iter()
                .find(|(c, _)| c == ctrl)
                .map(|(_, d)| d.as_path()),
            Cgroups::V2 { dir } => Some(dir),
        }
    }

    /// Creates the directories and writes the limits of `resources` and the device
    /// rules (config rules plus the standard devices and `devices`, the nodes config.json
    /// asks for). Device rules need the v1 devices controller; on v2 they would need an
    /// eBPF program, which this runtime does not load.
    pub fn create(
        &self,
        resources: Option<&LinuxResources>,
        devices: &[LinuxDevice],
    ) -> Result<()> {
        if let Cgroups::V2 { dir } = self {
            enable_v2_controllers(dir);
        }
        for d in self.all_dirs() {
            std::fs::create_dir_all(d)
                .map_err(Error::io(format!("create cgroup {}", d.display())))?;
        }
        if let Some(r) = resources {
            self.apply(r)?;
        }
        if let Some(d) = self
            .dir_for("devices")
            .filter(|_| matches!(self, Cgroups::V1 { .. }))
        {
            let rules = resources
                .and_then(|r| r.devices().clone())
                .unwrap_or_default();
            devices::apply_v1(d, &rules, devices)?;
        }
        Ok(())
    }

    /// Writes the memory, CPU and pids limits of `r`.
    pub fn apply(&self, r: &LinuxResources) -> Result<()> {
        let v2 = matches!(self, Cgroups::V2 { .. });
        if let (Some(m), Some(d)) = (r.memory(), self.dir_for("memory")) {
            if v2 {
                if let Some(l) = m.limit() {
                    write(d, "memory.max", &max_or(l))?;
                }
                if let Some(l) = m.reservation() {
                    write(d, "memory.low", &max_or(l))?;
                }
                if let (Some(s), Some(l)) = (m.swap(), m.limit()) {
                    let swap = if s < 0 { -1 } else { (s - l).max(0) };
                    write(d, "memory.swap.max", &max_or(swap))?;
                }
            } else {
                if let Some(l) = m.limit() {
                    write(d, "memory.limit_in_bytes", &l.to_string())?;
                }
                if let Some(s) = m.swap() {
                    write(d, "memory.memsw.limit_in_bytes", &s.to_string())?;
                }
                if let Some(l) = m.reservation() {
                    write(d, "memory.soft_limit_in_bytes", &l.to_string())?;
                }
                if let Some(s) = m.swappiness() {
                    write(d, "memory.swappiness", &s.to_string())?;
                }
            }
        }
        if let (Some(c), Some(d)) = (r.cpu(), self.dir_for("cpu")) {
            if v2 {
                if let Some(shares) = c.shares() {
                    let weight = 1 + (shares.clamp(2, 262144) - 2) * 9999 / 262142;
                    write(d, "cpu.weight", &weight.to_string())?;
                }
                if c.quota().is_some() || c.period().is_some() {
                    let quota = c.quota().filter(|q| *q > 0).map(|q| q.to_string());
                    let period = c.period().unwrap_or(100_000);
                    write(
                        d,
                        "cpu.max",
                        &format!("{} {period}", quota.as_deref().unwrap_or("max")),
                    )?;
                }
            } else {
                if let Some(s) = c.shares() {
                    write(d, "cpu.shares", &s.to_string())?;
                }
                if let Some(p) = c.period() {
                    write(d, "cpu.cfs_period_us", &p.to_string())?;
                }
                if let Some(q) = c.quota() {
                    write(d, "cpu.cfs_quota_us", &q.to_string())?;
                }
            }
        }
        if let (Some(p), Some(d)) = (r.pids(), self.dir_for("pids")) {
            write(d, "pids.max", &max_or(p.limit()))?;
        }
        Ok(())
    }

    /// Moves process `pid` into every directory of this container.
    pub fn add(&self, pid: i32) -> Result<()> {
        for d in self.all_dirs() {
            write(d, "cgroup.procs", &pid.to_string())?;
        }
        Ok(())
    }

    /// The pids of every process in the container (host pid namespace).
    pub fn pids(&self) -> Result<Vec<i32>> {
        let Some(d) = self.dir_for("freezer").or_else(|| self.dir_for("pids")) else {
            return Ok(Vec::new());
        };
        let text = match std::fs::read_to_string(d.join("cgroup.procs")) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(format!("read {}/cgroup.procs", d.display()))(e)),
        };
        Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }

    /// Freezes (`true`) or thaws every process of the container, waiting until the
    /// kernel reports the new state.
    pub fn set_frozen(&self, frozen: bool) -> Result<()> {
        let v2 = matches!(self, Cgroups::V2 { .. });
        let (file, value, check_file) = if v2 {
            (
                "cgroup.freeze",
                if frozen { "1" } else { "0" },
                "cgroup.events",
            )
        } else {
            (
                "freezer.state",
                if frozen { "FROZEN" } else { "THAWED" },
                "freezer.state",
            )
        };
        let done = |s: &str| {
            if v2 {
                s.lines().any(|l| l.trim() == format!("frozen {value}"))
            } else {
                s.trim() == value
            }
        };
        let d = self
            .dir_for("freezer")
            .ok_or_else(|| Error::Unsupported("no freezer cgroup on this host".into()))?;
        for attempt in 0..2000 {
            // v1 may stay in FREEZING while a task is busy in the kernel; writing
            // again retries the freeze.
            if attempt % 50 == 0 {
                write(d, file, value)?;
            }
            let now = std::fs::read_to_string(d.join(check_file))
                .map_err(Error::io(format!("read {}/{check_file}", d.display())))?;
            if done(&now) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Err(Error::Setup(format!(
            "the freezer of {} did not reach {value}",
            d.display()
        )))
    }

    /// Whether the freezer reports the container frozen.
    pub fn is_frozen(&self) -> bool {
        match self {
            Cgroups::V1 { .. } => self
                .dir_for("freezer")
                .and_then(|d| std::fs::read_to_string(d.join("freezer.state")).ok())
                .is_some_and(|s| s.trim() == "FROZEN"),
            Cgroups::V2 { dir } => std::fs::read_to_string(dir.join("cgroup.events"))
                .is_ok_and(|s| s.lines().any(|l| l.trim() == "frozen 1")),
        }
    }

    /// Removes the directories. Processes that are exiting leave their cgroup a
    /// moment after they are reaped, so busy directories are retried briefly.
    pub fn destroy(&self) -> Result<()> {
        for d in self.all_dirs() {
            let mut last = None;
            for _ in 0..500 {
                match std::fs::remove_dir(d) {
                    Ok(()) => {
                        last = None;
                        break;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        last = None;
                        break;
                    }
                    Err(e) => last = Some(e),
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            if let Some(e) = last {
                return Err(Error::io(format!("remove cgroup {}", d.display()))(e));
            }
        }
        Ok(())
    }
}

/// `max` for negative limits (the OCI "unlimited"), the number otherwise.
fn max_or(v: i64) -> String {
    if v <= 0 {
        "max".to_string()
    } else {
        v.to_string()
    }
}

/// Writes one cgroup control file.
fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    let p = dir.join(file);
    std::fs::write(&p, value).map_err(Error::io(format!("write {value:?} to {}", p.display())))
}

/// Enables the controllers we use in every ancestor of `dir` below the v2 root, so
/// its limit files exist. Failures are left for the limit writes to report.
fn enable_v2_controllers(dir: &Path) {
    let mut ancestors: Vec<&Path> = dir.ancestors().skip(1).collect();
    ancestors.reverse();
    for a in ancestors {
        if a.join("cgroup.subtree_control").exists() {
            let _ = std::fs::create_dir_all(a);
            for c in ["+memory", "+pids", "+cpu"] {
                let _ = std::fs::write(a.join("cgroup.subtree_control"), c);
            }
        }
    }
}
