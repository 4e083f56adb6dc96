//! The command line: clap definitions and dispatch. Each command group has its own
//! module, so container and build commands can be added as new modules and variants.

pub mod build;
pub mod container;
pub mod format;
pub mod images;
pub mod mount;
pub mod system;
pub mod transfer;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use imagectl::store::Store;

/// imagectl: container images without a daemon.
#[derive(Debug, Parser)]
#[command(
    name = "imagectl",
    version,
    about = "Container images without a daemon: store, registries, archives, mounts"
)]
pub struct Cli {
    /// Store root (default: $IMAGECTL_ROOT, /var/lib/imagectl as root, else $XDG_DATA_HOME/imagectl).
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// Log debug output to stderr.
    #[arg(long, global = true)]
    pub debug: bool,

    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Every top-level command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Import a root filesystem (tar, directory or - for stdin) as a one-layer image.
    Import(images::ImportArgs),
    /// List images.
    #[command(alias = "ls")]
    Images(images::ImagesArgs),
    /// Show details of containers, else images, as JSON (docker's field names).
    Inspect(images::InspectArgs),
    /// Show an image's history.
    History(images::HistoryArgs),
    /// Give an image another name.
    Tag(images::TagArgs),
    /// Remove images (untag; delete when no tag is left).
    Rmi(images::RmiArgs),
    /// Image commands (ls, rm, prune, inspect, history, tag).
    #[command(subcommand)]
    Image(ImageCommand),
    /// System commands (df, prune).
    #[command(subcommand)]
    System(system::SystemCommand),
    /// Pull an image from a registry, an OCI layout or an archive.
    Pull(transfer::PullArgs),
    /// Push an image to a registry.
    Push(transfer::PushArgs),
    /// Save images to an archive or OCI layout.
    Save(transfer::SaveArgs),
    /// Load images from a docker or OCI archive.
    Load(transfer::LoadArgs),
    /// Store registry credentials (docker's config.json).
    Login(transfer::LoginArgs),
    /// Remove stored registry credentials.
    Logout(transfer::LogoutArgs),
    /// Mount an image's merged view read-only (or with a throwaway upper: --rw).
    Mount(mount::MountArgs),
    /// Unmount what `imagectl mount` mounted.
    Umount(mount::UmountArgs),
    /// Build an image from a Dockerfile.
    Build(build::BuildArgs),
    /// Build cache commands (prune).
    #[command(subcommand)]
    Builder(build::BuilderCommand),
    /// Dockerfile tools (parse: show how the builder reads a file).
    #[command(subcommand)]
    Dockerfile(build::DockerfileCommand),
    /// Container commands (run, ps, exec, commit, ...).
    #[command(flatten)]
    Containers(container::ContainerCommand),
}

/// `imagectl image ...`.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// List images.
    #[command(alias = "list")]
    Ls(images::ImagesArgs),
    /// Remove images.
    Rm(images::RmiArgs),
    /// Remove unused images.
    Prune(images::PruneArgs),
    /// Show an image's details.
    Inspect(images::InspectArgs),
    /// Show an image's history.
    History(images::HistoryArgs),
    /// Give an image another name.
    Tag(images::TagArgs),
    /// Import a root filesystem.
    Import(images::ImportArgs),
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let root = cli.root.clone().unwrap_or_else(Store::default_root);
    let open =
        || Store::open(&root).with_context(|| format!("opening the store at {}", root.display()));
    match cli.command {
        Command::Import(a) => images::import(&open()?, a),
        Command::Images(a) => images::images(&open()?, a),
        Command::Inspect(a) => container::inspect_any(&open()?, a),
        Command::History(a) => images::history(&open()?, a),
        Command::Tag(a) => images::tag(&open()?, a),
        Command::Rmi(a) => images::rmi(&open()?, a),
        Command::Image(c) => match c {
            ImageCommand::Ls(a) => images::images(&open()?, a),
            ImageCommand::Rm(a) => images::rmi(&open()?, a),
            ImageCommand::Prune(a) => images::prune(&open()?, a),
            ImageCommand::Inspect(a) => images::inspect(&open()?, a),
            ImageCommand::History(a) => images::history(&open()?, a),
            ImageCommand::Tag(a) => images::tag(&open()?, a),
            ImageCommand::Import(a) => images::import(&open()?, a),
        },
        Command::System(c) => system::run(&open()?, c),
        Command::Pull(a) => transfer::pull(&open()?, a),
        Command::Push(a) => transfer::push(&open()?, a),
        Command::Save(a) => transfer::save(&open()?, a),
        Command::Load(a) => transfer::load(&open()?, a),
        Command::Login(a) => transfer::login(a),
        Command::Logout(a) => transfer::logout(a),
        Command::Mount(a) => mount::mount(&open()?, a),
        Command::Umount(a) => mount::umount(&open()?, a),
        Command::Build(a) => build::build(&open()?, a),
        Command::Builder(c) => build::builder(&open()?, c),
        Command::Dockerfile(c) => build::dockerfile(c),
        Command::Containers(c) => container::run(&open()?, c),
    }
}
