//! The v1 devices controller: which device nodes a container may open. Without it a
//! container root holding CAP_MKNOD (Docker's default set) could create and read
//! `/dev/sda`. The rules are runc's: everything denied, then config.json's own rules
//! in order, then the standard devices every container may use (and may create).

use std::path::Path;

use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType};

use crate::error::{Error, Result};

/// Devices every container may use, as `devices.allow` lines (runc's list).
const DEFAULT_ALLOWED: &[&str] = &[
    "c *:* m",      // create any char device node (opening it is another matter)
    "b *:* m",      // same for block devices
    "c 1:3 rwm",    // /dev/null
    "c 1:5 rwm",    // /dev/zero
    "c 1:7 rwm",    // /dev/full
    "c 5:0 rwm",    // /dev/tty
    "c 1:8 rwm",    // /dev/random
    "c 1:9 rwm",    // /dev/urandom
    "c 5:1 rwm",    // /dev/console
    "c 5:2 rwm",    // /dev/ptmx
    "c 136:* rwm",  // /dev/pts/*
    "c 10:200 rwm", // /dev/net/tun
];

fn type_char(t: Option<LinuxDeviceType>) -> char {
    match t {
        Some(LinuxDeviceType::B) => 'b',
        Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => 'c',
        Some(LinuxDeviceType::P) => 'p',
        Some(LinuxDeviceType::A) | None => 'a',
    }
}

fn number(n: Option<i64>) -> String {
    match n {
        Some(v) if v >= 0 => v.to_string(),
        _ => "*".into(),
    }
}

/// The `devices.allow`/`devices.deny` line of one config rule.
fn rule_line(r: &LinuxDeviceCgroup) -> String {
    let t = type_char(r.typ());
    let access = r.access().clone().unwrap_or_else(|| "rwm".into());
    if t == 'a' {
        return "a".to_string();
    }
    format!("{t} {}:{} {access}", number(r.major()), number(r.minor()))
}

fn write(dir: &Path, file: &str, line: &str) -> Result<()> {
    let p = dir.join(file);
    std::fs::write(&p, line).map_err(Error::io(format!("write {line:?} to {}", p.display())))
}

/// Writes the device rules into the devices cgroup `dir`.
pub fn apply_v1(dir: &Path, rules: &[LinuxDeviceCgroup], devices: &[LinuxDevice]) -> Result<()> {
    write(dir, "devices.deny", "a")?;
    for r in rules {
        let file = if r.allow() {
            "devices.allow"
        } else {
            "devices.deny"
        };
        write(dir, file, &rule_line(r))?;
    }
    for line in DEFAULT_ALLOWED {
        write(dir, "devices.allow", line)?;
    }
    for d in devices {
        let t = type_char(Some(d.typ()));
        if t == 'a' {
            continue;
        }
        let line = format!("{t} {}:{} rwm", d.major(), d.minor());
        write(dir, "devices.allow", &line)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    #[test]
    fn rule_lines() {
        let deny_all = LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()
            .unwrap();
        assert_eq!(rule_line(&deny_all), "a");
        let fuse = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(10)
            .minor(229)
            .access("rw")
            .build()
            .unwrap();
        assert_eq!(rule_line(&fuse), "c 10:229 rw");
        let any_block = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::B)
            .access("m")
            .build()
            .unwrap();
        assert_eq!(rule_line(&any_block), "b *:* m");
    }
}
