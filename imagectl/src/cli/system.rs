//! `system df` and `system prune`.

use std::collections::HashSet;

use anyhow::Result;
use clap::Subcommand;

use super::format::{human_size, print_table};
use imagectl::store::Store;

/// `imagectl system ...`.
#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Show disk usage of images and their holders.
    Df,
    /// Remove unnamed images and unreferenced data.
    Prune {
        /// Remove every image no container or mount uses.
        #[arg(short, long)]
        all: bool,
        /// Do not ask (there is never a prompt; accepted for docker compatibility).
        #[arg(short, long)]
        force: bool,
    },
}

/// Runs a system command.
pub fn run(store: &Store, c: SystemCommand) -> Result<()> {
    match c {
        SystemCommand::Df => df(store),
        SystemCommand::Prune { all, .. } => {
            let (deleted, report) = store.prune(all)?;
            for d in deleted {
                println!("deleted: {d}");
            }
            println!("Total reclaimed space: {}", human_size(report.bytes));
            Ok(())
        }
    }
}

fn df(store: &Store) -> Result<()> {
    let images = store.list_images()?;
    let holds = store.holds()?;
    let held: HashSet<_> = holds.iter().map(|(_, d)| d.clone()).collect();
    let mut all_layers = HashSet::new();
    let mut active_layers = HashSet::new();
    let mut active = 0;
    for img in &images {
        let chains = img.chain_ids();
        if held.contains(img.manifest_digest()) {
            active += 1;
            active_layers.extend(chains.iter().cloned());
        }
        all_layers.extend(chains);
    }
    let size_of = |set: &HashSet<imagectl::Digest>| -> u64 {
        set.iter()
            .filter_map(|c| store.layer_record(c).ok())
            .map(|r| r.size)
            .sum()
    };
    let total = size_of(&all_layers);
    let reclaim = total - size_of(&active_layers).min(total);
    let pct = (reclaim * 100).checked_div(total).unwrap_or(0);
    let containers = holds
        .iter()
        .filter(|(h, _)| h.starts_with("container-"))
        .count();
    let mounts = holds
        .iter()
        .filter(|(h, _)| h.starts_with("mount-"))
        .count();
    print_table(
        &["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
        &[
            vec![
                "Images".into(),
                images.len().to_string(),
                active.to_string(),
                human_size(total),
                format!("{} ({pct}%)", human_size(reclaim)),
            ],
            vec![
                "Containers".into(),
                containers.to_string(),
                containers.to_string(),
                "0B".into(),
                "0B (0%)".into(),
            ],
            vec![
                "Mounts".into(),
                mounts.to_string(),
                mounts.to_string(),
                "0B".into(),
                "0B (0%)".into(),
            ],
        ],
    );
    Ok(())
}
