//! The rules serde cannot express: ranges, URL schemes, filters and keys
//! that must be set together. They run after deserialising and name the
//! offending key, so `parse` can point at the line that set it.

use std::time::Duration;

use crate::config::Settings;

/// Release channels.
pub const UPDATE_CHANNELS: &[&str] = &["stable", "beta"];
/// Bounds of `update.check_interval`.
const CHECK_INTERVAL_RANGE: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(60)..=Duration::from_secs(30 * 24 * 3600);
/// Bounds of `system.alert_interval`.
const ALERT_INTERVAL_RANGE: std::ops::RangeInclusive<Duration> =
    Duration::from_millis(250)..=Duration::from_secs(3600);
/// Bounds of `events.history`.
const EVENT_HISTORY_RANGE: std::ops::RangeInclusive<u32> = 16..=1_000_000;

/// Checks serde cannot express. Returns the offending key and why.
pub(super) fn validate(settings: &Settings) -> Result<(), (&'static str, String)> {
    // tracing-subscriber 0.3 slices a directive at offsets counted after
    // trimming it, so leading white space before a multi-byte character
    // panics inside its parser (found by the fuzz target `config_edit`).
    // Filter directives are module paths, levels and field names: ASCII.
    if let Some(c) = settings.log.filter.chars().find(|c| !c.is_ascii()) {
        return Err((
            "log.filter",
            format!(
                "{c:?} is not allowed: a log filter is ASCII (targets like omnipanel_core=debug, levels, spans and fields)"
            ),
        ));
    }
    if let Err(err) = crate::logs::filter(&settings.log.filter) {
        return Err(("log.filter", format!("not a valid log filter: {err}")));
    }
    if settings.log.max_file_mb == 0 {
        return Err(("log.max_file_mb", "must be at least 1".to_owned()));
    }
    if !EVENT_HISTORY_RANGE.contains(&settings.events.history) {
        return Err((
            "events.history",
            format!(
                "must be between {} and {}",
                EVENT_HISTORY_RANGE.start(),
                EVENT_HISTORY_RANGE.end()
            ),
        ));
    }
    if settings.files.max_read_mb == 0 {
        return Err(("files.max_read_mb", "must be at least 1".to_owned()));
    }
    if !(Duration::from_secs(1)..=Duration::from_secs(3600))
        .contains(&settings.files.search_timeout)
    {
        return Err((
            "files.search_timeout",
            "must be between 1s and 1h".to_owned(),
        ));
    }
    if settings.files.watch_settle > Duration::from_secs(10) {
        return Err(("files.watch_settle", "must be at most 10s".to_owned()));
    }
    if settings
        .files
        .always_ignored
        .iter()
        .any(|n| n.is_empty() || n.contains('/'))
    {
        return Err((
            "files.always_ignored",
            "entries are folder names, without '/'".to_owned(),
        ));
    }
    if let Some(bad) = settings.git.token_hosts.iter().find(|host| {
        let ip_v6 = host.parse::<std::net::Ipv6Addr>().is_ok();
        let name = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        !(ip_v6 || name)
    }) {
        return Err((
            "git.token_hosts",
            format!(
                "{bad:?} is not a host name; list bare host names like \"github.com\", without scheme, port or path"
            ),
        ));
    }
    let update = &settings.update;
    if !UPDATE_CHANNELS.contains(&update.channel.as_str()) {
        return Err((
            "update.channel",
            format!(
                "{:?} is not a channel; use \"stable\" or \"beta\"",
                update.channel
            ),
        ));
    }
    if !(update.manifest_url.starts_with("http://") || update.manifest_url.starts_with("https://"))
    {
        return Err((
            "update.manifest_url",
            format!(
                "{:?} must be an http:// or https:// URL",
                update.manifest_url
            ),
        ));
    }
    if !CHECK_INTERVAL_RANGE.contains(&update.check_interval) {
        return Err((
            "update.check_interval",
            "must be between 1m and 30 days".to_owned(),
        ));
    }
    if let Some(key) = &update.public_key
        && let Err(err) = minisign_verify::PublicKey::from_base64(key.trim())
    {
        return Err((
            "update.public_key",
            format!("not a minisign public key ({err}); paste the base64 line of the .pub file"),
        ));
    }
    if !ALERT_INTERVAL_RANGE.contains(&settings.system.alert_interval) {
        return Err((
            "system.alert_interval",
            "must be between 250ms and 1h".to_owned(),
        ));
    }
    let ollama = &settings.ollama;
    if ollama.health_failures == 0 {
        return Err(("ollama.health_failures", "must be at least 1".to_owned()));
    }
    for (key, value) in [
        ("ollama.health_interval", ollama.health_interval),
        ("ollama.health_timeout", ollama.health_timeout),
        ("ollama.startup_timeout", ollama.startup_timeout),
    ] {
        if value < Duration::from_millis(10) {
            return Err((key, "must be at least 10ms".to_owned()));
        }
    }
    if !(ollama.registry.starts_with("http://") || ollama.registry.starts_with("https://")) {
        return Err((
            "ollama.registry",
            format!("{:?} must be an http:// or https:// URL", ollama.registry),
        ));
    }
    if let Some(keep_alive) = &ollama.keep_alive
        && crate::ollama::keep_alive_value(keep_alive)
            .ok()
            .flatten()
            .is_none()
    {
        return Err((
            "ollama.keep_alive",
            format!(
                "{keep_alive:?} is not a keep-alive; write seconds or a duration like \"5m\", \"1h30m\", or \"-1\" to keep models loaded for ever"
            ),
        ));
    }
    for (key, value, bounds) in [
        ("ollama.num_parallel", ollama.num_parallel, 1..=1024),
        (
            "ollama.max_loaded_models",
            ollama.max_loaded_models,
            1..=1024,
        ),
        (
            "ollama.context_length",
            ollama.context_length,
            256..=16_777_216,
        ),
    ] {
        if let Some(value) = value
            && !bounds.contains(&value)
        {
            return Err((
                key,
                format!(
                    "{value} is out of range: must be between {} and {} (remove the key for Ollama's default)",
                    bounds.start(),
                    bounds.end()
                ),
            ));
        }
    }
    if !(Duration::from_secs(10)..=Duration::from_secs(3600))
        .contains(&settings.access.request_timeout)
    {
        return Err((
            "access.request_timeout",
            "must be between 10s and 1h".to_owned(),
        ));
    }
    if !(Duration::from_secs(3600)..=Duration::from_secs(10 * 365 * 24 * 3600))
        .contains(&settings.audit.retention)
    {
        return Err((
            "audit.retention",
            "must be between 1h and 10 years (e.g. \"90d\")".to_owned(),
        ));
    }
    if !(100..=10_000_000).contains(&settings.audit.max_rows) {
        return Err((
            "audit.max_rows",
            "must be between 100 and 10000000".to_owned(),
        ));
    }
    if settings.server.request_timeout < Duration::from_secs(1) {
        return Err(("server.request_timeout", "must be at least 1s".to_owned()));
    }
    if settings.server.max_tcp_connections == 0 {
        return Err((
            "server.max_tcp_connections",
            "must be at least 1".to_owned(),
        ));
    }
    if settings.log.max_files == 0 {
        return Err(("log.max_files", "must be at least 1".to_owned()));
    }
    let server = &settings.server;
    match (&server.tls_cert, &server.tls_key) {
        (Some(_), None) => {
            return Err((
                "server.tls_key",
                "tls_cert is set, so tls_key must be set too".to_owned(),
            ));
        }
        (None, Some(_)) => {
            return Err((
                "server.tls_cert",
                "tls_key is set, so tls_cert must be set too".to_owned(),
            ));
        }
        _ => {}
    }
    if let Some(addr) = server.tcp
        && !addr.ip().is_loopback()
        && server.tls_cert.is_none()
    {
        return Err((
            "server.tcp",
            format!(
                "{addr} is reachable from other machines, so TLS is required: set server.tls_cert and server.tls_key, or listen on 127.0.0.1"
            ),
        ));
    }
    validate_gateway(&settings.gateway)
}

/// `[gateway]`: the same TLS rule as the gRPC TCP listener's.
fn validate_gateway(
    gateway: &crate::config::GatewaySettings,
) -> Result<(), (&'static str, String)> {
    if !gateway.listen.trim().is_empty() && gateway.listen_address().is_none() {
        return Err((
            "gateway.listen",
            format!(
                "{:?} is not an address; write e.g. \"127.0.0.1:11435\", or leave it empty to turn the gateway off",
                gateway.listen
            ),
        ));
    }
    if !(1..=10_000).contains(&gateway.max_waiting) {
        return Err((
            "gateway.max_waiting",
            "must be between 1 and 10000".to_owned(),
        ));
    }
    if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&gateway.wait_timeout) {
        return Err((
            "gateway.wait_timeout",
            "must be between 1s and 1h".to_owned(),
        ));
    }
    match (&gateway.tls_cert, &gateway.tls_key) {
        (Some(_), None) => {
            return Err((
                "gateway.tls_key",
                "tls_cert is set, so tls_key must be set too".to_owned(),
            ));
        }
        (None, Some(_)) => {
            return Err((
                "gateway.tls_cert",
                "tls_key is set, so tls_cert must be set too".to_owned(),
            ));
        }
        _ => {}
    }
    if let Some(addr) = gateway.listen_address()
        && !addr.ip().is_loopback()
        && gateway.tls_cert.is_none()
    {
        return Err((
            "gateway.listen",
            format!(
                "{addr} is reachable from other machines, so TLS is required: set gateway.tls_cert and gateway.tls_key, or listen on 127.0.0.1"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{SystemSettings, parse};

    use super::*;

    fn path() -> &'static Path {
        Path::new("/cfg/config.toml")
    }

    #[test]
    fn bad_filter_is_located_by_validation() {
        let err = parse(path(), "[log]\nfilter = \"info,=[\"\n").unwrap_err();
        assert_eq!(err.key.as_deref(), Some("log.filter"));
        assert_eq!(err.line, Some(2), "{err}");
    }

    /// The fuzz target `config_edit` found this filter panicking inside
    /// tracing-subscriber's parser.
    #[test]
    fn a_filter_with_white_space_and_non_ascii_is_refused_not_a_panic() {
        let err = parse(path(), "[log]\nfilter = \"\\ft\u{fffd}rer\u{fffd}= ne\"\n").unwrap_err();
        assert_eq!(err.key.as_deref(), Some("log.filter"));
        assert!(err.message.contains("ASCII"), "{err}");
    }

    /// Found by the fuzz target `config_edit` (a slow unit): a field value
    /// in a span directive is plain text, so building the filter compiles
    /// no regular expression.
    #[test]
    fn field_values_in_a_filter_are_text() {
        let text = "[log]\nfilter = \"info,[span{f=.......(a|b)*}]=debug\"\n";
        assert!(parse(path(), text).is_ok());
    }

    #[test]
    fn alert_settings_parse_and_are_bounded() {
        let settings = parse(
            path(),
            "[system]\nalerts = false\nalert_interval = \"2s\"\n",
        );
        assert_eq!(
            settings.map(|s| s.system),
            Ok(SystemSettings {
                alerts: false,
                alert_interval: Duration::from_secs(2),
            })
        );
        let err = parse(path(), "[system]\nalert_interval = \"10ms\"\n").unwrap_err();
        assert_eq!(err.key.as_deref(), Some("system.alert_interval"));
        assert_eq!(err.line, Some(2), "{err}");
    }

    #[test]
    fn update_settings_are_validated_by_key() {
        let err = parse(path(), "[update]\nchannel = \"nightly\"\n").err();
        assert_eq!(err.and_then(|e| e.key), Some("update.channel".to_owned()));
        let err = parse(path(), "[update]\npublic_key = \"nope\"\n").err();
        assert_eq!(
            err.and_then(|e| e.key),
            Some("update.public_key".to_owned())
        );
        let err = parse(path(), "[update]\ncheck_interval = \"1s\"\n").err();
        assert_eq!(
            err.and_then(|e| e.key),
            Some("update.check_interval".to_owned())
        );
        let ok = parse(path(), "[update]\nchannel = \"beta\"\nenabled = false\n");
        assert!(ok.is_ok_and(|s| s.update.channel == "beta" && !s.update.enabled));
    }

    #[test]
    fn managed_ollama_settings_are_validated_by_key() {
        for (text, key) in [
            ("keep_alive = \"ten minutes\"", "ollama.keep_alive"),
            ("keep_alive = \"\"", "ollama.keep_alive"),
            ("num_parallel = 0", "ollama.num_parallel"),
            ("max_loaded_models = 0", "ollama.max_loaded_models"),
            ("context_length = 16", "ollama.context_length"),
        ] {
            let err = parse(path(), &format!("[ollama]\n{text}\n")).expect_err(text);
            assert_eq!(err.key.as_deref(), Some(key), "{text}: {err}");
            assert_eq!(err.line, Some(2), "{err}");
        }
        let err = parse(path(), "[ollama]\nflash_attention = \"yes\"\n").unwrap_err();
        assert_eq!(err.key.as_deref(), Some("ollama.flash_attention"), "{err}");
        let ok = parse(
            path(),
            "[ollama]\nkeep_alive = -1\nnum_parallel = 4\nmax_loaded_models = 2\ncontext_length = 8192\nflash_attention = true\n",
        )
        .map(|s| s.ollama);
        assert!(
            ok.as_ref()
                .is_ok_and(|o| o.keep_alive.as_deref() == Some("-1")
                    && o.num_parallel == Some(4)
                    && o.max_loaded_models == Some(2)
                    && o.context_length == Some(8192)
                    && o.flash_attention == Some(true)),
            "{ok:?}"
        );
    }

    #[test]
    fn public_tcp_without_tls_is_refused() {
        let err = parse(path(), "[server]\ntcp = \"0.0.0.0:7457\"\n").unwrap_err();
        assert_eq!(err.key.as_deref(), Some("server.tcp"));
        assert!(err.message.contains("TLS"), "{err}");
        assert!(parse(path(), "[server]\ntcp = \"127.0.0.1:7457\"\n").is_ok());
    }

    #[test]
    fn the_gateway_is_off_by_default_and_needs_tls_off_loopback() {
        let defaults = parse(path(), "").unwrap();
        assert_eq!(defaults.gateway.listen_address(), None);
        assert_eq!(defaults.gateway.max_waiting, 16);
        assert_eq!(defaults.gateway.wait_timeout, Duration::from_secs(30));
        let on = parse(path(), "[gateway]\nlisten = \"127.0.0.1:11435\"\n").unwrap();
        assert_eq!(
            on.gateway.listen_address(),
            Some("127.0.0.1:11435".parse().unwrap())
        );
        let err = parse(path(), "[gateway]\nlisten = \"0.0.0.0:11435\"\n").unwrap_err();
        assert_eq!(err.key.as_deref(), Some("gateway.listen"));
        assert!(err.message.contains("TLS"), "{err}");
        let err = parse(path(), "[gateway]\nlisten = \"localhost\"\n").unwrap_err();
        assert_eq!(err.key.as_deref(), Some("gateway.listen"));
        let err = parse(path(), "[gateway]\ntls_cert = \"c.pem\"\n").unwrap_err();
        assert_eq!(err.key.as_deref(), Some("gateway.tls_key"));
        assert!(
            parse(
                path(),
                "[gateway]\nlisten = \"0.0.0.0:11435\"\ntls_cert = \"c\"\ntls_key = \"k\"\n"
            )
            .is_ok()
        );
    }

    #[test]
    fn token_hosts_are_bare_host_names() {
        for bad in ["https://github.com", "github.com:443", "github.com/me", ""] {
            let text = format!("[git]\ntoken_hosts = [{bad:?}]\n");
            let err = parse(path(), &text).expect_err(bad);
            assert_eq!(err.key.as_deref(), Some("git.token_hosts"), "{bad}: {err}");
        }
        let ok = parse(
            path(),
            "[git]\ntoken = \"t\"\ntoken_hosts = [\"github.com\", \"::1\", \"git-1.example.org\"]\n",
        );
        assert!(ok.is_ok_and(|s| s.git.token_hosts.len() == 3));
    }

    /// Every bound names its key, the line that set it and the allowed
    /// range, so the user can fix the file from the message alone.
    #[test]
    fn out_of_range_values_are_refused_with_their_key_line_and_bounds() {
        for (section, line, key, says) in [
            ("log", "max_file_mb = 0", "log.max_file_mb", "at least 1"),
            ("log", "max_files = 0", "log.max_files", "at least 1"),
            (
                "events",
                "history = 8",
                "events.history",
                "between 16 and 1000000",
            ),
            (
                "events",
                "history = 2000000",
                "events.history",
                "between 16 and 1000000",
            ),
            (
                "files",
                "max_read_mb = 0",
                "files.max_read_mb",
                "at least 1",
            ),
            (
                "files",
                "search_timeout = \"2h\"",
                "files.search_timeout",
                "between 1s and 1h",
            ),
            (
                "files",
                "watch_settle = \"11s\"",
                "files.watch_settle",
                "at most 10s",
            ),
            (
                "files",
                "always_ignored = [\"a/b\"]",
                "files.always_ignored",
                "without '/'",
            ),
            (
                "files",
                "always_ignored = [\"\"]",
                "files.always_ignored",
                "folder names",
            ),
            (
                "update",
                "manifest_url = \"ftp://example.org/m\"",
                "update.manifest_url",
                "http:// or https://",
            ),
            (
                "ollama",
                "health_failures = 0",
                "ollama.health_failures",
                "at least 1",
            ),
            (
                "ollama",
                "health_interval = \"1ms\"",
                "ollama.health_interval",
                "at least 10ms",
            ),
            (
                "ollama",
                "health_timeout = \"1ms\"",
                "ollama.health_timeout",
                "at least 10ms",
            ),
            (
                "ollama",
                "startup_timeout = \"1ms\"",
                "ollama.startup_timeout",
                "at least 10ms",
            ),
            (
                "ollama",
                "registry = \"registry.ollama.ai\"",
                "ollama.registry",
                "http:// or https://",
            ),
            (
                "access",
                "request_timeout = \"5s\"",
                "access.request_timeout",
                "between 10s and 1h",
            ),
            (
                "audit",
                "retention = \"30m\"",
                "audit.retention",
                "between 1h and 10 years",
            ),
            (
                "audit",
                "max_rows = 99",
                "audit.max_rows",
                "between 100 and 10000000",
            ),
            (
                "server",
                "request_timeout = \"500ms\"",
                "server.request_timeout",
                "at least 1s",
            ),
            (
                "server",
                "max_tcp_connections = 0",
                "server.max_tcp_connections",
                "at least 1",
            ),
            (
                "gateway",
                "max_waiting = 0",
                "gateway.max_waiting",
                "between 1 and 10000",
            ),
            (
                "gateway",
                "wait_timeout = \"2h\"",
                "gateway.wait_timeout",
                "between 1s and 1h",
            ),
        ] {
            let text = format!("[{section}]\n{line}\n");
            let err = parse(path(), &text).expect_err(&text);
            assert_eq!(err.key.as_deref(), Some(key), "{text}: {err}");
            assert_eq!(err.line, Some(2), "{text}: {err}");
            assert!(err.message.contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn a_tls_certificate_and_its_key_are_set_together() {
        for (section, line, missing) in [
            ("server", "tls_cert = \"c.pem\"", "server.tls_key"),
            ("server", "tls_key = \"k.pem\"", "server.tls_cert"),
            ("gateway", "tls_key = \"k.pem\"", "gateway.tls_cert"),
        ] {
            let text = format!("[{section}]\n{line}\n");
            let err = parse(path(), &text).expect_err(&text);
            assert_eq!(err.key.as_deref(), Some(missing), "{text}: {err}");
            assert!(err.message.contains("must be set too"), "{text}: {err}");
        }
        assert!(parse(path(), "[server]\ntls_cert = \"c\"\ntls_key = \"k\"\n").is_ok());
    }
}
