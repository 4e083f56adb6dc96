"""Turns the raw timings into the tables printed on the terminal and written to BENCHMARKS.md.

Why medians with min-max and ratios to kernel overlayfs: timings on a shared
2-core machine are noisy (kernel create/rm swing 3x between runs), so the median
of interleaved repetitions is the number to compare, the range says how far to
trust it, and the kernel is the bar a userspace union filesystem is held to.
"""

import os
import statistics
import subprocess

REFERENCE = "kernel"
FUSE_PEER = "fuse-overlayfs"


class Results:
    """Everything one benchmark run measured and checked."""

    def __init__(self, workloads, fses):
        self.workloads = workloads  # list of Workload, in order
        self.fses = fses  # list of fs drivers, in order
        self.times = {}  # (wl, fs) -> [seconds]
        self.rss = {}  # (wl, fs) -> max VmHWM KiB
        self.fingerprints = {}  # (wl, fs) -> [fingerprint]
        self.problems = []  # (wl, fs, rep, message)
        self.failures = {}  # (wl, fs) -> message of the last failed command
        self.skipped = {}  # fs -> why it was not measured

    def add_time(self, wl, fs, secs):
        self.times.setdefault((wl, fs), []).append(secs)

    def add_rss(self, wl, fs, kib):
        if kib is not None:
            self.rss[(wl, fs)] = max(kib, self.rss.get((wl, fs), 0))

    def add_fingerprint(self, wl, fs, fp):
        if fp is not None:
            self.fingerprints.setdefault((wl, fs), []).append(fp)

    def median(self, wl, fs):
        t = self.times.get((wl, fs))
        return statistics.median(t) if t else None

    def mismatches(self):
        """(wl, fs, message) for results that differ from the reference filesystem's or between reps."""
        out = []
        names = [f.name for f in self.fses]
        for w in self.workloads:
            ref_fs = REFERENCE if (w.name, REFERENCE) in self.fingerprints else None
            if ref_fs is None:
                ref_fs = next((n for n in names if (w.name, n) in self.fingerprints), None)
            if ref_fs is None:
                continue
            ref = self.fingerprints[(w.name, ref_fs)][0]
            for n in names:
                fps = self.fingerprints.get((w.name, n))
                if not fps:
                    continue
                if len(set(fps)) > 1:
                    out.append((w.name, n, f"differs between repetitions: {sorted(set(fps))}"))
                if n != ref_fs and fps[0] != ref:
                    out.append((w.name, n, f"result {fps[0]} differs from {ref_fs}'s {ref} (diff the run dir's "
                                           f"out/{w.name}.{ref_fs}.txt.check and out/{w.name}.{n}.txt.check)"))
        return out

    def flagged(self):
        """(wl, fs) pairs whose result is wrong (a problem, a mismatch or a failed command)."""
        bad = {(w, f) for w, f, _, _ in self.problems}
        bad |= {(w, f) for w, f, _ in self.mismatches()}
        bad |= set(self.failures)
        return bad


def fmt_s(x):
    if x is None:
        return "-"
    return f"{x:.3f}" if x < 10 else f"{x:.2f}"


def cell(res, wl, fs, flagged):
    t = res.times.get((wl, fs))
    if not t:
        if (wl, fs) in res.failures:
            return "FAILED"
        return "-"
    med = statistics.median(t)
    s = fmt_s(med)
    if len(t) > 1:
        s += f" ({fmt_s(min(t))}–{fmt_s(max(t))})"
    ref = res.median(wl, REFERENCE)
    if ref and fs != REFERENCE:
        s += f" {med / ref:.2f}x"
    if (wl, fs) in flagged:
        s += " ✗"
    return s


def machine_info():
    """nproc, kernel, memory and CPU of this machine, for the report header."""
    info = {"nproc": os.cpu_count(), "kernel": os.uname().release}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    info["memory"] = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/loadavg") as f:
            info["load"] = " ".join(f.read().split()[:3])
    except OSError:
        pass
    try:
        info["fs"] = subprocess.run(
            ["findmnt", "-no", "FSTYPE,SOURCE", "-T", "/var/tmp"], capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        pass
    return info


def terminal_table(res):
    """The results as fixed-width text for the terminal."""
    flagged = res.flagged()
    names = [f.name for f in res.fses]
    rows = [["workload"] + names]
    for w in res.workloads:
        rows.append([w.name] + [cell(res, w.name, n, flagged) for n in names])
    fuse = [f.name for f in res.fses if f.kind == "fuse"]
    if fuse:
        rows.append(["peak RSS (max)"] + [_rss_max(res, n) if n in fuse else "-" for n in names])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _rss_max(res, fs):
    vals = [v for (w, f), v in res.rss.items() if f == fs]
    return f"{max(vals) / 1024:.1f} MiB" if vals else "-"


def _md_table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def targets_section(res):
    """Issue 6's targets, checked for every unionfsd variant measured."""
    ours = [f.name for f in res.fses if f.name.startswith("unionfsd")]
    if not ours:
        return "unionfsd was not measured in this run, so no target can be checked.\n"
    flagged = res.flagged()
    header = ["workload", "target"]
    for n in ours:
        header += [f"{n} / kernel", f"{n} / fuse-overlayfs", "met"]
    rows = []
    for w in res.workloads:
        tgt = f"≤ {w.target}x kernel, ≤ fuse-overlayfs" if w.target else "≤ fuse-overlayfs"
        row = [w.name, tgt]
        for n in ours:
            m, k, p = res.median(w.name, n), res.median(w.name, REFERENCE), res.median(w.name, FUSE_PEER)
            rk = f"{m / k:.2f}x" if m and k else "-"
            rp = f"{m / p:.2f}x" if m and p else "-"
            if m is None:
                met = "not measured"
            elif (w.name, n) in flagged:
                met = "no (wrong result)"
            else:
                ok = (p is None or m <= p) and (w.target is None or k is None or m <= w.target * k)
                met = "yes" if ok else "no"
                if p is None and (w.target is None or k is None):
                    met = "n/a"
            row += [rk, rp, met]
        rows.append(row)
    text = _md_table(header, rows) + "\n"
    peer = [v for (w, f), v in res.rss.items() if f == FUSE_PEER]
    for n in ours:
        mine = [v for (w, f), v in res.rss.items() if f == n]
        if mine and peer:
            verdict = "met" if max(mine) < max(peer) else "not met"
            text += (f"\nPeak RSS: {n} {max(mine) / 1024:.1f} MiB vs fuse-overlayfs {max(peer) / 1024:.1f} MiB "
                     f"(target: below fuse-overlayfs): {verdict}.\n")
    return text


NOTES_MARKER = "<!-- Hand-written notes below this line are kept when scripts/bench.sh rewrites this file. -->"


def kept_notes(path):
    """The hand-written tail of an existing BENCHMARKS.md (from NOTES_MARKER on), or a fresh marker.

    Why: the tables are regenerated on every run, but the analysis of why a target is
    or is not reached is written by people and must survive a rerun.
    """
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return NOTES_MARKER + "\n"
    i = text.find(NOTES_MARKER)
    return text[i:] if i >= 0 else NOTES_MARKER + "\n"


def markdown(res, meta):
    """The whole BENCHMARKS.md but the kept notes (see kept_notes)."""
    flagged = res.flagged()
    names = [f.name for f in res.fses]
    out = ["# Benchmarks: unionfsd against kernel overlayfs and fuse-overlayfs", ""]
    out.append(f"Generated by `scripts/bench.sh {meta['argv']}` on {meta['date']} "
               f"(run took {meta['elapsed_min']:.1f} min).")
    out.append("")
    if meta["label"]:
        out += [f"**{meta['label']}**", ""]
    m = meta["machine"]
    out += ["## Machine", ""]
    out.append(f"- CPUs (nproc): {m.get('nproc')}; CPU: {m.get('cpu', '?')}")
    out.append(f"- kernel: {m.get('kernel')}; memory: {m.get('memory', '?')}; "
               f"stack and uppers on: {m.get('fs', '?')}")
    out.append(f"- load average at start: {meta['load_start']}; at end: {meta['load_end']} "
               "(the machine is shared; a high load means noisy timings)")
    out += ["", "## Filesystems", ""]
    for f in res.fses:
        out.append(f"- `{f.name}`: {f.label} — {meta['versions'].get(f.name, '?')}")
    for n, why in res.skipped.items():
        out.append(f"- `{n}`: **not measured** — {why}")
    out += ["", "## Stack", ""]
    out.append(f"{meta['stack_desc']}")
    out += ["", "## Results", ""]
    out.append(f"Median seconds over {meta['reps']} interleaved repetition(s), (min–max), and the ratio of the median "
               "to kernel overlayfs's. ✗ marks a result that failed its check (see below). A fresh upper dir and a "
               "fresh mount for every run.")
    out.append("")
    rows = [[f"`{w.name}`"] + [cell(res, w.name, n, flagged) for n in names] for w in res.workloads]
    out.append(_md_table(["workload"] + names, rows))
    out += ["", "Workloads:", ""]
    for w in res.workloads:
        out.append(f"- `{w.name}`: {w.desc}.")
    fuse = [f.name for f in res.fses if f.kind == "fuse"]
    if fuse:
        out += ["", "## Peak RSS of the FUSE daemons", ""]
        out.append("VmHWM from /proc/PID/status, sampled right after the timed command (before the checks and the "
                   "unmount); the largest over the repetitions.")
        out.append("")
        rows = []
        for w in res.workloads:
            rows.append([f"`{w.name}`"] + [
                f"{res.rss[(w.name, n)] / 1024:.1f} MiB" if (w.name, n) in res.rss else "-" for n in fuse])
        rows.append(["**max**"] + [_rss_max(res, n) for n in fuse])
        out.append(_md_table(["workload"] + fuse, rows))
    out += ["", "## Correctness checks", ""]
    out.append("Every run's result is checked against the stack's manifest (counts, checksums, the built program's "
               "output, the copy-up in the upper dir) and its fingerprint compared with kernel overlayfs's.")
    out.append("")
    issues = [f"- `{w}` on `{f}` (rep {r}): {msg}" for w, f, r, msg in res.problems]
    issues += [f"- `{w}` on `{f}`: {msg}" for w, f, msg in res.mismatches()]
    issues += [f"- `{w}` on `{f}`: command failed: {msg}" for (w, f), msg in res.failures.items()]
    out += issues if issues else ["All results agree and pass their checks."]
    out += ["", "## Issue 6 targets", ""]
    out.append(targets_section(res))
    out += ["## Method", "", METHOD, "## How to run", "", HOW_TO_RUN]
    return "\n".join(out) + "\n"


METHOD = """\
- The stack is built once by `scripts/bench/stack.sh` and cached under `/var/tmp/unionfs-bench/v1/layers`
  (keyed by that version string): `base` is `debootstrap --variant=minbase bookworm`; `apt` is the upper dir of a
  kernel overlayfs mount in which a chroot ran a real `apt-get install` and a Dockerfile-style cleanup (so it holds
  the kernel's whiteouts and opaque dirs); `mods` is a layer of overrides, deletions, type changes and re-created
  directories; `data-full` (or `data-quick`) holds the synthetic data, written by `scripts/bench/gendata.py` from a
  seeded generator: the small-files dir, the big file (real, non-sparse data), half of the rm tree, the tar and the C
  project. The lower dirs are `data:mods:apt:base` (leftmost on top).
- Each repetition runs every workload on every filesystem, rotating the filesystem order and reversing it every
  other repetition (so each pair of filesystems runs in both orders);
  each run mounts the stack with a fresh, empty upper and work dir and unmounts it afterwards.
- Upper and work dirs are not deleted between runs but moved aside and deleted after the last run (and a run
  started within a minute of such a purge waits first): ext4's inode allocator skips inodes deleted in the last
  minute, which made creates right after a deletion several times slower (10k creates: 1.0 s, 7.8 s right after
  deleting 20k files) and would have penalized whichever filesystem ran after a create-heavy run.
- Before every timed command: `sync`; for the cold workloads also `echo 3 > /proc/sys/vm/drop_caches`. The warm
  workloads run their command once untimed first. Timing is wall-clock of the command alone (a `bash -c`).
- The two copy-up workloads (`copyup-append`, `chmod-r`) end with `sync -f` of the mount and of the upper dir,
  because kernel overlayfs fsyncs every copy-up and the FUSE daemons do not: this way every filesystem ends with the
  data on disk. (`sync -f` on a FUSE mount alone flushes nothing of the upper, hence the second one.)
- FUSE daemons are started with fuse-overlayfs's command line, `-o lowerdir=...,upperdir=...,workdir=... MNT`, and no
  tuning options; kernel overlayfs with the kernel's defaults.
- Every result is checked: walk listings (type, path, mode, owner, size, mtime, symlink target) and per-file
  checksums are compared with kernel overlayfs's; counts, the big file's sha256, the appended bytes, the full copy in
  the upper dir, created and extracted trees and the built program's output are checked against the manifest.
- Numbers from a quick run (`--quick`: 1,000 small files, a 64 MiB big file, 300 files in the tar, one repetition)
  are a smoke test of the script, not a measurement.
"""

HOW_TO_RUN = """\
As root, on a machine with `debootstrap fuse3 fuse-overlayfs attr gcc make` (and `linux-perf` for `--perf`):

```
scripts/bench.sh                       # everything, 5 repetitions; writes this file
scripts/bench.sh --quick               # small sizes, 1 repetition: checks the script works
scripts/bench.sh --reps 3 --only walk-cold,walk-warm --fs kernel,unionfsd
scripts/bench.sh --quick --perf --fs unionfsd --only ls-10k-warm   # flat profiles of the daemon
UNIONFSD=/path/to/unionfsd scripts/bench.sh ...                   # measure another build
```

The first run builds the stack (about two minutes, needs the Debian mirror) and `cargo install`s
fuse-overlayfs 2 from crates.io (a few minutes; skipped if it fails). Every mount is unmounted on exit,
error or interrupt. The exit status is non-zero when a result fails its check.
"""
