"""How to mount (and unmount) the stack with each union filesystem under test.

Why one class per filesystem kind rather than per binary: kernel overlayfs is a
mount(2) away, while every FUSE daemon here takes fuse-overlayfs's command line
(`-o lowerdir=A:B,upperdir=U,workdir=W MNT`) and may daemonize or stay in the
foreground; the FUSE driver copes with both and finds the daemon's pid either
way, so its peak RSS can be read before unmounting.
"""

import os
import shutil
import signal
import subprocess
import time

MOUNT_TIMEOUT_S = 30.0
EXIT_TIMEOUT_S = 30.0

# Every mount this process has open, so an interrupt can unmount them all.
ACTIVE = []


class MountError(Exception):
    """A filesystem could not be mounted; the message is one line for the user."""


def _unescape(field):
    """Undoes the octal escapes of /proc/self/mountinfo (\\040 for space...)."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def safe_realpath(path):
    """realpath of PATH's parent joined with its name: never stats PATH itself.

    Why: PATH may be the root of a FUSE mount whose server hangs, and a stat
    there would block this process for good.
    """
    path = os.path.abspath(path)
    return os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))


def _mountinfo(path):
    """(fstype, "major:minor") of the mount exactly at PATH (the last one), or None.

    Read from /proc/self/mountinfo so that a hung FUSE server cannot block us.
    """
    path = safe_realpath(path)
    found = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            if _unescape(parts[4]) == path:
                sep = parts.index("-")
                found = (parts[sep + 1], parts[2])
    return found


def mount_fstype(path):
    """The fs type mounted exactly at PATH, or None."""
    mi = _mountinfo(path)
    return mi[0] if mi else None


def abort_fuse(path):
    """Aborts the FUSE connection of the mount at PATH, releasing every process blocked on it."""
    mi = _mountinfo(path)
    if not mi or not mi[0].startswith("fuse"):
        return
    conns = "/sys/fs/fuse/connections"
    if os.path.isdir(conns) and not os.listdir(conns):
        subprocess.run(["mount", "-t", "fusectl", "fusectl", conns], stderr=subprocess.DEVNULL)
    try:
        with open(os.path.join(conns, mi[1].split(":")[1], "abort"), "w") as f:
            f.write("1")
    except OSError:
        pass


def mounts_under(root):
    """Mount points at or below ROOT, deepest first (the order to unmount them)."""
    root = os.path.realpath(root)
    pts = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            p = _unescape(line.split()[4])
            if p == root or p.startswith(root + "/"):
                pts.append(p)
    return sorted(set(pts), key=len, reverse=True)


def force_unmount(path):
    """Unmounts PATH, lazily if it is busy; never raises."""
    # --no-canonicalize: umount must not stat a path whose FUSE server may hang.
    for args in (["umount", "-c", path], ["umount", "-c", "-l", path]):
        if subprocess.run(args, stderr=subprocess.DEVNULL).returncode == 0:
            return


def _proc_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def _find_daemon(mnt):
    """The pid of the process whose command line ends with MNT (a daemonized FUSE server)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in args if a]
        if args and any(os.path.normpath(a) == mnt for a in args[1:] if a.startswith("/")):
            return int(entry)
    return None


def peak_rss_kib(pid):
    """VmHWM of PID in KiB, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class Mounted:
    """One live mount; unmount() tears it down and waits for its daemon to exit."""

    def __init__(self, fs, mnt, popen=None):
        self.fs, self.mnt, self.popen = fs, safe_realpath(mnt), popen
        self._pid = None
        ACTIVE.append(self)

    @property
    def pid(self):
        """The FUSE server's pid (None for the kernel).

        Resolved late on purpose: a daemonizing server forks after the mount shows
        up, so the process we started may be the parent that is about to exit.
        """
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            return self.popen.pid
        if self._pid is None or not _proc_alive(self._pid):
            self._pid = _find_daemon(self.mnt)
        return self._pid

    def peak_rss_kib(self):
        pid = self.pid
        return peak_rss_kib(pid) if pid else None

    def unmount(self):
        if self in ACTIVE:
            ACTIVE.remove(self)
        pid = self.pid
        if mount_fstype(self.mnt):
            force_unmount(self.mnt)
        if pid:
            deadline = time.monotonic() + EXIT_TIMEOUT_S
            while _proc_alive(pid) and time.monotonic() < deadline:
                if self.popen is not None and self.popen.pid == pid and self.popen.poll() is not None:
                    break
                time.sleep(0.02)
            if _proc_alive(pid):
                try:
                    if self.popen is not None and pid == self.popen.pid:
                        os.killpg(pid, signal.SIGKILL)  # its own session: whatever it started, too
                    else:
                        os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self.popen is not None:
            try:
                self.popen.wait(timeout=EXIT_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                # Its own session (start_new_session): kill whatever it started too.
                try:
                    os.killpg(self.popen.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.popen.wait()


class KernelOverlay:
    """Kernel overlayfs with its default options: the reference every ratio is taken against."""

    kind = "kernel"

    def __init__(self, name="kernel"):
        self.name = name
        self.label = "kernel overlayfs"

    def available(self):
        with open("/proc/filesystems") as f:
            if "overlay" not in f.read():
                subprocess.run(["modprobe", "overlay"], stderr=subprocess.DEVNULL)
        return True, ""

    def version(self):
        return os.uname().release

    def mount(self, lowers, upper, work, mnt, log):
        opts = f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work}"
        r = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, mnt], capture_output=True, text=True)
        if r.returncode != 0:
            raise MountError(f"mount -t overlay failed: {r.stderr.strip()}")
        return Mounted(self, mnt)


class FuseOverlay:
    """A FUSE daemon with fuse-overlayfs's command line (fuse-overlayfs 1.x, 2.x, unionfsd)."""

    kind = "fuse"

    def __init__(self, name, label, binary, extra_opts=""):
        self.name, self.label, self.binary, self.extra_opts = name, label, binary, extra_opts

    def available(self):
        if not self.binary:
            return False, "no binary"
        path = shutil.which(self.binary) if "/" not in self.binary else self.binary
        if not path or not os.access(path, os.X_OK):
            return False, f"{self.binary} not found"
        self.binary = path
        return True, ""

    def version(self):
        try:
            r = subprocess.run([self.binary, "--version"], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return "unknown"
        lines = [l.strip() for l in (r.stdout + r.stderr).splitlines() if l.strip()]
        own = [l for l in lines if os.path.basename(self.binary) in l]
        versioned = [l for l in lines if "version" in l.lower()]
        return (own or versioned or lines or ["unknown"])[0]

    def mount(self, lowers, upper, work, mnt, log):
        opts = f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work}"
        if self.extra_opts:
            opts += "," + self.extra_opts
        argv = [self.binary, "-o", opts, mnt]
        with open(log, "ab") as logf:
            popen = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, start_new_session=True
            )
        deadline = time.monotonic() + MOUNT_TIMEOUT_S
        while not mount_fstype(mnt):
            rc = popen.poll()
            if rc not in (None, 0):
                raise MountError(f"{os.path.basename(self.binary)} exited with {rc}: {_last_line(log)}")
            if time.monotonic() > deadline:
                popen.kill()
                popen.wait()
                raise MountError(f"{os.path.basename(self.binary)} did not mount within {MOUNT_TIMEOUT_S:.0f}s")
            time.sleep(0.01)
        return Mounted(self, mnt, popen=popen)


def _last_line(path):
    try:
        with open(path, errors="replace") as f:
            lines = [l.strip() for l in f if l.strip()]
        return lines[-1] if lines else "(no output)"
    except OSError:
        return "(no log)"


def unmount_all():
    """Unmounts everything still mounted by this process (interrupt and error paths)."""
    for m in list(reversed(ACTIVE)):
        try:
            m.unmount()
        except Exception:  # noqa: BLE001 - cleanup must go on
            force_unmount(m.mnt)
