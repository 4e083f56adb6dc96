//! `mount` and `umount`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use imagectl::store::Store;

/// `imagectl mount IMAGE DIR [--rw]`.
#[derive(Debug, Args)]
pub struct MountArgs {
    /// Image name or ID.
    pub image: String,
    /// Mount point (an existing directory).
    pub dir: PathBuf,
    /// Writable, with a throwaway upper layer removed at umount.
    #[arg(long)]
    pub rw: bool,
}

/// `imagectl umount DIR`.
#[derive(Debug, Args)]
pub struct UmountArgs {
    /// Mount point.
    pub dir: PathBuf,
}

/// Mounts.
pub fn mount(store: &Store, a: MountArgs) -> Result<()> {
    let rec = imagectl::mount::mount(store, &a.image, &a.dir, a.rw)?;
    println!("{}", rec.dir.display());
    Ok(())
}

/// Unmounts.
pub fn umount(store: &Store, a: UmountArgs) -> Result<()> {
    imagectl::mount::umount(store, &a.dir)?;
    Ok(())
}
