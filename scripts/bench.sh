#!/usr/bin/env bash
# Benchmark unionfsd against kernel overlayfs and fuse-overlayfs (issue 6).
#
# Not part of the tests: it needs root, minutes of a quiet machine and, the first
# time, the Debian mirror (debootstrap, apt-get) and crates.io (the newer
# fuse-overlayfs). Everything it builds is cached under $BENCH_CACHE
# (default /var/tmp/unionfs-bench), outside the repo.
#
#   scripts/bench.sh [--reps N] [--quick] [--only W1,W2] [--fs FS1,FS2] [--no-write] [--output FILE] [--perf]
#
#   --reps N     repetitions (default 5; 1 with --quick)
#   --quick      small sizes and 1 repetition: a smoke test of the script
#   --only LIST  workloads: walk-cold walk-warm ls-10k-warm read-all-cold read-all-warm seq-read-cold
#                seq-read-warm copyup-append create-files rm-lower-tree untar chmod-r c-build
#   --fs LIST    filesystems: kernel fuse-overlayfs fuse-overlayfs2 unionfsd unionfsd-index unionfsd-b
#   --perf       perf record each FUSE daemon during the timed commands (for finding why; perturbs timings)
#
# Environment: UNIONFSD=path (default: target/release/unionfsd, built by cargo build --release),
# FUSE_OVERLAYFS=path (default: Debian's), FUSE_OVERLAYFS2=path (default: cargo install'ed
# into $BENCH_CACHE/cargo), UNIONFSD_INDEX=path of an index file for the stack, or
# UNIONFSD_INDEX_CMD='shell command' that writes the stack's index to $INDEX for the
# lower dirs in $LOWERDIR (colon-separated, top first); either enables the unionfsd-index
# filesystem (unionfsd with -o index=FILE; UNIONFSD_INDEX_OPTION=NAME changes the option's name).
# UNIONFSD_B=path adds unionfsd-b, another unionfsd build (e.g. before a change), for A/B runs.
# Writes the table to BENCHMARKS.md; exits non-zero if any result failed its check.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
bench_dir="$repo/scripts/bench"
cache=${BENCH_CACHE:-/var/tmp/unionfs-bench}
stack="$cache/v1"

quick=0
fs_list=""
args=("$@")
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1 ;;
        --fs) fs_list=${2:-} ; shift ;;
        --fs=*) fs_list=${1#--fs=} ;;
        -h|--help) python3 "$bench_dir/bench.py" --stack "$stack" --help; exit 0 ;;
    esac
    shift
done
wants() { [ -z "$fs_list" ] || [[ ",$fs_list," == *",$1,"* ]]; }

if [ "$(id -u)" != 0 ]; then
    echo "bench.sh: must run as root (it mounts filesystems and drops caches)" >&2
    exit 1
fi

missing=()
for tool in python3:python3 debootstrap:debootstrap mount:mount gcc:gcc make:make tar:tar \
    fusermount3:fuse3 findmnt:util-linux getfattr:attr; do
    command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
done
if wants fuse-overlayfs && ! command -v "${FUSE_OVERLAYFS:-fuse-overlayfs}" >/dev/null; then
    echo "bench.sh: fuse-overlayfs is not installed (apt-get install -y fuse-overlayfs); it will be skipped" >&2
fi
if [ ${#missing[@]} -gt 0 ]; then
    echo "bench.sh: missing tools; install them with: apt-get install -y ${missing[*]}" >&2
    exit 1
fi

# Whatever happens, leave no mount behind under the cache (the driver unmounts
# its own; this catches a driver killed hard).
# shellcheck disable=SC2317  # invoked by the trap
cleanup() {
    local p
    [ -r /proc/self/mountinfo ] || return 0
    awk -v c="$cache/" 'index($5, c) == 1 {print $5}' /proc/self/mountinfo | sort -r |
        while read -r p; do
            umount -c "$p" 2>/dev/null || umount -c -l "$p" 2>/dev/null || true
        done
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

mkdir -p "$cache"
export PYTHONDONTWRITEBYTECODE=1
size=full
[ "$quick" = 1 ] && size=quick
bash "$bench_dir/stack.sh" "$stack" "$size"

unionfsd=${UNIONFSD:-}
if [ -z "$unionfsd" ] && { wants unionfsd || wants unionfsd-index; }; then
    # Always (re)built, so the numbers are those of the current source; a no-op when up to date.
    unionfsd="${CARGO_TARGET_DIR:-$repo/target}/release/unionfsd"
    echo "bench.sh: cargo build --release -p unionfs" >&2
    if (cd "$repo" && cargo build --release -p unionfs) >"$cache/unionfsd-build.log" 2>&1; then
        export BENCH_UNIONFSD_BUILT=1
    else
        echo "bench.sh: unionfsd did not build (see $cache/unionfsd-build.log); it will be skipped" >&2
        unionfsd=""
    fi
fi

# The persistent index of the stack, built by the unionfs-index beside unionfsd unless told otherwise.
if [ -z "${UNIONFSD_INDEX:-}" ] && [ -z "${UNIONFSD_INDEX_CMD:-}" ] && [ -n "$unionfsd" ] &&
    [ -x "$(dirname "$unionfsd")/unionfs-index" ]; then
    UNIONFSD_INDEX_CMD="\"$(dirname "$unionfsd")/unionfs-index\" build -o \"\$INDEX\" \"\$LOWERDIR\""
fi

fo2=${FUSE_OVERLAYFS2:-$cache/cargo/bin/fuse-overlayfs}
if [ -z "${FUSE_OVERLAYFS2:-}" ] && [ ! -x "$fo2" ] && wants fuse-overlayfs2; then
    echo "bench.sh: building fuse-overlayfs 2 from crates.io (cargo install, once)" >&2
    cargo install --locked fuse-overlayfs --root "$cache/cargo" >"$cache/cargo-install.log" 2>&1 ||
        cargo install fuse-overlayfs --root "$cache/cargo" >>"$cache/cargo-install.log" 2>&1 ||
        echo "bench.sh: cargo install fuse-overlayfs failed (see $cache/cargo-install.log); it will be skipped" >&2
fi

# The driver runs as a child we wait for, so that an INT or TERM sent to this
# script alone reaches it too; it unmounts everything before exiting.
python3 "$bench_dir/bench.py" --stack "$stack" --unionfsd "$unionfsd" \
    --fuse-overlayfs "${FUSE_OVERLAYFS:-fuse-overlayfs}" --fuse-overlayfs2 "$fo2" \
    --unionfsd-index "${UNIONFSD_INDEX:-}" --unionfsd-index-cmd "${UNIONFSD_INDEX_CMD:-}" \
    --unionfsd-index-option "${UNIONFSD_INDEX_OPTION:-index}" --unionfsd-b "${UNIONFSD_B:-}" --argv="${args[*]}" "${args[@]}" &
driver=$!
trap 'kill -TERM "$driver" 2>/dev/null || true' INT TERM HUP
set +e
wait "$driver"
rc=$?
while kill -0 "$driver" 2>/dev/null; do
    wait "$driver"
    rc=$?
done
exit "$rc"
