//! pjdfstest (the Rust rewrite, `cargo install pjdfstest`) over a union mount: the full
//! POSIX suite, run with the mount as working directory. It fails on any failure that
//! tests/data/unionfs/pjdfstest-known-failures.txt does not excuse with a reason.
//!
//! The same suite is also run over kernel overlayfs, the reference: every failure the
//! kernel has must be listed (so the list documents overlay semantics, not daemon bugs).

use std::path::{Path, PathBuf};
use std::process::Command;

use integration_tests::mount::{FuseMount, KernelOverlay, LayerStack, daemon, layers};

const CONFIG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/unionfs/pjdfstest.toml"
);
const KNOWN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/unionfs/pjdfstest-known-failures.txt"
);

/// One accepted failure: name pattern, required message text, reason.
struct Known {
    pattern: String,
    message: String,
    reason: String,
}

fn load_known() -> Vec<Known> {
    let text = std::fs::read_to_string(KNOWN).expect("read known-failures file");
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parts: Vec<&str> = line.splitn(3, " | ").collect();
        assert!(
            parts.len() == 3 && !parts[2].trim().is_empty(),
            "{KNOWN}:{}: expected `PATTERN | MESSAGE | REASON`",
            n + 1
        );
        out.push(Known {
            pattern: parts[0].trim().to_string(),
            message: parts[1].trim().to_string(),
            reason: parts[2].trim().to_string(),
        });
    }
    out
}

/// Glob match with `*` only.
fn glob(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let mut rest = name;
    for (i, p) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(p) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(p);
        } else {
            let Some(pos) = rest.find(p) else {
                return false;
            };
            rest = &rest[pos + p.len()..];
        }
    }
    true
}

fn pjdfstest_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("PJDFSTEST") {
        return PathBuf::from(p);
    }
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("pjdfstest"))
                .collect()
        })
        .unwrap_or_default();
    if let Some(h) = std::env::var_os("CARGO_HOME") {
        candidates.push(Path::new(&h).join("bin/pjdfstest"));
    }
    if let Some(h) = std::env::var_os("HOME") {
        candidates.push(Path::new(&h).join(".cargo/bin/pjdfstest"));
    }
    candidates.into_iter().find(|p| p.is_file()).expect(
        "pjdfstest not found: run scripts/test.sh (or `cargo install pjdfstest`), or set PJDFSTEST",
    )
}

/// A failed pjdfstest case and the first line of its message.
struct Failure {
    name: String,
    message: String,
}

/// Runs the whole suite in `dir`; returns (summary line, failures, full output).
fn run_suite(dir: &Path, secondary: &Path) -> (String, Vec<Failure>, String) {
    for user in ["nobody", "tests"] {
        assert!(
            nix::unistd::User::from_name(user).ok().flatten().is_some(),
            "pjdfstest switches to user {user:?}, which does not exist: run scripts/test.sh \
             (it creates it) or `useradd --system --user-group {user}`"
        );
    }
    let out = Command::new(pjdfstest_bin())
        .arg("-c")
        .arg(CONFIG)
        .arg("-s")
        .arg(secondary)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run pjdfstest");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut failures = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        let mut words = l.split_whitespace();
        let (Some(name), Some(verdict)) = (words.next(), words.next()) else {
            continue;
        };
        if verdict == "FAILED" || (verdict == "PASSED" && l.contains("UNEXPECTEDLY")) {
            let message = lines[i + 1..]
                .iter()
                .take_while(|m| m.starts_with('\t') || m.starts_with(' '))
                .map(|m| m.trim())
                .collect::<Vec<_>>()
                .join(" ");
            failures.push(Failure {
                name: name.to_string(),
                message,
            });
        }
    }
    let summary = lines
        .iter()
        .rev()
        .find(|l| l.starts_with("Summary:"))
        .map(|s| s.to_string());
    let summary = summary.unwrap_or_else(|| {
        panic!(
            "pjdfstest printed no summary (status {:?}):\n{text}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (summary, failures, text)
}

/// Splits failures into excused (with their reason) and unexpected.
fn classify<'a>(
    failures: &'a [Failure],
    known: &'a [Known],
) -> (Vec<(&'a Failure, &'a str)>, Vec<&'a Failure>) {
    let mut excused = Vec::new();
    let mut unexpected = Vec::new();
    for f in failures {
        match known
            .iter()
            .find(|k| glob(&k.pattern, &f.name) && f.message.contains(&k.message))
        {
            Some(k) => excused.push((f, k.reason.as_str())),
            None => unexpected.push(f),
        }
    }
    (excused, unexpected)
}

/// Keeps the full pjdfstest output next to the build (target/<profile>/pjdfstest-NAME.log)
/// so a failure in CI can be read in full; returns where it went.
fn save_log(name: &str, text: &str) -> Option<std::path::PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let path = exe
        .parent()?
        .parent()?
        .join(format!("pjdfstest-{name}.log"));
    std::fs::write(&path, text).ok()?;
    Some(path)
}

fn report(label: &str, summary: &str, failures: &[Failure], known: &[Known]) -> Vec<String> {
    let (excused, unexpected) = classify(failures, known);
    println!("pjdfstest over {label}: {summary}");
    println!(
        "  {} failure(s) excused by {KNOWN}, {} unexpected",
        excused.len(),
        unexpected.len()
    );
    let mut reasons: Vec<&str> = excused.iter().map(|(_, r)| *r).collect();
    reasons.dedup();
    for r in reasons {
        println!(
            "  excused ({}x): {}",
            excused.iter().filter(|(_, x)| *x == r).count(),
            r
        );
    }
    unexpected
        .iter()
        .map(|f| format!("{}: {}", f.name, f.message))
        .collect()
}

/// A stack with a little lower content, so the suite runs in a merged directory.
fn stack() -> LayerStack {
    let s = LayerStack::new(2);
    layers::file(&s.lower(1).join("lower-file"), b"lower\n", 0o644).expect("lower file");
    layers::dir(&s.lower(0).join("lower-dir"), 0o755).expect("lower dir");
    s
}

#[test]
fn pjdfstest_full_suite_over_daemon() {
    let known = load_known();
    let s = stack();
    let secondary = s.extra_dir("secondary-fs-dir");
    let m = FuseMount::mount(&s, "allow_other,default_permissions");
    let (summary, failures, text) = run_suite(m.mnt(), &secondary);
    if let Some(p) = save_log("daemon", &text) {
        println!("pjdfstest full output: {}", p.display());
    }
    let unexpected = report(
        &format!("{} mount", daemon().display()),
        &summary,
        &failures,
        &known,
    );
    drop(m);
    assert!(
        unexpected.is_empty(),
        "{} unexpected pjdfstest failure(s):\n  {}",
        unexpected.len(),
        unexpected.join("\n  ")
    );
}

#[test]
fn pjdfstest_kernel_overlay_failures_are_all_listed() {
    let known = load_known();
    let s = stack();
    let secondary = s.extra_dir("secondary-fs-dir");
    let k = KernelOverlay::mount(&s, "").expect("mount kernel overlay");
    let (summary, failures, text) = run_suite(&s.mnt, &secondary);
    let unexpected = report("kernel overlayfs", &summary, &failures, &known);
    if let Some(p) = save_log("kernel-overlayfs", &text) {
        println!("  full output: {}", p.display());
    }
    drop(k);
    assert!(
        unexpected.is_empty(),
        "kernel overlayfs fails tests the known-failures file does not list (update it, with the kernel as the reason):\n  {}",
        unexpected.join("\n  ")
    );
}

#[test]
fn glob_matches_like_the_known_failures_file_says() {
    assert!(glob("*::char", "unlink::remove_type::char"));
    assert!(!glob("*::char", "unlink::remove_type::charx"));
    assert!(glob(
        "rename::*::dir",
        "rename::unchanged_ctime_failed::dir"
    ));
    assert!(glob("a", "a") && !glob("a", "ab"));
}
