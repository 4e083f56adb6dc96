//! `unionfs-index`: builds and shows the persistent index of a read-only layer chain.
//!
//! `build` walks the union of the layers once and writes what it sees into one file that
//! `unionfsd -o index=FILE` maps, so an image's mounts skip reading layer directories;
//! `show` prints what such a file holds, for anyone checking or learning what the union
//! of a set of layers looks like and which layer each name comes from.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use unionfs::pindex::{self, DirRecord, EntryRecord, PersistentIndex};

const USAGE: &str = "\
usage: unionfs-index build -o FILE LOWER_TOP:...:LOWER_BOTTOM
       unionfs-index show [-r] [--lowers LOWER_TOP:...:LOWER_BOTTOM] FILE [PATH]
       unionfs-index check FILE LOWER_TOP:...:LOWER_BOTTOM

build   walks the read-only union of the layers (top first, as unionfsd's lowerdir=;
        \\: escapes a colon) and writes its index to FILE, atomically.
show    prints what FILE holds: its layers, then the merged directory PATH (default /)
        with each entry's attributes and the layer it comes from; -r descends into
        subdirectories. With --lowers, the file is first checked against those layers.
check   walks the union of the layers again and lists what differs from FILE (a layer
        edited in place since the build); exits 1 when anything does.
";

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("unionfs-index: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Splits `A:B\:C` into layer paths, as unionfsd's `lowerdir=` does.
fn split_lowers(raw: &OsString) -> Result<Vec<PathBuf>> {
    let raw = raw
        .to_str()
        .context("layer list is not valid UTF-8; pass paths without ':' escapes")?;
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(n) => cur.push(n),
                None => cur.push('\\'),
            },
            ':' => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    let out: Vec<PathBuf> = out
        .into_iter()
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .collect();
    if out.is_empty() {
        bail!("no layers given");
    }
    Ok(out)
}

fn run(args: Vec<OsString>) -> Result<()> {
    let mut it = args.into_iter();
    let Some(cmd) = it.next() else {
        eprint!("{USAGE}");
        bail!("no command given");
    };
    let rest: Vec<OsString> = it.collect();
    match cmd.to_str() {
        Some("build") => cmd_build(rest),
        Some("show") => cmd_show(rest),
        Some("check") => cmd_check(rest),
        Some("-h") | Some("--help") | Some("help") => {
            print!("{USAGE}");
            Ok(())
        }
        Some("-V") | Some("--version") => {
            println!("unionfs-index {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        _ => bail!(
            "unknown command {:?} (see unionfs-index --help)",
            cmd.to_string_lossy()
        ),
    }
}

fn cmd_build(args: Vec<OsString>) -> Result<()> {
    let mut out = None;
    let mut lowers = None;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        if a == "-o" || a == "--output" {
            out = Some(PathBuf::from(it.next().context("-o needs a file")?));
        } else if a.to_string_lossy().starts_with('-') {
            bail!("build: unknown option {:?}", a.to_string_lossy());
        } else if lowers.is_none() {
            lowers = Some(split_lowers(&a)?);
        } else {
            bail!("build: one layer list expected (join layers with ':')");
        }
    }
    let out = out.context("build: -o FILE is required")?;
    let lowers = lowers.context("build: no layers given")?;
    let stats = pindex::build(&lowers, &out)
        .with_context(|| format!("building the index of {} layers", lowers.len()))?;
    println!(
        "{}: {} directories, {} entries, {} whited names, {} bytes (walk {:.3}s, write {:.3}s)",
        out.display(),
        stats.dirs,
        stats.entries,
        stats.whited,
        stats.bytes,
        stats.walk.as_secs_f64(),
        stats.write.as_secs_f64()
    );
    Ok(())
}

fn cmd_check(args: Vec<OsString>) -> Result<()> {
    let [file, lowers] = args.as_slice() else {
        bail!("check: expected FILE LOWER_TOP:...:LOWER_BOTTOM");
    };
    let file = PathBuf::from(file);
    let lowers = split_lowers(lowers)?;
    let ix = PersistentIndex::open(&file, &lowers)?;
    let diffs = pindex::verify(&ix, &lowers)
        .with_context(|| format!("walking the union of {} layers", lowers.len()))?;
    if diffs.is_empty() {
        println!("{}: current ({} entries)", file.display(), ix.entry_count());
        return Ok(());
    }
    for d in &diffs {
        println!("{d}");
    }
    bail!(
        "{}: out of date with its layers; rebuild it with unionfs-index build",
        file.display()
    )
}

fn cmd_show(args: Vec<OsString>) -> Result<()> {
    let mut recursive = false;
    let mut lowers = None;
    let mut positional = Vec::new();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        if a == "-r" || a == "--recursive" {
            recursive = true;
        } else if a == "--lowers" {
            lowers = Some(split_lowers(
                &it.next().context("--lowers needs a layer list")?,
            )?);
        } else if a.to_string_lossy().starts_with('-') && a != "-" {
            bail!("show: unknown option {:?}", a.to_string_lossy());
        } else {
            positional.push(PathBuf::from(a));
        }
    }
    let (file, path) = match positional.as_slice() {
        [file] => (file.clone(), PathBuf::from("/")),
        [file, path] => (file.clone(), path.clone()),
        _ => bail!("show: expected FILE [PATH]"),
    };
    let ix = match &lowers {
        Some(l) => PersistentIndex::open(&file, l)?,
        None => PersistentIndex::open_unchecked_chain(&file)?,
    };
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::new(stdout.lock());
    show(&mut w, &ix, &path, recursive).or_else(|e| match e.downcast_ref::<std::io::Error>() {
        Some(io) if io.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        _ => Err(e),
    })
}

fn show(w: &mut impl Write, ix: &PersistentIndex, path: &Path, recursive: bool) -> Result<()> {
    writeln!(
        w,
        "index {}: format {}, {} bytes, {} directories, {} entries",
        ix.path().display(),
        pindex::format::VERSION,
        ix.file_len(),
        ix.dir_count(),
        ix.entry_count()
    )?;
    for (i, l) in ix.layers().enumerate() {
        writeln!(
            w,
            "layer {i}: {} (dev {}, inode {})",
            l.path().display(),
            l.dev(),
            l.ino()
        )?;
    }
    let entry = ix
        .stat(path)
        .with_context(|| format!("{}: not in the union", path.display()))?;
    match entry.dir() {
        Some(dir) => {
            show_dir(w, dir)?;
            if recursive {
                let mut stack: Vec<DirRecord<'_>> = dir.entries().filter_map(|e| e.dir()).collect();
                stack.reverse();
                while let Some(d) = stack.pop() {
                    show_dir(w, d)?;
                    let subs: Vec<_> = d.entries().filter_map(|e| e.dir()).collect();
                    stack.extend(subs.into_iter().rev());
                }
            }
        }
        None => show_entry_detail(w, entry)?,
    }
    w.flush()?;
    Ok(())
}

fn layers_list(l: impl Iterator<Item = usize>) -> String {
    let v: Vec<String> = l.map(|n| n.to_string()).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(",")
    }
}

fn show_dir(w: &mut impl Write, dir: DirRecord<'_>) -> Result<()> {
    writeln!(w)?;
    writeln!(
        w,
        "/{}: {} entries, layers {}, lower path /{}",
        dir.path().display(),
        dir.len(),
        layers_list(dir.lower_dirs()),
        dir.lower_path().display()
    )?;
    if dir.whited().len() > 0 {
        let names: Vec<_> = dir.whited().map(|n| n.to_string_lossy()).collect();
        writeln!(w, "  whited out: {}", names.join(" "))?;
    }
    for e in dir.entries() {
        show_entry_line(w, e)?;
    }
    Ok(())
}

fn mode_string(mode: u32) -> String {
    let t = match mode & libc::S_IFMT {
        libc::S_IFDIR => 'd',
        libc::S_IFLNK => 'l',
        libc::S_IFCHR => 'c',
        libc::S_IFBLK => 'b',
        libc::S_IFIFO => 'p',
        libc::S_IFSOCK => 's',
        _ => '-',
    };
    let mut s = String::from(t);
    let bits = [
        (0o400, 'r'),
        (0o200, 'w'),
        (0o100, 'x'),
        (0o040, 'r'),
        (0o020, 'w'),
        (0o010, 'x'),
        (0o004, 'r'),
        (0o002, 'w'),
        (0o001, 'x'),
    ];
    for (i, (bit, c)) in bits.iter().enumerate() {
        let special = match i {
            2 => mode & 0o4000 != 0,
            5 => mode & 0o2000 != 0,
            8 => mode & 0o1000 != 0,
            _ => false,
        };
        let on = mode & bit != 0;
        s.push(match (special, on, i) {
            (true, true, 8) => 't',
            (true, false, 8) => 'T',
            (true, true, _) => 's',
            (true, false, _) => 'S',
            (false, true, _) => *c,
            (false, false, _) => '-',
        });
    }
    s
}

fn show_entry_line(w: &mut impl Write, e: EntryRecord<'_>) -> Result<()> {
    let size = match e.kind() {
        libc::S_IFCHR | libc::S_IFBLK => {
            format!("{},{}", libc::major(e.rdev()), libc::minor(e.rdev()))
        }
        _ => e.size().to_string(),
    };
    let layer = match e.dir() {
        Some(d) => format!("layers {}", layers_list(d.lower_dirs())),
        None => format!("layer {}", layers_list(e.lower_layer().into_iter())),
    };
    write!(
        w,
        "  {} {:>3} {:>5} {:>5} {:>10} ino {:<10} {:<10} {}",
        mode_string(e.mode()),
        e.nlink(),
        e.uid(),
        e.gid(),
        size,
        e.ino(),
        layer,
        e.name().to_string_lossy()
    )?;
    if let Some(t) = e.symlink_target() {
        write!(w, " -> {}", t.to_string_lossy())?;
    }
    let default_lower = e.parent().lower_path().join(e.name());
    if e.lower_path() != default_lower {
        write!(w, "  (lower path /{})", e.lower_path().display())?;
    }
    writeln!(w)?;
    Ok(())
}

fn show_entry_detail(w: &mut impl Write, e: EntryRecord<'_>) -> Result<()> {
    writeln!(w)?;
    writeln!(w, "/{}", e.path().display())?;
    writeln!(w, "  mode    {:o} ({})", e.mode(), mode_string(e.mode()))?;
    writeln!(
        w,
        "  ino     {} (in layer: dev {} inode {})",
        e.ino(),
        e.raw_dev(),
        e.raw_ino()
    )?;
    writeln!(w, "  nlink   {}", e.nlink())?;
    writeln!(w, "  owner   {}:{}", e.uid(), e.gid())?;
    writeln!(
        w,
        "  size    {} ({} blocks, blksize {})",
        e.size(),
        e.blocks(),
        e.blksize()
    )?;
    if matches!(e.kind(), libc::S_IFCHR | libc::S_IFBLK) {
        writeln!(
            w,
            "  rdev    {},{}",
            libc::major(e.rdev()),
            libc::minor(e.rdev())
        )?;
    }
    for (name, (s, ns)) in [
        ("atime", e.atime()),
        ("mtime", e.mtime()),
        ("ctime", e.ctime()),
    ] {
        writeln!(w, "  {name}   {s}.{ns:09}")?;
    }
    writeln!(w, "  layer   {}", layers_list(e.lower_layer().into_iter()))?;
    writeln!(w, "  lower   /{}", e.lower_path().display())?;
    if let Some(t) = e.symlink_target() {
        writeln!(w, "  target  {}", t.to_string_lossy())?;
    }
    Ok(())
}
