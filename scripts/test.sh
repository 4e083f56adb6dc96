#!/usr/bin/env bash
# Sets up a Debian 12 machine for the test suite (idempotent: a warm machine only checks)
# and runs every check: build, format, lints, unit and integration tests, the
# differential test against kernel overlayfs and pjdfstest over a unionfsd mount.
#
# Usage: scripts/test.sh            (as root: the tests mount filesystems)
# Env:   UNIONFS_TEST_DAEMON=/usr/bin/fuse-overlayfs scripts/test.sh
#        runs the union filesystem tests against another fuse-overlayfs-compatible daemon.
set -euo pipefail

# Debian packages the tests use (peers to compare with, tools the tests call).
APT_PACKAGES=(
  fuse3 fuse-overlayfs unionfs-fuse docker-registry busybox-static skopeo umoci runc
  podman buildah fio hyperfine debootstrap attr acl python3 openssl gzip zstd xz-utils
)
# Cargo tools the tests use: "crate version binary".
CARGO_TOOLS=(
  "pjdfstest 0.2.2 pjdfstest"
)

export CI=true
export DEBIAN_FRONTEND=noninteractive
export NO_COLOR=1
cd "$(dirname "${BASH_SOURCE[0]}")/.."

section() { printf '\n===== %s =====\n' "$*"; }
die() { printf 'scripts/test.sh: %s\n' "$*" >&2; exit 1; }
exec </dev/null

section "Environment"
[[ $(id -u) -eq 0 ]] || die "run as root: the tests mount FUSE and overlay filesystems and switch users"
uname -sr
command -v cargo >/dev/null || die "cargo not found: install Rust (https://rustup.rs) first"
cargo --version

section "System packages"
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  apt-get update -q
  apt-get install -y -q "${missing[@]}"
else
  echo "all ${#APT_PACKAGES[@]} packages present"
fi

section "Kernel features"
[[ -c /dev/fuse ]] || modprobe fuse || true
[[ -c /dev/fuse ]] || die "/dev/fuse is missing: FUSE is not available on this machine"
grep -qw overlay /proc/filesystems || modprobe overlay || true
grep -qw overlay /proc/filesystems || die "kernel overlayfs is not available (the reference filesystem)"
echo "/dev/fuse and overlayfs present"

section "Rust components and cargo tools"
cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
for t in "${CARGO_TOOLS[@]}"; do
  read -r crate version bin <<<"$t"
  if "$bin" --version 2>/dev/null | grep -qF "$version"; then
    echo "$crate $version present"
  else
    cargo install --locked "$crate" --version "$version"
  fi
done

section "Test users"
# pjdfstest switches to these users (see tests/data/unionfs/pjdfstest.toml).
getent group nogroup >/dev/null || groupadd --system nogroup
getent passwd tests >/dev/null || useradd --system --user-group --no-create-home --shell /usr/sbin/nologin tests
echo "nobody:nogroup and tests:tests present"

section "Build"
cargo build --workspace --all-targets --locked

section "Ignored tests (known gaps, not run)"
grep -rn --include='*.rs' -A1 '#\[ignore' tests unionfs imagectl runtime 2>/dev/null | grep -E 'ignore|fn ' || echo "none"

# From here on every stage runs even when an earlier one failed, so one run shows all
# problems; the script still exits non-zero if any stage failed.
failed=()
stage() {
  local name=$1; shift
  section "$name"
  "$@" || failed+=("$name")
}

stage "Format" cargo fmt --all -- --check --color never
stage "Clippy" cargo clippy --workspace --all-targets --locked -- -D warnings
# The two long union filesystem tests run last, alone, with their output shown.
# (`--workspace --test X` rather than `-p`: the same feature set as the run above, so
# nothing is rebuilt.)
stage "Unit and integration tests" \
  cargo test --workspace --locked --no-fail-fast -- --skip differential_ --skip pjdfstest_
stage "Differential test against kernel overlayfs" \
  cargo test --workspace --locked --test unionfs_differential -- --nocapture
stage "pjdfstest over a union mount" \
  cargo test --workspace --locked --test unionfs_pjdfstest -- --nocapture

if ((${#failed[@]})); then
  printf 'scripts/test.sh: FAILED: %s\n' "$(IFS=,; echo "${failed[*]}")" >&2
  exit 1
fi
