#!/usr/bin/env bash
# Builds (once) and caches the layer stack the benchmark mounts.
#
# Why a script of its own: building the stack takes minutes (debootstrap, a real
# apt-get install) and needs the network, while the benchmark itself should only
# mount and measure. Every layer above the base is produced as the upper dir of a
# *kernel* overlayfs mount, so whiteouts (0/0 char devices) and opaque dirs
# (trusted.overlay.opaque=y) are in exactly the kernel's on-disk format.
#
# Usage: stack.sh CACHE_DIR full|quick
# Prints nothing on success but progress lines on stderr; each finished layer is
# marked by LAYER.done beside it, so an interrupted build resumes where it stopped.
# Layers, bottom to top: base (debootstrap --variant=minbase bookworm),
# apt (apt-get install of a few packages, Dockerfile-style cleanup),
# mods (overrides and deletions), data-full|data-quick (the synthetic workload data).
set -euo pipefail

cache=${1:?usage: stack.sh CACHE_DIR full|quick}
size=${2:?usage: stack.sh CACHE_DIR full|quick}
case "$size" in full|quick) ;; *) echo "stack.sh: size must be full or quick, not '$size'" >&2; exit 2 ;; esac
here=$(cd "$(dirname "$0")" && pwd)
layers="$cache/layers"
mkdir -p "$layers"

# The packages of the apt layer: small, but with real maintainer scripts,
# alternatives, a few thousand files and certificates (symlink farms).
APT_PACKAGES=(ca-certificates curl less procps python3-minimal vim-tiny xz-utils)

log() { echo "stack: $*" >&2; }

# Mounts currently opened by this script, unmounted on any exit.
open_mounts=()
cleanup() {
    local i
    for ((i = ${#open_mounts[@]} - 1; i >= 0; i--)); do
        umount "${open_mounts[$i]}" 2>/dev/null || umount -l "${open_mounts[$i]}" 2>/dev/null || true
    done
    open_mounts=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The Debian mirror apt is configured with (deb822 or one-line sources).
debian_mirror() {
    local m
    m=$(grep -hsE '^URIs:.*debian/?$' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | head -n1)
    if [ -z "$m" ]; then
        m=$(grep -hsE '^deb .*debian/? bookworm' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
            awk '{print $2}' | head -n1)
    fi
    echo "${m:-http://deb.debian.org/debian}"
}

# overlay_over LOWERDIRS UPPER MNT: mounts kernel overlayfs with a fresh upper.
overlay_over() {
    local lower=$1 upper=$2 mnt=$3
    rm -rf "$upper" "$upper.work" "$mnt"
    mkdir -p "$upper" "$upper.work" "$mnt"
    mount -t overlay overlay -o "lowerdir=$lower,upperdir=$upper,workdir=$upper.work" "$mnt"
    open_mounts+=("$mnt")
}

# finish_layer NAME: unmounts everything, drops the workdir and publishes the layer atomically.
finish_layer() {
    local name=$1
    cleanup
    rm -rf "$layers/$name.tmp.work" "$layers/$name.mnt"
    rm -rf "${layers:?}/${name:?}"
    mv "$layers/$name.tmp" "$layers/$name"
    sync -f "$layers"
    touch "$layers/$name.done"
}

build_base() {
    [ -e "$layers/base.done" ] && return 0
    local mirror
    mirror=$(debian_mirror)
    log "debootstrap --variant=minbase bookworm from $mirror (about a minute)"
    rm -rf "$layers/base.tmp"
    debootstrap --variant=minbase bookworm "$layers/base.tmp" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
        { echo "stack: debootstrap failed, see $cache/debootstrap.log" >&2; exit 1; }
    rm -rf "$layers/base"
    mv "$layers/base.tmp" "$layers/base"
    touch "$layers/base.done"
}

build_apt() {
    [ -e "$layers/apt.done" ] && return 0
    log "apt layer: apt-get install ${APT_PACKAGES[*]} in a chroot over kernel overlayfs"
    local m="$layers/apt.mnt"
    overlay_over "$layers/base" "$layers/apt.tmp" "$m"
    mount -t proc proc "$m/proc"; open_mounts+=("$m/proc")
    # Name resolution inside the chroot without leaving a trace in the layer.
    [ -e "$m/etc/resolv.conf" ] || { echo "stack: base has no /etc/resolv.conf" >&2; exit 1; }
    mount --bind /etc/resolv.conf "$m/etc/resolv.conf"; open_mounts+=("$m/etc/resolv.conf")
    # The way a Dockerfile RUN line does it: install, then clean caches and docs.
    chroot "$m" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive /bin/sh -ec "
        apt-get update -q
        apt-get install -y -q --no-install-recommends ${APT_PACKAGES[*]}
        apt-get clean
        rm -rf /var/lib/apt/lists/* /var/log/apt /var/cache/debconf/*-old
        rm -rf /usr/share/doc/*/changelog.Debian.gz /usr/share/man/man8
        mkdir -p /var/log/apt
    " >"$cache/apt.log" 2>&1 || { echo "stack: apt layer failed, see $cache/apt.log" >&2; exit 1; }
    finish_layer apt
}

build_mods() {
    [ -e "$layers/mods.done" ] && return 0
    log "mods layer: overrides and deletions"
    local m="$layers/mods.mnt"
    overlay_over "$layers/apt:$layers/base" "$layers/mods.tmp" "$m"
    (
        cd "$m"
        # Overrides: changed content, changed metadata, replaced symlinks.
        printf '# benchmark override\nexport BENCH=1\n' >>etc/bash.bashrc
        echo "unionfs benchmark stack" >etc/motd
        echo "bench-host" >etc/hostname
        chmod 0600 etc/shadow
        chmod -R go-w usr/share/common-licenses
        ln -sfn /usr/bin/vim.tiny usr/local/bin/vi
        touch -d 2020-01-01 etc/debian_version
        # Deletions: single files, whole lower trees (whiteouts), and a
        # directory deleted and re-created (an opaque directory).
        rm -f usr/bin/pager etc/issue.net usr/share/info/dir
        rm -rf usr/share/locale/* usr/share/zoneinfo 2>/dev/null || true
        rm -rf var/lib/dpkg/info/*.md5sums
        rm -rf etc/cron.daily && mkdir etc/cron.daily && echo '#!/bin/sh' >etc/cron.daily/bench && chmod 755 etc/cron.daily/bench
        rm -rf usr/share/man && mkdir -p usr/share/man/man1
        # Type changes: a file becomes a directory, a directory becomes a file.
        rm -f etc/legal && mkdir etc/legal && echo "see /usr/share/common-licenses" >etc/legal/README
        rm -rf usr/share/lintian && echo "removed" >usr/share/lintian
        # The lower half of the tree the rm -rf workload deletes (the other
        # half is added by the data layer, so the tree spans two layers).
        mkdir -p bench/rmtree
        for d in $(seq -w 1 20); do
            mkdir "bench/rmtree/m$d"
            for f in $(seq -w 1 24); do echo "m$d/$f" >"bench/rmtree/m$d/f$f"; done
        done
    )
    finish_layer mods
}

build_data() {
    local name="data-$size"
    [ -e "$layers/$name.done" ] && return 0
    log "$name layer: small files, the big file, the tar and the C project"
    local m="$layers/$name.mnt"
    overlay_over "$layers/mods:$layers/apt:$layers/base" "$layers/$name.tmp" "$m"
    python3 "$here/gendata.py" "$m" "$size" || { echo "stack: data generation failed" >&2; exit 1; }
    finish_layer "$name"
}

build_base
build_apt
build_mods
build_data
