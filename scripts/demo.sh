#!/usr/bin/env bash
# The main job end to end, on the embedded default store (/var/lib/imagectl as root):
#   1. a union filesystem over three layers: lookup through layers, copy-up, whiteout;
#   2. a base image made locally from Debian's busybox-static;
#   3. a Dockerfile build (RUN in a container, one layer per step, a layer cache);
#   4. containers: run, exec, diff, commit, stop, rm; 5. history; 6. the image mounted
#   read-only for inspection.
# Installs what it needs (Debian packages, a release build) when missing. Run as root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec </dev/null

APT_PACKAGES=(fuse3 busybox-static)
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# Prints a command as it could be typed (arguments with spaces or shell characters quoted), then runs it.
run() {
  local shown="" a
  for a in "$@"; do
    if [[ $a =~ [[:space:]\"\$\;\|\&\<\>\*\'] ]]; then shown+=" '${a//\'/\'\\\'\'}'"; else shown+=" $a"; fi
  done
  printf '$%s\n' "$shown"
  "$@"
}

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
CTR=demo-web-$$
cleanup() {
  imagectl rm -f "$CTR" >/dev/null 2>&1 || true
  for m in "$MNT" "$WORK/inspect"; do
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

say "3. A Dockerfile build: RUN in a container over a union mount, one layer per step, a cache"
CTX=$WORK/context
mkdir -p "$CTX"
cat > "$CTX/Dockerfile" <<'DOCKERFILE'
FROM demo/busybox:latest
ENV GREETING="hello from a container"
WORKDIR /app
COPY hello.txt /app/hello.txt
RUN echo built > /app/built.txt \
    && rm /bin/vi
CMD ["sh", "-c", "echo $GREETING; cat /app/hello.txt"]
DOCKERFILE
echo "hello from the build context" > "$CTX/hello.txt"
say "   how the builder reads the file"
run imagectl dockerfile parse "$CTX/Dockerfile"
run imagectl build -t demo/app:1 "$CTX"
say "   an unchanged rebuild comes from the cache (same image ID)"
run imagectl build -t demo/app:1 "$CTX"
say "   a changed COPY source invalidates that step and the ones after it; --explain-cache says why"
echo "changed in the context" > "$CTX/hello.txt"
run imagectl build --explain-cache -t demo/app:2 "$CTX"

say "4. Containers: an image plus one private writable layer each"
run imagectl run --rm demo/app:2
run imagectl run --rm demo/busybox:latest sh -c 'echo "hello from pid $$ in $(hostname)"; id'
run imagectl run -d --name "$CTR" demo/busybox:latest sh -c 'echo changed > /etc/motd; rm /bin/vi; touch /abc.txt; echo ready; sleep 1000'
until imagectl logs "$CTR" | grep -q ready; do sleep 0.1; done
run imagectl ps
run imagectl exec "$CTR" cat /etc/motd
say "   diff reads the container's upper layer: A added, C changed, D deleted (a whiteout)"
run imagectl diff "$CTR"
run imagectl commit -m "demo change" "$CTR" demo/changed:latest
run imagectl run --rm demo/changed:latest ls -l /abc.txt /etc/motd
say "   the image the container came from is unchanged"
run imagectl run --rm demo/busybox:latest sh -c 'ls /abc.txt 2>&1 || true'
run imagectl stop -t 1 "$CTR"
run imagectl ps -a
run imagectl rm "$CTR"

say "5. The image's history"
run imagectl history demo/app:2

say "6. The image mounted read-only for inspection"
mkdir -p "$WORK/inspect"
run imagectl mount demo/app:2 "$WORK/inspect"
run ls "$WORK/inspect"
run ls "$WORK/inspect/app"
run sh -c "ls '$WORK/inspect/bin/vi' 2>&1 || true"
run imagectl umount "$WORK/inspect"

say "Done. The images stay in the store: imagectl images; imagectl rmi demo/app:1 demo/app:2 demo/changed:latest demo/busybox:latest"
