//! Moving images: pull, push, save, load, login, logout.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};

use imagectl::oci::Platform;
use imagectl::store::Store;
use imagectl::transport::layout::{SaveItem, save_oci_archive, save_oci_dir};
use imagectl::transport::registry::credentials::{self, Credentials};
use imagectl::transport::registry::{Client, push as push_mod};
use imagectl::transport::{
    self, PullOptions, Source, docker_archive::save_docker_archive, progress::Progress,
};
use imagectl::{Error, Reference};

/// `imagectl pull SOURCE`.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// NAME[:TAG|@DIGEST], oci:DIR[:REF], oci-archive:FILE[:REF] or docker-archive:FILE.
    pub source: String,
    /// Platform to pick from a multi-platform image (default: this host).
    #[arg(long)]
    pub platform: Option<String>,
    /// Use plain HTTP for this registry.
    #[arg(long)]
    pub insecure: bool,
    /// No progress output.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `imagectl push NAME [DESTINATION]`.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// Local image name or ID.
    pub image: String,
    /// Where to push (default: the image name itself).
    pub destination: Option<String>,
    /// Use plain HTTP for this registry.
    #[arg(long)]
    pub insecure: bool,
    /// No progress output.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Archive formats `save` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SaveFormat {
    /// `docker save`'s tar (manifest.json, uncompressed layer tars).
    DockerArchive,
    /// A tar of an OCI image layout.
    OciArchive,
    /// An OCI image layout directory.
    OciDir,
}

/// `imagectl save IMAGE... -o FILE`.
#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Images (names or IDs).
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Output file (directory for oci-dir); stdout when omitted and not a terminal.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Archive format.
    #[arg(long, value_enum, default_value = "docker-archive")]
    pub format: SaveFormat,
}

/// `imagectl load -i FILE`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Archive to read (stdin when omitted).
    #[arg(short, long)]
    pub input: Option<PathBuf>,
    /// No progress output.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `imagectl login SERVER`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Registry host[:port].
    pub server: String,
    /// User name.
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password (prefer --password-stdin).
    #[arg(short, long)]
    pub password: Option<String>,
    /// Read the password from stdin.
    #[arg(long)]
    pub password_stdin: bool,
    /// Use plain HTTP for this registry.
    #[arg(long)]
    pub insecure: bool,
}

/// `imagectl logout SERVER`.
#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// Registry host[:port].
    pub server: String,
}

/// `pull`.
pub fn pull(store: &Store, a: PullArgs) -> Result<()> {
    let source = Source::parse(&a.source)?;
    let platform = match &a.platform {
        Some(p) => Platform::parse(p)?,
        None => Platform::host(),
    };
    if let Source::Registry(r) = &source
        && !a.quiet
    {
        if r.digest.is_none() && !a.source.contains(':') {
            println!("Using default tag: latest");
        }
        println!("{}: Pulling from {}", r.manifest_ref(), r.repository);
    }
    let opts = PullOptions {
        platform,
        insecure: a.insecure,
        quiet: a.quiet,
    };
    let (img, name) = transport::pull(store, &source, &opts)?;
    let shown = name
        .as_ref()
        .map(|n| n.familiar())
        .unwrap_or_else(|| img.id().to_string());
    if a.quiet {
        println!(
            "{}",
            name.map(|n| n.to_string())
                .unwrap_or_else(|| img.id().to_string())
        );
    } else if let Source::Registry(r) = &source {
        println!("Status: Downloaded image for {}", r.familiar());
        println!("{r}");
    } else {
        println!("Loaded image: {shown}");
    }
    Ok(())
}

/// `push`.
pub fn push(store: &Store, a: PushArgs) -> Result<()> {
    let img = store.resolve(&a.image)?;
    let dest = match &a.destination {
        Some(d) => Reference::parse(d)?,
        None => Reference::parse(&a.image)?,
    };
    if dest.digest.is_some() {
        bail!("push: {}: push to a tag, not a digest", dest);
    }
    let progress = Progress::new(a.quiet);
    if !a.quiet {
        println!("The push refers to repository [{}]", dest.full_name());
    }
    let digest = push_mod::push(store, &img, &dest, a.insecure, &progress)?;
    println!(
        "{}: digest: {} size: {}",
        dest.tag.as_deref().unwrap_or("latest"),
        digest,
        img.manifest_descriptor.size
    );
    Ok(())
}

fn save_items(store: &Store, names: &[String]) -> Result<Vec<SaveItem>> {
    let mut items: Vec<SaveItem> = Vec::new();
    for n in names {
        let image = store.resolve(n)?;
        let tag = Reference::parse(n).ok().filter(|r| {
            r.digest.is_none() && image.names.iter().any(|x| x.stored == r.to_string())
        });
        if let Some(existing) = items
            .iter_mut()
            .find(|i| i.image.manifest_digest() == image.manifest_digest())
        {
            existing.names.extend(tag);
            continue;
        }
        items.push(SaveItem {
            image,
            names: tag.into_iter().collect(),
        });
    }
    Ok(items)
}

/// Writes to `path` through a temp file renamed at the end, so a failed save leaves
/// no half archive under the final name.
fn write_atomically(path: &Path, f: impl FnOnce(&mut BufWriter<File>) -> Result<()>) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a file in {}", dir.display()))?;
    let mut w = BufWriter::new(tmp.reopen()?);
    f(&mut w)?;
    let file = w.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// `save`.
pub fn save(store: &Store, a: SaveArgs) -> Result<()> {
    let items = save_items(store, &a.images)?;
    let write = |w: &mut dyn Write| -> Result<()> {
        match a.format {
            SaveFormat::DockerArchive => {
                save_docker_archive(store, &items, w)?;
            }
            SaveFormat::OciArchive => {
                save_oci_archive(store, &items, w)?;
            }
            SaveFormat::OciDir => unreachable!("handled below"),
        }
        Ok(())
    };
    match (a.format, &a.output) {
        (SaveFormat::OciDir, Some(dir)) => save_oci_dir(store, &items, dir)?,
        (SaveFormat::OciDir, None) => bail!("save --format oci-dir needs -o DIR"),
        (_, Some(path)) => write_atomically(path, |w| write(w))?,
        (_, None) => {
            if std::io::stdout().is_terminal() {
                bail!("refusing to write an archive to a terminal; use -o FILE or redirect stdout");
            }
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            write(&mut lock)?;
            lock.flush()?;
        }
    }
    Ok(())
}

/// `load`.
pub fn load(store: &Store, a: LoadArgs) -> Result<()> {
    // stdin is copied to a temp file in the store first: archives need random access.
    let _content = store.content_lock()?;
    let _tmp_holder;
    let path = match &a.input {
        Some(p) => p.clone(),
        None => {
            let dir = store.temp_dir("stdin-")?;
            let p = dir.path().join("archive");
            let mut f = File::create(&p)?;
            std::io::copy(&mut std::io::stdin().lock(), &mut f)
                .context("reading the archive from stdin")?;
            _tmp_holder = dir;
            p
        }
    };
    let loaded = transport::load(store, &path, a.quiet)?;
    if loaded.is_empty() {
        bail!("{}: the archive holds no images", path.display());
    }
    for (img, names) in loaded {
        if names.is_empty() {
            println!("Loaded image ID: {}", img.id());
        }
        for n in names {
            println!("Loaded image: {}", n.familiar());
        }
    }
    Ok(())
}

fn registry_host(server: &str) -> Result<String> {
    let s = server
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let s = s.split('/').next().unwrap_or(s);
    if s.is_empty() {
        bail!("login: empty server name");
    }
    Ok(s.to_string())
}

/// `login`.
pub fn login(a: LoginArgs) -> Result<()> {
    let host = registry_host(&a.server)?;
    let username = match a.username {
        Some(u) => u,
        None => bail!("login: --username is required"),
    };
    let password = match (a.password, a.password_stdin) {
        (Some(p), false) => p,
        (None, true) => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s)?;
            s.trim_end_matches(['\n', '\r']).to_string()
        }
        (Some(_), true) => bail!("login: --password and --password-stdin are mutually exclusive"),
        (None, false) => bail!("login: give --password or --password-stdin"),
    };
    let creds = Credentials { username, password };
    let probe = Reference::parse(&format!("{host}/library/probe"))
        .map_err(|_| Error::InvalidReference(host.clone()))?;
    Client::new(&probe, a.insecure, false)
        .with_credentials(Some(creds.clone()))
        .ping()?;
    let file = credentials::store(&host, &creds)?;
    eprintln!("credentials saved in {}", file.display());
    println!("Login Succeeded");
    Ok(())
}

/// `logout`.
pub fn logout(a: LogoutArgs) -> Result<()> {
    let host = registry_host(&a.server)?;
    if credentials::remove(&host)? {
        println!("Removing login credentials for {host}");
        Ok(())
    } else {
        bail!("not logged in to {host}")
    }
}
