//! Resolving a Docker `USER` (`name`, `uid`, `name:group`, `uid:gid`) against the container's passwd and group
//! files, with Docker's rules: supplementary groups only when no group is named, HOME from passwd or `/`.

use crate::error::{Error, Result};

/// The ids and home a user spec resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups: those of `/etc/group` that list the user by name.
    pub groups: Vec<u32>,
    pub home: String,
}

/// One line of `/etc/passwd`.
struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

/// One line of `/etc/group`.
struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

/// Colon-separated records, skipping comments and malformed lines as libc does.
fn records(file: &str) -> impl Iterator<Item = Vec<&str>> {
    file.lines().filter(|line| !line.trim_start().starts_with('#')).map(|line| line.split(':').collect())
}

fn passwd_entries(passwd: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    records(passwd).filter_map(|fields| match fields[..] {
        [name, _, uid, gid, _, home, ..] => {
            Some(PasswdEntry { name, uid: uid.parse().ok()?, gid: gid.parse().ok()?, home })
        }
        _ => None,
    })
}

fn group_entries(group: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    records(group).filter_map(|fields| match fields[..] {
        [name, _, gid, ref rest @ ..] => Some(GroupEntry {
            name,
            gid: gid.parse().ok()?,
            members: rest.first().map(|list| list.split(',').filter(|m| !m.is_empty()).collect()).unwrap_or_default(),
        }),
        _ => None,
    })
}

/// The uid and primary gid of the user `name` in the text of a passwd file.
pub fn lookup_user(passwd: &str, name: &str) -> Option<(u32, u32)> {
    passwd_entries(passwd).find(|e| e.name == name).map(|e| (e.uid, e.gid))
}

/// The gid of the group `name` in the text of a group file.
pub fn lookup_group(group: &str, name: &str) -> Option<u32> {
    group_entries(group).find(|g| g.name == name).map(|g| g.gid)
}

/// Resolves `spec` with the contents of the container's `/etc/passwd` and `/etc/group` (empty when missing).
pub(crate) fn resolve(spec: &str, passwd: &str, group: &str) -> Result<ResolvedUser> {
    let fail = |reason: String| Error::User { user: spec.to_owned(), reason };
    let (user_part, group_part) = match spec.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (spec, None),
    };
    let entry = match user_part.parse::<u32>() {
        Ok(uid) => passwd_entries(passwd).find(|e| e.uid == uid),
        Err(_) => Some(
            passwd_entries(passwd)
                .find(|e| e.name == user_part)
                .ok_or_else(|| fail(format!("no user named {user_part:?} in /etc/passwd")))?,
        ),
    };
    let uid = match &entry {
        Some(e) => e.uid,
        None => user_part.parse().map_err(|_| fail(format!("{user_part:?} is not a uid")))?,
    };
    let home = entry.as_ref().map_or("/", |e| e.home).to_owned();
    let Some(group_part) = group_part else {
        let gid = entry.as_ref().map_or(0, |e| e.gid);
        // The primary gid always leads the group list (containerd's fix for CVE-2023-25173).
        let mut groups = vec![gid];
        if let Some(e) = &entry {
            let member_of = group_entries(group).filter(|g| g.members.contains(&e.name)).map(|g| g.gid);
            for gid in member_of {
                if !groups.contains(&gid) {
                    groups.push(gid);
                }
            }
        }
        return Ok(ResolvedUser { uid, gid, groups, home });
    };
    let gid = match group_part.parse::<u32>() {
        Ok(gid) => gid,
        Err(_) => group_entries(group)
            .find(|g| g.name == group_part)
            .map(|g| g.gid)
            .ok_or_else(|| fail(format!("no group named {group_part:?} in /etc/group")))?,
    };
    Ok(ResolvedUser { uid, gid, groups: vec![gid], home })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n# comment\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\n\
                          broken line\nbob:x:1000:1000::/home/bob:/bin/sh\n";
    const GROUP: &str = "root:x:0:\ndaemon:x:1:\nwheel:x:10:root,bob\nstaff:x:50:bob\nbob:x:1000:\n";

    fn user(spec: &str) -> ResolvedUser {
        resolve(spec, PASSWD, GROUP).unwrap()
    }

    #[test]
    fn names_resolve_with_their_primary_and_supplementary_groups() {
        assert_eq!(user("root"), ResolvedUser { uid: 0, gid: 0, groups: vec![0, 10], home: "/root".into() });
        assert_eq!(
            user("bob"),
            ResolvedUser { uid: 1000, gid: 1000, groups: vec![1000, 10, 50], home: "/home/bob".into() }
        );
        assert_eq!(user("daemon").home, "/usr/sbin");
    }

    #[test]
    fn numeric_users_use_passwd_when_listed_and_defaults_otherwise() {
        assert_eq!(user("1000").groups, [1000, 10, 50]);
        assert_eq!(user("4242"), ResolvedUser { uid: 4242, gid: 0, groups: vec![0], home: "/".into() });
    }

    #[test]
    fn an_explicit_group_drops_supplementary_groups() {
        assert_eq!(user("1:1"), ResolvedUser { uid: 1, gid: 1, groups: vec![1], home: "/usr/sbin".into() });
        assert_eq!(user("bob:staff"), ResolvedUser { uid: 1000, gid: 50, groups: vec![50], home: "/home/bob".into() });
        assert_eq!(user("4242:7").gid, 7);
    }

    #[test]
    fn unknown_names_say_which_file_lacks_them() {
        let err = resolve("alice", PASSWD, GROUP).unwrap_err().to_string();
        assert!(err.contains("no user named \"alice\" in /etc/passwd"), "{err}");
        let err = resolve("bob:nogroup", PASSWD, GROUP).unwrap_err().to_string();
        assert!(err.contains("no group named \"nogroup\" in /etc/group"), "{err}");
        assert!(resolve("0", "", "").is_ok(), "numeric users need no passwd file");
    }
}
