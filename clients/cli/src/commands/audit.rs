//! `omnipanel audit`: the activity log (who called what, on what, with
//! what outcome), a page of it newest first or followed live, through
//! AgentService's ListAudit and WatchAudit. Only the owner may read it.

use clap::Args;
use omnipanel_client::{Client, display};
use omnipanel_proto::v1 as pb;

use crate::{
    Failure,
    output::{Output, emit_line},
};

/// `omnipanel audit`
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Keep printing entries as they are recorded (after the latest ones).
    #[arg(long, short)]
    pub follow: bool,
    /// Only this client (its id, its name, "owner" or "anonymous").
    #[arg(long)]
    pub client: Option<String>,
    /// Only methods containing this text, e.g. "Delete" or "FileService/".
    #[arg(long)]
    pub method: Option<String>,
    /// Only this project (its folder or id).
    #[arg(long)]
    pub project: Option<String>,
    /// Only entries since this long ago ("1h", "2d") or this time
    /// (RFC 3339, e.g. 2026-01-31T12:00:00Z).
    #[arg(long)]
    pub since: Option<String>,
    /// Only this outcome: "ok" or an error reason such as NOT_ADMITTED.
    #[arg(long)]
    pub outcome: Option<String>,
    /// How many entries to list (at most 1000).
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
}

/// `omnipanel audit ...`
pub async fn audit(args: AuditArgs, out: Output) -> Result<(), Failure> {
    let since_unix_ms = match &args.since {
        Some(text) => parse_since(text, now_ms())?,
        None => 0,
    };
    if args.limit == 0 || args.limit > 1000 {
        return Err(Failure::Other(format!(
            "--limit {} is out of range; give 1 to 1000",
            args.limit
        )));
    }
    let client = Client::connect_from_env().await?;
    let mut agent = client.agent();
    let text = |value: &Option<String>| value.clone().unwrap_or_default();
    // Subscribe before listing, so nothing recorded in between is missed.
    let watch = if args.follow {
        Some(
            client
                .call_stream(agent.watch_audit(pb::WatchAuditRequest {
                    client: text(&args.client),
                    method: text(&args.method),
                    project: text(&args.project),
                    outcome: text(&args.outcome),
                }))
                .await?,
        )
    } else {
        None
    };
    let response = client
        .call(agent.list_audit(pb::ListAuditRequest {
            client: text(&args.client),
            method: text(&args.method),
            project: text(&args.project),
            since_unix_ms,
            outcome: text(&args.outcome),
            page_size: args.limit,
            page_token: String::new(),
        }))
        .await?;
    let mut entries = response.entries;
    // Oldest first, like a log, so a follow continues below them.
    entries.reverse();
    let newest = entries.last().map_or(0, |entry| entry.id);
    if out.is_json() {
        for entry in &entries {
            out.json(entry)?;
        }
    } else if entries.is_empty() && watch.is_none() {
        emit_line("no entries")?;
    } else {
        out.table(&HEADER, &entries.iter().map(row).collect::<Vec<_>>())?;
    }
    let Some(mut watch) = watch else {
        return Ok(());
    };
    while let Some(item) = watch.message().await? {
        let Some(entry) = item.entry else {
            continue;
        };
        // Already listed (a grown aggregated row is shown again).
        if entry.id <= newest && entry.count <= 1 {
            continue;
        }
        if out.is_json() {
            out.json(&entry)?;
        } else {
            emit_line(&row(&entry).join("   "))?;
        }
    }
    Ok(())
}

const HEADER: [&str; 6] = ["TIME", "CLIENT", "METHOD", "TARGET", "OUTCOME", "PROCESS"];

fn row(entry: &pb::AuditEntry) -> Vec<String> {
    let client = if entry.client_name.is_empty() || entry.client_name == entry.client_id {
        entry.client_id.clone()
    } else {
        format!("{} ({})", entry.client_name, entry.client_id)
    };
    let method = if entry.count > 1 {
        format!("{} ×{}", entry.method, entry.count)
    } else {
        entry.method.clone()
    };
    let process = match (entry.peer_pid, entry.peer_executable.as_str()) {
        (0, _) => String::new(),
        (pid, "") => format!("pid {pid}"),
        (pid, executable) => format!("{executable} (pid {pid})"),
    };
    vec![
        display::timestamp(entry.time_unix_ms),
        client,
        method,
        entry.target.clone(),
        entry.outcome.clone(),
        process,
    ]
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// `1h` (that long before `now`) or an RFC 3339 time, as ms since the
/// Unix epoch.
fn parse_since(text: &str, now: i64) -> Result<i64, Failure> {
    if let Ok(ago) = humantime::parse_duration(text.trim()) {
        let ago = i64::try_from(ago.as_millis()).unwrap_or(i64::MAX);
        return Ok(now.saturating_sub(ago).max(1));
    }
    let time = humantime::parse_rfc3339_weak(text.trim()).map_err(|_| {
        Failure::Other(format!(
            "--since {text:?} is neither a duration (\"1h\", \"2d\") nor a time (2026-01-31T12:00:00Z)"
        ))
    })?;
    let ms = time
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .map_err(|_| Failure::Other(format!("--since {text:?} is before 1970")))?;
    Ok(ms.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_duration_or_a_time() {
        let now = 10_000_000;
        assert_eq!(parse_since("1h", now).ok(), Some(now - 3_600_000));
        assert_eq!(parse_since("1970-01-01T00:00:10Z", now).ok(), Some(10_000));
        let Err(Failure::Other(message)) = parse_since("yesterday", now) else {
            panic!("not a time");
        };
        assert!(message.contains("neither a duration"), "{message}");
    }

    #[test]
    fn rows_name_the_client_the_count_and_the_process() {
        let entry = pb::AuditEntry {
            client_id: "t1".into(),
            client_name: "vscode".into(),
            method: "FileService/ReadFile".into(),
            count: 3,
            peer_pid: 42,
            peer_executable: "/usr/bin/code".into(),
            ..Default::default()
        };
        let row = row(&entry);
        assert_eq!(row[1], "vscode (t1)");
        assert_eq!(row[2], "FileService/ReadFile ×3");
        assert_eq!(row[5], "/usr/bin/code (pid 42)");
    }
}
