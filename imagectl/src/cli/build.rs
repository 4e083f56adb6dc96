//! `imagectl dockerfile parse FILE`: shows how the builder reads a Dockerfile, in the
//! reference parser's dump notation, so a user can check what was understood before
//! building.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;

use imagectl::dockerfile;

/// `imagectl dockerfile ...`.
#[derive(Debug, Subcommand)]
pub enum DockerfileCommand {
    /// Print how the builder reads FILE (`-` for stdin): one `(keyword ...)` per
    /// instruction, as the reference parser's dump prints it.
    Parse {
        /// The Dockerfile.
        file: PathBuf,
    },
}

/// Runs a `dockerfile` subcommand.
pub fn dockerfile(c: DockerfileCommand) -> Result<()> {
    match c {
        DockerfileCommand::Parse { file } => {
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin()).context("reading stdin")?
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?
            };
            let df =
                dockerfile::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            for w in &df.warnings {
                eprintln!("warning: {w}");
            }
            print!("{}", df.dump());
            Ok(())
        }
    }
}
