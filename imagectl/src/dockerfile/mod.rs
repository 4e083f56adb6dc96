//! Dockerfile parsing: directives, instructions, variable substitution, the dump
//! notation and `.dockerignore` matching.
//!
//! No crate reads real Dockerfiles completely, so this is a hand-written port of the
//! reference parser (moby/buildkit `frontend/dockerfile/parser`, `instructions` and
//! `shell`): the same file must mean the same thing here as under `docker build`.
//!
//! - [`parse`] reads a file into [`Dockerfile`]: global ARGs, stages, typed
//!   [`Instruction`]s with line numbers. Errors are [`ParseError`]s
//!   (`line N: what: text`).
//! - [`Dockerfile::dump`] prints the reference parser's notation, one instruction per
//!   line: `(run "echo hi")`, `(copy ["--from=a"] "x" "y")`, `(env "k" "v" "=")`.
//! - [`Lexer`], [`expand`] and [`expand_words`] substitute variables; the builder uses
//!   [`Instruction::expand`] to apply them to an instruction the way the reference does.
//! - [`ignore`] matches `.dockerignore` patterns; [`wildcard`] resolves COPY/ADD source
//!   wildcards.
//!
//! ```
//! use std::collections::BTreeMap;
//! use imagectl::dockerfile::{self, Instruction};
//!
//! let df = dockerfile::parse("FROM busybox\nENV greeting=\"hello $who\"\nRUN echo $greeting\n").unwrap();
//! assert_eq!(df.dump(), "(from \"busybox\")\n(env \"greeting\" \"\\\"hello $who\\\"\" \"=\")\n(run \"echo $greeting\")\n");
//! let env: BTreeMap<String, String> = [("who".to_string(), "you".to_string())].into();
//! let env_step = &df.stages[0].instructions[0];
//! assert_eq!(
//!     env_step.instruction.expand(&df.lexer(), &env).unwrap(),
//!     Instruction::Env(vec![("greeting".into(), "hello you".into())])
//! );
//! ```

mod args;
mod convert;
mod directives;
mod duration;
mod env;
mod error;
mod expand;
mod flags;
mod heredoc;
pub mod ignore;
mod instructions;
mod lines;
mod node;
mod parser;
mod pattern;
mod quote;
mod shell;
mod split;
pub mod wildcard;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

pub use directives::Directives;
pub use env::{Env, NoEnv};
pub use error::{ExpandError, ParseError};
pub use instructions::{
    ArgDecl, CommandLine, CopySpec, From, Healthcheck, InlineSource, Instruction, KEYWORDS,
    Located, Onbuild, Run, RunPlan,
};
pub use node::{Arg, Heredoc, Node};
pub use quote::go_quote;
pub use shell::{Lexer, Processed, expand, expand_words};

/// One build stage: a FROM and the instructions up to the next FROM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// The FROM instruction.
    pub from: From,
    /// Where the FROM is.
    pub start_line: usize,
    /// The FROM line as written.
    pub source: String,
    /// The stage's instructions, in order (no FROM among them).
    pub instructions: Vec<Located>,
}

impl Stage {
    /// The stage's name (`AS name`), lower-cased.
    pub fn name(&self) -> Option<&str> {
        self.from.name.as_deref()
    }
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// Parser directives (escape character, syntax).
    pub directives: Directives,
    /// ARG instructions before the first FROM: usable in FROM lines, and redeclared
    /// (`ARG name`) inside a stage to be visible there.
    pub global_args: Vec<Located>,
    /// The stages, in order.
    pub stages: Vec<Stage>,
    /// Non-fatal findings (empty continuation lines).
    pub warnings: Vec<String>,
    nodes: Vec<Node>,
}

impl Dockerfile {
    /// The reference parser's dump: one `(keyword ...)` per instruction, newline
    /// terminated.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        for n in &self.nodes {
            out.push('(');
            out.push_str(&n.dump());
            out.push_str(")\n");
        }
        out
    }

    /// The untyped instructions, as the dump shows them.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// A lexer using this file's escape character, for substitution.
    pub fn lexer(&self) -> Lexer {
        Lexer::new(self.directives.escape)
    }

    /// The values of the global ARGs (those before the first FROM) for FROM lines:
    /// a `--build-arg` value wins, else the default (itself substituted with the global
    /// ARGs declared before it); an ARG with neither stays unset.
    pub fn global_arg_values(
        &self,
        build_args: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, ExpandError> {
        let lex = self.lexer();
        let mut values = BTreeMap::new();
        for located in &self.global_args {
            let Instruction::Arg(decls) = &located.instruction else {
                continue;
            };
            for d in decls {
                let name = lex.expand(&d.name, &values)?;
                if let Some(v) = build_args.get(&name) {
                    values.insert(name, v.clone());
                } else if let Some(default) = &d.default {
                    let v = lex.expand(default, &values)?;
                    values.insert(name, v);
                }
            }
        }
        Ok(values)
    }

    /// The index of the stage called `name` (case-insensitive), or of the stage with that
    /// number.
    pub fn stage_index(&self, name: &str) -> Option<usize> {
        self.stages
            .iter()
            .position(|s| s.name().is_some_and(|n| n.eq_ignore_ascii_case(name)))
            .or_else(|| {
                name.parse::<usize>()
                    .ok()
                    .filter(|i| *i < self.stages.len())
            })
    }
}

fn locate(node: &Node) -> Result<Located, ParseError> {
    let instruction = convert::from_node(node)
        .map_err(|m| ParseError::new(node.start_line, m, &node.original))?;
    Ok(Located {
        instruction,
        start_line: node.start_line,
        end_line: node.end_line,
        source: node.original.trim().to_string(),
    })
}

/// Parses a Dockerfile.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let raw = parser::parse_raw(text)?;
    if raw.nodes.is_empty() {
        return Err(ParseError::new(
            raw.lines.max(1),
            "file with no instructions",
            "",
        ));
    }
    let mut global_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for node in &raw.nodes {
        let located = locate(node)?;
        match located.instruction {
            Instruction::From(from) => {
                let duplicate = from
                    .name
                    .as_deref()
                    .filter(|n| stages.iter().any(|s| s.name() == Some(*n)));
                if let Some(name) = duplicate {
                    return Err(ParseError::new(
                        node.start_line,
                        format!("duplicate stage name {}", go_quote(name)),
                        &node.original,
                    ));
                }
                stages.push(Stage {
                    from,
                    start_line: located.start_line,
                    source: located.source,
                    instructions: Vec::new(),
                });
            }
            Instruction::Arg(_) if stages.is_empty() => global_args.push(located),
            _ => match stages.last_mut() {
                Some(stage) => stage.instructions.push(located),
                None => {
                    return Err(ParseError::new(
                        node.start_line,
                        "no build stage in current context (only ARG may come before the first FROM)",
                        &node.original,
                    ));
                }
            },
        }
    }
    Ok(Dockerfile {
        directives: raw.directives,
        global_args,
        stages,
        warnings: raw.warnings,
        nodes: raw.nodes,
    })
}

/// Parses instructions without requiring a FROM: for ONBUILD triggers stored in an image
/// config, which fire in a child build.
pub fn parse_triggers(text: &str) -> Result<Vec<Located>, ParseError> {
    let raw = parser::parse_raw(text)?;
    raw.nodes.iter().map(locate).collect()
}
