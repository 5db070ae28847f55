//! `omnipanel confirmations ...`: the owner's answers to destructive acts
//! that clients other than the owner asked to do (a model deleted, a
//! folder removed, a push): the ones waiting (`ls`), allowing one, and
//! with it maybe the same kind of act for a while (`allow`), or refusing
//! it (`deny`). The tray and panel ask the same questions.

use std::time::Duration;

use clap::Subcommand;
use omnipanel_client::{Client, display};
use omnipanel_proto::v1::{self as pb, AnswerConfirmationRequest, ListConfirmationsRequest};

use crate::{
    Failure,
    output::{Output, outln},
};

/// The longest `--kind-for` the agent accepts.
const KIND_FOR_MAX: Duration = Duration::from_secs(24 * 3600);

/// `omnipanel confirmations ...`
#[derive(Debug, Subcommand)]
pub enum ConfirmationsCommand {
    /// List the destructive acts waiting for your answer, oldest first.
    #[command(visible_alias = "list")]
    Ls,
    /// Allow one: the client's retry with its id goes through, once.
    Allow {
        /// The confirmation's id (from `omnipanel confirmations ls`, or the
        /// client's error message).
        id: String,
        /// Also let this client do acts of the same kind without asking for
        /// this long, e.g. 1h, 30m (at most 24h; never for force push).
        #[arg(long, value_parser = parse_kind_for, value_name = "DURATION")]
        kind_for: Option<u32>,
    },
    /// Refuse one: nothing is changed, and the client's retry is refused.
    Deny {
        /// The confirmation's id.
        id: String,
    },
}

/// `omnipanel confirmations ...`
pub async fn confirmations(command: ConfirmationsCommand, out: Output) -> Result<(), Failure> {
    let client = Client::connect_from_env().await?;
    let mut agent = client.agent();
    match command {
        ConfirmationsCommand::Ls => {
            let response = client
                .call(agent.list_confirmations(ListConfirmationsRequest {}))
                .await?;
            out.show(&response, |response| {
                if response.confirmations.is_empty() {
                    return outln!("no confirmations are waiting");
                }
                out.table(
                    &["ID", "CLIENT", "ASKS TO", "METHOD", "TIME LEFT"],
                    &rows(&response.confirmations, display::now_ms()),
                )
            })
        }
        ConfirmationsCommand::Allow { id, kind_for } => {
            answer(&client, out, id, true, kind_for).await
        }
        ConfirmationsCommand::Deny { id } => answer(&client, out, id, false, None).await,
    }
}

/// Answer confirmation `id` and say what was answered.
async fn answer(
    client: &Client,
    out: Output,
    id: String,
    allow: bool,
    kind_for: Option<u32>,
) -> Result<(), Failure> {
    let response = client
        .call(
            client
                .agent()
                .answer_confirmation(AnswerConfirmationRequest {
                    id,
                    allow,
                    allow_kind_for_seconds: kind_for.unwrap_or(0),
                }),
        )
        .await?;
    out.show(&response, |response| {
        outln!(
            "{}",
            answered_text(
                &response.confirmation.clone().unwrap_or_default(),
                allow,
                kind_for
            )
        )
    })
}

/// `--kind-for`: a duration from 1 s to a day, in whole seconds as the API
/// takes it.
fn parse_kind_for(text: &str) -> Result<u32, String> {
    let duration = humantime::parse_duration(text.trim())
        .map_err(|err| format!("{text:?} is not a duration ({err}); write e.g. 30m or 1h"))?;
    if duration.as_secs() == 0 || duration > KIND_FOR_MAX {
        return Err(format!(
            "{text:?} is out of range: allow a kind of act for 1s to 24h"
        ));
    }
    u32::try_from(duration.as_secs()).map_err(|_| format!("{text:?} is too long"))
}

/// The table rows of `confirmations ls`.
fn rows(confirmations: &[pb::Confirmation], now_ms: i64) -> Vec<Vec<String>> {
    confirmations
        .iter()
        .map(|confirmation| {
            vec![
                confirmation.id.clone(),
                client_label(confirmation),
                display::one_line(&confirmation.summary),
                display::or_dash(&confirmation.method).to_owned(),
                display::time_left(confirmation.expires_unix_ms, now_ms),
            ]
        })
        .collect()
}

/// The client as people know it: its self-declared name and its id.
fn client_label(confirmation: &pb::Confirmation) -> String {
    if confirmation.client_name.is_empty() {
        confirmation.client_id.clone()
    } else {
        format!("{} ({})", confirmation.client_name, confirmation.client_id)
    }
}

/// What `allow` and `deny` say was done.
fn answered_text(confirmation: &pb::Confirmation, allowed: bool, kind_for: Option<u32>) -> String {
    let act = display::one_line(&confirmation.summary);
    let client = client_label(confirmation);
    if !allowed {
        return format!(
            "denied confirmation {}: {client} may not {act}; nothing was changed",
            confirmation.id
        );
    }
    let mut text = format!(
        "allowed confirmation {}: {client} may now {act} by retrying it, once",
        confirmation.id
    );
    if let Some(seconds) = kind_for {
        text.push_str(&format!(
            "; it may also {} without asking for {}",
            display::confirm_kind_label(confirmation.kind),
            display::duration(u64::from(seconds))
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Grammar {
        #[command(subcommand)]
        command: ConfirmationsCommand,
    }

    fn parse(args: &[&str]) -> Result<ConfirmationsCommand, String> {
        Grammar::try_parse_from(std::iter::once("confirmations").chain(args.iter().copied()))
            .map(|grammar| grammar.command)
            .map_err(|err| err.to_string())
    }

    #[test]
    fn allow_takes_a_duration_for_the_kind() {
        let Ok(ConfirmationsCommand::Allow { id, kind_for }) =
            parse(&["allow", "c0ffee", "--kind-for", "1h"])
        else {
            panic!("allow did not parse");
        };
        assert_eq!(id, "c0ffee");
        assert_eq!(kind_for, Some(3600));
        assert!(matches!(
            parse(&["allow", "c0ffee"]),
            Ok(ConfirmationsCommand::Allow { kind_for: None, .. })
        ));
        assert_eq!(parse_kind_for("30m"), Ok(1800));
        assert_eq!(parse_kind_for("24h"), Ok(86_400));
    }

    #[test]
    fn kind_for_out_of_range_or_unreadable_is_refused() {
        for bad in ["0s", "25h", "2days"] {
            let err = parse_kind_for(bad).err().unwrap_or_default();
            assert!(err.contains("out of range"), "{bad}: {err}");
        }
        let err = parse(&["allow", "x", "--kind-for", "soon"])
            .err()
            .unwrap_or_default();
        assert!(err.contains("\"soon\" is not a duration"), "{err}");
    }

    fn waiting() -> pb::Confirmation {
        pb::Confirmation {
            id: "c0ffee".into(),
            client_id: "tok_1".into(),
            client_name: "VS Code".into(),
            kind: pb::ConfirmKind::DeleteModel.into(),
            summary: "delete model llama3:70b (40 GB)".into(),
            method: "ModelService/DeleteModel".into(),
            state: pb::ConfirmationState::Pending.into(),
            expires_unix_ms: 1_700_000_090_000,
            ..pb::Confirmation::default()
        }
    }

    #[test]
    fn the_list_shows_who_what_how_and_how_long() {
        let rows = rows(&[waiting()], 1_700_000_000_000);
        assert_eq!(
            rows,
            [[
                "c0ffee",
                "VS Code (tok_1)",
                "delete model llama3:70b (40 GB)",
                "ModelService/DeleteModel",
                "1m30s left"
            ]
            .map(String::from)]
        );
    }

    #[test]
    fn answers_say_what_the_client_may_do() {
        let allowed = answered_text(&waiting(), true, Some(3600));
        assert_eq!(
            allowed,
            "allowed confirmation c0ffee: VS Code (tok_1) may now delete model llama3:70b (40 GB) \
             by retrying it, once; it may also delete a model without asking for 1h"
        );
        let denied = answered_text(&waiting(), false, None);
        assert!(denied.starts_with("denied confirmation c0ffee"), "{denied}");
        assert!(denied.contains("nothing was changed"), "{denied}");
    }
}
