"""The workloads: what is timed, what is run before it, and how its result is checked.

Why every workload carries its own check: a union filesystem that is fast
because it skips work (a walk that misses whiteouts, a copy-up that writes
nothing) must not look like a win. Each check returns a fingerprint, compared
across filesystems (kernel overlayfs is the reference), and a list of problems
found against the stack's manifest, which are flagged whatever the others say.
"""

import hashlib
import os
import shlex
import stat
import subprocess
from dataclasses import dataclass, field
from typing import Callable, Optional

APPEND = "appended by bench\n"


@dataclass
class Ctx:
    """What a check needs: the mount, the timed command's output file, the manifest."""

    mnt: str
    upper: str
    out: str
    manifest: dict
    refs: dict
    first_rep: bool

    def save(self, lines):
        """Keeps what the fingerprint was computed from, so a mismatch can be diffed across filesystems."""
        with open(self.out + ".check", "w", errors="surrogateescape") as f:
            f.write("\n".join(lines) + "\n")


@dataclass
class Workload:
    """One timed operation on a freshly mounted stack (fresh upper every run)."""

    name: str
    desc: str
    cmd: str  # bash, with {mnt} {out} {upper} {n_create} placeholders
    check: Callable[[Ctx], tuple]
    cold: bool = False
    prewarm: Optional[str] = None
    # Issue 6's target for unionfsd: max ratio to kernel overlayfs (None: only "<= fuse-overlayfs").
    target: Optional[float] = None
    aliases: list = field(default_factory=list)

    def render(self, template, mnt, out, upper, manifest):
        return template.format(
            mnt=shlex.quote(mnt),
            out=shlex.quote(out),
            upper=shlex.quote(upper),
            n_create=manifest["small_files"],
        )


def _h(items):
    h = hashlib.sha256()
    for it in items:
        h.update(it.encode(errors="surrogateescape"))
        h.update(b"\n")
    return h.hexdigest()[:16]


def file_sha256(path, limit=None):
    """sha256 of a file (or of its first LIMIT bytes)."""
    h = hashlib.sha256()
    left = limit
    with open(path, "rb") as f:
        while True:
            n = 1 << 20 if left is None else min(1 << 20, left)
            if n == 0:
                break
            b = f.read(n)
            if not b:
                break
            h.update(b)
            if left is not None:
                left -= len(b)
    return h.hexdigest()


def tree_listing(root, content=False):
    """Sorted lines describing every entry below ROOT: type, path, mode, owner, size, target, data hash."""
    lines = []
    for dirpath, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + files):
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            m = st.st_mode
            if stat.S_ISDIR(m):
                lines.append(f"d {rel} {stat.S_IMODE(m):o} {st.st_uid} {st.st_gid}")
            elif stat.S_ISLNK(m):
                lines.append(f"l {rel} {st.st_uid} {st.st_gid} -> {os.readlink(p)}")
            elif stat.S_ISREG(m):
                digest = file_sha256(p) if content else ""
                lines.append(f"f {rel} {stat.S_IMODE(m):o} {st.st_uid} {st.st_gid} {st.st_size} {digest}")
            else:
                lines.append(f"o {rel} {stat.S_IFMT(m):o} {stat.S_IMODE(m):o} {st.st_rdev}")
    return lines


def _whiteout_leaks(lines, type_idx, path_idx):
    """Entries that look like leaked whiteouts: .wh. names, or 0/0 char devices outside /dev."""
    bad = []
    for parts in lines:
        path = parts[path_idx]
        base = path.rsplit("/", 1)[-1]
        if base.startswith(".wh.") or (parts[type_idx] == "c" and not path.startswith("dev/")):
            bad.append(path)
    return bad


# --- checks -------------------------------------------------------------------------------


def check_walk(ctx):
    norm, rows = [], []
    with open(ctx.out, errors="surrogateescape") as f:
        for line in f:
            parts = line.rstrip("\n").split(" ", 7)
            if len(parts) < 8:
                continue
            y, p, mode, uid, gid, size, mtime, target = parts
            rows.append(parts)
            if y == "d":
                norm.append(f"{y} {p} {mode} {uid} {gid}")
            else:
                norm.append(f"{y} {p} {mode} {uid} {gid} {size} {int(float(mtime))} {target}")
    norm.sort()
    ctx.save(norm)
    problems = [f"whiteout visible: {p}" for p in _whiteout_leaks(rows, 0, 1)[:5]]
    if not any(r[1] == "bench/MANIFEST.json" for r in rows):
        problems.append("walk did not reach bench/MANIFEST.json")
    return f"{len(norm)} entries #{_h(norm)}", problems


def check_ls(ctx):
    with open(ctx.out, errors="surrogateescape") as f:
        lines = [l.rstrip("\n") for l in f]
    problems = []
    want = ctx.manifest["small_files"] + 1
    if len(lines) != want:
        problems.append(f"ls -l printed {len(lines)} lines, expected {want}")
    # The "total" line sums st_blocks, which each filesystem may report its own way.
    body = [l for l in lines if not l.startswith("total ")]
    ctx.save(body)
    return f"{len(body)} lines #{_h(body)}", problems


def check_read_all(ctx):
    if not ctx.first_rep:
        return None, []
    big = os.path.join(ctx.mnt, "bench", "big.bin")
    lines = []
    for dirpath, dirs, files in os.walk(ctx.mnt):
        dirs.sort()
        for name in sorted(files):
            p = os.path.join(dirpath, name)
            if p == big or not stat.S_ISREG(os.lstat(p).st_mode):
                continue
            lines.append(f"{os.path.relpath(p, ctx.mnt)} {file_sha256(p)}")
    ctx.save(lines)
    return f"{len(lines)} files #{_h(lines)}", []


def check_big(ctx):
    p = os.path.join(ctx.mnt, "bench", "big.bin")
    problems = []
    size = os.stat(p).st_size
    if size != ctx.manifest["big_bytes"]:
        problems.append(f"big.bin is {size} bytes, expected {ctx.manifest['big_bytes']}")
    if ctx.first_rep:
        if file_sha256(p) != ctx.manifest["big_sha256"]:
            problems.append("big.bin read back with a wrong sha256")
    return f"{size} bytes", problems


def check_copyup(ctx):
    p = os.path.join(ctx.mnt, "bench", "big.bin")
    want = ctx.manifest["big_bytes"] + len(APPEND)
    problems = []
    size = os.stat(p).st_size
    if size != want:
        problems.append(f"after append big.bin is {size} bytes, expected {want}")
    with open(p, "rb") as f:
        f.seek(-len(APPEND), os.SEEK_END)
        if f.read() != APPEND.encode():
            problems.append("appended bytes not read back at the end of big.bin")
    if file_sha256(p, 1 << 20) != ctx.refs["big_first_mib"]:
        problems.append("first MiB of big.bin changed by the copy-up")
    up = os.path.join(ctx.upper, "bench", "big.bin")
    if not os.path.isfile(up) or os.path.getsize(up) != want:
        problems.append("upper dir holds no full copy of big.bin after the copy-up")
    return f"{size} bytes", problems


def check_create(ctx):
    d = os.path.join(ctx.mnt, "created")
    n = ctx.manifest["small_files"]
    names = sorted(os.listdir(d))
    problems = []
    if len(names) != n:
        problems.append(f"{len(names)} files created, expected {n}")
    bad = 0
    for i in range(1, n + 1):
        try:
            with open(os.path.join(d, f"f{i}"), "rb") as f:
                if f.read() != f"file {i}\n".encode():
                    bad += 1
        except OSError:
            bad += 1
    if bad:
        problems.append(f"{bad} created files missing or with wrong content")
    return f"{len(names)} files #{_h(names)}", problems


def check_rm(ctx):
    problems = []
    if os.path.lexists(os.path.join(ctx.mnt, "bench", "rmtree")):
        problems.append("bench/rmtree still exists after rm -rf")
    names = sorted(os.listdir(os.path.join(ctx.mnt, "bench")))
    want = sorted(["MANIFEST.json", "big.bin", "cproj", "small", "untar.tar"])
    if names != want:
        problems.append(f"bench/ holds {names}, expected {want}")
    return " ".join(names), problems


def check_untar(ctx):
    lines = tree_listing(os.path.join(ctx.mnt, "untarred"), content=True)
    ctx.save(lines)
    problems = []
    if len(lines) != ctx.manifest["untar_entries"]:
        problems.append(f"{len(lines)} entries extracted, expected {ctx.manifest['untar_entries']}")
    return f"{len(lines)} entries #{_h(lines)}", problems


def check_chmod(ctx):
    lines = tree_listing(os.path.join(ctx.mnt, "usr", "share"))
    ctx.save(lines)
    problems = []
    not_gw = [l.split()[1] for l in lines if l[0] in "df" and not int(l.split()[2], 8) & 0o020]
    if not_gw:
        problems.append(f"{len(not_gw)} entries without g+w after chmod -R, e.g. {not_gw[0]}")
    return f"{len(lines)} entries #{_h(lines)}", problems


def check_cbuild(ctx):
    d = os.path.join(ctx.mnt, "bench", "cproj")
    problems = []
    r = subprocess.run([os.path.join(d, "prog")], capture_output=True, text=True)
    got = r.stdout.strip()
    if got != ctx.manifest["cproj_output"]:
        problems.append(f"built program printed {got!r}, expected {ctx.manifest['cproj_output']!r}")
    objs = sorted(n for n in os.listdir(d) if n.endswith(".o"))
    if len(objs) != ctx.manifest["cproj_files"]:
        problems.append(f"{len(objs)} object files, expected {ctx.manifest['cproj_files']}")
    return f"{got} ({len(objs)} objects)", problems


WALK = "find {mnt} -printf '%y %P %m %U %G %s %T@ %l\\n' > {out}"
READ_ALL = "find {mnt} -type f ! -path {mnt}/bench/big.bin -print0 | xargs -0 -r cat > /dev/null"
SEQ_READ = "dd if={mnt}/bench/big.bin of=/dev/null bs=1M status=none"

WORKLOADS = [
    Workload("walk-cold", "metadata walk (find -printf of every entry), cold caches", WALK, check_walk,
             cold=True, target=1.5),
    Workload("walk-warm", "metadata walk, warm (after one untimed walk)", WALK, check_walk,
             prewarm=WALK, target=1.2),
    Workload("ls-10k-warm", "ls -l of the small-files dir, warm", "ls -l {mnt}/bench/small > {out}", check_ls,
             prewarm="ls -l {mnt}/bench/small > /dev/null", target=1.2),
    Workload("read-all-cold", "read every file (but the big one), cold", READ_ALL, check_read_all, cold=True),
    Workload("read-all-warm", "read every file (but the big one), warm", READ_ALL, check_read_all,
             prewarm=READ_ALL, target=1.2),
    Workload("seq-read-cold", "sequential read of the big file, cold", SEQ_READ, check_big, cold=True, target=1.2),
    Workload("seq-read-warm", "sequential read of the big file, warm", SEQ_READ, check_big,
             prewarm=SEQ_READ, target=1.2),
    Workload("copyup-append", "append one line to the big lower file (copy-up), then sync -f the mount and the upper",
             "printf '" + APPEND.replace("\n", "\\n") + "' >> {mnt}/bench/big.bin"
             " && sync -f {mnt}/bench/big.bin && sync -f {upper}", check_copyup),
    Workload("create-files", "create small files in a new dir (as many as the small-files dir has)",
             "mkdir {mnt}/created && cd {mnt}/created && for i in $(seq 1 {n_create}); do printf 'file %d\\n' \"$i\" > \"f$i\"; done",
             check_create, target=2.0),
    Workload("rm-lower-tree", "rm -rf of a 1,000-entry tree spread over two lower layers",
             "rm -rf {mnt}/bench/rmtree", check_rm, target=2.0),
    Workload("untar", "untar a tar of real files from /usr into a new dir",
             "mkdir {mnt}/untarred && tar -C {mnt}/untarred -xf {mnt}/bench/untar.tar", check_untar, target=2.0),
    Workload("chmod-r", "chmod -R g+w over /usr/share (a copy-up of each lower file), then sync -f the mount and the upper",
             "chmod -R g+w {mnt}/usr/share && sync -f {mnt}/usr/share && sync -f {upper}", check_chmod),
    Workload("c-build", "make -j2 of a generated C project in the lower layer (objects written to the upper)",
             "make -s -C {mnt}/bench/cproj -j2", check_cbuild),
]


def by_name():
    return {w.name: w for w in WORKLOADS}
