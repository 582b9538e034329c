//! EXPOSE port specs: `80`, `80/udp`, ranges `8000-8002/tcp`, and `[ip:]hostPort:containerPort[/proto]`
//! mappings, of which only the container side is exposed.

/// Expands one expanded EXPOSE word into `port/proto` keys, one per port of a range.
pub(crate) fn exposed_ports(spec: &str) -> Result<Vec<String>, String> {
    let (ports, proto) = match spec.rsplit_once('/') {
        Some((ports, proto)) => (ports, proto.to_ascii_lowercase()),
        None => (spec, "tcp".to_owned()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    // With a mapping the container port is the last `:`-separated part (an IPv6 host may be bracketed).
    let container = ports.rsplit(':').next().unwrap_or(ports);
    let (start, end) = match container.split_once('-') {
        Some((start, end)) => (parse_port(start, container)?, parse_port(end, container)?),
        None => {
            let port = parse_port(container, container)?;
            (port, port)
        }
    };
    if end < start {
        return Err(format!("invalid range specified for containerPort: {container}"));
    }
    Ok((start..=end).map(|port| format!("{port}/{proto}")).collect())
}

fn parse_port(text: &str, spec: &str) -> Result<u16, String> {
    text.parse::<u16>().map_err(|_| format!("invalid containerPort: {spec}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_protocols_and_mappings() {
        assert_eq!(exposed_ports("1234-1236/tcp").unwrap(), ["1234/tcp", "1235/tcp", "1236/tcp"]);
        assert_eq!(exposed_ports("2345/udp").unwrap(), ["2345/udp"]);
        assert_eq!(exposed_ports("3456/SCTP").unwrap(), ["3456/sctp"]);
        assert_eq!(exposed_ports("4000:4000/tcp").unwrap(), ["4000/tcp"]);
        assert_eq!(exposed_ports("127.0.0.1:80:8080").unwrap(), ["8080/tcp"]);
        assert_eq!(exposed_ports("5000").unwrap(), ["5000/tcp"]);
    }

    #[test]
    fn bad_specs() {
        assert_eq!(exposed_ports("80/xyz").unwrap_err(), "invalid proto: xyz");
        assert_eq!(exposed_ports("abc").unwrap_err(), "invalid containerPort: abc");
        assert!(exposed_ports("90-80").is_err());
        assert!(exposed_ports("70000").is_err());
    }
}
