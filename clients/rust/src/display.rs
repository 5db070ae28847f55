//! How clients show what the agent says, so the CLI and the tray/panel
//! write the same words: byte sizes, rates, durations, times, percentages,
//! how long a grant lasts, folders under the home folder, the names of
//! server, provider and pull states, one-line summaries of a server
//! status and a pull, and aligned text tables. Pure functions over numbers
//! and generated message types; nothing here writes anywhere or depends on
//! a GUI toolkit.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use omnipanel_proto::v1::{
    ChangeType, FitVerdict, GenerationStats, Model, Project, Provider, ProviderKind, ProviderState,
    PullProgress, PullState, ServerState, ServerStatus, TransferProgress,
};

/// Decimal units above bytes, as Ollama writes sizes.
const UNITS: [&str; 5] = ["KB", "MB", "GB", "TB", "PB"];

/// A byte count in decimal units: "512 B", "12 KB", "637 MB", "1.3 GB".
/// One decimal below 10 so columns stay short ("1.0 GB", "9.9 GB",
/// "10 GB"). A value that rounding would show as 1000 of a unit moves up
/// first: 999.6 MB is "1.0 GB", never "1000 MB"; 999 499 B is "999 KB".
pub fn bytes(n: u64) -> String {
    if n < 1000 {
        return format!("{n} B");
    }
    // Precision loss above 2^53 bytes is invisible at three digits.
    #[allow(clippy::cast_precision_loss)]
    let mut value = n as f64 / 1000.0;
    let mut unit = 0;
    // 999.5 and above rounds to "1000" with no decimals: promote.
    while value >= 999.5 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    // 9.95 and above rounds to "10.0" with one decimal: show no decimal.
    if value >= 9.95 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A transfer rate: "35 MB/s", "512 B/s".
pub fn rate(bytes_per_second: u64) -> String {
    format!("{}/s", bytes(bytes_per_second))
}

/// A measured rate (the agent samples networks as floats): negative and
/// not-a-number rates show as "0 B/s".
pub fn rate_f64(bytes_per_second: f64) -> String {
    // Rates are far below 2^53 bytes/s; whole bytes are what is shown.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let whole = if bytes_per_second.is_nan() {
        0
    } else {
        bytes_per_second.max(0.0).round() as u64
    };
    rate(whole)
}

/// A number of seconds in words, every unit spelt: "1h 2m 3s", "2days 3h"
/// (humantime's format; "0s" for zero).
pub fn duration(seconds: u64) -> String {
    humantime::format_duration(Duration::from_secs(seconds)).to_string()
}

/// A number of seconds compactly, two units at most: "42s", "3m05s",
/// "1h02m" (negative counts as 0). For progress lines and menus.
pub fn duration_short(seconds: i64) -> String {
    let s = seconds.max(0);
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A Unix-epoch millisecond timestamp as RFC 3339 (UTC, seconds); "never"
/// for 0 or less (the API's "unset").
pub fn timestamp(ms: i64) -> String {
    if ms <= 0 {
        return "never".to_owned();
    }
    let time = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or_default());
    humantime::format_rfc3339_seconds(time).to_string()
}

/// Time since a Unix-epoch millisecond timestamp, as [`duration`].
pub fn elapsed_since(ms: i64) -> String {
    let start = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or_default());
    let elapsed = SystemTime::now().duration_since(start).unwrap_or_default();
    duration(elapsed.as_secs())
}

/// A timestamp relative to now in words: "3 days ago", "in 4 minutes",
/// "just now".
pub fn relative_time(ms: i64) -> String {
    relative_to(ms, now_ms())
}

/// [`relative_time`] against a given "now". Coarse on purpose: listings
/// only need the order of magnitude.
pub fn relative_to(ms: i64, now: i64) -> String {
    if ms <= 0 {
        return "never".to_owned();
    }
    let delta_secs = (ms - now) / 1000;
    let abs = delta_secs.unsigned_abs();
    if abs < 5 {
        return if delta_secs <= 0 {
            "just now"
        } else {
            "in a moment"
        }
        .to_owned();
    }
    let (count, unit) = match abs {
        0..60 => (abs, "second"),
        60..3_600 => (abs / 60, "minute"),
        3_600..86_400 => (abs / 3_600, "hour"),
        86_400..604_800 => (abs / 86_400, "day"),
        // Months before weeks would skip "5 weeks"; 30-day months are close
        // enough for "modified 2 months ago".
        604_800..2_592_000 => (abs / 604_800, "week"),
        2_592_000..31_536_000 => (abs / 2_592_000, "month"),
        _ => (abs / 31_536_000, "year"),
    };
    let plural = if count == 1 { "" } else { "s" };
    if delta_secs < 0 {
        format!("{count} {unit}{plural} ago")
    } else {
        format!("in {count} {unit}{plural}")
    }
}

/// `part` as a whole percentage of `whole`, rounded down and at most 100
/// (0 when `whole` is 0).
pub fn percent(part: u64, whole: u64) -> u64 {
    if whole == 0 {
        return 0;
    }
    u64::try_from(u128::from(part.min(whole)) * 100 / u128::from(whole)).unwrap_or(100)
}

/// A short span given in nanoseconds: "350 ms" below a second, "1.25 s"
/// below a minute, then as [`duration_short`] ("2m05s").
pub fn duration_ns(nanos: u64) -> String {
    let millis = nanos / 1_000_000;
    if millis < 1_000 {
        format!("{millis} ms")
    } else if millis < 60_000 {
        format!("{} s", trim_float(millis as f64 / 1_000.0))
    } else {
        duration_short(i64::try_from(millis / 1_000).unwrap_or(i64::MAX))
    }
}

/// Generation speed: "42.5 tokens/s" (one decimal); `None` when nothing
/// was timed.
pub fn tokens_per_second(tokens: u64, nanos: u64) -> Option<String> {
    if tokens == 0 || nanos == 0 {
        return None;
    }
    Some(format!(
        "{:.1} tokens/s",
        tokens as f64 * 1e9 / nanos as f64
    ))
}

/// A reply's statistics line: "12 tokens · 42.5 tokens/s · first token
/// after 350 ms" (parts the server did not report are left out).
pub fn generation_stats(stats: &GenerationStats) -> String {
    let mut parts = Vec::new();
    if stats.eval_count > 0 {
        let plural = if stats.eval_count == 1 { "" } else { "s" };
        parts.push(format!("{} token{plural}", stats.eval_count));
    }
    parts.extend(tokens_per_second(stats.eval_count, stats.eval_duration_ns));
    if stats.time_to_first_token_ns > 0 {
        parts.push(format!(
            "first token after {}",
            duration_ns(stats.time_to_first_token_ns)
        ));
    }
    parts.join(" · ")
}

/// `90` rather than `90.0`, `2.5` as is (two decimals at most).
pub fn trim_float(value: f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// `text`, or "-" when it is empty (a column with nothing to show).
pub fn or_dash(text: &str) -> &str {
    if text.is_empty() { "-" } else { text }
}

/// `text` on one line, "-" when blank: errors quoted from other programs
/// (an HTTP body, a process's output) may span many, which would break a
/// layout.
pub fn one_line(text: &str) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.is_empty() {
        "-".to_owned()
    } else {
        joined
    }
}

/// The first 8 characters of a commit id, as people quote them.
pub fn short_id(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// A model's parameter size and quantisation, as known: "8B Q4_K_M".
pub fn model_details(model: &Model) -> String {
    [
        model.parameter_size.as_str(),
        model.quantization_level.as_str(),
    ]
    .iter()
    .filter(|s| !s.is_empty())
    .copied()
    .collect::<Vec<_>>()
    .join(" ")
}

fn server_state(state: i32) -> ServerState {
    ServerState::try_from(state).unwrap_or(ServerState::Unspecified)
}

/// How a Git status entry changed, in git's own words ("new file",
/// "modified", "both modified" for a conflict).
pub fn change_label(change: i32) -> &'static str {
    match ChangeType::try_from(change) {
        Ok(ChangeType::Added) => "new file",
        Ok(ChangeType::Modified) => "modified",
        Ok(ChangeType::Deleted) => "deleted",
        Ok(ChangeType::Renamed) => "renamed",
        Ok(ChangeType::TypeChanged) => "typechange",
        Ok(ChangeType::Untracked) => "untracked",
        Ok(ChangeType::Conflicted) => "both modified",
        _ => "changed",
    }
}

/// A server state as the API names it, without the prefix: "RUNNING"
/// (the CLI's word, which scripts match).
pub fn server_state_name(state: i32) -> &'static str {
    let name = server_state(state).as_str_name();
    name.strip_prefix("SERVER_STATE_").unwrap_or(name)
}

/// An access request's state as a lower-case word ("pending", "approved").
pub fn access_request_state_name(state: i32) -> String {
    let state = omnipanel_proto::v1::AccessRequestState::try_from(state)
        .unwrap_or(omnipanel_proto::v1::AccessRequestState::Unspecified);
    let name = state.as_str_name();
    name.strip_prefix("ACCESS_REQUEST_STATE_")
        .unwrap_or(name)
        .to_ascii_lowercase()
}

/// A confirmation's state as a lower-case word ("pending", "allowed").
pub fn confirmation_state_name(state: i32) -> String {
    let state = omnipanel_proto::v1::ConfirmationState::try_from(state)
        .unwrap_or(omnipanel_proto::v1::ConfirmationState::Unspecified);
    let name = state.as_str_name();
    name.strip_prefix("CONFIRMATION_STATE_")
        .unwrap_or(name)
        .to_ascii_lowercase()
}

/// A scope's lower-case name ("read", "infer").
pub fn scope_name(scope: i32) -> String {
    let scope = omnipanel_proto::v1::Scope::try_from(scope)
        .unwrap_or(omnipanel_proto::v1::Scope::Unspecified);
    let name = scope.as_str_name();
    name.strip_prefix("SCOPE_")
        .unwrap_or(name)
        .to_ascii_lowercase()
}

/// A confirmation kind's name as people read it ("delete model").
pub fn confirm_kind_label(kind: i32) -> &'static str {
    use omnipanel_proto::v1::ConfirmKind;
    match ConfirmKind::try_from(kind).unwrap_or(ConfirmKind::Unspecified) {
        ConfirmKind::Unspecified => "unknown act",
        ConfirmKind::DeletePermanently => "delete permanently",
        ConfirmKind::DeleteFolder => "delete a folder",
        ConfirmKind::Overwrite => "overwrite",
        ConfirmKind::DeleteModel => "delete a model",
        ConfirmKind::ForceDeleteBranch => "force-delete a branch",
        ConfirmKind::Push => "push",
        ConfirmKind::ForcePush => "force push",
        ConfirmKind::InstallUpdate => "install an update",
        ConfirmKind::RemoveProvider => "remove a provider",
    }
}

/// Scopes as a list of their names ("read, infer"). Every client has
/// `status`, so it is named only when it is all there is.
pub fn scope_names(scopes: &[i32]) -> String {
    let status = i32::from(omnipanel_proto::v1::Scope::Status);
    let names: Vec<String> = scopes
        .iter()
        .filter(|scope| **scope != status)
        .map(|scope| scope_name(*scope))
        .collect();
    if names.is_empty() {
        "status".to_owned()
    } else {
        names.join(", ")
    }
}

/// A confirmation kind's stable name as commands take it
/// ("delete-model", "force-push"): the API's name, lower case, with dashes.
pub fn confirm_kind_name(kind: i32) -> String {
    let kind = omnipanel_proto::v1::ConfirmKind::try_from(kind)
        .unwrap_or(omnipanel_proto::v1::ConfirmKind::Unspecified);
    let name = kind.as_str_name();
    name.strip_prefix("CONFIRM_KIND_")
        .unwrap_or(name)
        .to_ascii_lowercase()
        .replace('_', "-")
}

/// How long a grant was asked or given for, in words ("1 hour", "this
/// run").
pub fn expiry_label(expiry: i32) -> &'static str {
    use omnipanel_proto::v1::Expiry;
    match Expiry::try_from(expiry).unwrap_or(Expiry::Unspecified) {
        Expiry::Unspecified => "as long as asked",
        Expiry::Once => "this run of the agent",
        Expiry::Hour => "1 hour",
        Expiry::Day => "1 day",
        Expiry::Always => "until revoked",
    }
}

/// Time left until a Unix-epoch millisecond deadline, to the second
/// ("1m52s left"), for deadlines minutes away (an access request, a
/// confirmation), where [`relative_to`]'s "in 1 minute" is too coarse;
/// "expired" once passed, "no limit" for 0 (the API's "never").
pub fn time_left(until_ms: i64, now_ms: i64) -> String {
    if until_ms <= 0 {
        return "no limit".to_owned();
    }
    let left_ms = until_ms - now_ms;
    if left_ms <= 0 {
        return "expired".to_owned();
    }
    // Rounded up: "0s left" for a deadline still ahead would read as gone.
    format!(
        "{} left",
        duration_short(left_ms.saturating_add(999) / 1000)
    )
}

/// When a grant ends, against `now`: "never", "when the agent stops", "in
/// 59 minutes", "expired".
pub fn grant_end(expires_unix_ms: i64, this_run_only: bool, now: i64) -> String {
    if expires_unix_ms <= 0 {
        return if this_run_only {
            "when the agent stops".to_owned()
        } else {
            "never".to_owned()
        };
    }
    if expires_unix_ms <= now {
        return "expired".to_owned();
    }
    let when = relative_to(expires_unix_ms, now);
    if this_run_only {
        format!("{when} or when the agent stops")
    } else {
        when
    }
}

/// A folder with the home folder written `~`: "~/app" (others as they are).
pub fn home_relative(path: &str, home: &str) -> String {
    let home = home.trim_end_matches('/');
    if home.is_empty() {
        return path.to_owned();
    }
    match path.strip_prefix(home) {
        Some("") => "~".to_owned(),
        Some(rest) if rest.starts_with('/') => format!("~{rest}"),
        _ => path.to_owned(),
    }
}

/// A person's word for a server state: "running", "restarting after a
/// crash" (menus and the panel).
pub fn server_state_label(state: ServerState) -> &'static str {
    match state {
        ServerState::Unspecified => "unknown",
        ServerState::NotInstalled => "not installed",
        ServerState::Stopped => "stopped",
        ServerState::Starting => "starting",
        ServerState::Running => "running",
        ServerState::Stopping => "stopping",
        ServerState::Crashed => "crashed",
        ServerState::Backoff => "restarting after a crash",
        ServerState::External => "running (started outside OmniPanel)",
    }
}

/// What a server state means, in a few words.
pub fn server_state_meaning(state: i32) -> &'static str {
    match server_state(state) {
        ServerState::NotInstalled => "no Ollama binary was found",
        ServerState::Stopped => "installed, not running",
        ServerState::Starting => "started by OmniPanel, not answering yet",
        ServerState::Running => "managed by OmniPanel",
        ServerState::Stopping => "being stopped by OmniPanel",
        ServerState::Crashed => "exited or hung; a restart follows",
        ServerState::Backoff => "waiting before the next start attempt",
        ServerState::External => "started outside OmniPanel; used, never stopped",
        ServerState::Unspecified => "unknown",
    }
}

/// "Ollama is RUNNING (version X, pid N) at ADDR".
pub fn server_status_line(status: &ServerStatus) -> String {
    let mut details = Vec::new();
    if !status.version.is_empty() {
        details.push(format!("version {}", status.version));
    }
    if status.pid != 0 {
        details.push(format!("pid {}", status.pid));
    }
    let mut line = format!("Ollama is {}", server_state_name(status.state));
    if !details.is_empty() {
        line.push_str(&format!(" ({})", details.join(", ")));
    }
    if !status.address.is_empty() {
        line.push_str(&format!(" at {}", status.address));
    }
    line
}

/// A provider kind as users type it: "ollama", "openai" (an unknown kind,
/// from an older agent, is Ollama, the only kind there was).
pub fn provider_kind_name(kind: i32) -> &'static str {
    match ProviderKind::try_from(kind).unwrap_or(ProviderKind::Unspecified) {
        ProviderKind::Openai => "openai",
        ProviderKind::Ollama | ProviderKind::Unspecified => "ollama",
    }
}

/// A provider's health in a word: "up", "down", "unknown".
pub fn provider_state_name(state: i32) -> &'static str {
    match ProviderState::try_from(state).unwrap_or(ProviderState::Unspecified) {
        ProviderState::Up => "up",
        ProviderState::Down => "down",
        ProviderState::Unknown | ProviderState::Unspecified => "unknown",
    }
}

/// A provider's health with why it is down: "up", "down: connection
/// refused", "unknown".
pub fn provider_state_line(provider: &Provider) -> String {
    let state = provider_state_name(provider.state);
    if provider.state == i32::from(ProviderState::Down) && !provider.last_error.is_empty() {
        format!("{state}: {}", one_line(&provider.last_error))
    } else {
        state.to_owned()
    }
}

/// A project's preferred model as a model string: `provider/model`, or
/// the model alone on the local server; `None` when it has none (it uses
/// the default model).
pub fn preferred_model(project: &Project) -> Option<String> {
    if project.preferred_model.is_empty() {
        None
    } else if project.preferred_provider.is_empty() || project.preferred_provider == "local" {
        Some(project.preferred_model.clone())
    } else {
        Some(format!(
            "{}/{}",
            project.preferred_provider, project.preferred_model
        ))
    }
}

fn pull_state(state: i32) -> PullState {
    PullState::try_from(state).unwrap_or(PullState::Unspecified)
}

/// A pull state in lower case: "running", "succeeded", ...
pub fn pull_state_name(state: i32) -> &'static str {
    match pull_state(state) {
        PullState::Running => "running",
        PullState::Retrying => "retrying",
        PullState::Succeeded => "succeeded",
        PullState::Failed => "failed",
        PullState::Cancelled => "cancelled",
        PullState::Unspecified => "unknown",
    }
}

/// "12 MB of 637 MB (1%)", or only what is done while the total is unknown.
pub fn amount(done: u64, total: u64) -> String {
    if total == 0 {
        return bytes(done);
    }
    format!(
        "{} of {} ({}%)",
        bytes(done),
        bytes(total),
        percent(done, total)
    )
}

/// One line about a Git fetch, pull or push under way: the remote's own
/// words when it sent some ("Counting objects: 40% (4/10)"), else the
/// objects moved ("objects 4/10 (12 KB)"), else "connecting…".
pub fn transfer_line(p: &TransferProgress) -> String {
    if !p.message.trim().is_empty() {
        return p.message.trim().to_owned();
    }
    if p.objects_total == 0 {
        return "connecting…".to_owned();
    }
    format!(
        "objects {}/{} ({})",
        p.objects_done,
        p.objects_total,
        bytes(p.bytes)
    )
}

/// One line about a pull, for event logs and pulls not drawn as a bar:
/// "pull of tinyllama: pulling 6a0746a1ec1a, 12 MB of 637 MB (1%), 5.0 MB/s, 2m left".
pub fn describe_pull(progress: &PullProgress) -> String {
    let mut line = format!("pull of {}", progress.model);
    if !progress.provider.is_empty() && progress.provider != "local" {
        line.push_str(&format!(" on {}", progress.provider));
    }
    match pull_state(progress.state) {
        PullState::Succeeded => {
            line.push_str(&format!(" succeeded ({})", bytes(progress.total_bytes)));
        }
        PullState::Failed => line.push_str(&format!(" failed: {}", progress.error)),
        PullState::Cancelled => line.push_str(" cancelled"),
        PullState::Retrying => line.push_str(&format!(
            " retrying (attempt {}): {}",
            progress.attempt, progress.error
        )),
        PullState::Running | PullState::Unspecified => {
            line.push_str(": ");
            if !progress.status.is_empty() {
                line.push_str(&progress.status);
                line.push_str(", ");
            }
            line.push_str(&amount(progress.completed_bytes, progress.total_bytes));
            if progress.bytes_per_second > 0 {
                line.push_str(&format!(", {}", rate(progress.bytes_per_second)));
            }
            if progress.eta_seconds >= 0 && progress.bytes_per_second > 0 {
                line.push_str(&format!(
                    ", {} left",
                    duration(progress.eta_seconds.unsigned_abs())
                ));
            }
        }
    }
    line
}

/// A person's words for a fit verdict: "fits in VRAM".
pub fn fit_label(verdict: FitVerdict) -> &'static str {
    match verdict {
        FitVerdict::FitsGpu => "fits in VRAM",
        FitVerdict::FitsCpuOnly => "fits in RAM only (CPU)",
        FitVerdict::NoDisk => "not enough disk",
        FitVerdict::TooLarge => "too large for this machine",
        FitVerdict::Unspecified => "unknown",
    }
}

/// Rows under a header as lines of text, each column padded to its widest
/// cell plus three spaces, the last column unpadded and trailing spaces
/// trimmed. Widths count characters, not bytes.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> Vec<String> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let cells: Vec<&str> = cells.collect();
        let last = cells.len().saturating_sub(1);
        let mut text = String::new();
        for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            text.push_str(cell);
            if i < last {
                let pad = width.saturating_sub(cell.chars().count()) + 3;
                text.push_str(&" ".repeat(pad));
            }
        }
        text.trim_end().to_owned()
    };
    let mut lines = Vec::with_capacity(rows.len() + 1);
    lines.push(line(&mut header.iter().copied()));
    for row in rows {
        lines.push(line(&mut row.iter().map(String::as_str)));
    }
    lines
}

#[cfg(test)]
mod tests {

    #[test]
    fn generation_stats_read_as_speed_and_latency() {
        assert_eq!(duration_ns(350_000_000), "350 ms");
        assert_eq!(duration_ns(1_250_000_000), "1.25 s");
        assert_eq!(duration_ns(125_000_000_000), "2m05s");
        assert_eq!(tokens_per_second(0, 5), None);
        assert_eq!(
            tokens_per_second(85, 2_000_000_000).as_deref(),
            Some("42.5 tokens/s")
        );
        let stats = GenerationStats {
            eval_count: 85,
            eval_duration_ns: 2_000_000_000,
            time_to_first_token_ns: 350_000_000,
            ..Default::default()
        };
        assert_eq!(
            generation_stats(&stats),
            "85 tokens · 42.5 tokens/s · first token after 350 ms"
        );
        assert_eq!(generation_stats(&GenerationStats::default()), "");
    }
    use super::*;

    #[test]
    fn provider_states_read_as_words_with_why_they_are_down() {
        let down = Provider {
            state: i32::from(ProviderState::Down),
            last_error: "connection refused\n(os error 111)".into(),
            ..Provider::default()
        };
        assert_eq!(
            provider_state_line(&down),
            "down: connection refused (os error 111)"
        );
        let up = Provider {
            state: i32::from(ProviderState::Up),
            last_error: "old".into(),
            ..Provider::default()
        };
        assert_eq!(provider_state_line(&up), "up");
        assert_eq!(provider_state_line(&Provider::default()), "unknown");
        assert_eq!(
            provider_kind_name(i32::from(ProviderKind::Openai)),
            "openai"
        );
        assert_eq!(provider_kind_name(0), "ollama");
    }

    #[test]
    fn grant_ends_read_as_a_person_says_them() {
        let now = 1_000_000_000_000;
        assert_eq!(grant_end(0, false, now), "never");
        assert_eq!(grant_end(0, true, now), "when the agent stops");
        assert_eq!(grant_end(now + 3_540_000, false, now), "in 59 minutes");
        assert_eq!(
            grant_end(now + 7_200_000, true, now),
            "in 2 hours or when the agent stops"
        );
        assert_eq!(grant_end(now - 1, false, now), "expired");
    }

    #[test]
    fn folders_under_home_are_written_with_a_tilde() {
        assert_eq!(home_relative("/home/u/app", "/home/u"), "~/app");
        assert_eq!(home_relative("/home/u", "/home/u/"), "~");
        assert_eq!(
            home_relative("/home/user2/app", "/home/u"),
            "/home/user2/app"
        );
        assert_eq!(home_relative("/srv/app", ""), "/srv/app");
    }

    #[test]
    fn sizes_use_decimal_units() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(1_000), "1.0 KB");
        assert_eq!(bytes(12_000), "12 KB");
        assert_eq!(bytes(637_000_000), "637 MB");
        assert_eq!(bytes(1_321_098_329), "1.3 GB");
        assert_eq!(bytes(1_500_000_000), "1.5 GB");
        assert_eq!(bytes(2_000_000_000), "2.0 GB");
        assert_eq!(bytes(42_500_000_000), "42 GB");
        assert_eq!(bytes(u64::MAX), "18447 PB");
    }

    #[test]
    fn sizes_move_up_a_unit_before_rounding_reaches_1000() {
        // The case that printed "1000 MB" in the tray.
        assert_eq!(bytes(999_600_000), "1.0 GB");
        // Every unit's boundary: below it stays, at it moves up.
        assert_eq!(bytes(999_499), "999 KB");
        assert_eq!(bytes(999_500), "1.0 MB");
        assert_eq!(bytes(999_499_999), "999 MB");
        assert_eq!(bytes(999_500_000), "1.0 GB");
        assert_eq!(bytes(999_499_999_999), "999 GB");
        assert_eq!(bytes(999_500_000_000), "1.0 TB");
        assert_eq!(bytes(999_500_000_000_000), "1.0 PB");
        // PB is the last unit: it keeps counting.
        assert_eq!(bytes(999_500_000_000_000_000), "1000 PB");
    }

    #[test]
    fn sizes_drop_the_decimal_where_rounding_reaches_10() {
        assert_eq!(bytes(9_940_000), "9.9 MB");
        assert_eq!(bytes(9_950_000), "10 MB");
        assert_eq!(bytes(10_000_000), "10 MB");
        assert_eq!(bytes(99_500_000), "100 MB");
    }

    #[test]
    fn rates_are_sizes_per_second() {
        assert_eq!(rate(35_000_000), "35 MB/s");
        assert_eq!(rate(0), "0 B/s");
        assert_eq!(rate(999_600_000), "1.0 GB/s");
        assert_eq!(rate_f64(1_234_567.8), "1.2 MB/s");
        assert_eq!(rate_f64(-5.0), "0 B/s");
        assert_eq!(rate_f64(f64::NAN), "0 B/s");
        assert_eq!(rate_f64(999.6), "1.0 KB/s");
    }

    #[test]
    fn durations_long_and_short() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(59), "59s");
        assert_eq!(duration(60), "1m");
        assert_eq!(duration(3_723), "1h 2m 3s");
        assert_eq!(duration(90_061), "1day 1h 1m 1s");
        assert_eq!(duration_short(-3), "0s");
        assert_eq!(duration_short(42), "42s");
        assert_eq!(duration_short(59), "59s");
        assert_eq!(duration_short(60), "1m00s");
        assert_eq!(duration_short(185), "3m05s");
        assert_eq!(duration_short(3_599), "59m59s");
        assert_eq!(duration_short(3_600), "1h00m");
        assert_eq!(duration_short(3_720), "1h02m");
    }

    #[test]
    fn times_in_words_and_rfc3339() {
        let now = 1_700_000_000_000;
        assert_eq!(relative_to(now - 1_000, now), "just now");
        assert_eq!(relative_to(now + 2_000, now), "in a moment");
        assert_eq!(relative_to(now - 30_000, now), "30 seconds ago");
        assert_eq!(relative_to(now - 60_000, now), "1 minute ago");
        assert_eq!(relative_to(now - 3 * 86_400_000, now), "3 days ago");
        assert_eq!(relative_to(now + 4 * 60_000, now), "in 4 minutes");
        assert_eq!(relative_to(now - 400 * 86_400_000, now), "1 year ago");
        assert_eq!(relative_to(0, now), "never");
        assert_eq!(timestamp(0), "never");
        assert_eq!(timestamp(now), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn percent_is_bounded() {
        assert_eq!(percent(1, 0), 0);
        assert_eq!(percent(50, 200), 25);
        assert_eq!(percent(300, 200), 100);
        assert_eq!(percent(u64::MAX, u64::MAX), 100);
    }

    #[test]
    fn small_words() {
        assert_eq!(trim_float(90.0), "90");
        assert_eq!(trim_float(2.5), "2.5");
        assert_eq!(short_id("0123456789abcdef"), "01234567");
        assert_eq!(short_id("abc"), "abc");
        assert_eq!(or_dash(""), "-");
        assert_eq!(or_dash("x"), "x");
        assert_eq!(one_line("  port 11434\n  in use "), "port 11434 in use");
        assert_eq!(one_line(" \n "), "-");
        let model = Model {
            parameter_size: "8B".into(),
            quantization_level: "Q4_K_M".into(),
            ..Model::default()
        };
        assert_eq!(model_details(&model), "8B Q4_K_M");
        assert_eq!(model_details(&Model::default()), "");
        assert_eq!(fit_label(FitVerdict::FitsGpu), "fits in VRAM");
    }

    #[test]
    fn state_names() {
        assert_eq!(server_state_name(ServerState::Running.into()), "RUNNING");
        assert_eq!(server_state_name(999), "UNSPECIFIED");
        assert_eq!(
            server_state_label(ServerState::Backoff),
            "restarting after a crash"
        );
        assert_eq!(pull_state_name(PullState::Succeeded.into()), "succeeded");
        let status = ServerStatus {
            state: ServerState::Running.into(),
            version: "0.5.1".into(),
            pid: 42,
            address: "127.0.0.1:11434".into(),
            ..ServerStatus::default()
        };
        assert_eq!(
            server_status_line(&status),
            "Ollama is RUNNING (version 0.5.1, pid 42) at 127.0.0.1:11434"
        );
    }

    #[test]
    fn transfers_in_one_line() {
        let mut p = TransferProgress::default();
        assert_eq!(transfer_line(&p), "connecting…");
        p.objects_done = 4;
        p.objects_total = 10;
        p.bytes = 12_000;
        assert_eq!(transfer_line(&p), "objects 4/10 (12 KB)");
        p.message = "Counting objects: 40% (4/10)\r".into();
        assert_eq!(transfer_line(&p), "Counting objects: 40% (4/10)");
    }

    #[test]
    fn pulls_in_one_line() {
        let running = PullProgress {
            model: "tinyllama".into(),
            provider: "local".into(),
            state: PullState::Running.into(),
            status: "pulling 6a0746a1ec1a".into(),
            completed_bytes: 12_000_000,
            total_bytes: 637_000_000,
            bytes_per_second: 5_000_000,
            eta_seconds: 120,
            ..PullProgress::default()
        };
        assert_eq!(
            describe_pull(&running),
            "pull of tinyllama: pulling 6a0746a1ec1a, 12 MB of 637 MB (1%), 5.0 MB/s, 2m left"
        );
        let done = PullProgress {
            model: "tinyllama".into(),
            provider: "gpu-box".into(),
            state: PullState::Succeeded.into(),
            total_bytes: 637_000_000,
            ..PullProgress::default()
        };
        assert_eq!(
            describe_pull(&done),
            "pull of tinyllama on gpu-box succeeded (637 MB)"
        );
        assert_eq!(amount(5, 0), "5 B");
    }

    #[test]
    fn admission_words() {
        use omnipanel_proto::v1::{ConfirmKind, Expiry, Scope};
        assert_eq!(
            scope_names(&[Scope::Read.into(), Scope::Infer.into()]),
            "read, infer"
        );
        assert_eq!(scope_names(&[]), "status");
        assert_eq!(scope_names(&[Scope::Status.into()]), "status");
        assert_eq!(
            scope_names(&[Scope::Status.into(), Scope::Write.into()]),
            "write"
        );
        assert_eq!(
            confirm_kind_name(ConfirmKind::DeleteModel.into()),
            "delete-model"
        );
        assert_eq!(
            confirm_kind_name(ConfirmKind::ForcePush.into()),
            "force-push"
        );
        assert_eq!(
            confirm_kind_name(ConfirmKind::ForceDeleteBranch.into()),
            "force-delete-branch"
        );
        assert_eq!(expiry_label(Expiry::Hour.into()), "1 hour");
        assert_eq!(expiry_label(99), "as long as asked");
        let now = 1_700_000_000_000;
        assert_eq!(time_left(now + 112_000, now), "1m52s left");
        assert_eq!(time_left(now + 1, now), "1s left");
        assert_eq!(time_left(now, now), "expired");
        assert_eq!(time_left(now - 5_000, now), "expired");
        assert_eq!(time_left(0, now), "no limit");
    }

    #[test]
    fn tables_align_on_characters() {
        let lines = table(
            &["NAME", "SIZE"],
            &[
                vec!["llama3.2".into(), "2.0 GB".into()],
                vec!["é".into(), "".into()],
            ],
        );
        assert_eq!(
            lines,
            ["NAME       SIZE", "llama3.2   2.0 GB", "é"].map(String::from)
        );
        assert_eq!(table(&[], &[]), [String::new()]);
    }

    /// Every value of an API enum reads as words of its own: two states
    /// that read the same would tell a person nothing. New values are
    /// picked up (every number the enum accepts).
    #[test]
    fn every_state_and_kind_reads_as_its_own_words() {
        use std::collections::HashSet;

        use omnipanel_proto::v1::{AccessRequestState, ConfirmKind, ConfirmationState, Expiry};

        fn distinct(what: &str, labels: Vec<String>) {
            let unique: HashSet<&String> = labels.iter().collect();
            assert_eq!(unique.len(), labels.len(), "{what}: {labels:?}");
            assert!(labels.iter().all(|l| !l.is_empty()), "{what}: {labels:?}");
        }
        fn values<E: TryFrom<i32>>() -> Vec<i32> {
            (0..64).filter(|n| E::try_from(*n).is_ok()).collect()
        }
        let servers = values::<ServerState>();
        assert!(servers.len() >= 9, "{servers:?}");
        distinct(
            "server state",
            servers
                .iter()
                .map(|s| server_state_label(server_state(*s)).to_owned())
                .collect(),
        );
        distinct(
            "server meaning",
            servers
                .iter()
                .map(|s| server_state_meaning(*s).to_owned())
                .collect(),
        );
        let kinds = values::<ConfirmKind>();
        distinct(
            "confirm kind",
            kinds
                .iter()
                .map(|k| confirm_kind_label(*k).to_owned())
                .collect(),
        );
        distinct(
            "confirm kind name",
            kinds.iter().map(|k| confirm_kind_name(*k)).collect(),
        );
        assert_eq!(
            confirm_kind_name(ConfirmKind::ForcePush.into()),
            "force-push"
        );
        distinct(
            "expiry",
            values::<Expiry>()
                .iter()
                .map(|e| expiry_label(*e).to_owned())
                .collect(),
        );
        distinct(
            "pull state",
            values::<PullState>()
                .iter()
                .map(|p| pull_state_name(*p).to_owned())
                .collect(),
        );
        distinct(
            "fit verdict",
            values::<FitVerdict>()
                .iter()
                .map(|v| fit_label(FitVerdict::try_from(*v).unwrap_or_default()).to_owned())
                .collect(),
        );
        distinct(
            "change",
            values::<ChangeType>()
                .iter()
                .map(|c| change_label(*c).to_owned())
                .collect(),
        );
        distinct(
            "access request state",
            values::<AccessRequestState>()
                .iter()
                .map(|s| access_request_state_name(*s))
                .collect(),
        );
        assert_eq!(
            access_request_state_name(AccessRequestState::Withdrawn.into()),
            "withdrawn"
        );
        distinct(
            "confirmation state",
            values::<ConfirmationState>()
                .iter()
                .map(|s| confirmation_state_name(*s))
                .collect(),
        );
        assert_eq!(
            confirmation_state_name(ConfirmationState::Used.into()),
            "used"
        );
    }

    #[test]
    fn a_pull_that_ended_early_or_retries_says_so() {
        let pull = |state: PullState| PullProgress {
            model: "llama3.2:1b".into(),
            provider: "gpu-box".into(),
            state: state.into(),
            attempt: 2,
            error: "connection reset".into(),
            ..Default::default()
        };
        assert_eq!(
            describe_pull(&pull(PullState::Cancelled)),
            "pull of llama3.2:1b on gpu-box cancelled"
        );
        assert_eq!(
            describe_pull(&pull(PullState::Retrying)),
            "pull of llama3.2:1b on gpu-box retrying (attempt 2): connection reset"
        );
        assert_eq!(
            describe_pull(&pull(PullState::Failed)),
            "pull of llama3.2:1b on gpu-box failed: connection reset"
        );
    }
}
