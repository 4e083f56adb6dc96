//! Dockerfile builds (issue 5): `imagectl build`.
//!
//! [`build`] reads the Dockerfile with [`crate::dockerfile`], works out which stages the
//! target needs, and runs each stage step by step:
//!
//! - FROM starts from a stored image, an earlier stage or `scratch`, and fires the base
//!   image's ONBUILD triggers;
//! - RUN runs in a container of the project's runtime over a union mount of the layers
//!   so far plus a fresh upper ([`steps::run`], [`mounts`]); COPY/ADD write into such a
//!   mount ([`steps::copy`]); the upper becomes the step's layer;
//! - everything else changes the config only ([`steps::meta`]) and adds an
//!   `empty_layer` history entry ([`history`] writes `created_by` as docker does).
//!
//! Every step is looked up in the [`cache`] first (parent image ID + expanded
//! instruction + ARG/ENV in effect + COPY/ADD source checksums); a hit reuses the stored
//! snapshot. Each snapshot is a manifest marked as a cache entry and kept alive by a
//! store hold named `build-cache-<key>`, so the cache outlives untagging the final image
//! without blocking `rmi` of it (the tagged image's manifest is a different one).

pub mod cache;
pub mod context;
pub mod history;
pub mod mounts;
pub mod output;
pub mod stage;
pub mod steps;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use cache::{Cache, KeyParts, Record};
use context::Context;
use mounts::StepRoot;
use output::Output;
use stage::StageState;
use steps::copy::Sources;

use crate::digest::Digest;
use crate::dockerfile::{self, CopySpec, Dockerfile, Instruction, Lexer, Located, ParseError};
use crate::error::Error;
use crate::oci::Platform;
use crate::reference::Reference;
use crate::store::{Image, Store};

/// What `imagectl build` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The build context directory.
    pub context: PathBuf,
    /// The Dockerfile (default: `CONTEXT/Dockerfile`; `-` reads it from stdin).
    pub dockerfile: Option<PathBuf>,
    /// Names to tag the result with.
    pub tags: Vec<Reference>,
    /// `--build-arg` values.
    pub build_args: BTreeMap<String, String>,
    /// `--target`: the stage to stop at (default: the last).
    pub target: Option<String>,
    /// `--no-cache`: run every step.
    pub no_cache: bool,
    /// `--explain-cache`: say why each miss missed.
    pub explain_cache: bool,
    /// `-q`: print only the image ID.
    pub quiet: bool,
}

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The store, the context or a layer operation failed.
    #[error(transparent)]
    Store(#[from] Error),
    /// The Dockerfile does not parse.
    #[error("Dockerfile {0}")]
    Parse(ParseError),
    /// A step failed before or while running.
    #[error("Dockerfile line {line}: {text}: {message}")]
    Step {
        /// The instruction's first line.
        line: usize,
        /// The instruction as written.
        text: String,
        /// What went wrong.
        message: String,
    },
    /// A RUN exited non-zero (docker's wording).
    #[error("The command '{command}' returned a non-zero code: {code}")]
    RunFailed {
        /// The command as history would show it.
        command: String,
        /// Its exit code.
        code: i32,
    },
    /// The command line asked for something impossible (unknown target...).
    #[error("{0}")]
    Usage(String),
    /// The build was interrupted (SIGINT/SIGTERM) between steps.
    #[error("build interrupted")]
    Interrupted,
}

impl From<ParseError> for BuildError {
    fn from(e: ParseError) -> Self {
        BuildError::Parse(e)
    }
}

impl BuildError {
    /// The exit code `imagectl build` ends with: a failed RUN's own code, else 1.
    pub fn exit_code(&self) -> i32 {
        match self {
            BuildError::RunFailed { code, .. } if (1..=255).contains(code) => *code,
            BuildError::Interrupted => 130,
            _ => 1,
        }
    }
}

/// Set by [`cancel`] (from a signal handler): the build stops before its next step,
/// releasing its mounts and temp dirs on the way out.
static CANCELLED: AtomicBool = AtomicBool::new(false);

/// Asks a running build to stop at the next step boundary. Async-signal-safe (one
/// atomic store), so a SIGINT/SIGTERM handler may call it.
pub fn cancel() {
    CANCELLED.store(true, Ordering::SeqCst);
}

/// Result of a successful build.
#[derive(Debug, Clone)]
pub struct Built {
    /// The final image, as stored.
    pub image: Image,
    /// Wall-clock time of the whole build.
    pub elapsed: std::time::Duration,
}

/// Builds the image `opts` describes and tags it; prints the build's progress.
pub fn build(store: &Store, opts: &BuildOptions) -> Result<Built, BuildError> {
    let started = Instant::now();
    let out = Output { quiet: opts.quiet };
    let df_path = opts
        .dockerfile
        .clone()
        .unwrap_or_else(|| opts.context.join("Dockerfile"));
    let text = if df_path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        fs::read_to_string(&df_path)
    }
    .map_err(|e| Error::Io {
        path: df_path.clone(),
        source: e,
    })?;
    let df = dockerfile::parse(&text)?;
    for w in &df.warnings {
        eprintln!("warning: {w}");
    }
    let ctx = Context::open(&opts.context)?;
    let _content = store.content_lock()?;
    let mut global = platform_args();
    global.extend(
        df.global_arg_values(&opts.build_args)
            .map_err(|e| BuildError::Usage(format!("global ARG: {e}")))?,
    );
    let target = match &opts.target {
        Some(t) => df
            .stage_index(t)
            .ok_or_else(|| BuildError::Usage(format!("target stage {t:?} could not be found")))?,
        None => df.stages.len() - 1,
    };
    let needed = needed_stages(&df, target, &global);
    let total = needed
        .iter()
        .map(|i| 1 + df.stages[*i].instructions.len())
        .sum();
    let mut b = Builder {
        store,
        cache: Cache::open(store)?,
        ctx,
        lex: df.lexer(),
        df: &df,
        global,
        opts,
        out,
        finished: vec![None; df.stages.len()],
        used_args: BTreeSet::new(),
        step: 0,
        total,
    };
    for i in needed {
        let st = b.build_stage(i)?;
        b.finished[i] = Some(st);
    }
    let state = b.finished[target]
        .take()
        .ok_or_else(|| BuildError::Usage("the target stage was not built".into()))?;
    let unused: Vec<&String> = opts
        .build_args
        .keys()
        .filter(|k| !b.used_args.contains(*k) && !global_declares(&df, k))
        .collect();
    if !unused.is_empty() {
        let names: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
        eprintln!(
            "[Warning] One or more build-args [{}] were not consumed",
            names.join(" ")
        );
    }
    if CANCELLED.load(Ordering::SeqCst) {
        return Err(BuildError::Interrupted);
    }
    let image = commit(store, &state, &opts.tags)?;
    let elapsed = started.elapsed();
    out.line(&format!("Successfully built {}", image.id().short()));
    for t in &opts.tags {
        out.line(&format!("Successfully tagged {}", t.familiar()));
    }
    out.line(&format!("Build finished in {:.2}s", elapsed.as_secs_f64()));
    if opts.quiet {
        println!("{}", image.id());
    }
    Ok(Built { image, elapsed })
}

/// The automatic platform ARGs docker defines (`BUILDPLATFORM`, `TARGETARCH`, ...):
/// usable in FROM lines and, once declared with `ARG NAME`, in a stage. Builds here are
/// always for the host.
fn platform_args() -> BTreeMap<String, String> {
    let p = Platform::host();
    let variant = p.variant.clone().unwrap_or_default();
    let platform = match &p.variant {
        Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
        None => format!("{}/{}", p.os, p.architecture),
    };
    let mut out = BTreeMap::new();
    for side in ["BUILD", "TARGET"] {
        out.insert(format!("{side}PLATFORM"), platform.clone());
        out.insert(format!("{side}OS"), p.os.clone());
        out.insert(format!("{side}ARCH"), p.architecture.clone());
        out.insert(format!("{side}VARIANT"), variant.clone());
    }
    out
}

fn global_declares(df: &Dockerfile, name: &str) -> bool {
    df.global_args.iter().any(|l| match &l.instruction {
        Instruction::Arg(decls) => decls.iter().any(|d| d.name == name),
        _ => false,
    })
}

/// Stores the final config and layers as an image with every tag.
fn commit(store: &Store, state: &StageState, tags: &[Reference]) -> Result<Image, Error> {
    let image = store.commit_image(&state.config, &state.layers, tags.first())?;
    for t in tags.iter().skip(1) {
        store.register_manifest(&image.manifest_descriptor, Some(t))?;
    }
    store.load_image(&image.manifest_descriptor)
}

/// The stages `target` needs (itself, its FROM stage, its COPY --from stages,
/// recursively), in file order.
fn needed_stages(df: &Dockerfile, target: usize, global: &BTreeMap<String, String>) -> Vec<usize> {
    let lex = df.lexer();
    let mut need = BTreeSet::new();
    let mut todo = vec![target];
    while let Some(i) = todo.pop() {
        if !need.insert(i) {
            continue;
        }
        let stage = &df.stages[i];
        if let Ok(img) = lex.expand(&stage.from.image, global)
            && let Some(j) = earlier_stage_named(df, i, &img)
        {
            todo.push(j);
        }
        for l in &stage.instructions {
            if let Instruction::Copy(CopySpec { from: Some(f), .. }) = &l.instruction
                && let Ok(name) = lex.expand(f, global)
                && let Some(j) = df.stage_index(&name).filter(|j| *j < i)
            {
                todo.push(j);
            }
        }
    }
    need.into_iter().collect()
}

fn earlier_stage_named(df: &Dockerfile, i: usize, name: &str) -> Option<usize> {
    df.stages[..i]
        .iter()
        .position(|s| s.name().is_some_and(|n| n.eq_ignore_ascii_case(name)))
}

fn short(id: &str) -> &str {
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

struct Builder<'a> {
    store: &'a Store,
    cache: Cache,
    ctx: Context,
    lex: Lexer,
    df: &'a Dockerfile,
    global: BTreeMap<String, String>,
    opts: &'a BuildOptions,
    out: Output,
    finished: Vec<Option<StageState>>,
    used_args: BTreeSet<String>,
    step: usize,
    total: usize,
}

fn step_err(l: &Located, message: impl std::fmt::Display) -> BuildError {
    BuildError::Step {
        line: l.start_line,
        text: l.source.lines().next().unwrap_or("").to_string(),
        message: message.to_string(),
    }
}

impl Builder<'_> {
    fn build_stage(&mut self, i: usize) -> Result<StageState, BuildError> {
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

/// Downloads `url` into `file`; returns the SHA-256 of the body (for the cache key).
fn fetch(url: &str, file: &Path) -> Result<String, String> {
    use sha2::Digest as _;
    let resp = ureq::get(url)
        .call()
        .map_err(|e| format!("fetching {url}: {e}"))?;
    let mut reader = resp.into_body().into_reader();
    let mut f = fs::File::create(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = std::io::Read::read(&mut reader, &mut buf)
            .map_err(|e| format!("fetching {url}: {e}"))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        std::io::Write::write_all(&mut f, &buf[..n])
            .map_err(|e| format!("{}: {e}", file.display()))?;
    }
    Ok(hex::encode(h.finalize()))
}
