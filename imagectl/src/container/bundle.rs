//! From an image config and docker-style options to an OCI runtime bundle.
//!
//! [`process_config`] applies Docker's rules (ENTRYPOINT+CMD, Env overrides by key,
//! WorkingDir, USER resolved against the image's own /etc/passwd); [`Bundle::write`]
//! stores the resulting config.json, which `ctr-runtime` and `runc` both run.

use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use runtime::config::generate::{self, BindMount, ContainerConfig};

use crate::error::{Error, IoContext, Result};
use crate::oci::ImageConfig;

/// What the caller of `create`/`run` (or a build step) adds to the image's defaults.
#[derive(Debug, Clone, Default)]
pub struct ProcessOptions {
    /// Arguments after the image name; replace the image's Cmd when not empty.
    pub cmd: Vec<String>,
    /// `--entrypoint`: replaces the image's Entrypoint (and drops its Cmd). An empty
    /// vector clears the entrypoint, as `--entrypoint ""` does.
    pub entrypoint: Option<Vec<String>>,
    /// `-e KEY=VALUE` (and `--env-file`), overriding the image's variables by key.
    pub env: Vec<String>,
    /// `-w DIR`.
    pub workdir: Option<String>,
    /// `-u USER[:GROUP]`.
    pub user: Option<String>,
    /// `--hostname`.
    pub hostname: Option<String>,
    /// `-t`: a pseudo-terminal.
    pub tty: bool,
    /// `-v` binds (and volumes, already resolved to host directories).
    pub binds: Vec<BindMount>,
    /// `--memory` in bytes.
    pub memory: Option<i64>,
    /// `--pids-limit`.
    pub pids_limit: Option<i64>,
    /// `--network host`.
    pub network_host: bool,
}

/// Merges `KEY=VALUE` lists: later entries replace earlier ones with the same key,
/// keeping the first position (Docker's order).
pub fn merge_env(base: &[String], over: &[String]) -> Vec<String> {
    let key = |e: &str| e.split('=').next().unwrap_or("").to_string();
    let mut out: Vec<String> = base.to_vec();
    for e in over {
        let k = key(e);
        match out.iter_mut().find(|x| key(x) == k) {
            Some(slot) => *slot = e.clone(),
            None => out.push(e.clone()),
        }
    }
    out
}

/// The argv a container of `image` runs with `opts` (Docker's ENTRYPOINT/CMD rule).
pub fn command_of(image: &ImageConfig, opts: &ProcessOptions) -> Vec<String> {
    let c = image.config.clone().unwrap_or_default();
    generate::combine_command(
        &c.entrypoint.unwrap_or_default(),
        &c.cmd.unwrap_or_default(),
        opts.entrypoint.as_deref(),
        &opts.cmd,
    )
}

/// The runtime's container config for a container of `image` whose root filesystem is
/// mounted at `rootfs` (the user is resolved against its /etc/passwd and /etc/group).
pub fn process_config(
    image: &ImageConfig,
    opts: &ProcessOptions,
    rootfs: &Path,
) -> Result<ContainerConfig> {
    let c = image.config.clone().unwrap_or_default();
    let args = command_of(image, opts);
    if args.is_empty() {
        return Err(Error::Other(
            "no command specified: the image has no Cmd or Entrypoint and none was given".into(),
        ));
    }
    let user_str = opts
        .user
        .clone()
        .or(c.user.clone())
        .filter(|u| !u.is_empty());
    let user = match &user_str {
        Some(u) => Some(
            runtime::user::resolve_user(rootfs, u)
                .map_err(|e| Error::Other(format!("user {u}: {e}")))?,
        ),
        None => None,
    };
    Ok(ContainerConfig {
        rootfs: rootfs.to_path_buf(),
        args,
        env: merge_env(&c.env.unwrap_or_default(), &opts.env),
        cwd: opts
            .workdir
            .clone()
            .or(c.working_dir.clone())
            .filter(|w| !w.is_empty()),
        user,
        hostname: opts.hostname.clone(),
        terminal: opts.tty,
        mounts: opts.binds.clone(),
        memory_limit: opts.memory,
        pids_limit: opts.pids_limit,
        network_host: opts.network_host,
        ..Default::default()
    })
}

/// An OCI runtime bundle on disk: `DIR/config.json` whose `root.path` points at the
/// container's union mount.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The bundle directory (what `--bundle` takes).
    pub dir: PathBuf,
}

impl Bundle {
    /// Generates config.json from `config` and writes it atomically into `dir`.
    pub fn write(dir: &Path, config: &ContainerConfig) -> Result<Bundle> {
        let spec = generate::generate(config).map_err(|e| Error::Other(e.to_string()))?;
        Self::write_spec(dir, &spec)
    }

    /// Writes an already built spec into `dir`.
    pub fn write_spec(dir: &Path, spec: &Spec) -> Result<Bundle> {
        fs::create_dir_all(dir).at(dir)?;
        let bytes = serde_json::to_vec_pretty(spec).map_err(|e| Error::json("config.json", e))?;
        crate::store::write_file_atomic(&dir.join("config.json"), &bytes)?;
        Ok(Bundle {
            dir: dir.to_path_buf(),
        })
    }

    /// The config.json path.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.json")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_by_key_in_place() {
        let base = vec!["PATH=/bin".to_string(), "A=1".to_string()];
        let over = vec!["A=2".to_string(), "B=3".to_string()];
        assert_eq!(merge_env(&base, &over), vec!["PATH=/bin", "A=2", "B=3"]);
    }
}
