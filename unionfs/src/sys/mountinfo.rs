//! This process's mount table, `/proc/self/mountinfo`: read as text, so finding a mount
//! never touches it (a `stat` of a FUSE mount whose daemon is not serving would wait).

use std::path::Path;

/// The `major:minor` device of the last mount at `path` (the one on top), if any.
pub fn device_of_mount(path: &Path) -> std::io::Result<Option<String>> {
    let table = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(device_in(&table, path))
}

/// Whether something is mounted at `path` (false if the table can't be read).
pub fn is_mount_point(path: &Path) -> bool {
    device_of_mount(path).is_ok_and(|d| d.is_some())
}

/// The `major:minor` of the last mount at `mountpoint` in a mountinfo table.
fn device_in(table: &str, mountpoint: &Path) -> Option<String> {
    let wanted = mountpoint.to_str()?;
    table.lines().rev().find_map(|line| {
        let mut fields = line.split(' ');
        let device = fields.nth(2)?;
        let point = fields.nth(1)?;
        (unescape_octal(point) == wanted).then(|| device.to_string())
    })
}

/// Undoes mountinfo's `\ooo` escapes (of space, tab, newline and backslash).
fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let digits = bytes.get(i + 1..i + 4);
        let code = digits
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)))
            .and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok());
        match code {
            Some(c) => {
                out.push(c);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\
22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
98 22 0:51 / /tmp/m rw,nosuid shared:50 - fuse.unionfsd unionfsd rw,user_id=0
99 22 0:52 / /tmp/a\\040b rw shared:51 - fuse.unionfsd unionfsd rw,user_id=0
100 98 0:53 / /tmp/m rw shared:52 - fuse.unionfsd unionfsd rw,user_id=0
";

    #[test]
    fn the_last_mount_at_a_path_names_the_device() {
        assert_eq!(
            device_in(TABLE, Path::new("/tmp/m")).as_deref(),
            Some("0:53")
        );
        assert_eq!(
            device_in(TABLE, Path::new("/tmp/a b")).as_deref(),
            Some("0:52")
        );
        assert_eq!(device_in(TABLE, Path::new("/tmp/none")), None);
    }

    #[test]
    fn octal_escapes_are_undone_and_stray_backslashes_kept() {
        assert_eq!(unescape_octal("/a\\040b\\011c\\134d"), "/a b\tc\\d");
        assert_eq!(unescape_octal("/x\\9y\\"), "/x\\9y\\");
    }
}
