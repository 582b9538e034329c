//! HEALTHCHECK: `NONE`, or `CMD` with interval/timeout/start-period/start-interval/retries flags.

use super::flags::{FlagKind, FlagSpecs, Flags};
use crate::parser::Node;
use strata_llb::HealthConfig;

/// The flags HEALTHCHECK accepts.
const HEALTHCHECK_FLAGS: FlagSpecs = &[
    ("interval", FlagKind::String),
    ("timeout", FlagKind::String),
    ("start-period", FlagKind::String),
    ("start-interval", FlagKind::String),
    ("retries", FlagKind::String),
];

/// Parses HEALTHCHECK; `Ok(None)` is `HEALTHCHECK NONE` (disable any inherited check).
pub(super) fn parse_healthcheck(node: &Node) -> Result<Option<HealthConfig>, String> {
    let Some((kind, command)) = node.args.split_first() else {
        return Err("HEALTHCHECK requires at least one argument".into());
    };
    let flags = Flags::parse(&node.flags, HEALTHCHECK_FLAGS)?;
    match kind.to_uppercase().as_str() {
        "NONE" if command.is_empty() => return Ok(None),
        "NONE" => return Err("HEALTHCHECK NONE takes no arguments".into()),
        "CMD" => {}
        other => return Err(format!("Unknown type \"{other}\" in HEALTHCHECK (try CMD)")),
    }
    if command.is_empty() {
        return Err("missing command after HEALTHCHECK CMD".into());
    }
    let test = if node.json {
        std::iter::once("CMD".to_owned()).chain(command.iter().cloned()).collect()
    } else {
        vec!["CMD-SHELL".to_owned(), command.join(" ")]
    };
    let retries = match flags.string("retries") {
        None => 0,
        Some(text) => {
            let retries: i64 = text.parse().map_err(|_| format!("invalid --retries value {text:?}: not an integer"))?;
            if retries < 0 {
                return Err(format!("--retries cannot be negative ({retries})"));
            }
            retries
        }
    };
    Ok(Some(HealthConfig {
        test,
        interval: interval(&flags, "interval")?,
        timeout: interval(&flags, "timeout")?,
        start_period: interval(&flags, "start-period")?,
        start_interval: interval(&flags, "start-interval")?,
        retries,
    }))
}

/// A duration flag in nanoseconds: absent is 0 (the default); anything else must be 0 or at least 1ms.
fn interval(flags: &Flags, name: &str) -> Result<i64, String> {
    let Some(text) = flags.string(name) else {
        return Ok(0);
    };
    let nanos = go_duration_nanos(&text).ok_or_else(|| format!("time: invalid duration \"{text}\""))?;
    if nanos != 0 && nanos < 1_000_000 {
        return Err(format!("Interval \"{name}\" cannot be less than 1ms"));
    }
    Ok(i64::try_from(nanos).unwrap_or(i64::MAX))
}

/// Parses a Go duration (`1h30m`, `1.5s`, `300ms`, `-2s`, `0`) into signed nanoseconds.
pub fn go_duration_nanos(text: &str) -> Option<i128> {
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(rest.len());
        let unit_end =
            rest[number_end..].find(|c: char| c.is_ascii_digit() || c == '.').map_or(rest.len(), |i| number_end + i);
        let (number, unit) = (&rest[..number_end], &rest[number_end..unit_end]);
        if number.is_empty() || number == "." {
            return None;
        }
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += number.parse::<f64>().ok()? * scale;
        rest = &rest[unit_end..];
    }
    let nanos = total.round() as i128;
    Some(if negative { -nanos } else { nanos })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration_nanos("1h30m"), Some(5_400_000_000_000));
        assert_eq!(go_duration_nanos("1.5s"), Some(1_500_000_000));
        assert_eq!(go_duration_nanos("300ms"), Some(300_000_000));
        assert_eq!(go_duration_nanos("-2us"), Some(-2_000));
        assert_eq!(go_duration_nanos("0"), Some(0));
        for bad in ["", "5", "s", "1x", "1.s5"] {
            assert_eq!(go_duration_nanos(bad), None, "{bad}");
        }
    }
}
