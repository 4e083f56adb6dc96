//! Generating config.json for a container made from an image, the way `runc spec`
//! plus Docker's defaults would: the image's Entrypoint/Cmd/Env/WorkingDir/User and
//! the caller's volumes and limits on top of a safe default (new namespaces, Docker's
//! capability set, runc's masked and read-only paths, no_new_privileges).

use std::collections::HashMap;
use std::path::PathBuf;

use oci_spec::runtime::{
    Capabilities, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxMemoryBuilder,
    LinuxNamespaceType, LinuxPidsBuilder, LinuxResourcesBuilder, Mount, MountBuilder, Spec,
    UserBuilder,
};

use crate::error::{Error, Result};
use crate::linux::caps::DOCKER_DEFAULT;
use crate::linux::process::DEFAULT_PATH;
use crate::user::ResolvedUser;

/// A bind mount (`-v HOST:CTR[:ro]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    /// Host path.
    pub source: PathBuf,
    /// Path inside the container.
    pub destination: PathBuf,
    /// Mounted read-only.
    pub readonly: bool,
}

/// Everything that varies between containers, from the image config and the command line.
#[derive(Debug, Clone, Default)]
pub struct ContainerConfig {
    /// The rootfs (usually the container's union mount).
    pub rootfs: PathBuf,
    /// The full argv (see [`combine_command`]).
    pub args: Vec<String>,
    /// `KEY=VALUE` environment; PATH, HOME, HOSTNAME and TERM are added when missing.
    pub env: Vec<String>,
    /// Working directory; `/` when unset.
    pub cwd: Option<String>,
    /// The resolved user (see [`crate::user::resolve_user`]); root when unset.
    pub user: Option<ResolvedUser>,
    /// Hostname; none keeps the UTS namespace's empty default.
    pub hostname: Option<String>,
    /// Give the process a pseudo-terminal.
    pub terminal: bool,
    /// Bind mounts.
    pub mounts: Vec<BindMount>,
    /// Memory limit in bytes.
    pub memory_limit: Option<i64>,
    /// Memory+swap limit in bytes (-1 unlimited).
    pub memory_swap: Option<i64>,
    /// CPU quota in microseconds per `cpu_period` (e.g. `--cpus 0.5` = 50000/100000).
    pub cpu_quota: Option<i64>,
    /// CPU period in microseconds.
    pub cpu_period: Option<u64>,
    /// Relative CPU weight (cgroup v1 shares).
    pub cpu_shares: Option<u64>,
    /// Maximum number of processes.
    pub pids_limit: Option<i64>,
    /// Share the host's network namespace instead of a loopback-only one.
    pub network_host: bool,
    /// Mount the rootfs read-only.
    pub readonly_rootfs: bool,
    /// `linux.cgroupsPath`; the runtime's default when unset.
    pub cgroups_path: Option<PathBuf>,
    /// Annotations.
    pub annotations: HashMap<String, String>,
}

/// Docker's rule for the argv: an explicit entrypoint replaces the image's (and
/// then drops the image's Cmd); explicit args replace Cmd; the two are concatenated.
pub fn combine_command(
    image_entrypoint: &[String],
    image_cmd: &[String],
    entrypoint: Option<&[String]>,
    args: &[String],
) -> Vec<String> {
    let (ep, default_cmd): (Vec<String>, &[String]) = match entrypoint {
        Some(e) => (e.to_vec(), &[]),
        None => (image_entrypoint.to_vec(), image_cmd),
    };
    let cmd = if args.is_empty() {
        default_cmd.to_vec()
    } else {
        args.to_vec()
    };
    ep.into_iter().chain(cmd).collect()
}

/// Adds the variables every container gets when the image does not set them.
pub fn complete_env(
    env: &[String],
    home: &str,
    hostname: Option<&str>,
    terminal: bool,
) -> Vec<String> {
    let mut out: Vec<String> = env.to_vec();
    let has = |out: &[String], k: &str| out.iter().any(|e| e.split('=').next() == Some(k));
    if !has(&out, "PATH") {
        out.insert(0, format!("PATH={DEFAULT_PATH}"));
    }
    if let Some(h) = hostname
        && !has(&out, "HOSTNAME")
    {
        out.push(format!("HOSTNAME={h}"));
    }
    if terminal && !has(&out, "TERM") {
        out.push("TERM=xterm".into());
    }
    if !has(&out, "HOME") {
        out.push(format!("HOME={home}"));
    }
    out
}

fn caps(set: &[oci_spec::runtime::Capability]) -> Capabilities {
    set.iter().copied().collect()
}

/// Builds the config.json of a container.
pub fn generate(cfg: &ContainerConfig) -> Result<Spec> {
    let err = |e: oci_spec::OciSpecError| Error::Setup(format!("build config: {e}"));
    if cfg.args.is_empty() {
        return Err(Error::Setup(
            "no command given and the image has none".into(),
        ));
    }
    let mut spec = Spec::default();
    let user = cfg.user.clone().unwrap_or(ResolvedUser {
        uid: 0,
        gid: 0,
        additional_gids: vec![],
        home: "/root".into(),
        name: Some("root".into()),
    });
    let mut process = spec.process().clone().unwrap_or_default();
    process.set_terminal(Some(cfg.terminal));
    process.set_args(Some(cfg.args.clone()));
    process.set_env(Some(complete_env(
        &cfg.env,
        &user.home,
        cfg.hostname.as_deref(),
        cfg.terminal,
    )));
    process.set_cwd(PathBuf::from(
        cfg.cwd
            .clone()
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "/".into()),
    ));
    let mut u = UserBuilder::default().uid(user.uid).gid(user.gid);
    if !user.additional_gids.is_empty() {
        u = u.additional_gids(user.additional_gids.clone());
    }
    process.set_user(u.build().map_err(err)?);
    let default_caps = caps(DOCKER_DEFAULT);
    process.set_capabilities(Some(
        LinuxCapabilitiesBuilder::default()
            .bounding(default_caps.clone())
            .effective(default_caps.clone())
            .permitted(default_caps)
            .inheritable(Capabilities::new())
            .ambient(Capabilities::new())
            .build()
            .map_err(err)?,
    ));
    process.set_no_new_privileges(Some(true));
    spec.set_process(Some(process));

    let mut root = spec.root().clone().unwrap_or_default();
    root.set_path(cfg.rootfs.clone());
    root.set_readonly(Some(cfg.readonly_rootfs));
    spec.set_root(Some(root));
    spec.set_hostname(cfg.hostname.clone());

    let mut mounts: Vec<Mount> = spec.mounts().clone().unwrap_or_default();
    for m in &cfg.mounts {
        let mut options = vec!["rbind".to_string(), "rprivate".to_string()];
        if m.readonly {
            options.push("ro".into());
        }
        mounts.push(
            MountBuilder::default()
                .destination(m.destination.clone())
                .typ("bind")
                .source(m.source.clone())
                .options(options)
                .build()
                .map_err(err)?,
        );
    }
    spec.set_mounts(Some(mounts));

    let mut linux = spec
        .linux()
        .clone()
        .unwrap_or_else(|| LinuxBuilder::default().build().unwrap_or_default());
    if cfg.network_host
        && let Some(ns) = linux.namespaces_mut()
    {
        ns.retain(|n| n.typ() != LinuxNamespaceType::Network);
    }
    let mut resources = LinuxResourcesBuilder::default();
    if cfg.memory_limit.is_some() || cfg.memory_swap.is_some() {
        let mut m = LinuxMemoryBuilder::default();
        if let Some(l) = cfg.memory_limit {
            m = m.limit(l);
        }
        if let Some(s) = cfg.memory_swap {
            m = m.swap(s);
        }
        resources = resources.memory(m.build().map_err(err)?);
    }
    if cfg.cpu_quota.is_some() || cfg.cpu_shares.is_some() {
        let mut c = LinuxCpuBuilder::default();
        if let Some(q) = cfg.cpu_quota {
            c = c.quota(q).period(cfg.cpu_period.unwrap_or(100_000));
        }
        if let Some(s) = cfg.cpu_shares {
            c = c.shares(s);
        }
        resources = resources.cpu(c.build().map_err(err)?);
    }
    if let Some(p) = cfg.pids_limit {
        resources = resources.pids(LinuxPidsBuilder::default().limit(p).build().map_err(err)?);
    }
    linux.set_resources(Some(resources.build().map_err(err)?));
    linux.set_cgroups_path(cfg.cgroups_path.clone());
    spec.set_linux(Some(linux));
    if !cfg.annotations.is_empty() {
        spec.set_annotations(Some(cfg.annotations.clone()));
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn entrypoint_and_cmd_combine_like_docker() {
        let ep = s(&["/entry.sh"]);
        let cmd = s(&["serve", "--port", "80"]);
        assert_eq!(
            combine_command(&ep, &cmd, None, &[]),
            s(&["/entry.sh", "serve", "--port", "80"])
        );
        assert_eq!(
            combine_command(&ep, &cmd, None, &s(&["sh"])),
            s(&["/entry.sh", "sh"])
        );
        assert_eq!(
            combine_command(&ep, &cmd, Some(&s(&["env"])), &[]),
            s(&["env"])
        );
        assert_eq!(
            combine_command(&[], &cmd, None, &s(&["ls", "/"])),
            s(&["ls", "/"])
        );
    }

    #[test]
    fn generated_spec_round_trips() {
        let cfg = ContainerConfig {
            rootfs: "/tmp/rootfs".into(),
            args: s(&["sh"]),
            env: s(&["FOO=bar"]),
            hostname: Some("box".into()),
            pids_limit: Some(20),
            memory_limit: Some(64 << 20),
            network_host: true,
            mounts: vec![BindMount {
                source: "/srv".into(),
                destination: "/data".into(),
                readonly: true,
            }],
            ..Default::default()
        };
        let spec = generate(&cfg).unwrap();
        let json = serde_json::to_string(&spec).unwrap();
        let back: Spec = serde_json::from_str(&json).unwrap();
        let env = back.process().as_ref().unwrap().env().clone().unwrap();
        assert!(env.contains(&"FOO=bar".to_string()));
        assert!(env.iter().any(|e| e.starts_with("PATH=")));
        assert!(env.contains(&"HOME=/root".to_string()));
        let ns = back.linux().as_ref().unwrap().namespaces().clone().unwrap();
        assert!(!ns.iter().any(|n| n.typ() == LinuxNamespaceType::Network));
        assert!(
            back.mounts()
                .as_ref()
                .unwrap()
                .iter()
                .any(|m| m.destination() == &PathBuf::from("/data"))
        );
        assert_eq!(back.root().as_ref().unwrap().readonly(), Some(false));
    }
}
