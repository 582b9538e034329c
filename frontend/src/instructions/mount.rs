//! `RUN --mount=...` values: bind, cache, tmpfs, secret and ssh mounts with BuildKit's options and defaults.

use strata_llb::CacheSharing;

use crate::error::Error;
use crate::suggest::with_suggestion;

/// The kind of a RUN mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountType {
    /// A read-only (by default) view of the context, a stage or an image.
    Bind,
    /// A persistent cache directory.
    Cache,
    /// An empty in-memory file system.
    Tmpfs,
    /// A secret file or environment variable.
    Secret,
    /// An SSH agent socket.
    Ssh,
}

impl MountType {
    /// Every type's name as written in `type=`.
    const NAMES: [&'static str; 5] = ["bind", "cache", "tmpfs", "secret", "ssh"];

    /// The name as written in `type=`.
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    fn from_name(name: &str) -> Option<Self> {
        [Self::Bind, Self::Cache, Self::Tmpfs, Self::Secret, Self::Ssh].into_iter().find(|t| t.name() == name)
    }

    /// Whether mode, uid and gid apply: only to the mounts BuildKit creates files for.
    fn has_file_info(self) -> bool {
        matches!(self, Self::Cache | Self::Secret | Self::Ssh)
    }
}

/// A parsed `--mount` value with BuildKit's defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    /// The mount type (`bind` unless `type=` says otherwise).
    pub kind: MountType,
    /// `target`/`dst`/`destination`: where it appears in the container. For secrets it defaults to
    /// `/run/secrets/<id>` unless the secret is only exposed through `env`; ssh targets are left to the caller.
    pub target: Option<String>,
    /// `source`/`src`: path inside `from` (bind, cache) or the secret's source.
    pub source: Option<String>,
    /// `from`: stage or image to take the contents from.
    pub from: Option<String>,
    /// `ro`/`rw`; defaults to read-only except for cache and tmpfs.
    pub read_only: bool,
    /// `id`: cache id (defaults to the target), secret id (defaults to the target's base name), ssh id (`default`).
    pub id: Option<String>,
    /// `sharing` for cache mounts.
    pub sharing: CacheSharing,
    /// `mode` (octal); defaults to 0755 for cache, 0400 for secret, 0600 for ssh; not allowed elsewhere.
    pub mode: Option<u32>,
    /// `uid`; defaults to 0 for cache, secret and ssh; not allowed elsewhere.
    pub uid: Option<u32>,
    /// `gid`; defaults to 0 for cache, secret and ssh; not allowed elsewhere.
    pub gid: Option<u32>,
    /// `required`: fail when the secret or ssh agent is missing.
    pub required: bool,
    /// `size` of a tmpfs in bytes.
    pub size_limit: Option<u64>,
    /// `env`: expose the secret as this environment variable.
    pub env: Option<String>,
}

/// Every key BuildKit accepts, for suggestions.
const MOUNT_KEYS: [&str; 19] = [
    "type",
    "from",
    "source",
    "target",
    "readonly",
    "id",
    "sharing",
    "required",
    "size",
    "mode",
    "uid",
    "gid",
    "src",
    "dst",
    "destination",
    "ro",
    "rw",
    "readwrite",
    "env",
];

/// Parses an already-expanded `--mount` value.
pub fn parse_mount(value: &str) -> Result<MountSpec, Error> {
    parse_fields(value).map_err(|message| Error::Mount { value: value.to_owned(), message })
}

/// The `from=` values of a raw (unexpanded) mount, to reject variables there before expansion, as BuildKit does.
pub(super) fn check_from_is_literal(raw: &str) -> Result<(), String> {
    let fields = csv_fields(raw)?;
    let uses_variable = fields
        .iter()
        .filter_map(|field| field.split_once('='))
        .any(|(key, value)| key.eq_ignore_ascii_case("from") && value.trim_end_matches('$').contains('$'));
    if uses_variable {
        return Err("'from' doesn't support variable expansion, define alias stage instead".into());
    }
    Ok(())
}

/// The literal `from=` of a raw (unexpanded) mount value: the stage or image the mount depends on.
pub(crate) fn raw_from(raw: &str) -> Option<String> {
    csv_fields(raw).ok()?.into_iter().find_map(|field| {
        field.split_once('=').filter(|(key, _)| key.eq_ignore_ascii_case("from")).map(|(_, value)| value.to_owned())
    })
}

fn parse_fields(value: &str) -> Result<MountSpec, String> {
    let mut mount = MountSpec {
        kind: MountType::Bind,
        target: None,
        source: None,
        from: None,
        read_only: true,
        id: None,
        sharing: CacheSharing::Shared,
        mode: None,
        uid: None,
        gid: None,
        required: false,
        size_limit: None,
        env: None,
    };
    let mut read_only_given = false;
    let mut sharing_given = false;
    for field in csv_fields(value)? {
        let (key, value) = match field.split_once('=') {
            Some((key, value)) => (key.to_lowercase(), Some(value)),
            None => (field.to_lowercase(), None),
        };
        let unexpected_for_type = || format!("unexpected key '{key}' for mount type '{}'", mount.kind.name());
        let Some(value) = value else {
            match key.as_str() {
                "readonly" | "ro" => mount.read_only = true,
                "readwrite" | "rw" => mount.read_only = false,
                "required" if matches!(mount.kind, MountType::Secret | MountType::Ssh) => mount.required = true,
                "required" => return Err(unexpected_for_type()),
                _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
            }
            read_only_given |= key != "required";
            continue;
        };
        let invalid = || format!("invalid value for {key}: {value}");
        match key.as_str() {
            "type" => {
                mount.kind = MountType::from_name(&value.to_lowercase()).ok_or_else(|| {
                    with_suggestion(format!("unsupported mount type \"{value}\""), value, &MountType::NAMES)
                })?;
            }
            "from" => mount.from = Some(value.to_owned()),
            "source" | "src" => mount.source = Some(value.to_owned()),
            "target" | "dst" | "destination" => mount.target = Some(value.to_owned()),
            "readonly" | "ro" => {
                mount.read_only = go_bool(value).ok_or_else(invalid)?;
                read_only_given = true;
            }
            "readwrite" | "rw" => {
                mount.read_only = !go_bool(value).ok_or_else(invalid)?;
                read_only_given = true;
            }
            "required" if matches!(mount.kind, MountType::Secret | MountType::Ssh) => {
                mount.required = go_bool(value).ok_or_else(invalid)?;
            }
            "required" => return Err(unexpected_for_type()),
            "size" if mount.kind == MountType::Tmpfs => {
                mount.size_limit = Some(ram_in_bytes(value).ok_or_else(invalid)?)
            }
            "size" => return Err(unexpected_for_type()),
            "id" => mount.id = Some(value.to_owned()),
            "sharing" => {
                mount.sharing = match value.to_lowercase().as_str() {
                    "shared" => CacheSharing::Shared,
                    "private" => CacheSharing::Private,
                    "locked" => CacheSharing::Locked,
                    _ => return Err(format!("unsupported sharing value \"{value}\"")),
                };
                sharing_given = true;
            }
            "mode" => {
                mount.mode =
                    Some(u32::from_str_radix(value, 8).map_err(|_| format!("invalid value {value} for mode"))?);
            }
            "uid" => mount.uid = Some(value.parse().map_err(|_| format!("invalid value {value} for uid"))?),
            "gid" => mount.gid = Some(value.parse().map_err(|_| format!("invalid value {value} for gid"))?),
            "env" => mount.env = Some(value.to_owned()),
            _ => {
                return Err(with_suggestion(format!("unexpected key '{key}' in '{field}'"), &key, &MOUNT_KEYS));
            }
        }
    }
    validate_and_default(mount, read_only_given, sharing_given)
}

/// Checks combinations that depend on the final type and fills in BuildKit's defaults.
fn validate_and_default(mut mount: MountSpec, read_only_given: bool, sharing_given: bool) -> Result<MountSpec, String> {
    let kind = mount.kind;
    let type_name = kind.name();
    if !kind.has_file_info() {
        for (name, given) in [("mode", mount.mode), ("uid", mount.uid), ("gid", mount.gid)] {
            if given.is_some() {
                return Err(format!("{name} not allowed for \"{type_name}\" type mounts"));
            }
        }
    }
    if sharing_given && kind != MountType::Cache {
        return Err(format!("invalid cache sharing set for {type_name} mount"));
    }
    if matches!(kind, MountType::Secret | MountType::Ssh) && mount.from.is_some() {
        return Err(format!("{type_name} mount should not have a from"));
    }
    if !read_only_given {
        mount.read_only = !matches!(kind, MountType::Cache | MountType::Tmpfs);
    }
    let base_name = |path: &str| path.trim_end_matches('/').rsplit('/').next().unwrap_or_default().to_owned();
    match kind {
        MountType::Cache => {
            mount.id = mount.id.or_else(|| mount.target.clone());
            mount.mode.get_or_insert(0o755);
        }
        MountType::Secret => {
            mount.id = mount.id.or_else(|| mount.target.as_deref().map(base_name));
            let Some(id) = mount.id.clone().filter(|id| !id.is_empty()) else {
                return Err("one of source, target, id should be defined for secret mount".into());
            };
            if mount.env.is_none() {
                mount.target.get_or_insert_with(|| format!("/run/secrets/{}", base_name(&id)));
            }
            mount.mode.get_or_insert(0o400);
        }
        MountType::Ssh => {
            mount.id.get_or_insert_with(|| "default".to_owned());
            mount.mode.get_or_insert(0o600);
        }
        MountType::Bind | MountType::Tmpfs => {}
    }
    if kind.has_file_info() {
        mount.uid.get_or_insert(0);
        mount.gid.get_or_insert(0);
    }
    if mount.target.is_none() && !matches!(kind, MountType::Ssh | MountType::Secret) {
        return Err(format!("mount type {type_name} requires a target"));
    }
    Ok(mount)
}

/// Splits one CSV record like Go's `encoding/csv`: `,` separates, `"..."` quotes with `""` for a quote.
fn csv_fields(record: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = record.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => {
                        return Err("failed to parse csv mounts: extraneous or missing \" in quoted-field".into());
                    }
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                }
            }
            if !matches!(chars.peek(), None | Some(',')) {
                return Err("failed to parse csv mounts: extraneous or missing \" in quoted-field".into());
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                if c == '"' {
                    return Err("failed to parse csv mounts: bare \" in non-quoted-field".into());
                }
                field.push(c);
                chars.next();
            }
        }
        fields.push(field);
        if chars.next().is_none() {
            return Ok(fields);
        }
    }
}

/// Go's `strconv.ParseBool`.
fn go_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Docker's `units.RAMInBytes`: a number with an optional binary `k`, `m`, `g`, `t`, `p` suffix (`i`, `b` allowed).
fn ram_in_bytes(value: &str) -> Option<u64> {
    let number_end = value.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(value.len());
    let number: f64 = value[..number_end].parse().ok()?;
    let suffix = value[number_end..].strip_prefix(' ').unwrap_or(&value[number_end..]).to_lowercase();
    let suffix = suffix.strip_suffix('b').unwrap_or(&suffix);
    let suffix = suffix.strip_suffix('i').unwrap_or(suffix);
    let power = match suffix {
        "" => 0,
        "k" => 1,
        "m" => 2,
        "g" => 3,
        "t" => 4,
        "p" => 5,
        _ => return None,
    };
    Some((number * 1024f64.powi(power)) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(value: &str) -> MountSpec {
        parse_mount(value).unwrap_or_else(|e| panic!("{value}: {e}"))
    }

    fn error(value: &str) -> String {
        parse_mount(value).unwrap_err().message().to_owned()
    }

    #[test]
    fn bind_defaults_to_read_only() {
        let m = mount("target=/ctx");
        assert_eq!((m.kind, m.read_only, m.mode), (MountType::Bind, true, None));
        let m = mount("from=build,src=out,target=/out,rw");
        assert_eq!((m.from.as_deref(), m.source.as_deref(), m.read_only), (Some("build"), Some("out"), false));
    }

    #[test]
    fn cache_options_and_defaults() {
        let m = mount("type=cache,target=/c,uid=1001,gid=1002,mode=0751,sharing=locked");
        assert_eq!(
            (m.uid, m.gid, m.mode, m.sharing, m.read_only),
            (Some(1001), Some(1002), Some(0o751), CacheSharing::Locked, false)
        );
        assert_eq!(m.id.as_deref(), Some("/c"));
        let m = mount("type=cache,target=/c");
        assert_eq!((m.mode, m.uid, m.sharing), (Some(0o755), Some(0), CacheSharing::Shared));
    }

    #[test]
    fn secret_defaults() {
        let m = mount("type=secret,id=mysecret,required");
        assert_eq!((m.target.as_deref(), m.mode, m.required), (Some("/run/secrets/mysecret"), Some(0o400), true));
        let m = mount("type=secret,id=s,env=S");
        assert_eq!((m.target, m.env.as_deref()), (None, Some("S")));
        let m = mount("type=secret,required=false,mode=741,uid=100,gid=102,target=/mysecret");
        assert_eq!((m.id.as_deref(), m.mode, m.required), (Some("mysecret"), Some(0o741), false));
        let m = mount("type=ssh");
        assert_eq!((m.id.as_deref(), m.mode), (Some("default"), Some(0o600)));
    }

    #[test]
    fn tmpfs_size() {
        assert_eq!(mount("type=tmpfs,target=/t,size=10m").size_limit, Some(10 << 20));
        assert_eq!(error("type=tmpfs,target=/t,size=lots"), "invalid value for size: lots");
    }

    #[test]
    fn errors_with_suggestions() {
        assert_eq!(error("typ=tmpfs"), "unexpected key 'typ' in 'typ=tmpfs' (did you mean type?)");
        assert_eq!(error("type=tmp,target=/t"), "unsupported mount type \"tmp\" (did you mean tmpfs?)");
        assert_eq!(error("target=/t,mode=0700"), "mode not allowed for \"bind\" type mounts");
        assert_eq!(error("target=/t,sharing=private"), "invalid cache sharing set for bind mount");
        assert_eq!(error("type=cache,target=/t,mode=9"), "invalid value 9 for mode");
        assert_eq!(error("target=/t,required"), "unexpected key 'required' for mount type 'bind'");
        assert_eq!(error("type=secret"), "one of source, target, id should be defined for secret mount");
        assert_eq!(error("target"), "invalid field 'target' must be a key=value pair");
        assert_eq!(error("type=cache"), "mount type cache requires a target");
    }

    #[test]
    fn csv_quoting() {
        assert_eq!(mount("\"target=/a,b\",ro").target.as_deref(), Some("/a,b"));
        assert!(error("target=/a\"b").contains("bare \""));
    }

    #[test]
    fn from_must_not_use_variables_before_expansion() {
        assert!(
            check_from_is_literal("from=$ttt,type=cache,target=/tmp").unwrap_err().contains("'from' doesn't support")
        );
        assert!(check_from_is_literal("from=build,target=/$x").is_ok());
    }
}
