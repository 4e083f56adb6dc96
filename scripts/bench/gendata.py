#!/usr/bin/env python3
"""Writes the benchmark's synthetic data into ROOT/bench (the top layer of the stack).

Why deterministic: every file's content comes from a seeded generator, so a
rebuilt cache has the same checksums and results stay comparable across runs.
Why real data for the big file: a sparse file would let every filesystem skip
the disk, and the sequential-read workload would measure nothing.

Usage: gendata.py ROOT full|quick
Writes ROOT/bench/MANIFEST.json with the expected values the benchmark checks.
"""

import hashlib
import json
import os
import random
import subprocess
import sys

SIZES = {
    # small files, big file bytes, untar files, C files, functions per C file
    "full": dict(small=10_000, big=1 << 30, untar=3_000, cfiles=32, cfuncs=120),
    "quick": dict(small=1_000, big=64 << 20, untar=300, cfiles=6, cfuncs=40),
}
MASK = 0xFFFFFFFF


def write_small(bench, count, rng):
    """A flat directory of small files of varied sizes (the `ls -l` workload)."""
    d = os.path.join(bench, "small")
    os.makedirs(d)
    for i in range(count):
        with open(os.path.join(d, f"s{i:05d}"), "wb") as f:
            f.write(f"small file {i}\n".encode())
            f.write(rng.randbytes(rng.randrange(32, 4096)))


def write_big(bench, size, rng):
    """One big file of incompressible, non-sparse data; returns its sha256."""
    h = hashlib.sha256()
    chunk = 1 << 20
    with open(os.path.join(bench, "big.bin"), "wb") as f:
        left = size
        while left:
            n = min(chunk, left)
            b = rng.randbytes(n)
            h.update(b)
            f.write(b)
            left -= n
        f.flush()
        os.fsync(f.fileno())
    return h.hexdigest()


def write_rmtree(bench):
    """The upper half of the rm -rf tree; the mods layer holds the lower half."""
    base = os.path.join(bench, "rmtree")
    os.makedirs(base, exist_ok=True)
    for d in range(1, 21):
        sub = os.path.join(base, f"d{d:02d}")
        os.mkdir(sub)
        for f in range(1, 25):
            with open(os.path.join(sub, f"f{f:02d}"), "w") as fh:
                fh.write(f"d{d:02d}/{f:02d}\n")


def count_tree(path):
    """Entries below PATH (not PATH itself), the way find -mindepth 1 counts them."""
    n = 0
    for _, dirs, files in os.walk(path):
        n += len(dirs) + len(files)
    return n


def write_untar(root, bench, nfiles):
    """A tar of the first NFILES real files under /usr (the untar workload)."""
    picked = []
    files = 0
    for dirpath, dirs, names in os.walk(os.path.join(root, "usr")):
        dirs.sort()
        rel = os.path.relpath(dirpath, root)
        picked.append(rel)
        for name in sorted(names):
            if files >= nfiles:
                break
            p = os.path.join(dirpath, name)
            if os.path.isfile(p) or os.path.islink(p):
                picked.append(os.path.join(rel, name))
                files += 1
        if files >= nfiles:
            break
    listing = os.path.join(bench, ".untar.list")
    with open(listing, "w") as f:
        f.write("\n".join(picked) + "\n")
    subprocess.run(
        ["tar", "-C", root, "-cf", os.path.join(bench, "untar.tar"), "--no-recursion", "-T", listing],
        check=True,
    )
    os.unlink(listing)
    return files, len(picked)


def write_cproj(bench, nfiles, nfuncs, rng):
    """A generated C project built with make -j2; returns the program's expected output."""
    d = os.path.join(bench, "cproj")
    os.makedirs(d)
    with open(os.path.join(d, "common.h"), "w") as f:
        f.write("#include <stdio.h>\n#include <stdint.h>\n")
        for k in range(nfiles):
            f.write(f"uint32_t file_{k}(uint32_t x);\n")
    x = 1
    for k in range(nfiles):
        lines = ['#include "common.h"\n']
        calls = []
        for j in range(nfuncs):
            a = rng.randrange(1, MASK) | 1
            b = rng.randrange(0, MASK)
            s = rng.randrange(3, 29)
            r = rng.randrange(1, 31)
            lines.append(
                f"static uint32_t f_{j}(uint32_t x) {{\n"
                f"    uint32_t y = x * {a}u + {b}u;\n"
                f"    y ^= y >> {s};\n"
                f"    y = (y << {r}) | (y >> {32 - r});\n"
                f"    switch (y & 3u) {{\n"
                f"    case 0: y += {b ^ 0x5bd1e995}u; break;\n"
                f"    case 1: y ^= {a >> 1}u; break;\n"
                f"    case 2: y -= {s * 7919}u; break;\n"
                f"    default: y *= 2654435761u; break;\n"
                f"    }}\n"
                f"    return y;\n}}\n"
            )
            calls.append(f"    x = f_{j}(x);\n")
            y = (x * a + b) & MASK
            y ^= y >> s
            y = ((y << r) | (y >> (32 - r))) & MASK
            sel = y & 3
            if sel == 0:
                y = (y + (b ^ 0x5BD1E995)) & MASK
            elif sel == 1:
                y ^= a >> 1
            elif sel == 2:
                y = (y - s * 7919) & MASK
            else:
                y = (y * 2654435761) & MASK
            x = y
        lines.append(f"uint32_t file_{k}(uint32_t x) {{\n{''.join(calls)}    return x;\n}}\n")
        with open(os.path.join(d, f"part{k:03d}.c"), "w") as f:
            f.write("".join(lines))
    with open(os.path.join(d, "main.c"), "w") as f:
        body = "".join(f"    x = file_{k}(x);\n" for k in range(nfiles))
        f.write(f'#include "common.h"\nint main(void) {{\n    uint32_t x = 1;\n{body}    printf("%u\\n", x);\n    return 0;\n}}\n')
    objs = " ".join(f"part{k:03d}.o" for k in range(nfiles))
    with open(os.path.join(d, "Makefile"), "w") as f:
        f.write(
            "CFLAGS ?= -O2 -Wall\n"
            f"OBJS = main.o {objs}\n"
            "prog: $(OBJS)\n\t$(CC) -o $@ $(OBJS)\n"
            "%.o: %.c common.h\n\t$(CC) $(CFLAGS) -c -o $@ $<\n"
            "clean:\n\trm -f prog $(OBJS)\n"
        )
    return str(x)


def main():
    root, size = sys.argv[1], sys.argv[2]
    p = SIZES[size]
    rng = random.Random(20261123)
    bench = os.path.join(root, "bench")
    os.makedirs(bench, exist_ok=True)
    write_small(bench, p["small"], rng)
    big_sha = write_big(bench, p["big"], rng)
    write_rmtree(bench)
    untar_files, untar_entries = write_untar(root, bench, p["untar"])
    expected = write_cproj(bench, p["cfiles"], p["cfuncs"], rng)
    manifest = {
        "size": size,
        "small_files": p["small"],
        "big_bytes": p["big"],
        "big_sha256": big_sha,
        "rmtree_entries": count_tree(os.path.join(bench, "rmtree")),
        "untar_files": untar_files,
        "untar_entries": untar_entries,
        "cproj_files": p["cfiles"] + 1,
        "cproj_output": expected,
    }
    with open(os.path.join(bench, "MANIFEST.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
