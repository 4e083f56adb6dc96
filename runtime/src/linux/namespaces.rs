//! Namespaces: which ones config.json asks for, creating them with a fork-like
//! `clone(2)` and joining existing ones with `setns(2)`.

use std::os::fd::AsFd;
use std::path::PathBuf;

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Error, Result};

/// The namespace plan of a container.
#[derive(Debug, Clone)]
pub struct NamespacePlan {
    /// Namespaces to create (excluding the cgroup one, see `new_cgroup`).
    pub new: CloneFlags,
    /// A new cgroup namespace, created by PID 1 after it joined its cgroups so the
    /// namespace's root is the container's cgroup.
    pub new_cgroup: bool,
    /// Existing namespaces to join, by `/proc/.../ns` file name and path.
    pub join: Vec<(CloneFlags, PathBuf)>,
}

impl Default for NamespacePlan {
    fn default() -> Self {
        NamespacePlan {
            new: CloneFlags::empty(),
            new_cgroup: false,
            join: Vec::new(),
        }
    }
}

impl NamespacePlan {
    /// Whether the container gets its own network namespace (and so needs `lo` up).
    pub fn new_net(&self) -> bool {
        self.new.contains(CloneFlags::CLONE_NEWNET)
    }

    /// Whether the container gets its own UTS namespace (and so may set a hostname).
    pub fn new_uts(&self) -> bool {
        self.new.contains(CloneFlags::CLONE_NEWUTS)
    }
}

/// The clone flag of a namespace type, or an error for types this runtime lacks.
fn flag(t: LinuxNamespaceType) -> Result<CloneFlags> {
    Ok(match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::User => {
            return Err(Error::Unsupported(
                "user namespaces (run as root without a user namespace)".into(),
            ));
        }
        LinuxNamespaceType::Time => {
            return Err(Error::Unsupported("time namespaces".into()));
        }
    })
}

/// Reads `linux.namespaces` into a plan. A mount namespace is required: without one
/// pivot_root would change the host's root.
pub fn plan(spec: &Spec) -> Result<NamespacePlan> {
    let mut p = NamespacePlan::default();
    let list = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    for ns in list {
        let f = flag(ns.typ())?;
        match ns.path() {
            Some(path) => p.join.push((f, path.clone())),
            None if f == CloneFlags::CLONE_NEWCGROUP => p.new_cgroup = true,
            None => p.new |= f,
        }
    }
    if !p.new.contains(CloneFlags::CLONE_NEWNS) {
        return Err(Error::Unsupported(
            "a container without its own mount namespace".into(),
        ));
    }
    Ok(p)
}

/// `clone(2)` with namespace flags and fork semantics (the child continues on a
/// copy of the stack). Returns the child's pid in the parent and 0 in the child.
///
/// # Safety
/// Same rules as `fork`: the calling process must be single-threaded, and the child
/// should only do async-signal-safe work or exit/exec.
pub unsafe fn clone_fork(flags: CloneFlags) -> Result<i32> {
    // SAFETY: raw clone with a null stack behaves like fork(2).
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags.bits() | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if r < 0 {
        return Err(Error::io("clone with new namespaces")(
            std::io::Error::last_os_error(),
        ));
    }
    Ok(r as i32)
}

/// Joins the namespace at `path` (a `/proc/PID/ns/*` file or a bind mount of one).
pub fn join(kind: CloneFlags, path: &std::path::Path) -> Result<()> {
    let f = std::fs::File::open(path)
        .map_err(Error::io(format!("open namespace {}", path.display())))?;
    nix::sched::setns(f.as_fd(), kind).map_err(Error::sys(format!("setns {}", path.display())))
}

/// The namespace files of a running process, in the order they must be joined
/// (mount last, so the others' /proc paths still resolve on the host).
pub fn of_process(pid: i32, plan: &NamespacePlan) -> Vec<(CloneFlags, PathBuf)> {
    let mut out = Vec::new();
    for (flag, name) in [
        (CloneFlags::CLONE_NEWCGROUP, "cgroup"),
        (CloneFlags::CLONE_NEWIPC, "ipc"),
        (CloneFlags::CLONE_NEWUTS, "uts"),
        (CloneFlags::CLONE_NEWNET, "net"),
        (CloneFlags::CLONE_NEWPID, "pid"),
        (CloneFlags::CLONE_NEWNS, "mnt"),
    ] {
        let configured = plan.new.contains(flag)
            || (flag == CloneFlags::CLONE_NEWCGROUP && plan.new_cgroup)
            || plan.join.iter().any(|(f, _)| *f == flag);
        if configured {
            out.push((flag, PathBuf::from(format!("/proc/{pid}/ns/{name}"))));
        }
    }
    out
}
