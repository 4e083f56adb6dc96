//! The container lifecycle: create, start (attached or detached), stop, kill, pause,
//! remove, exec and logs, over the store, the union mount and a runtime.
//!
//! Mount lifecycle (documented choice): the union is mounted at create and stays
//! mounted while the container runs. An attached run unmounts it as soon as the
//! process exits; a detached container's union is unmounted by the next imagectl
//! command that sees the container exited ([`Containers::reconcile`], called by `ps`,
//! `inspect`, `rm`, `commit`, ...), and `start` mounts it again. A union whose daemon
//! died is cleared the same way, so a killed `unionfsd` never wedges `rm`.
//!
//! The runtime forks: call these methods while the process is single-threaded.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use runtime::config::generate::BindMount;
use runtime::{CreateOptions, ExecOptions, Output, Runtime};

use super::bundle::{self, Bundle, ProcessOptions};
use super::etc_files;
use super::record::{
    self, ContainerRecord, ExitRecord, MountPoint, RecordConfig, Records, RuntimeKind,
};
use super::rootfs::{ContainerRoot, unmount_path};
use super::runc::Runc;
use super::state::{self, LiveState, Status};
use crate::error::{Error, IoContext, Result};
use crate::store::{Image, Store, write_file_atomic};

/// Everything `create` (and `run`) takes.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    /// The image as the user named it.
    pub image: String,
    /// `--name`.
    pub name: Option<String>,
    /// Command, entrypoint, env, workdir, user, hostname, tty, limits, network.
    pub process: ProcessOptions,
    /// `-v SRC:DST[:ro]` as typed.
    pub volumes: Vec<String>,
    /// `-i`.
    pub interactive: bool,
    /// `--runtime`.
    pub runtime: RuntimeKind,
    /// `--rm`.
    pub auto_remove: bool,
}

/// The containers of one store.
#[derive(Debug, Clone)]
pub struct Containers {
    store: Store,
    records: Records,
    runtime: Runtime,
    runc: Runc,
}

impl Containers {
    /// The containers of `store`: records in `ROOT/containers`, runtime state in
    /// `ROOT/runtime` (runc's in `ROOT/runc`).
    pub fn open(store: &Store) -> Containers {
        let root = store.root();
        Containers {
            store: store.clone(),
            records: Records::new(root.join("containers")),
            runtime: Runtime::new(root.join("runtime")),
            runc: Runc::new(root.join("runc")),
        }
    }

    /// The record store.
    pub fn records(&self) -> &Records {
        &self.records
    }

    /// The built-in runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The image store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Finds a container by name, id or unique id prefix.
    pub fn find(&self, what: &str) -> Result<ContainerRecord> {
        self.records.find(what)
    }

    /// The container's directory.
    pub fn dir(&self, rec: &ContainerRecord) -> PathBuf {
        self.records.container_dir(&rec.id)
    }

    /// The container's root filesystem (not touching the disk).
    pub fn root_of(&self, rec: &ContainerRecord) -> ContainerRoot {
        ContainerRoot::at(&self.dir(rec), rec.lowers.clone())
    }

    /// The live state.
    pub fn state(&self, rec: &ContainerRecord) -> LiveState {
        state::live_state(rec, &self.dir(rec), &self.runtime, &self.runc)
    }

    /// Releases what an exited container no longer needs, as docker does when the
    /// process exits: its union is unmounted (see the module docs) and its empty
    /// cgroups are removed (the runtime's state, with the exit code, stays until
    /// `rm`). Returns the container's state.
    pub fn reconcile(&self, rec: &ContainerRecord) -> LiveState {
        let st = self.state(rec);
        if st.status == Status::Exited {
            let root = self.root_of(rec);
            if crate::mount::is_mounted(&root.merged) {
                let _ = root.unmount();
            }
            if rec.runtime == RuntimeKind::Builtin
                && let Ok(rs) = self.runtime.state(&rec.id)
                && rs.cgroups.pids().is_ok_and(|p| p.is_empty())
            {
                let _ = rs.cgroups.destroy();
            }
        }
        st
    }

    /// The image a container was made from, found by its manifest digest (also when
    /// its tag was removed with `rmi -f`).
    pub fn image_of(&self, rec: &ContainerRecord) -> Result<Image> {
        self.store
            .list_images()?
            .into_iter()
            .find(|i| i.manifest_digest() == &rec.manifest)
            .ok_or_else(|| {
                Error::Other(format!(
                    "the image of container {} ({}) is gone from the store",
                    rec.name, rec.image
                ))
            })
    }

    /// Creates a container: holds the image, prepares the writable layer, the init
    /// layer and volumes, mounts the union and writes the bundle.
    pub fn create(&self, req: &CreateRequest) -> Result<ContainerRecord> {
        let image = self.store.resolve(&req.image)?;
        if let Some(n) = &req.name {
            record::check_name(n)?;
        }
        let id = record::new_id()?;
        // The directory exists before the name is reserved: a reservation whose
        // directory is missing counts as stale.
        let dir = self.records.container_dir(&id);
        fs::create_dir_all(&dir).at(&dir)?;
        let name = match self.reserve_name(req, &id) {
            Ok(n) => n,
            Err(e) => {
                let _ = fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        let holder = format!("container-{id}");
        let made = self
            .store
            .hold(&holder, image.manifest_digest())
            .and_then(|()| self.create_in(req, &image, &id, &name, &dir));
        match made {
            Ok(rec) => Ok(rec),
            Err(e) => {
                let _ = unmount_path(&dir.join("merged"));
                let _ = fs::remove_dir_all(&dir);
                let _ = self.store.release(&holder);
                self.records.release_name(&name, &id);
                Err(e)
            }
        }
    }

    /// The `--name`, or a generated docker-style one, reserved for `id`.
    fn reserve_name(&self, req: &CreateRequest, id: &str) -> Result<String> {
        if let Some(n) = &req.name {
            if !self.records.reserve_name(n, id)? {
                return Err(Error::Other(format!(
                    "the container name {n:?} is already in use: remove that container or choose another name"
                )));
            }
            return Ok(n.clone());
        }
        let mut taken: Vec<String> = self.records.list()?.into_iter().map(|r| r.name).collect();
        loop {
            let n = record::generate_name(id, &taken);
            if self.records.reserve_name(&n, id)? {
                return Ok(n);
            }
            taken.push(n);
        }
    }

    fn create_in(
        &self,
        req: &CreateRequest,
        image: &Image,
        id: &str,
        name: &str,
        dir: &Path,
    ) -> Result<ContainerRecord> {
        let image_lowers = self.store.layer_dirs(image)?;
        let init = dir.join("init");
        for d in [
            dir.join("upper"),
            dir.join("work"),
            dir.join("merged"),
            init.clone(),
        ] {
            fs::create_dir_all(&d).at(&d)?;
        }
        let cfg = image.config.config.clone().unwrap_or_default();
        // -v binds and named volumes, then the image's VOLUMEs not covered by them.
        let mut mounts: Vec<MountPoint> = Vec::new();
        for v in &req.volumes {
            mounts.push(self.parse_volume(v)?);
        }
        let mut anon_to_fill = Vec::new();
        for dest in cfg.volumes.clone().unwrap_or_default().keys() {
            let dest = PathBuf::from(dest);
            if mounts.iter().any(|m| m.destination == dest) {
                continue;
            }
            let vol = record::new_id()?;
            let data = self.volume_dir(&vol);
            fs::create_dir_all(&data).at(&data)?;
            anon_to_fill.push((dest.clone(), data.clone()));
            mounts.push(MountPoint {
                kind: "volume".into(),
                name: vol,
                source: data,
                destination: dest,
                rw: true,
                anonymous: true,
            });
        }
        // docker's default hostname: the short container ID.
        let hostname = req
            .process
            .hostname
            .clone()
            .unwrap_or_else(|| id[..12].to_string());
        let taken: Vec<PathBuf> = mounts.iter().map(|m| m.destination.clone()).collect();
        let etc_binds = etc_files::write(
            &dir.join("etc"),
            &hostname,
            req.process.network_host,
            &taken,
        )?;
        // The init layer: mount points the image lacks, so they never land in `upper`
        // (and so never in `diff` or `commit`), as docker's init layer does.
        let mut points: Vec<(PathBuf, bool)> = etc_files::MOUNT_POINT_DIRS
            .iter()
            .map(|p| (PathBuf::from(p), true))
            .collect();
        for m in &mounts {
            points.push((m.destination.clone(), !m.source.is_file()));
        }
        for b in &etc_binds {
            points.push((b.destination.clone(), false));
        }
        for (p, is_dir) in points {
            let rel = p.strip_prefix("/").unwrap_or(&p);
            if rel.as_os_str().is_empty() || image_lowers.iter().any(|l| l.join(rel).exists()) {
                continue;
            }
            let target = init.join(rel);
            if is_dir {
                fs::create_dir_all(&target).at(&target)?;
            } else {
                if let Some(parent) = target.parent() {
                    fs::create_dir_all(parent).at(parent)?;
                }
                fs::File::create(&target).at(&target)?;
            }
        }
        // An empty init layer is left out, so the union is exactly the image's layer
        // chain and unionfsd can serve it from the chain's persistent index.
        let init_used = fs::read_dir(&init).at(&init)?.next().is_some();
        let mut lowers: Vec<PathBuf> = init_used.then_some(init).into_iter().collect();
        lowers.extend(image_lowers);
        let root = ContainerRoot::prepare(&lowers, dir)?;
        // Anonymous volumes start as a copy of what the image has at that path.
        for (dest, data) in anon_to_fill {
            let src = root.merged.join(dest.strip_prefix("/").unwrap_or(&dest));
            if src.is_dir() {
                let out = std::process::Command::new("cp")
                    .arg("-a")
                    .arg(format!("{}/.", src.display()))
                    .arg(&data)
                    .output()
                    .at("cp")?;
                if !out.status.success() {
                    return Err(Error::Other(format!(
                        "copying {} into its volume: {}",
                        dest.display(),
                        String::from_utf8_lossy(&out.stderr).trim()
                    )));
                }
            }
        }
        let mut opts = req.process.clone();
        opts.hostname = Some(hostname);
        opts.binds = mounts
            .iter()
            .map(|m| BindMount {
                source: m.source.clone(),
                destination: m.destination.clone(),
                readonly: !m.rw,
            })
            .chain(etc_binds)
            .collect();
        let argv = bundle::command_of(&image.config, &opts);
        let rconfig = bundle::process_config(&image.config, &opts, &root.merged)?;
        Bundle::write(&dir.join("bundle"), &rconfig)?;
        let (ep, cmd) = split_command(&cfg, &opts);
        let rec = ContainerRecord {
            id: id.to_string(),
            name: name.to_string(),
            created: crate::oci::config::now_rfc3339(),
            image: req.image.clone(),
            image_id: image.id().clone(),
            manifest: image.manifest_digest().clone(),
            lowers,
            path: argv.first().cloned().unwrap_or_default(),
            args: argv.iter().skip(1).cloned().collect(),
            config: RecordConfig {
                hostname: opts.hostname.clone().unwrap_or_default(),
                user: opts.user.clone().or(cfg.user.clone()).unwrap_or_default(),
                tty: opts.tty,
                open_stdin: req.interactive,
                env: bundle::merge_env(&cfg.env.clone().unwrap_or_default(), &opts.env),
                cmd,
                entrypoint: ep,
                image: req.image.clone(),
                working_dir: opts
                    .workdir
                    .clone()
                    .or(cfg.working_dir.clone())
                    .unwrap_or_default(),
                labels: cfg.labels.clone().unwrap_or_default(),
                stop_signal: cfg.stop_signal.clone(),
            },
            mounts,
            runtime: req.runtime,
            auto_remove: req.auto_remove,
            network_host: opts.network_host,
        };
        self.records.save(&rec)?;
        Ok(rec)
    }

    /// `ROOT/volumes/NAME/_data`.
    pub fn volume_dir(&self, name: &str) -> PathBuf {
        self.store.root().join("volumes").join(name).join("_data")
    }

    /// `-v HOST:CTR[:ro|:rw]` (an absolute HOST is a bind, a name is a named volume
    /// under the store) or `-v CTR` (an anonymous volume).
    fn parse_volume(&self, spec: &str) -> Result<MountPoint> {
        let parts: Vec<&str> = spec.split(':').collect();
        let bad = || Error::Other(format!("invalid volume specification: {spec:?}"));
        let (src, dst, mode) = match parts.as_slice() {
            [d] => (None, *d, "rw"),
            [s, d] => (Some(*s), *d, "rw"),
            [s, d, m] => (Some(*s), *d, *m),
            _ => return Err(bad()),
        };
        let rw = match mode {
            "rw" => true,
            "ro" => false,
            _ => return Err(bad()),
        };
        if !dst.starts_with('/') {
            return Err(Error::Other(format!(
                "invalid volume specification {spec:?}: the container path must be absolute"
            )));
        }
        let (kind, name, source, anonymous) = match src {
            Some(s) if s.starts_with('/') => {
                let p = fs::canonicalize(s).map_err(|e| {
                    Error::Other(format!("bind source path {s} does not exist: {e}"))
                })?;
                ("bind", String::new(), p, false)
            }
            Some(n) => {
                record::check_name(n)?;
                let data = self.volume_dir(n);
                fs::create_dir_all(&data).at(&data)?;
                ("volume", n.to_string(), data, false)
            }
            None => {
                let n = record::new_id()?;
                let data = self.volume_dir(&n);
                fs::create_dir_all(&data).at(&data)?;
                ("volume", n, data, true)
            }
        };
        Ok(MountPoint {
            kind: kind.into(),
            name,
            source,
            destination: PathBuf::from(dst),
            rw,
            anonymous,
        })
    }

    fn clear_previous_run(&self, rec: &ContainerRecord, st: &LiveState) -> Result<()> {
        if st.status.is_live() {
            return Err(Error::Other(format!(
                "container {} is already {}",
                rec.name,
                st.status.as_str()
            )));
        }
        self.delete_runtime_state(rec)?;
        let p = state::exit_record_path(&self.dir(rec));
        match fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::Io { path: p, source: e })
            }
            _ => Ok(()),
        }
    }

    /// Deletes what the container's runtime keeps about it (forcibly: a live process is
    /// killed); a container the runtime no longer knows is fine.
    fn delete_runtime_state(&self, rec: &ContainerRecord) -> Result<()> {
        match rec.runtime {
            RuntimeKind::Builtin => match self.runtime.delete(&rec.id, true) {
                Ok(()) | Err(runtime::Error::NotFound(_)) => Ok(()),
                Err(e) => Err(Error::Other(e.to_string())),
            },
            RuntimeKind::Runc => self.runc.delete(&rec.id, true),
        }
    }

    /// Starts the container attached to the caller's terminal and waits: returns the
    /// exit code. The union is unmounted afterwards (and the container removed with
    /// `--rm`).
    pub fn start_attached(&self, rec: &ContainerRecord) -> Result<i32> {
        let st = self.state(rec);
        self.clear_previous_run(rec, &st)?;
        self.root_of(rec).mount()?;
        let bundle = self.dir(rec).join("bundle");
        let code = match rec.runtime {
            RuntimeKind::Builtin => {
                let opts = CreateOptions {
                    bundle,
                    ..Default::default()
                };
                self.runtime
                    .run(&rec.id, &opts)
                    .map_err(|e| Error::Other(e.to_string()))?
            }
            RuntimeKind::Runc => {
                let started = Some(runtime::state::now());
                let code = match super::runc::check_executable(&bundle, &self.root_of(rec).merged) {
                    Ok(()) => self.runc.run_foreground(&rec.id, &bundle)?,
                    Err((code, msg)) => {
                        eprintln!("imagectl: {msg}");
                        code
                    }
                };
                self.write_exit(
                    rec,
                    &ExitRecord {
                        code: Some(code),
                        started,
                        finished: Some(runtime::state::now()),
                    },
                )?;
                code
            }
        };
        if rec.auto_remove {
            self.remove(rec, true, true)?;
        } else {
            let _ = self.root_of(rec).unmount();
        }
        Ok(code)
    }

    fn write_exit(&self, rec: &ContainerRecord, e: &ExitRecord) -> Result<()> {
        let bytes = serde_json::to_vec(e).map_err(|e| Error::json("exit.json", e))?;
        write_file_atomic(&state::exit_record_path(&self.dir(rec)), &bytes)
    }

    /// Starts the container detached (output to its log). With `--rm`, a watcher
    /// process removes it once it exits.
    pub fn start_detached(&self, rec: &ContainerRecord) -> Result<()> {
        let st = self.state(rec);
        self.clear_previous_run(rec, &st)?;
        self.root_of(rec).mount()?;
        let dir = self.dir(rec);
        let bundle = dir.join("bundle");
        let log = dir.join("log");
        match rec.runtime {
            RuntimeKind::Builtin => {
                let opts = CreateOptions {
                    bundle,
                    output: Output::Log(log),
                    ..Default::default()
                };
                self.runtime
                    .run_detached(&rec.id, &opts)
                    .map_err(|e| Error::Other(e.to_string()))?;
                if rec.auto_remove {
                    let me = self.clone();
                    let r = rec.clone();
                    runtime::process::fork::spawn_detached(move || {
                        if redirect_to_log(Path::new("/dev/null")).is_err() {
                            return 1;
                        }
                        let _ = me.runtime.wait(&r.id);
                        match me.remove(&r, true, true) {
                            Ok(()) => 0,
                            Err(_) => 1,
                        }
                    })
                    .map_err(|e| Error::Other(e.to_string()))?;
                }
            }
            RuntimeKind::Runc => {
                self.write_exit(
                    rec,
                    &ExitRecord {
                        code: None,
                        started: Some(runtime::state::now()),
                        finished: None,
                    },
                )?;
                if let Err((_, msg)) =
                    super::runc::check_executable(&bundle, &self.root_of(rec).merged)
                {
                    return Err(Error::Other(msg));
                }
                let me = self.clone();
                let r = rec.clone();
                runtime::process::fork::spawn_detached(move || {
                    let code = match redirect_to_log(&log) {
                        Ok(()) => me.runc.run_foreground(&r.id, &bundle).unwrap_or(255),
                        Err(_) => 255,
                    };
                    let started = state::read_exit_record(&me.dir(&r)).and_then(|e| e.started);
                    let _ = me.write_exit(
                        &r,
                        &ExitRecord {
                            code: Some(code),
                            started,
                            finished: Some(runtime::state::now()),
                        },
                    );
                    if r.auto_remove {
                        let _ = me.remove(&r, true, true);
                    }
                    0
                })
                .map_err(|e| Error::Other(e.to_string()))?;
                // Report "started" once runc runs the process (or it already exited).
                for _ in 0..1000 {
                    if self.runc.state(&rec.id).is_some()
                        || state::read_exit_record(&dir).is_some_and(|e| e.code.is_some())
                    {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
        Ok(())
    }

    /// Stops the container: its stop signal (the image's STOPSIGNAL, else SIGTERM),
    /// then SIGKILL after `timeout`. Returns the exit code (None if it was not running).
    pub fn stop(&self, rec: &ContainerRecord, timeout: Duration) -> Result<Option<i32>> {
        let st = self.state(rec);
        if !st.status.is_live() {
            self.reconcile(rec);
            return Ok(None);
        }
        let sig_name = rec
            .config
            .stop_signal
            .clone()
            .unwrap_or_else(|| "SIGTERM".into());
        let code = match rec.runtime {
            RuntimeKind::Builtin => {
                let sig = runtime::signal::parse_signal(&sig_name)
                    .map_err(|e| Error::Other(e.to_string()))?;
                Some(
                    self.runtime
                        .stop(&rec.id, sig, timeout)
                        .map_err(|e| Error::Other(e.to_string()))?,
                )
            }
            RuntimeKind::Runc => {
                if st.status == Status::Paused {
                    self.runc.resume(&rec.id)?;
                }
                let _ = self
                    .runc
                    .kill(&rec.id, sig_name.trim_start_matches("SIG"), false);
                if !self.wait_exit(rec, timeout) {
                    let _ = self.runc.kill(&rec.id, "KILL", true);
                    self.wait_exit(rec, Duration::from_secs(10));
                }
                self.state(rec).exit_code
            }
        };
        self.reconcile(rec);
        Ok(code)
    }

    /// Polls until the container is no longer live; false on timeout.
    pub fn wait_exit(&self, rec: &ContainerRecord, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let st = self.state(rec);
            if !st.status.is_live() && (st.status != Status::Exited || st.exit_code.is_some()) {
                if rec.runtime == RuntimeKind::Runc
                    && state::read_exit_record(&self.dir(rec)).is_some_and(|e| e.code.is_none())
                    && std::time::Instant::now() < deadline
                {
                    // The watcher is about to record the exit code.
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal to the container's process.
    pub fn kill(&self, rec: &ContainerRecord, signal: &str) -> Result<()> {
        let st = self.state(rec);
        if !st.status.is_live() {
            return Err(Error::Other(format!(
                "cannot kill container {}: container is not running",
                rec.name
            )));
        }
        let sig = runtime::signal::parse_signal(signal).map_err(|e| Error::Other(e.to_string()))?;
        match rec.runtime {
            RuntimeKind::Builtin => self
                .runtime
                .kill(&rec.id, sig, false)
                .map_err(|e| Error::Other(e.to_string())),
            RuntimeKind::Runc => self.runc.kill(&rec.id, sig.as_str(), false),
        }
    }

    /// Freezes (`true`) or thaws the container.
    pub fn set_paused(&self, rec: &ContainerRecord, paused: bool) -> Result<()> {
        let r = match (rec.runtime, paused) {
            (RuntimeKind::Builtin, true) => self.runtime.pause(&rec.id),
            (RuntimeKind::Builtin, false) => self.runtime.resume(&rec.id),
            (RuntimeKind::Runc, true) => return self.runc.pause(&rec.id),
            (RuntimeKind::Runc, false) => return self.runc.resume(&rec.id),
        };
        r.map_err(|e| Error::Other(e.to_string()))
    }

    /// Removes a container: refuses a live one without `force` (which kills it),
    /// deletes the runtime state, unmounts the union (also when its daemon is dead),
    /// deletes the writable layer and, with `volumes`, its anonymous volumes, and
    /// releases the image.
    pub fn remove(&self, rec: &ContainerRecord, force: bool, volumes: bool) -> Result<()> {
        let st = self.state(rec);
        if st.status.is_live() && !force {
            return Err(Error::Other(format!(
                "cannot remove container {}: container is {}: stop the container before removing or force remove (-f)",
                rec.name,
                st.status.as_str()
            )));
        }
        self.delete_runtime_state(rec)?;
        let dir = self.dir(rec);
        let merged = dir.join("merged");
        unmount_path(&merged)?;
        if crate::mount::is_mounted(&merged) {
            return Err(Error::Other(format!(
                "{} is still mounted; not deleting the container's files",
                merged.display()
            )));
        }
        if volumes {
            for m in rec.mounts.iter().filter(|m| m.anonymous) {
                if let Some(vol) = m.source.parent() {
                    let _ = fs::remove_dir_all(vol);
                }
            }
        }
        match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::Io {
                    path: dir,
                    source: e,
                });
            }
            _ => {}
        }
        self.store.release(&format!("container-{}", rec.id))?;
        self.records.release_name(&rec.name, &rec.id);
        Ok(())
    }

    /// Runs another process in the running container; returns its exit code.
    pub fn exec(&self, rec: &ContainerRecord, opts: &ExecOptions) -> Result<i32> {
        let st = self.state(rec);
        if st.status != Status::Running {
            return Err(Error::Other(format!(
                "container {} is not running (it is {})",
                rec.name,
                st.status.as_str()
            )));
        }
        match rec.runtime {
            RuntimeKind::Builtin => self
                .runtime
                .exec(&rec.id, opts)
                .map_err(|e| Error::Other(e.to_string())),
            RuntimeKind::Runc => {
                let mut c = self.runc.command();
                c.arg("exec");
                if opts.tty {
                    c.arg("-t");
                }
                if opts.detach {
                    c.arg("-d");
                }
                for e in &opts.env {
                    c.arg("--env").arg(e);
                }
                if let Some(cwd) = &opts.cwd {
                    c.arg("--cwd").arg(cwd);
                }
                if let Some(u) = &opts.user {
                    let root = self.root_of(rec);
                    let r = runtime::user::resolve_user(&root.merged, u)
                        .map_err(|e| Error::Other(e.to_string()))?;
                    c.arg("--user").arg(format!("{}:{}", r.uid, r.gid));
                }
                c.arg(&rec.id).args(&opts.args);
                let s = c.status().at("runc")?;
                Ok(s.code().unwrap_or(255))
            }
        }
    }

    /// Copies the container's output to `out`; with `follow`, until it exits.
    pub fn logs(
        &self,
        rec: &ContainerRecord,
        follow: bool,
        out: &mut dyn std::io::Write,
    ) -> Result<()> {
        use std::io::Read;
        let path = self.dir(rec).join("log");
        let mut f = match fs::File::open(&path) {
            Ok(f) => Some(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::Io { path, source: e }),
        };
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let live = follow && self.state(rec).status.is_live();
            if f.is_none() {
                f = fs::File::open(&path).ok();
            }
            if let Some(f) = f.as_mut() {
                loop {
                    let n = f.read(&mut buf).at(&path)?;
                    if n == 0 {
                        break;
                    }
                    out.write_all(&buf[..n])
                        .and_then(|_| out.flush())
                        .at("stdout")?;
                }
            }
            if !live {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The Entrypoint and Cmd parts of the argv, as `inspect` shows them.
fn split_command(
    cfg: &crate::oci::config::ContainerConfig,
    opts: &ProcessOptions,
) -> (Option<Vec<String>>, Option<Vec<String>>) {
    let (ep, default_cmd) = match &opts.entrypoint {
        Some(e) => (e.clone(), Vec::new()),
        None => (
            cfg.entrypoint.clone().unwrap_or_default(),
            cfg.cmd.clone().unwrap_or_default(),
        ),
    };
    let cmd = if opts.cmd.is_empty() {
        default_cmd
    } else {
        opts.cmd.clone()
    };
    (
        (!ep.is_empty()).then_some(ep),
        (!cmd.is_empty()).then_some(cmd),
    )
}

/// Points stdout/stderr at `log` and stdin at /dev/null (in a watcher process).
fn redirect_to_log(log: &Path) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let null = fs::OpenOptions::new().read(true).open("/dev/null")?;
    let out = fs::OpenOptions::new().create(true).append(true).open(log)?;
    // SAFETY: dup2 onto the standard fds of this (forked) process.
    unsafe {
        libc::dup2(null.as_raw_fd(), 0);
        libc::dup2(out.as_raw_fd(), 1);
        libc::dup2(out.as_raw_fd(), 2);
    }
    Ok(())
}
