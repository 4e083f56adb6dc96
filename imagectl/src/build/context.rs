//! The build context: the directory COPY and ADD read from, minus what `.dockerignore`
//! hides. Sources are resolved with the Dockerfile wildcard rules and checksummed for
//! the cache key (content and metadata, not mtime).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::cache::checksum_tree;
use crate::dockerfile::ignore::IgnoreMatcher;
use crate::dockerfile::wildcard;
use crate::error::{Error, IoContext, Result};

/// A build context directory and its `.dockerignore`.
#[derive(Debug, Clone)]
pub struct Context {
    root: PathBuf,
    ignore: IgnoreMatcher,
}

impl Context {
    /// Opens `dir` as a build context, reading `dir/.dockerignore` if present.
    pub fn open(dir: &Path) -> Result<Context> {
        let root = fs::canonicalize(dir).at(dir)?;
        if !root.is_dir() {
            return Err(Error::Other(format!(
                "build context {} is not a directory",
                dir.display()
            )));
        }
        let ignore_file = root.join(".dockerignore");
        let ignore = match fs::read_to_string(&ignore_file) {
            Ok(text) => IgnoreMatcher::parse(&text)
                .map_err(|e| Error::Other(format!("{}: {e}", ignore_file.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => IgnoreMatcher::default(),
            Err(e) => {
                return Err(Error::Io {
                    path: ignore_file,
                    source: e,
                });
            }
        };
        Ok(Context { root, ignore })
    }

    /// The context directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether a context-relative path is visible to COPY/ADD.
    pub fn is_visible(&self, rel: &str) -> bool {
        !self.ignore.matches(rel)
    }

    /// The context-relative paths a COPY/ADD source names (wildcards expanded, ignored
    /// paths dropped). No match is an error, as in docker.
    pub fn resolve(&self, source: &str) -> Result<Vec<PathBuf>> {
        let found = wildcard::glob(&self.root, source)
            .map_err(|e| Error::Other(format!("COPY/ADD source {source:?}: {e}")))?;
        let visible: Vec<PathBuf> = found
            .into_iter()
            .filter(|p| p.as_os_str().is_empty() || self.is_visible(&p.to_string_lossy()))
            .collect();
        if visible.is_empty() {
            return Err(Error::Other(format!(
                "COPY/ADD source {source:?}: no such file or directory in the build context (or excluded by .dockerignore)"
            )));
        }
        Ok(visible)
    }

    /// Per-file checksums of everything the sources name, for the cache key: keyed by
    /// context-relative path, ignored files left out.
    pub fn checksum(&self, sources: &[String]) -> Result<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        let include = |rel: &str| self.is_visible(rel);
        for s in sources {
            for rel in self.resolve(s)? {
                checksum_tree(&self.root, &self.root.join(&rel), &include, &mut out)?;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerignore_hides_sources_and_checksums() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::create_dir_all(d.join("app/logs")).unwrap();
        fs::write(d.join("app/main.txt"), "main").unwrap();
        fs::write(d.join("app/logs/a.log"), "log").unwrap();
        fs::write(d.join("app/logs/keep.log"), "keep").unwrap();
        fs::write(d.join("secret.env"), "x").unwrap();
        fs::write(
            d.join(".dockerignore"),
            "**/*.log\n!app/logs/keep.log\nsecret.env\n",
        )
        .unwrap();
        let ctx = Context::open(d).unwrap();
        assert!(ctx.resolve("secret.env").is_err());
        assert_eq!(
            ctx.resolve("app/*.txt").unwrap(),
            vec![PathBuf::from("app/main.txt")]
        );
        let sums = ctx.checksum(&["app".into()]).unwrap();
        let keys: Vec<&str> = sums.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["app", "app/logs", "app/logs/keep.log", "app/main.txt"]
        );
        fs::write(d.join("app/logs/a.log"), "changed").unwrap();
        assert_eq!(ctx.checksum(&["app".into()]).unwrap(), sums);
        fs::write(d.join("app/main.txt"), "changed").unwrap();
        assert_ne!(ctx.checksum(&["app".into()]).unwrap(), sums);
    }
}
