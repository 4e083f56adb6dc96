//! Resolving a Docker-style `USER` string (`name`, `uid`, `name:group`, `uid:gid`)
//! against the image's own /etc/passwd and /etc/group, the way Docker and runc do,
//! so that `imagectl run -u` and an image's `USER` instruction mean the same thing.

use std::path::Path;

use crate::error::{Error, Result};
use crate::paths::secure_join;

/// A user resolved to numeric ids, ready for `process.user` in config.json.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    /// The user id.
    pub uid: u32,
    /// The primary group id.
    pub gid: u32,
    /// Supplementary groups: those of /etc/group that list the user as a member
    /// (only when no group was given explicitly, as Docker does).
    pub additional_gids: Vec<u32>,
    /// The home directory from /etc/passwd, `/` when the user has no entry; used for `HOME`.
    pub home: String,
    /// The user name when /etc/passwd knows it.
    pub name: Option<String>,
}

/// One line of /etc/passwd.
struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

/// One line of /etc/group.
struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// Resolves `user` against `rootfs`'s /etc/passwd and /etc/group.
///
/// An empty string means root. Numeric ids need no entry (a uid without one gets
/// gid 0, as in Docker); names must exist or this fails with
/// [`Error::UnknownUser`] / [`Error::UnknownGroup`].
pub fn resolve_user(rootfs: &Path, user: &str) -> Result<ResolvedUser> {
    let passwd = read_passwd(rootfs)?;
    let groups = read_groups(rootfs)?;
    let (user_part, group_part) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };

    let entry = match user_part.parse::<u32>() {
        Ok(uid) => passwd.iter().find(|e| e.uid == uid),
        Err(_) => Some(
            passwd
                .iter()
                .find(|e| e.name == user_part)
                .ok_or_else(|| Error::UnknownUser(user_part.to_string()))?,
        ),
    };
    let uid = match entry {
        Some(e) => e.uid,
        None => user_part
            .parse::<u32>()
            .map_err(|_| Error::UnknownUser(user_part.to_string()))?,
    };
    let mut gid = entry.map(|e| e.gid).unwrap_or(0);
    let mut additional_gids = Vec::new();
    match group_part {
        Some(g) if !g.is_empty() => {
            gid = match g.parse::<u32>() {
                Ok(n) => n,
                Err(_) => {
                    groups
                        .iter()
                        .find(|e| e.name == g)
                        .ok_or_else(|| Error::UnknownGroup(g.to_string()))?
                        .gid
                }
            };
        }
        _ => {
            if let Some(e) = entry {
                for g in &groups {
                    if g.members.contains(&e.name)
                        && g.gid != gid
                        && !additional_gids.contains(&g.gid)
                    {
                        additional_gids.push(g.gid);
                    }
                }
            }
        }
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home: entry
            .map(|e| e.home.clone())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "/".to_string()),
        name: entry.map(|e| e.name.clone()),
    })
}

/// Reads a file of the rootfs, treating a missing file as empty (scratch images
/// have no /etc/passwd, and numeric users still work there).
fn read_rootfs_file(rootfs: &Path, path: &str) -> Result<String> {
    let full = secure_join(rootfs, Path::new(path))?;
    match std::fs::read(&full) {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(Error::io(format!("read {}", full.display()))(e)),
    }
}

fn read_passwd(rootfs: &Path) -> Result<Vec<PasswdEntry>> {
    let text = read_rootfs_file(rootfs, "/etc/passwd")?;
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(PasswdEntry {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                home: f.get(5).map(|s| s.to_string()).unwrap_or_default(),
            })
        })
        .collect())
}

fn read_groups(rootfs: &Path) -> Result<Vec<GroupEntry>> {
    let text = read_rootfs_file(rootfs, "/etc/group")?;
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(GroupEntry {
                name: f.first()?.to_string(),
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rootfs() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:Alice:/home/alice:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("etc/group"),
            "root:x:0:\nalice:x:1000:\nwheel:x:10:alice\naudio:x:29:bob,alice\n",
        )
        .unwrap();
        dir
    }

    #[test]
    fn names_ids_and_groups() {
        let r = rootfs();
        let u = resolve_user(r.path(), "alice").unwrap();
        assert_eq!(
            (u.uid, u.gid, u.additional_gids.clone()),
            (1000, 1000, vec![10, 29])
        );
        assert_eq!(u.home, "/home/alice");
        let u = resolve_user(r.path(), "1000:wheel").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 10));
        assert!(u.additional_gids.is_empty());
        let u = resolve_user(r.path(), "4242:55").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (4242, 55, "/"));
        let u = resolve_user(r.path(), "4242").unwrap();
        assert_eq!((u.uid, u.gid), (4242, 0));
        let u = resolve_user(r.path(), "").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (0, 0, "/root"));
    }

    #[test]
    fn unknown_names_fail() {
        let r = rootfs();
        assert!(matches!(
            resolve_user(r.path(), "bob"),
            Err(Error::UnknownUser(_))
        ));
        assert!(matches!(
            resolve_user(r.path(), "alice:nogroup"),
            Err(Error::UnknownGroup(_))
        ));
    }
}
