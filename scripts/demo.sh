#!/usr/bin/env bash
# The main job end to end, on the embedded default store (/var/lib/imagectl as root):
#   1. a union filesystem over three layers: lookup through layers, copy-up, whiteout;
#   2. a base image made locally from Debian's busybox-static;
#   3. how the builder reads a Dockerfile; 4. a container run on the image through a
#   union mount; 5. the image's history; 6. the image mounted read-only for inspection.
# Installs what it needs (Debian packages, a release build) when missing. Run as root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec </dev/null

APT_PACKAGES=(fuse3 busybox-static)
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

[[ $(id -u) -eq 0 ]] || { echo "demo.sh: run as root (it mounts filesystems and runs containers)" >&2; exit 1; }
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  DEBIAN_FRONTEND=noninteractive apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi
command -v cargo >/dev/null || { echo "demo.sh: cargo not found: install Rust first" >&2; exit 1; }
say "Building (release)"
cargo build --release --locked -p unionfs -p imagectl -p runtime 2>&1 | tail -1
BIN=$PWD/target/release
export PATH="$BIN:$PATH"

WORK=$(mktemp -d /tmp/unionfs-demo.XXXXXX)
MNT=$WORK/mnt
cleanup() {
  for m in "$MNT" "$WORK/inspect" "$WORK/bundle/rootfs"; do
    mountpoint -q "$m" 2>/dev/null && { fusermount3 -u "$m" 2>/dev/null || umount -l "$m"; }
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

say "1. A union of three layers (leftmost lower is the top)"
mkdir -p "$WORK"/{base,middle,top,upper,work,mnt}
echo "from base" > "$WORK/base/motd"
echo "base config" > "$WORK/base/config"
echo "only in base" > "$WORK/base/old-file"
echo "from middle (hides base's)" > "$WORK/middle/motd"
echo "from top" > "$WORK/top/hello"
run unionfsd -o "lowerdir=$WORK/top:$WORK/middle:$WORK/base,upperdir=$WORK/upper,workdir=$WORK/work" "$MNT"
run ls -l "$MNT"
run cat "$MNT/motd"
say "   copy-up: writing a lower file puts a copy in the upper layer; the lower stays as it was"
run sh -c "echo 'edited in the container' >> '$MNT/config'"
run cat "$MNT/config"
run cat "$WORK/base/config"
run ls -l "$WORK/upper"
say "   whiteout: deleting a lower file leaves a 0/0 character device in upper"
run rm "$MNT/old-file"
run ls "$MNT"
run ls -l "$WORK/upper/old-file"
run fusermount3 -u "$MNT"

say "2. A base image made locally from busybox-static"
ROOTFS=$WORK/rootfs
mkdir -p "$ROOTFS"/{bin,etc,tmp,root}
cp /bin/busybox "$ROOTFS/bin/busybox"
for applet in $("$ROOTFS/bin/busybox" --list); do
  [[ -e "$ROOTFS/bin/$applet" ]] || ln -s busybox "$ROOTFS/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$ROOTFS/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$ROOTFS/etc/group"
run imagectl import "$ROOTFS" demo/busybox:latest
run imagectl images

say "3. How the builder reads a Dockerfile (imagectl build itself is not written yet)"
CTX=$WORK/context
mkdir -p "$CTX"
cat > "$CTX/Dockerfile" <<'DOCKERFILE'
FROM demo/busybox:latest
ENV GREETING="hello from a container"
WORKDIR /app
COPY hello.txt /app/hello.txt
RUN echo built > /app/built.txt \
    && rm /bin/vi
CMD ["sh", "-c", "echo $GREETING"]
DOCKERFILE
run imagectl dockerfile parse "$CTX/Dockerfile"

say "4. A container on the image: a union mount with a throwaway upper, run by ctr-runtime"
BUNDLE=$WORK/bundle
mkdir -p "$BUNDLE/rootfs"
run imagectl mount --rw demo/busybox:latest "$BUNDLE/rootfs"
run ctr-runtime spec --bundle "$BUNDLE" -- sh -c 'echo "hello from pid $$ in $(hostname)"; echo changed > /etc/motd; rm /bin/vi; ls /etc'
run ctr-runtime --root "$WORK/state" run --bundle "$BUNDLE" demo-$$
say "   the container's writes stay in the mount's upper layer; the image is unchanged"
run cat "$BUNDLE/rootfs/etc/motd"
run imagectl umount "$BUNDLE/rootfs"

say "5. The image's history"
run imagectl history demo/busybox:latest

say "6. The image mounted read-only for inspection"
mkdir -p "$WORK/inspect"
run imagectl mount demo/busybox:latest "$WORK/inspect"
run ls "$WORK/inspect"
run ls -l "$WORK/inspect/bin/vi"
run imagectl umount "$WORK/inspect"

say "Done. The images stay in the store: imagectl images; imagectl rmi demo/busybox:latest"
