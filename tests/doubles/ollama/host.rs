//! `OLLAMA_HOST` to listening address, with the fallbacks of Ollama's
//! `envconfig.Host`, so the supervisor can hand the fake exactly the value
//! it would hand the real server and get the same port.

use std::{fmt, net::IpAddr};

/// Ollama's port when `OLLAMA_HOST` names none (and has no scheme).
pub const DEFAULT_PORT: u16 = 11434;

/// A host (possibly empty: every interface) and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenAddr {
    pub host: String,
    pub port: u16,
}

impl ListenAddr {
    /// What to hand `TcpListener::bind`. Go listens on every interface for
    /// an empty host; the IPv4 wildcard is the closest tokio equivalent.
    pub fn bind_target(&self) -> String {
        if self.host.is_empty() {
            format!("0.0.0.0:{}", self.port)
        } else {
            self.to_string()
        }
    }
}

/// Go's `net.JoinHostPort`, which is how Ollama's errors name the address.
impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Interprets `OLLAMA_HOST` (unset and empty behave alike). Never fails:
/// like Ollama, anything unusable falls back to a default part.
pub fn parse(raw: Option<&str>) -> ListenAddr {
    // Ollama trims spaces, then quotes, since users often quote the value
    // in service files.
    let value = raw
        .unwrap_or("")
        .trim()
        .trim_matches(|c| c == '"' || c == '\'');
    let (default_port, hostport) = match value.split_once("://") {
        None => (DEFAULT_PORT, value),
        Some(("http", rest)) => (80, rest),
        Some(("https", rest)) => (443, rest),
        Some((_, rest)) => (DEFAULT_PORT, rest),
    };
    let hostport = hostport.split_once('/').map_or(hostport, |(hp, _)| hp);
    match split_host_port(hostport) {
        Some((host, port)) => ListenAddr {
            host: host.to_string(),
            // Go's check is `ParseInt` within 0..=65535; `u16` is the same.
            port: port.parse().unwrap_or(default_port),
        },
        None => {
            let bare = hostport.trim_matches(|c| c == '[' || c == ']');
            let host = if let Ok(ip) = bare.parse::<IpAddr>() {
                ip.to_string()
            } else if hostport.is_empty() {
                "127.0.0.1".to_string()
            } else {
                hostport.to_string()
            };
            ListenAddr {
                host,
                port: default_port,
            }
        }
    }
}

/// Go's `net.SplitHostPort`: `None` where Go returns an error (no port,
/// too many colons, stray brackets).
fn split_host_port(hostport: &str) -> Option<(&str, &str)> {
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        (host, after.strip_prefix(':')?)
    } else {
        let (host, port) = hostport.rsplit_once(':')?;
        if host.contains(':') {
            return None;
        }
        (host, port)
    };
    let stray = |s: &str| s.contains('[') || s.contains(']');
    if stray(host) || stray(port) {
        return None;
    }
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(raw: Option<&str>) -> String {
        parse(raw).to_string()
    }

    #[test]
    fn follows_ollama_envconfig() {
        assert_eq!(addr(None), "127.0.0.1:11434");
        assert_eq!(addr(Some("")), "127.0.0.1:11434");
        assert_eq!(addr(Some("  ")), "127.0.0.1:11434");
        assert_eq!(addr(Some("1.2.3.4:5678")), "1.2.3.4:5678");
        assert_eq!(addr(Some("\"127.0.0.1:4000\"")), "127.0.0.1:4000");
        assert_eq!(addr(Some("0.0.0.0")), "0.0.0.0:11434");
        assert_eq!(addr(Some("example.com")), "example.com:11434");
        assert_eq!(addr(Some("example.com:1234")), "example.com:1234");
        assert_eq!(addr(Some(":1234")), ":1234");
        assert_eq!(parse(Some(":1234")).bind_target(), "0.0.0.0:1234");
        assert_eq!(addr(Some("http://1.2.3.4")), "1.2.3.4:80");
        assert_eq!(addr(Some("https://1.2.3.4")), "1.2.3.4:443");
        assert_eq!(addr(Some("http://1.2.3.4:5678/path")), "1.2.3.4:5678");
        assert_eq!(addr(Some("https://example.com:9000")), "example.com:9000");
        assert_eq!(addr(Some("[::1]:4000")), "[::1]:4000");
        assert_eq!(addr(Some("::1")), "[::1]:11434");
        assert_eq!(addr(Some("[::1]")), "[::1]:11434");
        // An unusable port falls back to the default, with the host kept.
        assert_eq!(addr(Some("1.2.3.4:99999")), "1.2.3.4:11434");
        assert_eq!(addr(Some("1.2.3.4:abc")), "1.2.3.4:11434");
        assert_eq!(addr(Some("1.2.3.4:")), "1.2.3.4:11434");
        assert_eq!(addr(Some("127.0.0.1:0")), "127.0.0.1:0");
    }
}
