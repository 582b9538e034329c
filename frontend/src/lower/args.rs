//! Build arguments BuildKit defines without an ARG: the platform args and TARGETSTAGE (usable in FROM, and
//! in a stage after `ARG NAME`), and the proxy args (passed to RUN without a declaration, kept out of cache
//! keys).

use std::collections::BTreeMap;

use strata_llb::Platform;

use crate::shell::EnvMap;

/// Proxy variables that reach RUN steps whenever they are given as build args.
pub(crate) const PROXY_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// The predefined args and their values, overridden by build args of the same name.
pub(crate) fn builtin_args(
    build: &Platform,
    target: &Platform,
    target_stage: &str,
    overrides: &BTreeMap<String, String>,
) -> EnvMap {
    let variant = |p: &Platform| p.variant.clone().unwrap_or_default();
    let values = [
        ("BUILDPLATFORM", build.to_string()),
        ("BUILDOS", build.os.clone()),
        ("BUILDOSVERSION", String::new()),
        ("BUILDARCH", build.architecture.clone()),
        ("BUILDVARIANT", variant(build)),
        ("TARGETPLATFORM", target.to_string()),
        ("TARGETOS", target.os.clone()),
        ("TARGETOSVERSION", String::new()),
        ("TARGETARCH", target.architecture.clone()),
        ("TARGETVARIANT", variant(target)),
        ("TARGETSTAGE", target_stage.to_owned()),
    ];
    let mut env = EnvMap::new();
    for (name, value) in values {
        env.insert(name, overrides.get(name).cloned().unwrap_or(value));
    }
    env
}

/// `KEY=value` for every proxy arg among the build args.
pub(crate) fn proxy_env(build_args: &BTreeMap<String, String>) -> Vec<String> {
    PROXY_ARGS.iter().filter_map(|name| build_args.get(*name).map(|value| format!("{name}={value}"))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::Env;

    #[test]
    fn platform_args_with_overrides() {
        let arm: Platform = "linux/arm64".parse().unwrap();
        let amd: Platform = "linux/amd64".parse().unwrap();
        let overrides = BTreeMap::from([("TARGETOS".to_owned(), "custom".to_owned())]);
        let env = builtin_args(&amd, &arm, "build", &overrides);
        assert_eq!(env.get("TARGETPLATFORM"), Some("linux/arm64/v8"));
        assert_eq!(env.get("TARGETARCH"), Some("arm64"));
        assert_eq!(env.get("TARGETVARIANT"), Some("v8"));
        assert_eq!(env.get("BUILDVARIANT"), Some(""));
        assert_eq!(env.get("TARGETOS"), Some("custom"));
        assert_eq!(env.get("TARGETSTAGE"), Some("build"));
    }

    #[test]
    fn only_proxy_args_pass_undeclared() {
        let args = BTreeMap::from([("http_proxy".to_owned(), "p".to_owned()), ("FOO".to_owned(), "x".to_owned())]);
        assert_eq!(proxy_env(&args), ["http_proxy=p"]);
    }
}
