//! Where the local Ollama server listens, read the way Ollama itself reads
//! `OLLAMA_HOST`: optional `http://`/`https://` scheme, host and port each
//! optional (default `127.0.0.1:11434`), a bad port falls back to the
//! default. A wildcard host (`0.0.0.0`, `::`, empty) is served on every
//! interface but dialled on loopback.

use std::fmt;

/// Ollama's default port.
pub const DEFAULT_PORT: u16 = 11434;

/// A parsed server address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OllamaAddress {
    scheme: String,
    host: String,
    port: u16,
}

impl OllamaAddress {
    /// Parse an `OLLAMA_HOST`-style value; empty means the default.
    pub fn parse(raw: &str) -> Self {
        let raw = raw.trim().trim_matches(|c| c == '"' || c == '\'');
        let (scheme, rest, default_port) = match raw.split_once("://") {
            Some(("https", rest)) => ("https", rest, 443),
            Some(("http", rest)) => ("http", rest, 80),
            Some((other, rest)) => (other, rest, DEFAULT_PORT),
            None => ("http", raw, DEFAULT_PORT),
        };
        let hostport = rest.split('/').next().unwrap_or_default();
        let (host, port) = split_host_port(hostport);
        let host = match host {
            Some(host) => host.trim_matches(|c| c == '[' || c == ']').to_owned(),
            None if hostport.is_empty() => "127.0.0.1".to_owned(),
            None => hostport.trim_matches(|c| c == '[' || c == ']').to_owned(),
        };
        let port = port
            .and_then(|p| p.parse::<u16>().ok())
            .unwrap_or(default_port);
        Self {
            scheme: scheme.to_owned(),
            host,
            port,
        }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `host:port` as the server binds it.
    pub fn listen(&self) -> String {
        join(&self.host, self.port)
    }

    /// The value to give a spawned server as `OLLAMA_HOST`.
    pub fn env_value(&self) -> String {
        format!("{}://{}", self.scheme, self.listen())
    }

    /// `host:port` to connect to: wildcard hosts become loopback.
    pub fn dial(&self) -> String {
        let host = match self.host.as_str() {
            "" | "0.0.0.0" => "127.0.0.1",
            "::" => "::1",
            other => other,
        };
        join(host, self.port)
    }

    /// Whether only this machine can reach it (a loopback address or
    /// `localhost`; a wildcard or any other host is reachable from
    /// outside).
    pub fn is_loopback(&self) -> bool {
        self.host.eq_ignore_ascii_case("localhost")
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// The URL clients use.
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme, self.dial())
    }
}

impl fmt::Display for OllamaAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.listen())
    }
}

/// `host:port` / `[v6]:port` / `:port`, or `None` when there is no port.
fn split_host_port(hostport: &str) -> (Option<&str>, Option<&str>) {
    if let Some(rest) = hostport.strip_prefix('[') {
        return match rest.split_once("]:") {
            Some((host, port)) => (Some(host), Some(port)),
            None => (None, None),
        };
    }
    match hostport.rsplit_once(':') {
        // More than one colon without brackets: a bare IPv6 address.
        Some((host, _)) if host.contains(':') => (None, None),
        Some((host, port)) => (Some(if host.is_empty() { "" } else { host }), Some(port)),
        None => (None, None),
    }
}

fn join(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_hosts_are_private() {
        for private in ["", "127.0.0.1:1", "localhost:2", "[::1]:3"] {
            assert!(OllamaAddress::parse(private).is_loopback(), "{private}");
        }
        for public in ["0.0.0.0:11434", ":5555", "box.lan", "10.0.0.5", "[::]:1"] {
            assert!(!OllamaAddress::parse(public).is_loopback(), "{public}");
        }
    }

    #[test]
    fn reads_ollama_host_like_ollama() {
        let cases = [
            ("", "http://127.0.0.1:11434", "127.0.0.1:11434"),
            ("127.0.0.1:9000", "http://127.0.0.1:9000", "127.0.0.1:9000"),
            ("http://10.0.0.5", "http://10.0.0.5:80", "10.0.0.5:80"),
            ("https://box.lan", "https://box.lan:443", "box.lan:443"),
            ("box.lan", "http://box.lan:11434", "box.lan:11434"),
            (":5555", "http://127.0.0.1:5555", ":5555"),
            ("0.0.0.0:11434", "http://127.0.0.1:11434", "0.0.0.0:11434"),
            ("[::1]:7000", "http://[::1]:7000", "[::1]:7000"),
            ("::1", "http://[::1]:11434", "[::1]:11434"),
            (
                "\"127.0.0.1:1234\"",
                "http://127.0.0.1:1234",
                "127.0.0.1:1234",
            ),
            (
                "127.0.0.1:notaport",
                "http://127.0.0.1:11434",
                "127.0.0.1:11434",
            ),
            ("http://h:1/some/path", "http://h:1", "h:1"),
        ];
        for (raw, url, listen) in cases {
            let address = OllamaAddress::parse(raw);
            assert_eq!(address.base_url(), url, "{raw:?}");
            assert_eq!(address.listen(), listen, "{raw:?}");
        }
    }
}
