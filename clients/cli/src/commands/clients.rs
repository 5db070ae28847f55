//! `omnipanel clients ...`: client admission from the command line. The
//! owner's side: the access requests waiting for an answer (`pending`),
//! approving them, narrowed, for a while (`approve`) or not (`deny`), the
//! admitted clients (`ls`) and ending one's grant (`revoke`). And the
//! asking side, `request`: the reference client of RequestAccess, for
//! scripts, which presents no credential at all, waits for the user's
//! answer and prints the token it is given.

use clap::{Args, Subcommand};
use omnipanel_client::{Client, Credential, Target, display};
use omnipanel_proto::v1::{self as pb, AccessRequestState, Expiry};

use crate::{
    EXIT_ACCESS_DENIED, EXIT_ACCESS_UNANSWERED, Failure,
    args::{parse_scope, scopes_into_proto},
    output::{Output, errln, outln},
    project_ref::{absolute, path_text},
};

/// `omnipanel clients ...`
#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// Ask the agent to admit this script: prints the request's code and
    /// how to approve it on stderr, waits for the user's answer, and on
    /// approval prints the token alone on stdout (exit 0). Denied: exit 4;
    /// expired unanswered or withdrawn: exit 5.
    Request(RequestArgs),
}

/// `omnipanel clients request`
#[derive(Debug, Args)]
pub struct RequestArgs {
    /// The name the user will see, e.g. "backup script" (self-declared:
    /// the user is also shown which program asks).
    #[arg(long)]
    pub name: String,
    /// Scopes wanted, comma-separated: read, infer, write, admin (status
    /// is always given).
    #[arg(long, value_delimiter = ',', value_parser = parse_scope, required = true)]
    pub scopes: Vec<pb::Scope>,
    /// Project folders wanted, comma-separated (default: every project
    /// inside `access.project_roots`).
    #[arg(long, value_delimiter = ',', value_name = "DIR,...")]
    pub projects: Vec<String>,
    /// Why, in a few words the user will read.
    #[arg(long, default_value = "")]
    pub reason: String,
    /// How long access is wanted: once (this run of the agent), 1h, 1d or
    /// always (the user may give less).
    #[arg(long = "for", value_parser = parse_expiry, value_name = "once|1h|1d|always")]
    pub expiry: Option<Expiry>,
}

/// `omnipanel clients ...`
pub async fn clients(command: ClientsCommand, out: Output) -> Result<(), Failure> {
    match command {
        ClientsCommand::Request(args) => request(args, out).await,
    }
}

/// How long a grant lasts, from the word `--for` takes: once, 1h, 1d,
/// always (and the agent's synonyms hour, day, forever).
pub fn parse_expiry(text: &str) -> Result<Expiry, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "once" => Ok(Expiry::Once),
        "1h" | "hour" => Ok(Expiry::Hour),
        "1d" | "day" => Ok(Expiry::Day),
        "always" | "forever" => Ok(Expiry::Always),
        other => Err(format!(
            "{other:?} is not a duration for access; use once (this run of the agent), 1h, 1d or always"
        )),
    }
}

/// Project folders typed by the user, made absolute: the agent resolves
/// nothing against the CLI's directory.
fn absolute_projects(projects: &[String]) -> Result<Vec<String>, Failure> {
    projects
        .iter()
        .map(|project| project.trim())
        .filter(|project| !project.is_empty())
        .map(|project| path_text(&absolute(project)?))
        .collect()
}

/// `omnipanel clients request`: RequestAccess with no credential (a
/// client asking must not present the owner's, or it would never need to
/// ask), its code and next step on stderr, the token alone on stdout.
async fn request(args: RequestArgs, out: Output) -> Result<(), Failure> {
    if args.name.trim().is_empty() {
        return Err(Failure::Other(
            "--name is empty; give the name the user should see, e.g. --name \"backup script\""
                .to_owned(),
        ));
    }
    let client = Client::connect_as(Target::from_env(), Credential::Nothing).await?;
    let mut stream = client
        .call_stream(client.agent().request_access(pb::RequestAccessRequest {
            client_name: args.name,
            scopes: scopes_into_proto(&args.scopes),
            projects: absolute_projects(&args.projects)?,
            reason: args.reason,
            expiry: args.expiry.unwrap_or(Expiry::Unspecified).into(),
        }))
        .await?;
    let mut announced = false;
    loop {
        let Some(update) = stream.message().await? else {
            return Err(Failure::Other(
                "the agent ended the access request without an answer; ask again".to_owned(),
            ));
        };
        let request = update.request.clone().unwrap_or_default();
        let state =
            AccessRequestState::try_from(request.state).unwrap_or(AccessRequestState::Unspecified);
        if state == AccessRequestState::Pending {
            if !announced {
                announced = true;
                errln!("{}", waiting_text(&request, display::now_ms()));
            }
            continue;
        }
        if out.is_json() {
            out.json(&update)?;
        }
        return match state {
            AccessRequestState::Approved if !update.token.is_empty() => {
                if !out.is_json() {
                    outln!("{}", update.token)?;
                    let granted = update.client.unwrap_or_default();
                    errln!(
                        "omnipanel: approved: {} (client id {}); the token above is shown only once. Use it with:\n  export OMNIPANEL_TOKEN=<the token>",
                        display::scope_names(&granted.scopes),
                        granted.id
                    );
                }
                Ok(())
            }
            AccessRequestState::Approved => Err(Failure::Other(
                "the request was approved but the agent sent no token; ask again".to_owned(),
            )),
            other => Err(refusal(other, &request)),
        };
    }
}

/// What `clients request` says on stderr while it waits.
fn waiting_text(request: &pb::AccessRequest, now_ms: i64) -> String {
    format!(
        "omnipanel: asked the agent to admit {:?} with {} (request {}, code {}; {}).\n\
         Approve with: omnipanel clients approve {} (code {})\n\
         Waiting for the user's answer...",
        request.client_name,
        display::scope_names(&request.scopes),
        request.id,
        request.code,
        display::time_left(request.expires_unix_ms, now_ms),
        request.id,
        request.code
    )
}

/// The failure for a request that ended without a token, with the exit
/// code scripts branch on.
fn refusal(state: AccessRequestState, request: &pb::AccessRequest) -> Failure {
    let what = format!("access request {} (code {})", request.id, request.code);
    match state {
        AccessRequestState::Denied => Failure::Refused {
            code: EXIT_ACCESS_DENIED,
            message: format!("the user denied {what}"),
        },
        AccessRequestState::Expired => Failure::Refused {
            code: EXIT_ACCESS_UNANSWERED,
            message: format!(
                "{what} expired: nobody answered in time; ask again when the user can approve it"
            ),
        },
        AccessRequestState::Withdrawn => Failure::Refused {
            code: EXIT_ACCESS_UNANSWERED,
            message: format!("{what} was withdrawn before an answer; ask again"),
        },
        _ => Failure::Other(format!(
            "{what} ended in a state this omnipanel does not know ({}); upgrade omnipanel",
            display::access_request_state_name(request.state)
        )),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::args::SCOPE_NAMES;

    /// The `clients` grammar alone, as `omnipanel clients` parses it.
    #[derive(Debug, Parser)]
    struct Grammar {
        #[command(subcommand)]
        command: ClientsCommand,
    }

    fn parse(args: &[&str]) -> Result<ClientsCommand, String> {
        Grammar::try_parse_from(std::iter::once("clients").chain(args.iter().copied()))
            .map(|grammar| grammar.command)
            .map_err(|err| err.to_string())
    }

    #[test]
    fn request_takes_a_comma_separated_scope_list_and_a_duration() {
        let Ok(ClientsCommand::Request(args)) = parse(&[
            "request",
            "--name",
            "backup",
            "--scopes",
            "read,infer",
            "--scopes",
            "write",
            "--projects",
            "/srv/app,/srv/lib",
            "--for",
            "1h",
        ]) else {
            panic!("request did not parse");
        };
        assert_eq!(
            args.scopes,
            [pb::Scope::Read, pb::Scope::Infer, pb::Scope::Write]
        );
        assert_eq!(args.projects, ["/srv/app", "/srv/lib"]);
        assert_eq!(args.expiry, Some(Expiry::Hour));
        assert_eq!(
            absolute_projects(&args.projects).ok(),
            Some(vec!["/srv/app".to_owned(), "/srv/lib".to_owned()])
        );
    }

    #[test]
    fn request_refuses_unknown_scopes_and_durations_by_name() {
        let err = parse(&["request", "--name", "x", "--scopes", "read,root"])
            .err()
            .unwrap_or_default();
        assert!(err.contains("\"root\" is not a scope"), "{err}");
        assert!(err.contains(SCOPE_NAMES), "{err}");
        let err = parse(&["request", "--name", "x", "--scopes", "read", "--for", "2h"])
            .err()
            .unwrap_or_default();
        assert!(err.contains("\"2h\" is not a duration for access"), "{err}");
        let err = parse(&["request", "--name", "x"]).err().unwrap_or_default();
        assert!(err.contains("--scopes"), "scopes are required: {err}");
    }

    #[test]
    fn durations_for_access() {
        assert_eq!(parse_expiry("once"), Ok(Expiry::Once));
        assert_eq!(parse_expiry("1H"), Ok(Expiry::Hour));
        assert_eq!(parse_expiry("day"), Ok(Expiry::Day));
        assert_eq!(parse_expiry(" always "), Ok(Expiry::Always));
        assert!(parse_expiry("").is_err());
        assert!(parse_expiry("1w").is_err());
    }

    #[test]
    fn relative_projects_are_made_absolute() {
        let made = absolute_projects(&["app".to_owned(), " ".to_owned()]).unwrap_or_default();
        assert_eq!(made.len(), 1, "blank entries are dropped: {made:?}");
        assert!(std::path::Path::new(&made[0]).is_absolute(), "{made:?}");
        assert!(made[0].ends_with("/app"), "{made:?}");
    }

    fn asked() -> pb::AccessRequest {
        pb::AccessRequest {
            id: "3f2a9c1d".into(),
            code: "123-456".into(),
            client_name: "backup".into(),
            scopes: vec![pb::Scope::Read.into(), pb::Scope::Infer.into()],
            state: AccessRequestState::Pending.into(),
            expires_unix_ms: 1_700_000_120_000,
            ..pb::AccessRequest::default()
        }
    }

    #[test]
    fn the_waiting_text_says_how_to_approve() {
        let text = waiting_text(&asked(), 1_700_000_000_000);
        assert!(
            text.contains("Approve with: omnipanel clients approve 3f2a9c1d (code 123-456)"),
            "{text}"
        );
        assert!(text.contains("\"backup\" with read, infer"), "{text}");
        assert!(text.contains("2m00s left"), "{text}");
    }

    #[test]
    fn refusals_have_their_own_exit_codes() {
        let code = |state| match refusal(state, &asked()) {
            Failure::Refused { code, message } => {
                assert!(message.contains("3f2a9c1d (code 123-456)"), "{message}");
                Some(code)
            }
            _ => None,
        };
        assert_eq!(code(AccessRequestState::Denied), Some(EXIT_ACCESS_DENIED));
        assert_eq!(
            code(AccessRequestState::Expired),
            Some(EXIT_ACCESS_UNANSWERED)
        );
        assert_eq!(
            code(AccessRequestState::Withdrawn),
            Some(EXIT_ACCESS_UNANSWERED)
        );
        assert_ne!(EXIT_ACCESS_DENIED, EXIT_ACCESS_UNANSWERED);
    }
}
