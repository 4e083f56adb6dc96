//! Capabilities: the bounding, effective, permitted, inheritable and ambient sets of
//! `process.capabilities`, applied with raw prctl/capset calls (no extra crate).

use std::collections::HashSet;

use oci_spec::runtime::{Capability, LinuxCapabilities};

use crate::error::{Error, Result};

/// Kernel numbers of the capabilities oci-spec knows, by their Display name.
const CAPS: &[(&str, u32)] = &[
    ("CHOWN", 0),
    ("DAC_OVERRIDE", 1),
    ("DAC_READ_SEARCH", 2),
    ("FOWNER", 3),
    ("FSETID", 4),
    ("KILL", 5),
    ("SETGID", 6),
    ("SETUID", 7),
    ("SETPCAP", 8),
    ("LINUX_IMMUTABLE", 9),
    ("NET_BIND_SERVICE", 10),
    ("NET_BROADCAST", 11),
    ("NET_ADMIN", 12),
    ("NET_RAW", 13),
    ("IPC_LOCK", 14),
    ("IPC_OWNER", 15),
    ("SYS_MODULE", 16),
    ("SYS_RAWIO", 17),
    ("SYS_CHROOT", 18),
    ("SYS_PTRACE", 19),
    ("SYS_PACCT", 20),
    ("SYS_ADMIN", 21),
    ("SYS_BOOT", 22),
    ("SYS_NICE", 23),
    ("SYS_RESOURCE", 24),
    ("SYS_TIME", 25),
    ("SYS_TTY_CONFIG", 26),
    ("MKNOD", 27),
    ("LEASE", 28),
    ("AUDIT_WRITE", 29),
    ("AUDIT_CONTROL", 30),
    ("SETFCAP", 31),
    ("MAC_OVERRIDE", 32),
    ("MAC_ADMIN", 33),
    ("SYSLOG", 34),
    ("WAKE_ALARM", 35),
    ("BLOCK_SUSPEND", 36),
    ("AUDIT_READ", 37),
    ("PERFMON", 38),
    ("BPF", 39),
    ("CHECKPOINT_RESTORE", 40),
];

/// The capability set Docker gives containers by default (also what
/// [`crate::spec`] writes into generated configs).
pub const DOCKER_DEFAULT: &[Capability] = &[
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// The kernel number of a capability.
fn number(cap: &Capability) -> Option<u32> {
    let name = cap.to_string();
    let name = name.trim_start_matches("CAP_");
    CAPS.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

/// A set as a 64-bit mask.
fn mask(set: Option<&HashSet<Capability>>) -> u64 {
    set.map(|s| {
        s.iter()
            .filter_map(number)
            .fold(0u64, |m, n| m | (1u64 << n))
    })
    .unwrap_or(0)
}

/// The highest capability this kernel knows.
fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// Drops every capability not in the bounding set. Must run while we still hold
/// CAP_SETPCAP, i.e. before changing uid.
pub fn drop_bounding(caps: &LinuxCapabilities) -> Result<()> {
    let keep = mask(caps.bounding().as_ref());
    for n in 0..=last_cap().min(63) {
        if keep & (1u64 << n) == 0 {
            // SAFETY: plain prctl with integer arguments.
            let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, n as libc::c_ulong, 0, 0, 0) };
            if r != 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EINVAL) {
                    return Err(Error::io(format!(
                        "drop capability {n} from the bounding set"
                    ))(e));
                }
            }
        }
    }
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Sets the effective, permitted and inheritable sets, then raises the ambient ones.
/// Runs after the uid change (with PR_SET_KEEPCAPS set before it).
pub fn apply_sets(caps: &LinuxCapabilities) -> Result<()> {
    let e = mask(caps.effective().as_ref());
    let p = mask(caps.permitted().as_ref());
    let i = mask(caps.inheritable().as_ref());
    let mut header = CapHeader {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let data = [
        CapData {
            effective: e as u32,
            permitted: p as u32,
            inheritable: i as u32,
        },
        CapData {
            effective: (e >> 32) as u32,
            permitted: (p >> 32) as u32,
            inheritable: (i >> 32) as u32,
        },
    ];
    // SAFETY: header and data have the layout capset(2) expects for version 3.
    let r = unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_ptr(),
        )
    };
    if r != 0 {
        return Err(Error::io("capset")(std::io::Error::last_os_error()));
    }
    let ambient = mask(caps.ambient().as_ref());
    for n in 0..64u32 {
        if ambient & (1u64 << n) != 0 {
            // Ambient needs the cap in permitted and inheritable; skip silently
            // otherwise, as runc does.
            // SAFETY: plain prctl with integer arguments.
            unsafe {
                libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                    n as libc::c_ulong,
                    0,
                    0,
                )
            };
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_oci_capability_has_a_number() {
        for c in DOCKER_DEFAULT {
            assert!(number(c).is_some(), "{c}");
        }
        assert_eq!(number(&Capability::CheckpointRestore), Some(40));
        assert_eq!(number(&Capability::AuditWrite), Some(29));
    }
}
