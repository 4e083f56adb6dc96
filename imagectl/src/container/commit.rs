//! `commit`: a container's writable layer becomes a new image layer (a tar with OCI
//! whiteouts, via [`Store::add_layer_dir`]) on top of the container's image, with a
//! history entry and the `-c` changes (Dockerfile instructions) applied to the config.
//! `export`: the container's merged root filesystem as one tar.

use std::collections::BTreeMap;
use std::io::Write;

use super::manager::Containers;
use super::record::ContainerRecord;
use super::state::Status;
use crate::dockerfile::{self, Instruction};
use crate::error::{Error, Result};
use crate::oci::config::{ContainerConfig, now_rfc3339};
use crate::oci::{History, ImageConfig};
use crate::reference::Reference;
use crate::store::Image;

/// `commit`'s options.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// `-m`: the history comment.
    pub message: Option<String>,
    /// `-a`: the author.
    pub author: Option<String>,
    /// `-c`: Dockerfile instructions applied to the config.
    pub changes: Vec<String>,
    /// `-p`: freeze a running container while its layer is read (docker's default).
    pub pause: bool,
    /// `REPO[:TAG]`.
    pub reference: Option<String>,
}

/// Applies one `-c` instruction to `config` (CMD, ENTRYPOINT, ENV, WORKDIR, USER,
/// LABEL, EXPOSE, VOLUME, STOPSIGNAL), expanding variables with the image's ENV as
/// docker does.
pub fn apply_change(config: &mut ContainerConfig, change: &str) -> Result<()> {
    let bad = |m: String| Error::Other(format!("invalid change {change:?}: {m}"));
    let df =
        dockerfile::parse(&format!("FROM scratch\n{change}\n")).map_err(|e| bad(e.to_string()))?;
    let located = df
        .stages
        .first()
        .and_then(|s| s.instructions.first())
        .ok_or_else(|| bad("no instruction".into()))?;
    let env: BTreeMap<String, String> = config
        .env
        .clone()
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let ins = located
        .instruction
        .expand(&df.lexer(), &env)
        .map_err(|e| bad(e.to_string()))?;
    let shell = vec!["/bin/sh".to_string(), "-c".to_string()];
    match ins {
        Instruction::Cmd(c) => config.cmd = Some(c.argv(&shell)),
        Instruction::Entrypoint(c) => {
            config.entrypoint = Some(c.argv(&shell));
            config.cmd = None;
        }
        Instruction::Env(pairs) => {
            let mut e = config.env.clone().unwrap_or_default();
            for (k, v) in pairs {
                e.retain(|x| x.split('=').next() != Some(k.as_str()));
                e.push(format!("{k}={v}"));
            }
            config.env = Some(e);
        }
        Instruction::Workdir(w) => {
            let base = config.working_dir.clone().unwrap_or_else(|| "/".into());
            config.working_dir = Some(if w.starts_with('/') {
                w
            } else {
                format!("{}/{w}", base.trim_end_matches('/'))
            });
        }
        Instruction::User(u) => config.user = Some(u),
        Instruction::Label(pairs) => {
            let mut l = config.labels.clone().unwrap_or_default();
            l.extend(pairs);
            config.labels = Some(l);
        }
        Instruction::Expose(ports) => {
            let mut p = config.exposed_ports.clone().unwrap_or_default();
            for port in ports {
                let key = if port.contains('/') {
                    port
                } else {
                    format!("{port}/tcp")
                };
                p.insert(key, serde_json::json!({}));
            }
            config.exposed_ports = Some(p);
        }
        Instruction::Volume(vols) => {
            let mut v = config.volumes.clone().unwrap_or_default();
            for vol in vols {
                v.insert(vol, serde_json::json!({}));
            }
            config.volumes = Some(v);
        }
        Instruction::StopSignal(s) => config.stop_signal = Some(s),
        other => {
            return Err(bad(format!(
                "{} is not supported by commit (CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, VOLUME, STOPSIGNAL are)",
                other.keyword()
            )));
        }
    }
    Ok(())
}

/// docker's history `created_by` for a committed container: its command line.
fn created_by(rec: &ContainerRecord) -> String {
    std::iter::once(rec.path.clone())
        .chain(rec.args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ")
}

impl Containers {
    /// Commits the container's writable layer as a new image; returns it.
    pub fn commit(&self, rec: &ContainerRecord, opts: &CommitOptions) -> Result<Image> {
        let reference = match &opts.reference {
            Some(r) => {
                let r = Reference::parse(r)?;
                if r.digest.is_some() {
                    return Err(Error::Other(
                        "commit: a digest can not be used as a tag".into(),
                    ));
                }
                Some(if r.tag.is_none() {
                    r.with_tag("latest")
                } else {
                    r
                })
            }
            None => None,
        };
        let base = self.image_of(rec)?;
        let mut config: ImageConfig = base.config.clone();
        let mut cc = config.config.clone().unwrap_or_default();
        for c in &opts.changes {
            apply_change(&mut cc, c)?;
        }
        let st = self.state(rec);
        let paused_here = opts.pause && st.status == Status::Running;
        if paused_here {
            self.set_paused(rec, true)?;
        }
        let result = (|| {
            let root = self.root_of(rec);
            if crate::mount::is_mounted(&root.merged) {
                sync_fs(&root.merged);
            }
            let _content = self.store().content_lock()?;
            let layer = self
                .store()
                .add_layer_dir(&root.upper, base.chain_ids().last())?;
            let created = now_rfc3339();
            config.created = Some(created.clone());
            if opts.author.is_some() {
                config.author = opts.author.clone();
            }
            config.config = Some(cc);
            config.rootfs.diff_ids.push(layer.diff_id.clone());
            config.history.push(History {
                created: Some(created),
                created_by: Some(created_by(rec)),
                author: opts.author.clone(),
                comment: opts.message.clone(),
                empty_layer: None,
            });
            let mut layers = base.manifest.layers.clone();
            layers.push(layer.descriptor);
            self.store()
                .commit_image(&config, &layers, reference.as_ref())
        })();
        if paused_here {
            let _ = self.set_paused(rec, false);
        }
        result
    }

    /// Writes the container's merged root filesystem as a tar to `out` (mounting the
    /// union for the time of the export when the container is not running).
    pub fn export<W: Write>(&self, rec: &ContainerRecord, out: W) -> Result<W> {
        let root = self.root_of(rec);
        let was_mounted = crate::mount::is_mounted(&root.merged)
            && std::fs::symlink_metadata(&root.merged).is_ok();
        root.mount()?;
        let r = crate::layer::pack_dir(&root.merged, out);
        if !was_mounted && !self.state(rec).status.is_live() {
            let _ = root.unmount();
        }
        r
    }
}

/// Flushes what the container wrote through the union to the upper directory.
fn sync_fs(dir: &std::path::Path) {
    use std::os::fd::AsRawFd;
    if let Ok(f) = std::fs::File::open(dir) {
        // SAFETY: syncfs on an fd we own.
        unsafe { libc::syncfs(f.as_raw_fd()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_apply_like_docker() {
        let mut c = ContainerConfig {
            env: Some(vec!["A=1".into()]),
            cmd: Some(vec!["sh".into()]),
            ..Default::default()
        };
        apply_change(&mut c, "ENV B=$A-x").unwrap();
        apply_change(&mut c, r#"CMD ["echo", "hi"]"#).unwrap();
        apply_change(&mut c, "WORKDIR /srv").unwrap();
        apply_change(&mut c, "EXPOSE 80").unwrap();
        apply_change(&mut c, "LABEL a=b").unwrap();
        apply_change(&mut c, "STOPSIGNAL SIGUSR1").unwrap();
        assert_eq!(c.env.as_deref().unwrap(), ["A=1", "B=1-x"]);
        assert_eq!(c.cmd.as_deref().unwrap(), ["echo", "hi"]);
        assert_eq!(c.working_dir.as_deref(), Some("/srv"));
        assert!(c.exposed_ports.as_ref().unwrap().contains_key("80/tcp"));
        assert_eq!(c.stop_signal.as_deref(), Some("SIGUSR1"));
        apply_change(&mut c, "ENTRYPOINT /bin/x").unwrap();
        assert_eq!(
            c.entrypoint.as_deref().unwrap(),
            ["/bin/sh", "-c", "/bin/x"]
        );
        assert!(c.cmd.is_none());
        assert!(apply_change(&mut c, "RUN true").is_err());
    }
}
