//! Variable substitution applied to whole instructions, field by field, as the reference
//! builder does it.
//!
//! Substituted: ADD, COPY (paths, `--chown`, `--chmod`, unquoted heredoc bodies;
//! `--from` with the global ARGs only), ENV and LABEL (keys and values), ARG, EXPOSE (also split into words),
//! FROM (image and platform), STOPSIGNAL, USER, VOLUME, WORKDIR, and `RUN --mount`.
//! Not substituted: the commands of RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK (the shell
//! does that at run time) and ONBUILD triggers (substituted when they fire in a child).
//! Every reference in one instruction sees the environment as it was before the
//! instruction: `ENV a=1 b=$a` gives `b` the old value of `a`.

use super::env::Env;
use super::error::ExpandError;
use super::instructions::{ArgDecl, CopySpec, From, Instruction, Run};
use super::shell::Lexer;

fn opt(lex: &Lexer, v: &Option<String>, env: &dyn Env) -> Result<Option<String>, ExpandError> {
    v.as_ref().map(|s| lex.expand(s, env)).transpose()
}

fn all(lex: &Lexer, v: &[String], env: &dyn Env) -> Result<Vec<String>, ExpandError> {
    v.iter().map(|s| lex.expand(s, env)).collect()
}

fn pairs(
    lex: &Lexer,
    v: &[(String, String)],
    env: &dyn Env,
) -> Result<Vec<(String, String)>, ExpandError> {
    v.iter()
        .map(|(k, val)| Ok((lex.expand(k, env)?, lex.expand(val, env)?)))
        .collect()
}

impl From {
    /// Substitutes global ARGs in the image and platform.
    pub fn expand(&self, lex: &Lexer, env: &dyn Env) -> Result<From, ExpandError> {
        Ok(From {
            image: lex.expand(&self.image, env)?,
            platform: opt(lex, &self.platform, env)?,
            name: self.name.clone(),
        })
    }
}

impl CopySpec {
    /// Substitutes paths, `--chown` and `--chmod`; heredoc bodies only when their
    /// delimiter was unquoted, and then without quote processing. `--from` is left
    /// alone: the reference expands it with the global ARGs only (see
    /// [`super::Dockerfile::global_arg_values`]), not with the stage's environment.
    pub fn expand(&self, lex: &Lexer, env: &dyn Env) -> Result<CopySpec, ExpandError> {
        let mut out = self.clone();
        out.sources = all(lex, &self.sources, env)?;
        out.dest = lex.expand(&self.dest, env)?;
        out.chown = opt(lex, &self.chown, env)?;
        out.chmod = opt(lex, &self.chmod, env)?;
        for inline in &mut out.inline {
            if inline.expand {
                inline.data = lex.expand_raw(&inline.data, env)?;
            }
        }
        Ok(out)
    }
}

impl Instruction {
    /// This instruction with variables substituted from `env` (the ARGs and ENVs in
    /// effect before it), following the reference builder's rules above.
    pub fn expand(&self, lex: &Lexer, env: &dyn Env) -> Result<Instruction, ExpandError> {
        Ok(match self {
            Instruction::From(f) => Instruction::From(f.expand(lex, env)?),
            Instruction::Run(r) => Instruction::Run(Run {
                mounts: all(lex, &r.mounts, env)?,
                ..r.clone()
            }),
            Instruction::Env(p) => Instruction::Env(pairs(lex, p, env)?),
            Instruction::Label(p) => Instruction::Label(pairs(lex, p, env)?),
            Instruction::Arg(decls) => Instruction::Arg(
                decls
                    .iter()
                    .map(|d| {
                        Ok(ArgDecl {
                            name: lex.expand(&d.name, env)?,
                            default: opt(lex, &d.default, env)?,
                        })
                    })
                    .collect::<Result<_, ExpandError>>()?,
            ),
            Instruction::Expose(ports) => {
                let mut out = Vec::new();
                for p in ports {
                    out.extend(lex.expand_words(p, env)?);
                }
                Instruction::Expose(out)
            }
            Instruction::Volume(v) => Instruction::Volume(all(lex, v, env)?),
            Instruction::User(u) => Instruction::User(lex.expand(u, env)?),
            Instruction::Workdir(w) => Instruction::Workdir(lex.expand(w, env)?),
            Instruction::StopSignal(s) => Instruction::StopSignal(lex.expand(s, env)?),
            Instruction::Copy(c) => Instruction::Copy(c.expand(lex, env)?),
            Instruction::Add(c) => Instruction::Add(c.expand(lex, env)?),
            other => other.clone(),
        })
    }
}
