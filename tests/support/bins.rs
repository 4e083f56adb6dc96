//! Locating the workspace's own binaries from an integration test.
//!
//! The tests live in the root package, so Cargo's `CARGO_BIN_EXE_*` variables only
//! name binaries of that package; the daemons are built by their own crates into the
//! same target directory, next to the `deps/` folder that holds the test executable.

use std::path::PathBuf;

/// The path of a binary built by this workspace (`unionfsd`, `imagectl`, ...).
///
/// Panics with a hint when it is missing: a test cannot run without it, and the fix is
/// to build the workspace first (`scripts/test.sh` does).
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test-exe> -> target/<profile>/<name>
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executable lives in target/<profile>/deps");
    let bin = profile_dir.join(name);
    assert!(
        bin.exists(),
        "{} is not built; run `cargo build --workspace` first",
        bin.display()
    );
    bin
}
