//! `omnipanel alerts ...`: the alerts the agent raised (history, a live
//! watch) and the thresholds that raise them; the arguments and the
//! handlers, through the agent's SystemService.

use std::time::Duration;

use clap::{Args, Subcommand};
use omnipanel_client::{Authed, Client, display};
use omnipanel_proto::v1::{self as pb, system_service_client::SystemServiceClient};

use crate::{
    Failure,
    output::{Output, emit, outln},
};

/// `omnipanel alerts ...`
#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// List alerts, newest first.
    #[command(visible_alias = "list")]
    Ls {
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Only alerts older than this id (to page back).
        #[arg(long)]
        before: Option<i64>,
        /// Only alerts still active.
        #[arg(long)]
        active: bool,
    },
    /// Print alerts as they are raised and cleared (the active ones first).
    Watch,
    /// Show or change the alert thresholds.
    Thresholds(ThresholdsArgs),
}

/// `omnipanel alerts thresholds`
#[derive(Debug, Args)]
pub struct ThresholdsArgs {
    /// Without a subcommand: list them, with the metrics they can watch.
    #[command(subcommand)]
    pub command: Option<ThresholdsCommand>,
}

/// `omnipanel alerts thresholds ...`
#[derive(Debug, Subcommand)]
pub enum ThresholdsCommand {
    /// Add a threshold, or replace the one on the same metric and
    /// direction. Quote `>` and `<` for the shell, or write above/below:
    /// `omnipanel alerts thresholds set memory.used_percent above 90 --for 30s`.
    Set {
        /// Metric, e.g. memory.used_percent (see `omnipanel alerts thresholds`).
        metric: String,
        /// `>` / above, or `<` / below.
        op: String,
        /// The limit, e.g. 90, 90%, 8GB.
        value: String,
        /// How long the value must stay past the limit, e.g. 30s, 2m.
        #[arg(long = "for", default_value = "0s", value_parser = humantime::parse_duration)]
        hold: Duration,
        /// For an "above" threshold: the alert clears once the value is at
        /// or below this (default: 5 units under the limit).
        #[arg(long, conflicts_with = "clear_above")]
        clear_below: Option<String>,
        /// For a "below" threshold: the alert clears once the value is at
        /// or above this (default: 5 units over the limit).
        #[arg(long)]
        clear_above: Option<String>,
    },
    /// Remove the thresholds on a metric (only one direction when OP is
    /// given).
    #[command(visible_alias = "remove")]
    Rm {
        /// Metric.
        metric: String,
        /// `>` / above, or `<` / below.
        op: Option<String>,
    },
    /// Go back to the built-in thresholds.
    Reset,
}

type System = SystemServiceClient<Authed>;

/// `omnipanel alerts ...`
pub async fn alerts(command: AlertsCommand, out: Output) -> Result<(), Failure> {
    let client = Client::connect_from_env().await?;
    let mut system = client.system();
    match command {
        AlertsCommand::Ls {
            limit,
            before,
            active,
        } => {
            let response = client
                .call(system.list_alerts(pb::ListAlertsRequest {
                    limit,
                    before_id: before.unwrap_or(0),
                    active_only: active,
                }))
                .await?;
            if out.is_json() {
                return out.json(&response);
            }
            if response.alerts.is_empty() {
                outln!("no alerts")?;
            }
            for alert in &response.alerts {
                outln!("{}", alert_line(alert))?;
            }
            if response.next_before_id != 0 {
                outln!(
                    "(older: omnipanel alerts ls --before {})",
                    response.next_before_id
                )?;
            }
            Ok(())
        }
        AlertsCommand::Watch => watch(&client, system, out).await,
        AlertsCommand::Thresholds(args) => thresholds(&client, system, args.command, out).await,
    }
}

fn value_text(metric: &str, value: f64) -> String {
    if metric.ends_with("_bytes") {
        // Byte counts are whole and far below 2^63.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let bytes = value.max(0.0) as u64;
        display::bytes(bytes)
    } else if metric.ends_with("_percent") {
        format!("{value:.1} %")
    } else if metric.ends_with("_celsius") {
        format!("{value:.0} °C")
    } else {
        format!("{value:.2}")
    }
}

fn alert_line(alert: &pb::Alert) -> String {
    let active = pb::AlertState::try_from(alert.state) == Ok(pb::AlertState::Active);
    let mut line = format!(
        "#{:<5} {:<7} {}  {}",
        alert.id,
        if active { "ACTIVE" } else { "cleared" },
        display::timestamp(alert.raised_unix_ms),
        alert.message
    );
    if alert.peak_value != alert.value {
        line.push_str(&format!(
            " (worst {})",
            value_text(&alert.metric, alert.peak_value)
        ));
    }
    if !active {
        let lasted = u64::try_from((alert.cleared_unix_ms - alert.raised_unix_ms).max(0) / 1000)
            .unwrap_or_default();
        line.push_str(&format!(
            "; cleared {} after {}: {}",
            display::relative_time(alert.cleared_unix_ms),
            display::duration(lasted),
            alert.clear_reason
        ));
    }
    line
}

async fn watch(client: &Client, mut system: System, out: Output) -> Result<(), Failure> {
    let mut stream = client
        .call_stream(system.watch_alerts(pb::WatchAlertsRequest {}))
        .await?;
    while let Some(item) = stream.message().await? {
        if out.is_json() {
            out.json(&item)?;
            continue;
        }
        let alert = item.alert.unwrap_or_default();
        let text = match pb::AlertChange::try_from(item.change) {
            Ok(pb::AlertChange::Active) => format!("active   #{} {}", alert.id, alert.message),
            Ok(pb::AlertChange::Raised) => format!(
                "{} RAISED  #{} {}",
                display::timestamp(alert.raised_unix_ms),
                alert.id,
                alert.message
            ),
            Ok(pb::AlertChange::Cleared) => format!(
                "{} cleared #{} {} ({}; now {})",
                display::timestamp(alert.cleared_unix_ms),
                alert.id,
                alert.metric,
                alert.clear_reason,
                value_text(&alert.metric, alert.cleared_value)
            ),
            _ => format!("#{} {}", alert.id, alert.message),
        };
        emit(&format!("{text}\n"))?;
    }
    Ok(())
}

/// `>`/above or `<`/below.
fn parse_op(op: &str) -> Result<pb::Comparison, Failure> {
    match op.trim().to_ascii_lowercase().as_str() {
        ">" | "gt" | "above" | ">=" => Ok(pb::Comparison::Above),
        "<" | "lt" | "below" | "<=" => Ok(pb::Comparison::Below),
        other => Err(Failure::Other(format!(
            "{other:?} is not a comparison; use above (or '>') or below (or '<')"
        ))),
    }
}

/// "90", "90%", "8GB", "512MiB".
fn parse_value(text: &str) -> Result<f64, Failure> {
    let trimmed = text.trim();
    let number_end = trimmed
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(number_end);
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "%" | "b" | "°c" | "c" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(Failure::Other(format!(
                "{text:?}: unknown unit {other:?}; write e.g. 90, 90%, 8GB"
            )));
        }
    };
    number
        .parse::<f64>()
        .map(|n| n * scale)
        .map_err(|_| Failure::Other(format!("{text:?} is not a number")))
}

async fn thresholds(
    client: &Client,
    mut system: System,
    command: Option<ThresholdsCommand>,
    out: Output,
) -> Result<(), Failure> {
    let Some(command) = command else {
        let response = client
            .call(system.get_thresholds(pb::GetThresholdsRequest {}))
            .await?;
        if out.is_json() {
            return out.json(&response);
        }
        print_thresholds(out, &response)?;
        return Ok(());
    };
    if let ThresholdsCommand::Reset = command {
        let response = client
            .call(system.set_thresholds(pb::SetThresholdsRequest {
                reset_to_defaults: true,
                ..pb::SetThresholdsRequest::default()
            }))
            .await?;
        if out.is_json() {
            return out.json(&response);
        }
        outln!("back to the built-in thresholds:")?;
        print_threshold_table(out, &response.thresholds)?;
        return Ok(());
    }
    // Read, change, write with the version read: a concurrent change is
    // refused by the agent (ABORTED) and the edit is redone on the new set.
    for _ in 0..3 {
        let current = client
            .call(system.get_thresholds(pb::GetThresholdsRequest {}))
            .await?;
        let mut set = current.thresholds.clone();
        match &command {
            ThresholdsCommand::Set {
                metric,
                op,
                value,
                hold,
                clear_below,
                clear_above,
            } => {
                let comparison = parse_op(op)?;
                let clear = match (comparison, clear_below, clear_above) {
                    (pb::Comparison::Above, Some(_), _) | (pb::Comparison::Below, _, Some(_)) => {
                        clear_below.as_deref().or(clear_above.as_deref())
                    }
                    (_, None, None) => None,
                    (pb::Comparison::Above, None, Some(_)) => {
                        return Err(Failure::Other(
                            "an \"above\" threshold clears below its limit: use --clear-below"
                                .into(),
                        ));
                    }
                    _ => {
                        return Err(Failure::Other(
                            "a \"below\" threshold clears above its limit: use --clear-above"
                                .into(),
                        ));
                    }
                };
                let threshold = pb::Threshold {
                    metric: metric.clone(),
                    comparison: comparison.into(),
                    value: parse_value(value)?,
                    hold_ms: i64::try_from(hold.as_millis()).unwrap_or(i64::MAX),
                    clear_value: clear.map(parse_value).transpose()?,
                };
                match set
                    .iter_mut()
                    .find(|t| t.metric == *metric && t.comparison == threshold.comparison)
                {
                    Some(existing) => *existing = threshold,
                    None => set.push(threshold),
                }
            }
            ThresholdsCommand::Rm { metric, op } => {
                let comparison = op.as_deref().map(parse_op).transpose()?;
                let before = set.len();
                set.retain(|t| {
                    !(t.metric == *metric
                        && comparison.is_none_or(|c| t.comparison == i32::from(c)))
                });
                if set.len() == before {
                    return Err(Failure::Other(format!(
                        "no threshold on {metric} to remove"
                    )));
                }
            }
            ThresholdsCommand::Reset => {}
        }
        let result = client
            .call(system.set_thresholds(pb::SetThresholdsRequest {
                thresholds: set,
                reset_to_defaults: false,
                expected_version: current.version,
            }))
            .await;
        match result {
            // Changed by someone else since we read it: read again.
            Err(err) if err.is_conflict() => continue,
            result => {
                let response = result?;
                if out.is_json() {
                    return out.json(&response);
                }
                print_threshold_table(out, &response.thresholds)?;
                return Ok(());
            }
        }
    }
    Err(Failure::Other(
        "the thresholds kept changing while this edit was made; try again".into(),
    ))
}

fn op_symbol(comparison: i32) -> &'static str {
    match pb::Comparison::try_from(comparison) {
        Ok(pb::Comparison::Above) => ">",
        Ok(pb::Comparison::Below) => "<",
        _ => "?",
    }
}

fn print_threshold_table(out: Output, thresholds: &[pb::Threshold]) -> Result<(), Failure> {
    if thresholds.is_empty() {
        return outln!("no thresholds: alerts never fire");
    }
    let rows: Vec<Vec<String>> = thresholds
        .iter()
        .map(|t| {
            let hold = u64::try_from(t.hold_ms).unwrap_or_default();
            vec![
                t.metric.clone(),
                op_symbol(t.comparison).to_owned(),
                value_text(&t.metric, t.value),
                if hold == 0 {
                    "-".to_owned()
                } else {
                    humantime::format_duration(Duration::from_millis(hold)).to_string()
                },
                t.clear_value
                    .map_or_else(|| "-".to_owned(), |c| value_text(&t.metric, c)),
            ]
        })
        .collect();
    out.table(&["METRIC", "OP", "VALUE", "FOR", "CLEARS AT"], &rows)?;
    Ok(())
}

fn print_thresholds(out: Output, response: &pb::GetThresholdsResponse) -> Result<(), Failure> {
    if response.alerts_enabled {
        outln!(
            "alerts are on; thresholds are checked every {}{}",
            humantime::format_duration(Duration::from_millis(u64::from(
                response.alert_interval_ms
            ))),
            if response.defaults {
                " (built-in thresholds)"
            } else {
                ""
            }
        )?;
    } else {
        outln!("alerts are off (`omnipanel settings set system.alerts true` turns them on)")?;
    }
    outln!()?;
    print_threshold_table(out, &response.thresholds)?;
    outln!()?;
    outln!("metrics:")?;
    let rows: Vec<Vec<String>> = response
        .metrics
        .iter()
        .map(|m| {
            vec![
                format!("  {}", m.name),
                if m.unit.is_empty() {
                    "-".to_owned()
                } else {
                    m.unit.clone()
                },
                m.description.clone(),
            ]
        })
        .collect();
    out.table(&["  NAME", "UNIT", "WHAT"], &rows)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_accept_percent_and_units() -> Result<(), String> {
        let parse = |t: &str| parse_value(t).map_err(|e| e.to_string());
        assert_eq!(parse("90")?, 90.0);
        assert_eq!(parse("90%")?, 90.0);
        assert_eq!(parse(" 2.5 GB")?, 2.5e9);
        assert_eq!(parse("1GiB")?, 1_073_741_824.0);
        assert!(parse("ten").is_err());
        assert!(parse("5 parsecs").is_err());
        Ok(())
    }

    #[test]
    fn comparisons_in_words_or_symbols() {
        assert!(matches!(parse_op(">"), Ok(pb::Comparison::Above)));
        assert!(matches!(parse_op("Below"), Ok(pb::Comparison::Below)));
        assert!(parse_op("=").is_err());
    }
}
