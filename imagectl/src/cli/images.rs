//! Looking at and naming images: import, images, inspect, history, tag, rmi, prune.

use std::collections::BTreeSet;

use anyhow::{Result, bail};
use clap::Args;
use serde_json::{Value, json};

use super::format::{ellipsis, human_size, parse_time, print_table, render_template, time_ago};
use imagectl::Reference;
use imagectl::store::{Image, Removal, Store};

/// `imagectl import SOURCE [NAME[:TAG]]`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A rootfs tar (any compression), a directory, or - for stdin.
    pub source: String,
    /// Name for the image.
    pub name: Option<String>,
    /// Commit message recorded in the history.
    #[arg(short, long)]
    pub message: Option<String>,
}

/// `imagectl images`.
#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Only this repository (or repository:tag).
    pub filter: Option<String>,
    /// Only image IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Full IDs.
    #[arg(long)]
    pub no_trunc: bool,
    /// Show manifest digests.
    #[arg(long)]
    pub digests: bool,
    /// Show all images (accepted for docker compatibility; there are no intermediates).
    #[arg(short, long)]
    pub all: bool,
    /// `json` (one object per line) or a template over Repository, Tag, ID, Digest,
    /// CreatedAt, CreatedSince, Size.
    #[arg(long)]
    pub format: Option<String>,
}

/// `imagectl inspect IMAGE...`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Image names or IDs.
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Print each image through a template (`{{.Id}}`, `{{json .Config}}`), or `json`.
    #[arg(short, long)]
    pub format: Option<String>,
}

/// `imagectl history IMAGE`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Image name or ID.
    pub image: String,
    /// Do not shorten output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Sizes in bytes instead of human units (false) or human (true, default).
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set)]
    pub human: bool,
    /// Output format: `table` (default) or `json` (one object per line).
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Only IDs.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `imagectl tag SOURCE TARGET`.
#[derive(Debug, Args)]
pub struct TagArgs {
    /// Existing image name or ID.
    pub source: String,
    /// New name.
    pub target: String,
}

/// `imagectl rmi IMAGE...`.
#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Image names or IDs.
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Remove an image ID with several tags, or untag a held image.
    #[arg(short, long)]
    pub force: bool,
}

/// `imagectl image prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove all images no container or mount uses, not only unnamed ones.
    #[arg(short, long)]
    pub all: bool,
    /// Do not ask (there is never a prompt; accepted for docker compatibility).
    #[arg(short, long)]
    pub force: bool,
}

fn parse_name(s: &str) -> Result<Reference> {
    let r = Reference::parse(s)?;
    if r.digest.is_some() {
        bail!("invalid reference format: {s}: a digest can not be a tag");
    }
    Ok(r)
}

/// `import`.
pub fn import(store: &Store, a: ImportArgs) -> Result<()> {
    let name = a.name.as_deref().map(parse_name).transpose()?;
    let img = imagectl::transport::rootfs::import_rootfs(
        store,
        &a.source,
        name.as_ref(),
        a.message.as_deref(),
    )?;
    println!("{}", img.id());
    Ok(())
}

/// `images`.
pub fn images(store: &Store, a: ImagesArgs) -> Result<()> {
    let mut list = store.list_images()?;
    list.sort_by_key(|i| std::cmp::Reverse(parse_time(i.config.created.as_deref())));
    let filter = a.filter.as_deref().map(Reference::parse).transpose()?;
    let filter_has_tag = a.filter.as_deref().is_some_and(|f| {
        let last = f.rsplit('/').next().unwrap_or(f);
        last.contains(':')
    });
    let id_of = |i: &Image| {
        if a.no_trunc {
            i.id().to_string()
        } else {
            i.id().short().to_string()
        }
    };
    let mut rows = Vec::new();
    let mut objects = Vec::new();
    let mut ids = Vec::new();
    for img in &list {
        let size = human_size(store.image_size(img));
        let created = time_ago(img.config.created.as_deref());
        let mut names: Vec<(String, String)> = img.names.iter().map(|n| n.repo_and_tag()).collect();
        if let Some(f) = &filter {
            let matching: Vec<_> = img
                .names
                .iter()
                .filter(|n| {
                    n.reference.as_ref().is_some_and(|r| {
                        r.full_name() == f.full_name() && (!filter_has_tag || r.tag == f.tag)
                    })
                })
                .map(|n| n.repo_and_tag())
                .collect();
            if matching.is_empty() {
                continue;
            }
            names = matching;
        }
        if names.is_empty() {
            names.push(("<none>".into(), "<none>".into()));
        }
        if !ids.contains(&id_of(img)) {
            ids.push(id_of(img));
        }
        for (repo, tag) in names {
            objects.push(json!({
                "Repository": repo,
                "Tag": tag,
                "ID": id_of(img),
                "Digest": img.manifest_digest().to_string(),
                "CreatedAt": img.config.created.clone().unwrap_or_default(),
                "CreatedSince": created,
                "Size": size,
            }));
            let mut row = vec![repo, tag];
            if a.digests {
                row.push(img.manifest_digest().to_string());
            }
            row.extend([id_of(img), created.clone(), size.clone()]);
            rows.push(row);
        }
    }
    if a.quiet {
        for id in ids {
            println!("{id}");
        }
        return Ok(());
    }
    match a.format.as_deref() {
        None | Some("table") => {}
        Some("json") => {
            for o in &objects {
                println!("{}", serde_json::to_string(o)?);
            }
            return Ok(());
        }
        Some(tpl) => {
            for o in &objects {
                println!("{}", render_template(tpl, o)?);
            }
            return Ok(());
        }
    }
    let mut header = vec!["REPOSITORY", "TAG"];
    if a.digests {
        header.push("DIGEST");
    }
    header.extend(["IMAGE ID", "CREATED", "SIZE"]);
    print_table(&header, &rows);
    Ok(())
}

/// The docker-shaped inspect object for one image.
pub fn inspect_value(store: &Store, img: &Image) -> Result<Value> {
    let mut repo_digests = BTreeSet::new();
    for n in &img.names {
        if let Some(r) = &n.reference {
            repo_digests.insert(format!("{}@{}", r.familiar_name(), img.manifest_digest()));
        }
    }
    let lower: Vec<String> = store
        .layer_dirs(img)?
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let raw: Value = serde_json::from_slice(&img.config_bytes)?;
    let mut v = json!({
        "Id": img.id().to_string(),
        "RepoTags": img.names.iter().filter(|n| n.reference.is_some()).map(|n| n.familiar()).collect::<Vec<_>>(),
        "RepoDigests": repo_digests.into_iter().collect::<Vec<_>>(),
        "Parent": "",
        "Comment": raw.get("comment").cloned().unwrap_or(json!("")),
        "Created": img.config.created.clone().unwrap_or_default(),
        "DockerVersion": raw.get("docker_version").cloned().unwrap_or(json!("")),
        "Author": img.config.author.clone().unwrap_or_default(),
        "Config": raw.get("config").cloned().unwrap_or(Value::Null),
        "Architecture": img.config.architecture,
        "Os": img.config.os,
        "Size": store.image_size(img),
        "GraphDriver": {
            "Name": "imagectl",
            "Data": { "LowerDir": lower.join(":") }
        },
        "RootFS": {
            "Type": img.config.rootfs.kind,
            "Layers": img.config.rootfs.diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        },
        "Descriptor": {
            "mediaType": img.manifest_descriptor.media_type,
            "digest": img.manifest_digest().to_string(),
            "size": img.manifest_descriptor.size,
        },
    });
    if let Some(var) = &img.config.variant
        && let Some(o) = v.as_object_mut()
    {
        o.insert("Variant".into(), json!(var));
    }
    Ok(v)
}

/// `inspect`.
pub fn inspect(store: &Store, a: InspectArgs) -> Result<()> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for name in &a.images {
        match store.resolve(name) {
            Ok(img) => out.push(inspect_value(store, &img)?),
            Err(e) => errors.push(e),
        }
    }
    match a.format.as_deref() {
        None | Some("json") => println!("{}", serde_json::to_string_pretty(&out)?),
        Some(tpl) => {
            for v in &out {
                println!("{}", render_template(tpl, v)?);
            }
        }
    }
    last_error(errors)
}

/// Prints all but the last error; returns the last (main prints it), so each failure
/// is reported once and the exit status is 1.
fn last_error(mut errors: Vec<imagectl::Error>) -> Result<()> {
    let last = errors.pop();
    for e in errors {
        eprintln!("imagectl: {e}");
    }
    match last {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// `history`.
pub fn history(store: &Store, a: HistoryArgs) -> Result<()> {
    let img = store.resolve(&a.image)?;
    let records = store.ensure_layers(&img)?;
    let mut sizes = records.iter().map(|r| r.size);
    struct Row {
        created: Option<String>,
        created_by: String,
        size: u64,
        comment: String,
    }
    let mut rows: Vec<Row> = Vec::new();
    if img.config.history.is_empty() {
        for r in &records {
            rows.push(Row {
                created: img.config.created.clone(),
                created_by: String::new(),
                size: r.size,
                comment: String::new(),
            });
        }
    } else {
        for h in &img.config.history {
            let size = if h.empty_layer == Some(true) {
                0
            } else {
                sizes.next().unwrap_or(0)
            };
            rows.push(Row {
                created: h.created.clone(),
                created_by: h.created_by.clone().unwrap_or_default(),
                size,
                comment: h.comment.clone().unwrap_or_default(),
            });
        }
    }
    rows.reverse();
    let id_for = |i: usize| {
        if i == 0 {
            if a.no_trunc {
                img.id().to_string()
            } else {
                img.id().short().to_string()
            }
        } else {
            "<missing>".to_string()
        }
    };
    if a.quiet {
        for i in 0..rows.len() {
            println!("{}", id_for(i));
        }
        return Ok(());
    }
    let size_text = |n: u64| {
        if a.human {
            human_size(n)
        } else {
            n.to_string()
        }
    };
    match a.format.as_str() {
        "json" => {
            for (i, r) in rows.iter().enumerate() {
                let v = json!({
                    "ID": id_for(i),
                    "CreatedAt": r.created.clone().unwrap_or_default(),
                    "CreatedSince": time_ago(r.created.as_deref()),
                    "CreatedBy": r.created_by,
                    "Size": size_text(r.size),
                    "Comment": r.comment,
                });
                println!("{}", serde_json::to_string(&v)?);
            }
        }
        "table" | "" => {
            let table: Vec<Vec<String>> = rows
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let by = if a.no_trunc {
                        r.created_by.clone()
                    } else {
                        ellipsis(&r.created_by, 45)
                    };
                    vec![
                        id_for(i),
                        time_ago(r.created.as_deref()),
                        by,
                        size_text(r.size),
                        r.comment.clone(),
                    ]
                })
                .collect();
            print_table(
                &["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
                &table,
            );
        }
        other => bail!("unsupported --format {other:?}: use table or json"),
    }
    Ok(())
}

/// `tag`.
pub fn tag(store: &Store, a: TagArgs) -> Result<()> {
    let img = store.resolve(&a.source)?;
    let target = parse_name(&a.target)?;
    store.set_tag(&target.to_string(), &img.manifest_descriptor)?;
    Ok(())
}

/// `rmi`.
pub fn rmi(store: &Store, a: RmiArgs) -> Result<()> {
    let mut errors = Vec::new();
    for name in &a.images {
        match store.remove_image(name, a.force) {
            Ok((removals, _)) => {
                for r in removals {
                    match r {
                        Removal::Untagged(n) => println!("Untagged: {n}"),
                        Removal::Deleted(d) => println!("Deleted: {d}"),
                    }
                }
            }
            Err(e) => errors.push(e),
        }
    }
    last_error(errors)
}

/// `image prune`.
pub fn prune(store: &Store, a: PruneArgs) -> Result<()> {
    let (deleted, report) = store.prune(a.all)?;
    if !deleted.is_empty() {
        println!("Deleted Images:");
        for d in deleted {
            println!("deleted: {d}");
        }
        println!();
    }
    println!("Total reclaimed space: {}", human_size(report.bytes));
    Ok(())
}
