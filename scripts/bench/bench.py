#!/usr/bin/env python3
"""The benchmark driver: mounts the cached stack with each filesystem, runs the workloads, checks and reports.

Why a driver separate from scripts/bench.sh: the shell script prepares things
(root check, the stack, building unionfsd and the crates.io fuse-overlayfs);
this file only measures, so a run can be repeated on a ready stack quickly.
Run it through scripts/bench.sh, which passes --stack and the binaries.
"""

import argparse
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import fsdrivers
import report
import workloads

ALL_FS = ["kernel", "fuse-overlayfs", "fuse-overlayfs2", "unionfsd", "unionfsd-index", "unionfsd-b"]


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="scripts/bench.sh",
        description="Benchmark unionfsd against kernel overlayfs and fuse-overlayfs on a cached Debian layer stack.",
    )
    p.add_argument("--reps", type=int, default=None, help="repetitions per workload and filesystem (default 5; 1 with --quick)")
    p.add_argument("--quick", action="store_true", help="small sizes and 1 repetition: a smoke test, not a measurement")
    p.add_argument("--only", default=None, help="comma-separated workloads to run (default all): " +
                   ",".join(w.name for w in workloads.WORKLOADS))
    p.add_argument("--fs", default=None, help="comma-separated filesystems (default all available): " + ",".join(ALL_FS))
    p.add_argument("--output", default=None, help="where to write the markdown report (default BENCHMARKS.md at the repo root)")
    p.add_argument("--no-write", action="store_true", help="print the table but leave BENCHMARKS.md alone")
    p.add_argument("--timeout", type=float, default=900.0,
                   help="seconds after which a workload command counts as hung and is killed (default 900)")
    p.add_argument("--perf", action="store_true",
                   help="profile each FUSE daemon with perf record during the timed command (perturbs timings; "
                        "implies --no-write); reports land in the run dir's perf/")
    p.add_argument("--stack", required=True, help=argparse.SUPPRESS)
    p.add_argument("--unionfsd", default="", help=argparse.SUPPRESS)
    p.add_argument("--fuse-overlayfs", dest="fuse_overlayfs", default="fuse-overlayfs", help=argparse.SUPPRESS)
    p.add_argument("--fuse-overlayfs2", dest="fuse_overlayfs2", default="", help=argparse.SUPPRESS)
    p.add_argument("--unionfsd-index", dest="unionfsd_index", default="", help=argparse.SUPPRESS)
    p.add_argument("--unionfsd-index-cmd", dest="unionfsd_index_cmd", default="", help=argparse.SUPPRESS)
    p.add_argument("--unionfsd-index-option", dest="unionfsd_index_option", default="index", help=argparse.SUPPRESS)
    p.add_argument("--unionfsd-b", dest="unionfsd_b", default="", help=argparse.SUPPRESS)
    p.add_argument("--argv", default="", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.reps is None:
        a.reps = 1 if a.quick else 5
    if a.reps < 1:
        p.error("--reps must be at least 1")
    if a.perf:
        if not shutil.which("perf"):
            p.error("--perf needs perf (apt-get install linux-perf)")
        a.no_write = True
    return a


def make_filesystems(a):
    """The drivers asked for, in ALL_FS order; unknown names are an error."""
    wanted = ALL_FS if a.fs is None else [s.strip() for s in a.fs.split(",") if s.strip()]
    unknown = [n for n in wanted if n not in ALL_FS]
    if unknown:
        sys.exit(f"bench: unknown filesystem {', '.join(unknown)} (known: {', '.join(ALL_FS)})")
    drivers = {
        "kernel": lambda: fsdrivers.KernelOverlay(),
        "fuse-overlayfs": lambda: fsdrivers.FuseOverlay("fuse-overlayfs", "fuse-overlayfs (Debian package)", a.fuse_overlayfs),
        "fuse-overlayfs2": lambda: fsdrivers.FuseOverlay("fuse-overlayfs2", "fuse-overlayfs from crates.io", a.fuse_overlayfs2),
        "unionfsd": lambda: fsdrivers.FuseOverlay("unionfsd", "unionfsd (this repo), no index file", a.unionfsd),
        "unionfsd-index": lambda: fsdrivers.FuseOverlay(
            "unionfsd-index", f"unionfsd (this repo) with -o {a.unionfsd_index_option}=FILE", a.unionfsd,
            extra_opts=f"{a.unionfsd_index_option}={a.unionfsd_index}" if a.unionfsd_index else ""),
        # Another build (UNIONFSD_B), for A/B comparisons of a change in one run.
        "unionfsd-b": lambda: fsdrivers.FuseOverlay(
            "unionfsd-b", f"unionfsd, build B ({a.unionfsd_b or 'UNIONFSD_B unset'}), no index file", a.unionfsd_b),
    }
    out, skipped = [], {}
    for n in [x for x in ALL_FS if x in wanted]:
        fs = drivers[n]()
        ok, why = fs.available()
        if n == "unionfsd-index" and not a.unionfsd_index:
            ok, why = False, getattr(a, "index_skip", None) or (
                "no index file for the stack: set UNIONFSD_INDEX=FILE, or UNIONFSD_INDEX_CMD to a command "
                "that writes one to $INDEX for the layers in $LOWERDIR")
        if ok:
            out.append(fs)
        else:
            skipped[n] = why
            print(f"bench: skipping {n}: {why}", flush=True)
    return out, skipped


def select_workloads(only):
    if only is None:
        return list(workloads.WORKLOADS)
    names = [s.strip() for s in only.split(",") if s.strip()]
    table = workloads.by_name()
    unknown = [n for n in names if n not in table]
    if unknown:
        sys.exit(f"bench: unknown workload {', '.join(unknown)} (known: {', '.join(table)})")
    return [w for w in workloads.WORKLOADS if w.name in names]


class TimedOut(Exception):
    """A workload command outlived --timeout (a hung or pathologically slow filesystem)."""


def sh(cmd, timeout, mnt=None):
    """Runs a bash command in the C locale in its own process group; returns the CompletedProcess.

    On timeout the FUSE connection of MNT is aborted (so processes blocked on a hung
    daemon wake up), the whole group is killed, and TimedOut is raised.
    """
    env = dict(os.environ, LC_ALL="C")
    p = subprocess.Popen(["bash", "-c", cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         env=env, start_new_session=True)
    try:
        _, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        if mnt:
            fsdrivers.abort_fuse(mnt)
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.communicate()
        raise TimedOut(f"timed out after {timeout:.0f} s")
    return subprocess.CompletedProcess(p.args, p.returncode, None, err)


def drop_caches():
    subprocess.run(["sync"])
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def stack_description(layers_dir, layer_names):
    """Entry, whiteout and opaque-dir counts of each layer, for the report."""
    parts = []
    for name in layer_names:
        root = os.path.join(layers_dir, name)
        entries = whiteouts = opaque = 0
        nbytes = 0
        for dirpath, dirs, files in os.walk(root):
            for d in dirs:
                entries += 1
                try:
                    if os.getxattr(os.path.join(dirpath, d), "trusted.overlay.opaque", follow_symlinks=False) == b"y":
                        opaque += 1
                except OSError:
                    pass
            for f in files:
                entries += 1
                st = os.lstat(os.path.join(dirpath, f))
                if (st.st_mode & 0o170000) == 0o020000 and st.st_rdev == 0:
                    whiteouts += 1
                elif (st.st_mode & 0o170000) == 0o100000:
                    nbytes += st.st_size
        parts.append(f"- `{name}`: {entries:,} entries, {nbytes / 2**20:,.0f} MiB in files, "
                     f"{whiteouts} whiteouts, {opaque} opaque dirs")
    return "\n".join(parts)


def git_revision():
    """The repo's commit, and whether unionfs/ has uncommitted changes: which unionfsd was measured."""
    repo = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    try:
        rev = subprocess.run(["git", "-C", repo, "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", repo, "status", "--porcelain", "--", "unionfs"], capture_output=True,
                               text=True).stdout.strip()
    except OSError:
        return ""
    return f"commit {rev}" + (", with uncommitted changes in unionfs/" if dirty else "") if rev else ""


PURGE_MARK = ".last-purge"
EXT4_RECENTCY_S = 65  # ext4 avoids reusing inodes deleted in the last 60 s (clean inode table block)


def mark_purge(runs):
    """Records that many files were just deleted under RUNS (see Runner._discard)."""
    with open(os.path.join(runs, PURGE_MARK), "w") as f:
        f.write(f"{time.time()}\n")


def wait_after_purge(runs):
    """Waits until ext4 no longer treats the last purge's inodes as recently deleted."""
    try:
        age = time.time() - os.path.getmtime(os.path.join(runs, PURGE_MARK))
    except OSError:
        return
    if 0 <= age < EXT4_RECENTCY_S:
        wait = EXT4_RECENTCY_S - age
        print(f"bench: waiting {wait:.0f} s: files deleted by the previous run would slow this run's creates "
              "(ext4 skips recently deleted inodes)", flush=True)
        subprocess.run(["sync"])
        time.sleep(wait)


def prune_runs(runs, keep):
    """Deletes all but the newest KEEP run dirs (outputs, logs, profiles) that hold no mount."""
    if not os.path.isdir(runs):
        return
    dirs = sorted(n for n in os.listdir(runs) if os.path.isdir(os.path.join(runs, n)))
    old = dirs[:-keep] if keep else dirs
    for name in old:
        path = os.path.join(runs, name)
        if not fsdrivers.mounts_under(path):
            shutil.rmtree(path, ignore_errors=True)
    if old:
        mark_purge(runs)


def build_index(a, lowers, run_root):
    """Runs UNIONFSD_INDEX_CMD once for the stack; returns its duration, or None if not run.

    Why a command from the environment: the index is built by unionfsd's own code (the
    image store does it when unpacking layers); the benchmark only needs some command that
    writes the index of these lower dirs to a file, and times it.
    """
    if not a.unionfsd_index_cmd or a.unionfsd_index:
        return None
    if a.fs is not None and "unionfsd-index" not in a.fs.split(","):
        return None
    index = os.path.join(run_root, "stack.idx")
    env = dict(os.environ, LOWERDIR=":".join(lowers), INDEX=index)
    t0 = time.perf_counter()
    r = subprocess.run(["bash", "-c", a.unionfsd_index_cmd], env=env, capture_output=True, text=True)
    secs = time.perf_counter() - t0
    if r.returncode != 0 or not os.path.isfile(index):
        last = (r.stderr or r.stdout or "").strip().splitlines()
        a.index_skip = f"UNIONFSD_INDEX_CMD failed ({r.returncode}): {last[-1] if last else 'no index written'}"
        return None
    a.unionfsd_index = index
    print(f"bench: index of the stack built in {secs:.2f} s ({os.path.getsize(index):,} bytes)", flush=True)
    return secs


class Runner:
    """Runs (workload, filesystem) pairs on fresh mounts and records into a report.Results."""

    def __init__(self, lowers, manifest, refs, run_root, res, perf=False, timeout=900.0):
        self.lowers, self.manifest, self.refs, self.run_root, self.res = lowers, manifest, refs, run_root, res
        self.perf, self.timeout = perf, timeout
        self.trash = os.path.join(run_root, "trash")
        self.discarded = 0
        for d in ("mnt", "out", "log", "trash") + (("perf",) if perf else ()):
            os.makedirs(os.path.join(run_root, d), exist_ok=True)

    def _start_perf(self, w, fs, pid):
        """perf record of the daemon (all its threads), call graphs included."""
        data = os.path.join(self.run_root, "perf", f"{w.name}.{fs.name}.data")
        p = subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-F", "999", "-g", "-o", data,
                              "-p", str(pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)  # let perf attach before the timed command starts
        return p, data

    @staticmethod
    def _stop_perf(p, data):
        p.send_signal(signal.SIGINT)
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        with open(data + ".txt", "w") as f:
            subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "--sort", "dso,sym",
                            "-g", "none", "--percent-limit", "0.5"], stdout=f, stderr=subprocess.DEVNULL)

    def run(self, w, fs, rep, nreps):
        res = self.res
        upper = os.path.join(self.run_root, "upper")
        work = os.path.join(self.run_root, "work")
        mnt = os.path.join(self.run_root, "mnt", fs.name)
        out = os.path.join(self.run_root, "out", f"{w.name}.{fs.name}.txt")
        log = os.path.join(self.run_root, "log", f"{fs.name}.log")
        if os.path.lexists(upper) or os.path.lexists(work):
            self._discard(upper, work)
        os.makedirs(upper)
        os.makedirs(work)
        os.makedirs(mnt, exist_ok=True)
        tag = f"[rep {rep + 1}/{nreps}] {w.name:<14} {fs.name:<16}"
        try:
            m = fs.mount(self.lowers, upper, work, mnt, log)
        except fsdrivers.MountError as e:
            res.skipped[fs.name] = f"failed to mount: {e}"
            print(f"{tag} skipped from now on: failed to mount: {e}", flush=True)
            return
        try:
            self._measure(w, fs, rep, m, mnt, out, upper, tag)
        except TimedOut as e:
            res.failures[(w.name, fs.name)] = str(e)
            print(f"{tag} FAILED: {e}", flush=True)
        finally:
            m.unmount()
            self._discard(upper, work)

    def _discard(self, upper, work):
        """Moves a run's upper and work dirs aside instead of deleting them.

        Why: ext4 skips inodes deleted in the last minute or so when allocating
        (recently_deleted() in its inode allocator), so deleting a run's thousands of
        files made the next run's creates several times slower (10k creates: 1.0 s
        normally, 7.8 s right after deleting 20k files). The trash is deleted once,
        after the last run. Only the copied-up big file goes at once: one inode
        is harmless, and a gigabyte per run would add up.
        """
        big = os.path.join(upper, "bench", "big.bin")
        if os.path.isfile(big):
            os.unlink(big)
        self.discarded += 1
        for d, kind in ((upper, "upper"), (work, "work")):
            if os.path.lexists(d):
                os.rename(d, os.path.join(self.trash, f"{self.discarded:04d}.{kind}"))

    def purge(self):
        """Deletes the trash (see _discard) and notes when, for the next run to wait on."""
        if os.path.isdir(self.trash) and os.listdir(self.trash):
            shutil.rmtree(self.trash, ignore_errors=True)
            mark_purge(os.path.dirname(self.run_root))

    def _measure(self, w, fs, rep, m, mnt, out, upper, tag):
        """Warm-up, timed command, RSS sample and check of one run on the mount M."""
        res = self.res
        render = lambda t: w.render(t, mnt, out, upper, self.manifest)  # noqa: E731
        if w.prewarm:
            r = sh(render(w.prewarm), self.timeout, mnt)
            if r.returncode != 0:
                self._fail(w, fs, tag, "warm-up", r)
                return
        subprocess.run(["sync"])
        if w.cold:
            drop_caches()
        prof = self._start_perf(w, fs, m.pid) if self.perf and m.pid else None
        t0 = time.perf_counter()
        try:
            r = sh(render(w.cmd), self.timeout, mnt)
        finally:
            if prof:
                self._stop_perf(*prof)
        secs = time.perf_counter() - t0
        if r.returncode != 0:
            self._fail(w, fs, tag, "command", r)
            return
        res.add_time(w.name, fs.name, secs)
        res.add_rss(w.name, fs.name, m.peak_rss_kib())
        ctx = workloads.Ctx(mnt, upper, out, self.manifest, self.refs, rep == 0)
        # The check stats and reads the mount in this process: a watchdog aborts the
        # FUSE connection if the daemon hangs, so the check fails instead of blocking.
        watchdog = threading.Timer(self.timeout, fsdrivers.abort_fuse, args=(mnt,))
        watchdog.start()
        try:
            fp, problems = w.check(ctx)
        except (OSError, ValueError, subprocess.SubprocessError) as e:
            fp, problems = None, [f"check raised {type(e).__name__}: {e}"]
        finally:
            watchdog.cancel()
        res.add_fingerprint(w.name, fs.name, fp)
        for p in problems:
            res.problems.append((w.name, fs.name, rep + 1, p))
        rss = res.rss.get((w.name, fs.name))
        note = "ok" if not problems else "CHECK FAILED: " + "; ".join(problems)
        rss_s = f"{rss / 1024:7.1f} MiB" if m.pid and rss else " " * 11
        print(f"{tag} {secs:8.3f} s  {rss_s}  {note}", flush=True)

    def _fail(self, w, fs, tag, what, r):
        last = (r.stderr or "").strip().splitlines()
        msg = f"{what} exited with {r.returncode}: {last[-1] if last else '(no output)'}"
        self.res.failures[(w.name, fs.name)] = msg
        print(f"{tag} FAILED: {msg}", flush=True)


def load_stack(stack, size):
    """The lower dirs (top first), their names, the manifest and reference hashes of a built stack."""
    layers_dir = os.path.join(stack, "layers")
    names = [f"data-{size}", "mods", "apt", "base"]
    for n in names:
        if not os.path.exists(os.path.join(layers_dir, f"{n}.done")):
            sys.exit(f"bench: layer {n} is not built in {layers_dir}; run scripts/bench.sh, which builds it")
    data = os.path.join(layers_dir, f"data-{size}", "bench")
    with open(os.path.join(data, "MANIFEST.json")) as f:
        manifest = json.load(f)
    refs = {"big_first_mib": workloads.file_sha256(os.path.join(data, "big.bin"), 1 << 20)}
    return layers_dir, names, manifest, refs


def describe_run(a, fses, index_build):
    """Machine, date and versions for the report header."""
    meta = {
        "argv": a.argv,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": report.machine_info(),
        "reps": a.reps,
        "versions": {f.name: f.version() for f in fses},
    }
    meta["load_start"] = meta["machine"].get("load", "?")
    rev = git_revision() if os.environ.get("BENCH_UNIONFSD_BUILT") == "1" else "given by UNIONFSD"
    for n in ("unionfsd", "unionfsd-index"):
        if n in meta["versions"] and rev:
            meta["versions"][n] += f" (source: {rev})"
    if index_build is not None and "unionfsd-index" in meta["versions"]:
        meta["versions"]["unionfsd-index"] += f"; index built by UNIONFSD_INDEX_CMD in {index_build:.2f} s"
    label = []
    if a.quick:
        label.append("QUICK RUN (small sizes) — a smoke test of the script, not a measurement")
    if a.reps < 3 and not a.quick:
        label.append(f"only {a.reps} repetition(s)")
    if a.only or a.fs:
        label.append("partial run (--only/--fs)")
    if a.perf:
        label.append("PROFILED: timings perturbed by perf")
    meta["label"] = "; ".join(label)
    return meta


def install_signal_handlers():
    """INT, TERM and HUP end the run through the normal cleanup (unmount everything)."""

    def on_signal(signum, frame):
        # Once only: a second signal must not interrupt the unmounting.
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        print(f"bench: interrupted by signal {signum}; unmounting", flush=True)
        raise SystemExit(128 + signum)

    # Installed explicitly: started in the background by bench.sh, SIGINT would be ignored.
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)


def run_order(fses, rep):
    """The filesystems' order in repetition REP: rotated, and reversed every other repetition.

    Why reversed: a rotation alone keeps the cyclic order, so each filesystem follows the
    same neighbour in most repetitions, and whatever the run before leaves behind lands on
    one column. (Two columns running the *same* unionfsd binary once differed by 15% on
    untar.) Reversing every other repetition has each pair run in both orders.
    """
    k = (rep // 2) % len(fses)
    order = fses[k:] + fses[:k]
    return order[::-1] if rep % 2 else order


def run_all(runner, wls, fses, reps, runs):
    """Every repetition runs every workload on every filesystem, in the order of run_order."""
    try:
        for rep in range(reps):
            order = run_order(fses, rep)
            for w in wls:
                for fs in order:
                    if fs.name not in runner.res.skipped:
                        runner.run(w, fs, rep, reps)
    finally:
        fsdrivers.unmount_all()
        for p in fsdrivers.mounts_under(runner.run_root):
            fsdrivers.force_unmount(p)
        if not fsdrivers.mounts_under(runner.run_root):
            runner.purge()
            prune_runs(runs, keep=10)


def write_results(a, res, meta, run_root):
    """Prints the table and mismatches, saves results.json, writes BENCHMARKS.md; returns the exit status."""
    print()
    print(report.terminal_table(res))
    problems = res.problems + [(w, f, "-", m) for w, f, m in res.mismatches()]
    for w, f, r, msg in problems:
        print(f"MISMATCH {w} on {f} (rep {r}): {msg}")
    with open(os.path.join(run_root, "results.json"), "w") as f:
        json.dump({"times": {f"{k[0]} {k[1]}": v for k, v in res.times.items()},
                   "rss_kib": {f"{k[0]} {k[1]}": v for k, v in res.rss.items()},
                   "problems": res.problems, "failures": {f"{k[0]} {k[1]}": v for k, v in res.failures.items()},
                   "meta": {k: v for k, v in meta.items() if k != "machine"}}, f, indent=1)
    if not a.no_write:
        out = a.output or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "BENCHMARKS.md")
        tmp = out + ".tmp"
        with open(tmp, "w") as f:
            f.write(report.markdown(res, meta))
            f.write("\n" + report.kept_notes(out))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
        print(f"bench: wrote {os.path.normpath(out)}")
    if a.perf:
        print(f"bench: flat profiles in {run_root}/perf/*.txt (perf report -i FILE.data for call graphs)")
    print(f"bench: outputs and logs in {run_root}")
    return 1 if problems or res.failures else 0


def main(argv):
    a = parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("bench: must run as root (it mounts and drops caches)")
    size = "quick" if a.quick else "full"
    layers_dir, layer_names, manifest, refs = load_stack(a.stack, size)
    lowers = [os.path.join(layers_dir, n) for n in layer_names]

    runs = os.path.join(os.path.dirname(a.stack.rstrip("/")), "runs")
    os.makedirs(runs, exist_ok=True)
    if not a.quick:  # a smoke test need not wait for ext4
        wait_after_purge(runs)
    stamp = datetime.datetime.now().strftime("%Y%m%dT%H%M%S")
    run_root = os.path.join(runs, f"{stamp}-{os.getpid()}")
    os.makedirs(run_root)
    index_build = build_index(a, lowers, run_root)

    wls = select_workloads(a.only)
    fses, skipped = make_filesystems(a)
    if not fses:
        sys.exit("bench: no filesystem to measure")
    res = report.Results(wls, fses)
    res.skipped.update(skipped)
    meta = describe_run(a, fses, index_build)
    print(f"bench: {size} stack, {a.reps} repetition(s), {len(wls)} workload(s), "
          f"filesystems: {', '.join(f.name for f in fses)}; run dir {run_root}", flush=True)

    install_signal_handlers()
    runner = Runner(lowers, manifest, refs, run_root, res, perf=a.perf, timeout=a.timeout)
    t_start = time.monotonic()
    run_all(runner, wls, fses, a.reps, runs)

    res.fses = [f for f in fses if any(k[1] == f.name for k in list(res.times) + list(res.failures))] or fses
    meta["elapsed_min"] = (time.monotonic() - t_start) / 60
    meta["load_end"] = report.machine_info().get("load", "?")
    meta["stack_desc"] = stack_description(layers_dir, layer_names)
    return write_results(a, res, meta, run_root)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
