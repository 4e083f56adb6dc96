//! Where variable substitution looks names up.
//!
//! The builder keeps its environment in different shapes at different times (an OCI
//! config's `K=V` list, a map of build args, ordered pairs while walking a stage), so the
//! lexer takes anything that can answer "what is the value of NAME, if it is set".

use std::collections::{BTreeMap, HashMap};

/// A set of variables for substitution. `None` means unset, which differs from empty:
/// `${v-w}` substitutes only for unset, `${v:-w}` also for empty.
pub trait Env {
    /// The value of `name`, if set.
    fn lookup(&self, name: &str) -> Option<&str>;
}

impl Env for HashMap<String, String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl Env for BTreeMap<String, String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

/// Ordered pairs; the last pair with a name wins, as later `ENV`s override earlier ones.
impl Env for [(String, String)] {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Env for Vec<(String, String)> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.as_slice().lookup(name)
    }
}

/// An OCI-style `K=V` list; an entry without `=` sets the name to the empty string
/// (as buildkit's `BuildEnvs` does). The last entry with a name wins.
impl Env for [String] {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.iter().rev().find_map(|e| match e.split_once('=') {
            Some((k, v)) if k == name => Some(v),
            None if e == name => Some(""),
            _ => None,
        })
    }
}

impl Env for Vec<String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.as_slice().lookup(name)
    }
}

/// No variables at all (used where the reference lexes without an environment).
pub struct NoEnv;

impl Env for NoEnv {
    fn lookup(&self, _name: &str) -> Option<&str> {
        None
    }
}

impl<T: Env + ?Sized> Env for &T {
    fn lookup(&self, name: &str) -> Option<&str> {
        (**self).lookup(name)
    }
}
