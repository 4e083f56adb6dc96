//! The builder proper: runs the stages of a plan step by step, each step looked up in
//! the cache first and executed (RUN, COPY/ADD, metadata) on a miss.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use super::cache::{self, Cache, KeyParts, Record};
use super::context::Context;
use super::history;
use super::mounts::StepRoot;
use super::output::Output;
use super::plan::earlier_stage_named;
use super::stage::StageState;
use super::steps::{self, copy::Sources, fetch::fetch};
use super::{BuildError, BuildOptions, CANCELLED};
use crate::digest::Digest;
use crate::dockerfile::{self, CopySpec, Dockerfile, Instruction, Lexer, Located};
use crate::oci::Platform;
use crate::store::Store;

/// The 12-digit short form of an image ID.
pub fn short(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}

/// Where a COPY/ADD step's sources come from, resolved before the cache lookup.
#[derive(Default)]
struct Prepared {
    /// Checksums for the cache key.
    checksums: BTreeMap<String, String>,
    /// Context paths and downloads.
    sources: Sources,
    /// `--from`: the layers (top first) of the stage or image to copy from.
    from_lowers: Option<Vec<PathBuf>>,
    /// History calls a single regular file `file:`, anything else `dir:`.
    single_file: bool,
    /// Downloads, removed when the step is done.
    _downloads: Option<tempfile::TempDir>,
}

/// One build in progress.
pub struct Builder<'a> {
    pub(super) store: &'a Store,
    pub(super) cache: Cache,
    pub(super) ctx: Context,
    pub(super) lex: Lexer,
    pub(super) df: &'a Dockerfile,
    pub(super) global: BTreeMap<String, String>,
    pub(super) opts: &'a BuildOptions,
    pub(super) out: Output,
    pub(super) finished: Vec<Option<StageState>>,
    pub(super) used_args: BTreeSet<String>,
    pub(super) step: usize,
    pub(super) total: usize,
}

fn step_err(l: &Located, message: impl std::fmt::Display) -> BuildError {
    BuildError::Step {
        line: l.start_line,
        text: l.source.lines().next().unwrap_or("").to_string(),
        message: message.to_string(),
    }
}

impl Builder<'_> {
    /// Builds stage `i` (its base, its ONBUILD triggers, its steps).
    pub fn build_stage(&mut self, i: usize) -> Result<StageState, BuildError> {
        let stage = &self.df.stages[i];
        self.step += 1;
        self.out.step(self.step, self.total, &stage.source);
        let located = Located {
            instruction: Instruction::From(stage.from.clone()),
            start_line: stage.start_line,
            end_line: stage.start_line,
            source: stage.source.clone(),
        };
        let from = stage
            .from
            .expand(&self.lex, &self.global)
            .map_err(|e| step_err(&located, e))?;
        if let Some(p) = from.platform.as_deref().filter(|p| !p.is_empty()) {
            let want = Platform::parse(p).map_err(|e| step_err(&located, e))?;
            if !want.matches(&Platform::host()) {
                return Err(step_err(
                    &located,
                    format!(
                        "--platform={p}: only the host platform ({}/{}) can be built here",
                        Platform::host().os,
                        Platform::host().architecture
                    ),
                ));
            }
        }
        let mut state = if from.is_scratch() {
            StageState::scratch()
        } else if let Some(j) = earlier_stage_named(self.df, i, &from.image) {
            let base = self.finished[j]
                .clone()
                .ok_or_else(|| step_err(&located, "stage not built"))?;
            StageState::from_image(base.config, base.layers, base.image_id)
        } else {
            let img = self.store.resolve(&from.image).map_err(|e| {
                step_err(
                    &located,
                    format!("{e} (pull, load or import it into the store first)"),
                )
            })?;
            StageState::from_image(
                img.config.clone(),
                img.manifest.layers.clone(),
                img.id().to_string(),
            )
        };
        self.out.arrow(short(&state.image_id));
        let triggers: Vec<String> = state
            .container()
            .extra
            .remove("OnBuild")
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        if !triggers.is_empty() {
            self.out.line(&format!(
                "# Executing {} build trigger{}",
                triggers.len(),
                if triggers.len() == 1 { "" } else { "s" }
            ));
            let parsed = dockerfile::parse_triggers(&triggers.join("\n"))
                .map_err(|e| step_err(&located, format!("ONBUILD trigger: {e}")))?;
            for t in &parsed {
                self.out.arrow(&format!("Trigger: {}", t.source));
                self.run_step(&mut state, t)?;
            }
        }
        for located in &stage.instructions {
            self.step += 1;
            self.out.step(self.step, self.total, &located.source);
            self.run_step(&mut state, located)?;
        }
        Ok(state)
    }

    /// One instruction: cache lookup, else execution and a new cache record.
    fn run_step(&mut self, state: &mut StageState, located: &Located) -> Result<(), BuildError> {
        if CANCELLED.load(Ordering::SeqCst) {
            return Err(BuildError::Interrupted);
        }
        let env = state.substitution_env();
        let instr = located
            .instruction
            .expand(&self.lex, &env)
            .map_err(|e| step_err(located, e))?;
        let prepared = self.prepare(&instr, located)?;
        let parts = KeyParts {
            parent: state.image_id.clone(),
            instruction: located.source.clone(),
            detail: format!("{instr:?}"),
            env,
            sources: prepared.checksums.clone(),
        };
        match &instr {
            Instruction::Arg(decls) => {
                for d in decls {
                    let value = self
                        .opts
                        .build_args
                        .get(&d.name)
                        .cloned()
                        .or_else(|| d.default.clone())
                        .or_else(|| self.global.get(&d.name).cloned());
                    self.used_args.insert(d.name.clone());
                    match value {
                        Some(v) => state.args.insert(d.name.clone(), v),
                        None => state.args.remove(&d.name),
                    };
                }
            }
            Instruction::Cmd(_) => state.cmd_set = true,
            _ => {}
        }
        if !self.opts.no_cache
            && let Some(rec) = self.cache.lookup(&parts)
            && state.restore(self.store, &rec.manifest).is_some()
        {
            self.out.arrow("Using cache");
            self.out.arrow(short(&state.image_id));
            return Ok(());
        }
        if self.opts.explain_cache && !self.opts.no_cache {
            for why in self.cache.explain(&parts)? {
                self.out.arrow(&format!("Cache miss: {why}"));
            }
        }
        self.execute(state, &instr, located, prepared)?;
        let key = parts.key();
        let manifest = state.snapshot(self.store, &key)?;
        self.store.hold(&cache::holder_name(&key), &manifest)?;
        self.cache.insert(&Record {
            parts,
            manifest,
            image_id: Digest::parse(&state.image_id)?,
        })?;
        self.out.arrow(short(&state.image_id));
        Ok(())
    }

    /// Resolves and checksums COPY/ADD sources (and downloads ADD URLs).
    fn prepare(&self, instr: &Instruction, located: &Located) -> Result<Prepared, BuildError> {
        let (spec, is_add) = match instr {
            Instruction::Copy(s) => (s, false),
            Instruction::Add(s) => (s, true),
            _ => return Ok(Prepared::default()),
        };
        if spec.parents {
            return Err(step_err(
                located,
                "--parents is not supported by this builder",
            ));
        }
        if !spec.excludes.is_empty() {
            return Err(step_err(
                located,
                "--exclude is not supported by this builder",
            ));
        }
        let mut p = Prepared::default();
        for inline in &spec.inline {
            p.checksums.insert(
                format!("heredoc:{}", inline.name),
                Digest::of(inline.data.as_bytes()).hex().to_string(),
            );
        }
        if let Some(from) = &spec.from {
            let name = self
                .lex
                .expand(from, &self.global)
                .map_err(|e| step_err(located, e))?;
            let (id, lowers) = self.copy_source(&name, located)?;
            p.checksums
                .insert(format!("from:{id}"), spec.sources.join("\n"));
            p.from_lowers = Some(lowers);
            return Ok(p);
        }
        if let Some(git) = spec.sources.iter().find(|s| {
            is_add
                && (s.starts_with("git@")
                    || s.starts_with("git://")
                    || ((s.starts_with("http://") || s.starts_with("https://"))
                        && s.split('#').next().is_some_and(|u| u.ends_with(".git"))))
        }) {
            return Err(step_err(
                located,
                format!("{git}: git sources are not supported by this builder"),
            ));
        }
        let (urls, local): (Vec<&String>, Vec<&String>) = spec
            .sources
            .iter()
            .partition(|s| is_add && (s.starts_with("http://") || s.starts_with("https://")));
        for s in &local {
            let found = self.ctx.resolve(s).map_err(|e| step_err(located, e))?;
            p.sources.paths.extend(found);
        }
        let local: Vec<String> = local.into_iter().cloned().collect();
        p.checksums.extend(
            self.ctx
                .checksum(&local)
                .map_err(|e| step_err(located, e))?,
        );
        p.single_file = urls.is_empty()
            && spec.inline.len() + p.sources.paths.len() == 1
            && (p.sources.paths.is_empty() || self.ctx.root().join(&p.sources.paths[0]).is_file());
        if !urls.is_empty() {
            let dir = self.store.temp_dir("build-fetch-")?;
            for (n, url) in urls.iter().enumerate() {
                let file = dir.path().join(n.to_string());
                let sum = fetch(url, &file).map_err(|e| step_err(located, e))?;
                if let Some(want) = &spec.checksum
                    && want.strip_prefix("sha256:").unwrap_or(want) != sum
                {
                    return Err(step_err(
                        located,
                        format!("{url}: content has digest sha256:{sum}, --checksum wants {want}"),
                    ));
                }
                p.checksums.insert(format!("url:{url}"), sum);
                p.sources.fetched.push((url.to_string(), file));
            }
            p.single_file = urls.len() == 1 && local.is_empty() && spec.inline.is_empty();
            p._downloads = Some(dir);
        }
        Ok(p)
    }

    /// The image ID and layer directories of `COPY --from=NAME`: an earlier stage (by
    /// name or number) or a stored image.
    fn copy_source(
        &self,
        name: &str,
        located: &Located,
    ) -> Result<(String, Vec<PathBuf>), BuildError> {
        if let Some(j) = self.df.stage_index(name)
            && let Some(st) = &self.finished[j]
        {
            return Ok((st.image_id.clone(), st.lower_dirs(self.store)?));
        }
        let img = self
            .store
            .resolve(name)
            .map_err(|e| step_err(located, format!("--from={name}: {e}")))?;
        Ok((img.id().to_string(), self.store.layer_dirs(&img)?))
    }

    fn execute(
        &mut self,
        state: &mut StageState,
        instr: &Instruction,
        located: &Located,
        prepared: Prepared,
    ) -> Result<(), BuildError> {
        match instr {
            Instruction::Run(r) => self.run(state, r, located),
            Instruction::Copy(spec) | Instruction::Add(spec) => self.copy(
                state,
                spec,
                matches!(instr, Instruction::Add(_)),
                located,
                prepared,
            ),
            Instruction::Workdir(_) => {
                let created_by = steps::meta::apply(state, instr)
                    .map_err(|e| step_err(located, e))?
                    .unwrap_or_default();
                let root = StepRoot::mount(self.store, &state.lower_dirs(self.store)?)?;
                let wd = state.workdir();
                let host = runtime::paths::secure_join(root.merged(), Path::new(&wd))
                    .map_err(|e| step_err(located, e))?;
                fs::create_dir_all(&host).map_err(|e| step_err(located, e))?;
                root.unmount()?;
                if root.upper_is_empty()? {
                    state.push_history(created_by, None);
                } else {
                    let layer = self
                        .store
                        .add_layer_dir(root.upper(), state.chain_top().as_ref())?;
                    state.push_history(created_by, Some((layer.diff_id, layer.descriptor)));
                }
                Ok(())
            }
            other => {
                let created_by = steps::meta::apply(state, other)
                    .map_err(|e| step_err(located, e))?
                    .ok_or_else(|| step_err(located, "unexpected instruction"))?;
                state.push_history(created_by, None);
                Ok(())
            }
        }
    }

    fn run(
        &mut self,
        state: &mut StageState,
        r: &dockerfile::Run,
        located: &Located,
    ) -> Result<(), BuildError> {
        let network_host = steps::run::check_flags(r).map_err(|e| step_err(located, e))?;
        let plan = steps::run::plan(r, &state.shell());
        let root = StepRoot::mount(self.store, &state.lower_dirs(self.store)?)?;
        let id = steps::run::container_id();
        self.out
            .arrow(&format!("Running in {}", id.trim_start_matches("build-")));
        let code = steps::run::execute(
            state,
            &plan,
            root.merged(),
            root.scratch(),
            &steps::run::RunOptions {
                runtime_root: &self.store.root().join("build-runtime"),
                id: &id,
                network_host,
                quiet: self.opts.quiet,
            },
        )
        .map_err(|e| step_err(located, e))?;
        root.unmount()?;
        if code != 0 {
            return Err(BuildError::RunFailed {
                command: plan.shown.join(" "),
                code,
            });
        }
        let layer = self
            .store
            .add_layer_dir(root.upper(), state.chain_top().as_ref())?;
        let created_by = history::run(&plan.shown, &state.run_args());
        state.push_history(created_by, Some((layer.diff_id, layer.descriptor)));
        Ok(())
    }

    fn copy(
        &mut self,
        state: &mut StageState,
        spec: &CopySpec,
        is_add: bool,
        located: &Located,
        mut prepared: Prepared,
    ) -> Result<(), BuildError> {
        let root = StepRoot::mount(self.store, &state.lower_dirs(self.store)?)?;
        let chown = match &spec.chown {
            Some(c) => {
                let u = runtime::user::resolve_user(root.merged(), c)
                    .map_err(|e| step_err(located, format!("--chown={c}: {e}")))?;
                Some((u.uid, u.gid))
            }
            None => None,
        };
        let from_root = match &prepared.from_lowers {
            Some(lowers) => Some(StepRoot::mount(self.store, lowers)?),
            None => None,
        };
        let ctx = &self.ctx;
        let visible_ctx = |rel: &str| ctx.is_visible(rel);
        let visible_all = |_: &str| true;
        let (src_root, visible): (PathBuf, &dyn Fn(&str) -> bool) = match &from_root {
            Some(r) => {
                for pattern in &spec.sources {
                    let found = dockerfile::wildcard::glob(r.merged(), pattern)
                        .map_err(|e| step_err(located, e))?;
                    if found.is_empty() {
                        return Err(step_err(
                            located,
                            format!("{pattern}: no such file or directory in the --from image"),
                        ));
                    }
                    prepared.sources.paths.extend(found);
                }
                prepared.single_file = prepared.sources.paths.len() == 1
                    && r.merged().join(&prepared.sources.paths[0]).is_file();
                (r.merged().to_path_buf(), &visible_all)
            }
            None => (ctx.root().to_path_buf(), &visible_ctx),
        };
        steps::copy::copy(
            root.merged(),
            root.upper(),
            &src_root,
            visible,
            &prepared.sources,
            spec,
            is_add,
            &state.workdir(),
            chown,
        )
        .map_err(|e| step_err(located, e))?;
        drop(from_root);
        root.unmount()?;
        let layer = self
            .store
            .add_layer_dir(root.upper(), state.chain_top().as_ref())?;
        let kind = if prepared.single_file { "file" } else { "dir" };
        let keyword = if is_add { "ADD" } else { "COPY" };
        let created_by = history::copy(
            keyword,
            kind,
            &cache::combined(&prepared.checksums),
            &spec.dest,
        );
        state.push_history(created_by, Some((layer.diff_id, layer.descriptor)));
        Ok(())
    }
}
