//! Typed instructions: what each Dockerfile line means to the builder.
//!
//! Conversion from the untyped [`Node`] (in `convert`) checks arity, flags, JSON forms and
//! stage names, so the builder gets only well-formed instructions. Words are still unexpanded here
//! (quotes included): the builder substitutes variables with [`Instruction::expand`] at
//! the point in the stage where the instruction runs, because only then is the
//! environment known.

use std::time::Duration;

use super::heredoc::parse_heredoc;
use super::node::{Heredoc, Node};

/// A command in exec form (`["a", "b"]`) or shell form (`a b`, run by the SHELL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLine {
    /// JSON array: run as is.
    Exec(Vec<String>),
    /// Plain text: run as `SHELL + [text]` (by default `/bin/sh -c text`).
    Shell(String),
}

impl CommandLine {
    pub(crate) fn from_node(node: &Node) -> CommandLine {
        let words = node.words();
        if node.json {
            CommandLine::Exec(words)
        } else {
            CommandLine::Shell(words.join(" "))
        }
    }

    /// The argv to execute, given the shell in effect (`SHELL`, default
    /// `["/bin/sh", "-c"]`).
    pub fn argv(&self, shell: &[String]) -> Vec<String> {
        match self {
            CommandLine::Exec(v) => v.clone(),
            CommandLine::Shell(s) => {
                let mut v = shell.to_vec();
                v.push(s.clone());
                v
            }
        }
    }
}

/// `FROM [--platform=p] image [AS name]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct From {
    /// Image reference, `scratch`, or the name of an earlier stage (unexpanded: global
    /// ARGs may be used).
    pub image: String,
    /// `--platform`, unexpanded.
    pub platform: Option<String>,
    /// Stage name, lower-cased.
    pub name: Option<String>,
}

impl From {
    /// Whether the stage starts from an empty filesystem.
    pub fn is_scratch(&self) -> bool {
        self.image.eq_ignore_ascii_case("scratch")
    }
}

/// `RUN [--mount=...] [--network=...] [--security=...] command`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// What to run.
    pub command: CommandLine,
    /// Heredocs announced on the line (`RUN <<EOF`), with their bodies.
    pub heredocs: Vec<Heredoc>,
    /// `--mount` values, unparsed.
    pub mounts: Vec<String>,
    /// `--network`.
    pub network: Option<String>,
    /// `--security`.
    pub security: Option<String>,
}

/// How to execute a RUN once its heredocs are taken into account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunPlan {
    /// Run this command (with the SHELL for the shell form).
    Command(CommandLine),
    /// `RUN <<EOF` whose body starts with `#!`: write `data` to an executable file
    /// called `name` and run that file directly.
    Script {
        /// File name (the delimiter).
        name: String,
        /// The script, tabs stripped for `<<-`.
        data: String,
    },
}

impl Run {
    /// What to execute, following the reference builder: a RUN that is a single heredoc
    /// runs its body through the shell (or as a script when it has a shebang); any
    /// other use of heredocs hands the shell the line followed by the bodies and
    /// delimiters, so the shell itself feeds them to the commands.
    pub fn plan(&self) -> RunPlan {
        let CommandLine::Shell(text) = &self.command else {
            return RunPlan::Command(self.command.clone());
        };
        let Some(first) = self.heredocs.first() else {
            return RunPlan::Command(self.command.clone());
        };
        if let Ok(Some(_)) = parse_heredoc(text.trim()) {
            let data = first.chomped_content();
            if data.starts_with("#!") {
                return RunPlan::Script {
                    name: first.name.clone(),
                    data,
                };
            }
            return RunPlan::Command(CommandLine::Shell(data));
        }
        let mut full = text.clone();
        for h in &self.heredocs {
            full.push('\n');
            full.push_str(&h.content);
            full.push_str(&h.name);
        }
        RunPlan::Command(CommandLine::Shell(full))
    }
}

/// A file given inline to COPY/ADD with a heredoc (`COPY <<EOF /dest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineSource {
    /// The delimiter, used as the file name.
    pub name: String,
    /// The body (tabs already stripped for `<<-`).
    pub data: String,
    /// Substitute variables in the body (delimiter unquoted).
    pub expand: bool,
}

/// COPY and ADD arguments.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CopySpec {
    /// Source paths (context-relative, or URLs for ADD), unexpanded.
    pub sources: Vec<String>,
    /// Heredoc sources.
    pub inline: Vec<InlineSource>,
    /// Destination, unexpanded.
    pub dest: String,
    /// The arguments were a JSON array (then whitespace in paths is literal).
    pub json: bool,
    /// `--from=stage|image` (COPY only).
    pub from: Option<String>,
    /// `--chown=user[:group]`.
    pub chown: Option<String>,
    /// `--chmod=mode`.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--parents` (COPY only).
    pub parents: bool,
    /// `--exclude=pattern`, repeatable.
    pub excludes: Vec<String>,
    /// `--checksum=sha256:...` (ADD only).
    pub checksum: Option<String>,
    /// `--keep-git-dir` (ADD only).
    pub keep_git_dir: bool,
}

/// One `ARG name[=default]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    /// The name.
    pub name: String,
    /// Default value (unexpanded), if given.
    pub default: Option<String>,
}

/// `HEALTHCHECK`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable any inherited check.
    None,
    /// `HEALTHCHECK [options] CMD command`.
    Cmd {
        /// The check command.
        test: CommandLine,
        /// `--interval` (None: default).
        interval: Option<Duration>,
        /// `--timeout`.
        timeout: Option<Duration>,
        /// `--start-period`.
        start_period: Option<Duration>,
        /// `--start-interval`.
        start_interval: Option<Duration>,
        /// `--retries`.
        retries: Option<u32>,
    },
}

impl Healthcheck {
    /// The `Test` array of an image config: `["NONE"]`, `["CMD", ...]` or
    /// `["CMD-SHELL", "text"]`.
    pub fn test(&self) -> Vec<String> {
        match self {
            Healthcheck::None => vec!["NONE".into()],
            Healthcheck::Cmd {
                test: CommandLine::Exec(v),
                ..
            } => {
                let mut t = vec!["CMD".to_string()];
                t.extend(v.iter().cloned());
                t
            }
            Healthcheck::Cmd {
                test: CommandLine::Shell(s),
                ..
            } => vec!["CMD-SHELL".into(), s.clone()],
        }
    }
}

/// `ONBUILD instruction`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Onbuild {
    /// The trigger's source text, stored in the image config and parsed again when a
    /// child image is built from it.
    pub expression: String,
    /// The trigger, already checked.
    pub trigger: Box<Instruction>,
}

/// A Dockerfile instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    /// `FROM`: starts a stage.
    From(From),
    /// `RUN`: executes a command in a container, producing a layer.
    Run(Run),
    /// `CMD`: the default command (or default ENTRYPOINT arguments).
    Cmd(CommandLine),
    /// `ENTRYPOINT`: the executable; resets an inherited CMD.
    Entrypoint(CommandLine),
    /// `ENV k=v ...` / `ENV k v`, unexpanded, in order.
    Env(Vec<(String, String)>),
    /// `ARG name[=default] ...`.
    Arg(Vec<ArgDecl>),
    /// `LABEL k=v ...`, unexpanded, in order.
    Label(Vec<(String, String)>),
    /// `MAINTAINER text` (deprecated; sets the image author).
    Maintainer(String),
    /// Ports (`80`, `53/udp`), unexpanded.
    Expose(Vec<String>),
    /// `VOLUME` paths, unexpanded.
    Volume(Vec<String>),
    /// `USER user[:group]`, unexpanded.
    User(String),
    /// `WORKDIR path`, unexpanded (relative paths resolve against the previous one).
    Workdir(String),
    /// `COPY`.
    Copy(CopySpec),
    /// `ADD`: like COPY, plus local tar extraction and URLs.
    Add(CopySpec),
    /// `SHELL ["exe", "arg"]`.
    Shell(Vec<String>),
    /// `STOPSIGNAL signal`, unexpanded.
    StopSignal(String),
    /// `HEALTHCHECK`.
    Healthcheck(Healthcheck),
    /// `ONBUILD trigger`.
    Onbuild(Onbuild),
}

impl Instruction {
    /// The keyword in upper case.
    pub fn keyword(&self) -> &'static str {
        match self {
            Instruction::From(_) => "FROM",
            Instruction::Run(_) => "RUN",
            Instruction::Cmd(_) => "CMD",
            Instruction::Entrypoint(_) => "ENTRYPOINT",
            Instruction::Env(_) => "ENV",
            Instruction::Arg(_) => "ARG",
            Instruction::Label(_) => "LABEL",
            Instruction::Maintainer(_) => "MAINTAINER",
            Instruction::Expose(_) => "EXPOSE",
            Instruction::Volume(_) => "VOLUME",
            Instruction::User(_) => "USER",
            Instruction::Workdir(_) => "WORKDIR",
            Instruction::Copy(_) => "COPY",
            Instruction::Add(_) => "ADD",
            Instruction::Shell(_) => "SHELL",
            Instruction::StopSignal(_) => "STOPSIGNAL",
            Instruction::Healthcheck(_) => "HEALTHCHECK",
            Instruction::Onbuild(_) => "ONBUILD",
        }
    }
}

/// An instruction with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The instruction.
    pub instruction: Instruction,
    /// First line (1-based).
    pub start_line: usize,
    /// Last line, continuations and heredoc bodies included.
    pub end_line: usize,
    /// The instruction's text as written (continuations joined, trimmed): what build
    /// output and history show.
    pub source: String,
}

/// All instruction keywords, for "did you mean" hints.
pub const KEYWORDS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];
