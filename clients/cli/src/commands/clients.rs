//! `omnipanel clients ...`: client admission from the command line. The
//! owner's side: the access requests waiting for an answer (`pending`),
//! approving them, narrowed, for a while (`approve`) or not (`deny`), the
//! admitted clients (`ls`) and ending one's grant (`revoke`). And the
//! asking side, `request`: the reference client of RequestAccess, for
//! scripts, which presents no credential at all, waits for the user's
//! answer and prints the token it is given.

use clap::{Args, Subcommand};
use omnipanel_client::{Client, Credential, Target, display};
use omnipanel_proto::v1::{
    self as pb, AccessRequestState, ApproveAccessRequest, ConfirmKind, DenyAccessRequest, Expiry,
    ListAccessRequestsRequest, ListClientsRequest, RevokeClientRequest,
};

use crate::{
    EXIT_ACCESS_DENIED, EXIT_ACCESS_UNANSWERED, Failure,
    args::{parse_expiry, parse_scope, scopes_into_proto},
    output::{Output, emit_lines, errln, outln},
    project_ref::{absolute, path_text},
};

/// `omnipanel clients ...`
#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// List the admitted clients: what each may do, until when, and
    /// whether it is connected.
    #[command(visible_alias = "list")]
    Ls,
    /// Show the access requests waiting for an answer: who really asks
    /// (program, process id, parents), what for, and the code to compare.
    Pending,
    /// Admit a pending request; its client receives the token. The scopes,
    /// projects and duration may be narrowed from what was asked.
    Approve(ApproveArgs),
    /// Refuse a pending request.
    Deny {
        /// The request's id (from `omnipanel clients pending`).
        id: String,
    },
    /// End a client's access: its token is refused from now on and its open
    /// calls end.
    Revoke {
        /// The client's id or name (from `omnipanel clients ls`).
        client: String,
    },
    /// Ask the agent to admit this script: prints the request's code and
    /// how to approve it on stderr, waits for the user's answer, and on
    /// approval prints the token alone on stdout (exit 0). Denied: exit 4;
    /// expired unanswered or withdrawn: exit 5.
    Request(RequestArgs),
}

/// `omnipanel clients approve`
#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The request's id (from `omnipanel clients pending`).
    pub id: String,
    /// Grant only these scopes, comma-separated (each asked for, or implied
    /// by one that was; default: what was asked).
    #[arg(long, value_delimiter = ',', value_parser = parse_scope)]
    pub scopes: Vec<pb::Scope>,
    /// Grant only these project folders, comma-separated (each inside what
    /// was asked; default: what was asked).
    #[arg(long, value_delimiter = ',', value_name = "DIR,...")]
    pub projects: Vec<String>,
    /// For how long: once (this run of the agent), 1h, 1d or always
    /// (default: what was asked).
    #[arg(long = "for", value_parser = parse_expiry, value_name = "once|1h|1d|always")]
    pub expiry: Option<Expiry>,
    /// Kinds of destructive act the client may do without asking each time,
    /// comma-separated: delete-permanently, delete-folder, overwrite,
    /// delete-model, force-delete-branch, push, install-update,
    /// remove-provider (force-push is always asked).
    #[arg(long, value_delimiter = ',', value_parser = parse_confirm_kind, value_name = "KIND,...")]
    pub allow_without_confirmation: Vec<ConfirmKind>,
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
    if let ClientsCommand::Request(args) = command {
        return request(args, out).await;
    }
    let client = Client::connect_from_env().await?;
    let mut agent = client.agent();
    match command {
        ClientsCommand::Request(_) => Ok(()),
        ClientsCommand::Ls => {
            let response = client
                .call(agent.list_clients(ListClientsRequest {}))
                .await?;
            out.show(&response, |response| {
                if response.clients.is_empty() {
                    return outln!(
                        "no clients are admitted; approve a request with `omnipanel clients approve`, or make a token with `omnipanel token create`"
                    );
                }
                out.table(
                    &[
                        "ID",
                        "NAME",
                        "SCOPES",
                        "PROJECTS",
                        "EXPIRES",
                        "LAST USED",
                        "OPEN CALLS",
                        "WITHOUT ASKING",
                    ],
                    &client_rows(&response.clients, display::now_ms()),
                )
            })
        }
        ClientsCommand::Pending => {
            let response = client
                .call(agent.list_access_requests(ListAccessRequestsRequest {}))
                .await?;
            out.show(&response, |response| {
                if response.requests.is_empty() {
                    return outln!("no access requests are waiting");
                }
                let now = display::now_ms();
                let mut lines = Vec::new();
                for (i, request) in response.requests.iter().enumerate() {
                    if i > 0 {
                        lines.push(String::new());
                    }
                    lines.extend(pending_lines(request, now));
                }
                emit_lines(&lines)
            })
        }
        ClientsCommand::Approve(args) => {
            let response = client
                .call(
                    agent.approve_access(ApproveAccessRequest {
                        id: args.id.clone(),
                        scopes: scopes_into_proto(&args.scopes),
                        projects: absolute_projects(&args.projects)?,
                        expiry: args.expiry.unwrap_or(Expiry::Unspecified).into(),
                        allowed_without_confirmation: args
                            .allow_without_confirmation
                            .iter()
                            .map(|kind| i32::from(*kind))
                            .collect(),
                    }),
                )
                .await?;
            out.show(&response, |response| {
                let granted = response.client.clone().unwrap_or_default();
                outln!(
                    "approved request {}: {:?} (client id {}) may use {} on {}, {}; the token went to the client",
                    args.id,
                    granted.name,
                    granted.id,
                    display::scope_names(&granted.scopes),
                    projects_text(&granted.projects),
                    expiry_text(&granted, display::now_ms())
                )
            })
        }
        ClientsCommand::Deny { id } => {
            let response = client
                .call(agent.deny_access(DenyAccessRequest { id }))
                .await?;
            out.show(&response, |response| {
                let request = response.request.clone().unwrap_or_default();
                outln!(
                    "denied access request {} from {:?} (code {})",
                    request.id,
                    request.client_name,
                    request.code
                )
            })
        }
        ClientsCommand::Revoke { client: id } => {
            let response = client
                .call(agent.revoke_client(RevokeClientRequest { id }))
                .await?;
            out.show(&response, |response| {
                let revoked = response.client.clone().unwrap_or_default();
                outln!(
                    "revoked client {:?} ({}): its token is refused from now on, and its open calls were ended",
                    revoked.name,
                    revoked.id
                )
            })
        }
    }
}

/// A kind of destructive act from its name as `clients ls` shows it
/// ("delete-model"); the generated enum's names are the one list.
pub fn parse_confirm_kind(text: &str) -> Result<ConfirmKind, String> {
    let word = text.trim();
    ConfirmKind::from_str_name(&format!(
        "CONFIRM_KIND_{}",
        word.to_ascii_uppercase().replace('-', "_")
    ))
    .filter(|kind| *kind != ConfirmKind::Unspecified && !word.is_empty())
    .ok_or_else(|| {
        let known: Vec<String> = (1..)
            .map_while(|value| ConfirmKind::try_from(value).ok())
            .map(|kind| display::confirm_kind_name(kind.into()))
            .collect();
        format!(
            "{word:?} is not a kind of act; use one of {}",
            known.join(", ")
        )
    })
}

/// Projects of a request or grant: none named means every project in
/// the roots the user configured.
fn projects_text(projects: &[String]) -> String {
    if projects.is_empty() {
        "all projects within the project roots".to_owned()
    } else {
        projects.join(", ")
    }
}

/// When a grant ends, in words.
fn expiry_text(client: &pb::Client, now_ms: i64) -> String {
    if client.this_run_only {
        return "for this run of the agent only".to_owned();
    }
    if client.expires_unix_ms <= 0 {
        return "until revoked".to_owned();
    }
    format!(
        "until {} ({})",
        display::timestamp(client.expires_unix_ms),
        display::relative_to(client.expires_unix_ms, now_ms)
    )
}

/// The table rows of `clients ls`.
fn client_rows(clients: &[pb::Client], now_ms: i64) -> Vec<Vec<String>> {
    clients
        .iter()
        .map(|client| {
            let expires = if client.this_run_only {
                "this run only".to_owned()
            } else if client.expires_unix_ms <= 0 {
                "never".to_owned()
            } else {
                display::relative_to(client.expires_unix_ms, now_ms)
            };
            let projects = if client.projects.is_empty() {
                "all within project roots".to_owned()
            } else {
                client.projects.join(", ")
            };
            let kinds: Vec<String> = client
                .allowed_without_confirmation
                .iter()
                .map(|kind| display::confirm_kind_name(*kind))
                .collect();
            vec![
                client.id.clone(),
                display::one_line(&client.name),
                display::scope_names(&client.scopes),
                projects,
                expires,
                display::relative_to(client.last_used_unix_ms, now_ms),
                client.open_calls.to_string(),
                display::or_dash(&kinds.join(", ")).to_owned(),
            ]
        })
        .collect()
}

/// One pending request for the owner to judge: what the client says about
/// itself is marked as such; what the kernel says about the process is
/// what is known.
fn pending_lines(request: &pb::AccessRequest, now_ms: i64) -> Vec<String> {
    let mut lines = vec![
        format!(
            "request {}   code {}   {}",
            request.id,
            request.code,
            display::time_left(request.expires_unix_ms, now_ms)
        ),
        format!(
            "  client    {:?} (self-declared)",
            display::one_line(&request.client_name)
        ),
        format!(
            "  asks for  {}, {}",
            display::scope_names(&request.scopes),
            display::expiry_label(request.expiry)
        ),
        format!("  projects  {}", projects_text(&request.projects)),
    ];
    if !request.reason.trim().is_empty() {
        lines.push(format!(
            "  reason    {:?} (self-declared)",
            display::one_line(&request.reason)
        ));
    }
    let peer = request.peer.clone().unwrap_or_default();
    if !peer.address.is_empty() {
        lines.push(format!("  from      {} {}", peer.transport, peer.address));
    }
    for (i, process) in peer.processes.iter().enumerate() {
        let label = if i == 0 { "program " } else { "parent  " };
        let executable = if process.executable.is_empty() {
            "(executable unknown)"
        } else {
            &process.executable
        };
        let mut line = format!("  {label}  {executable} (pid {})", process.pid);
        if !process.command_line.trim().is_empty() {
            line.push_str(&format!(": {}", display::one_line(&process.command_line)));
        }
        lines.push(line);
    }
    if peer.processes.is_empty() && peer.address.is_empty() {
        lines.push("  program   unknown".to_owned());
    }
    lines.push(format!(
        "  answer    omnipanel clients approve {id}   or   omnipanel clients deny {id}",
        id = request.id
    ));
    lines
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
    fn approve_narrows_scopes_projects_duration_and_kinds() {
        let Ok(ClientsCommand::Approve(args)) = parse(&[
            "approve",
            "3f2a9c1d",
            "--scopes",
            "read",
            "--projects",
            "/srv/app",
            "--for",
            "once",
            "--allow-without-confirmation",
            "delete-model,push",
        ]) else {
            panic!("approve did not parse");
        };
        assert_eq!(args.id, "3f2a9c1d");
        assert_eq!(args.scopes, [pb::Scope::Read]);
        assert_eq!(args.projects, ["/srv/app"]);
        assert_eq!(args.expiry, Some(Expiry::Once));
        assert_eq!(
            args.allow_without_confirmation,
            [ConfirmKind::DeleteModel, ConfirmKind::Push]
        );
        let Ok(ClientsCommand::Approve(plain)) = parse(&["approve", "3f2a9c1d"]) else {
            panic!("a bare approve did not parse");
        };
        assert!(plain.scopes.is_empty() && plain.projects.is_empty());
        assert_eq!(plain.expiry, None);
    }

    #[test]
    fn kinds_of_act_by_their_names() {
        assert_eq!(
            parse_confirm_kind("delete-model"),
            Ok(ConfirmKind::DeleteModel)
        );
        assert_eq!(
            parse_confirm_kind("FORCE-DELETE-BRANCH"),
            Ok(ConfirmKind::ForceDeleteBranch)
        );
        assert_eq!(
            parse_confirm_kind("install-update"),
            Ok(ConfirmKind::InstallUpdate)
        );
        for kind in 1..=9 {
            let name = display::confirm_kind_name(kind);
            assert_eq!(
                parse_confirm_kind(&name).map(i32::from),
                Ok(kind),
                "{name} is shown by `clients ls` and typed back"
            );
        }
        let err = parse(&["approve", "x", "--allow-without-confirmation", "rm-rf"])
            .err()
            .unwrap_or_default();
        assert!(err.contains("\"rm-rf\" is not a kind of act"), "{err}");
        assert!(
            err.contains("delete-model") && err.contains("remove-provider"),
            "{err}"
        );
        assert!(parse_confirm_kind("unspecified").is_err());
        assert!(parse_confirm_kind("").is_err());
    }

    #[test]
    fn pending_requests_show_what_is_claimed_and_what_is_known() {
        let mut request = asked();
        request.reason = "nightly\nbackups".into();
        request.expiry = Expiry::Hour.into();
        request.projects = vec!["/home/me/app".into()];
        request.peer = Some(pb::Peer {
            transport: "socket".into(),
            processes: vec![
                pb::PeerProcess {
                    pid: 4242,
                    executable: "/usr/bin/python3".into(),
                    command_line: "python3 backup.py".into(),
                },
                pb::PeerProcess {
                    pid: 4000,
                    executable: "/usr/bin/bash".into(),
                    command_line: "bash".into(),
                },
            ],
            address: String::new(),
        });
        let lines = pending_lines(&request, 1_700_000_000_000);
        assert_eq!(
            lines,
            [
                "request 3f2a9c1d   code 123-456   2m00s left",
                "  client    \"backup\" (self-declared)",
                "  asks for  read, infer, 1 hour",
                "  projects  /home/me/app",
                "  reason    \"nightly backups\" (self-declared)",
                "  program   /usr/bin/python3 (pid 4242): python3 backup.py",
                "  parent    /usr/bin/bash (pid 4000): bash",
                "  answer    omnipanel clients approve 3f2a9c1d   or   omnipanel clients deny 3f2a9c1d",
            ]
            .map(String::from)
        );
        let over_tcp = pb::AccessRequest {
            peer: Some(pb::Peer {
                transport: "tcp".into(),
                address: "192.0.2.7:50000".into(),
                ..pb::Peer::default()
            }),
            ..asked()
        };
        let lines = pending_lines(&over_tcp, 1_700_000_000_000);
        assert!(
            lines.contains(&"  from      tcp 192.0.2.7:50000".to_owned()),
            "{lines:?}"
        );
        assert!(
            lines.contains(&"  projects  all projects within the project roots".to_owned()),
            "{lines:?}"
        );
    }

    #[test]
    fn admitted_clients_in_a_table() {
        let now = 1_700_000_000_000;
        let clients = [
            pb::Client {
                id: "tok_1".into(),
                name: "backup".into(),
                scopes: vec![pb::Scope::Read.into()],
                projects: vec!["/home/me/app".into()],
                expires_unix_ms: now + 3_600_000,
                last_used_unix_ms: now - 120_000,
                open_calls: 2,
                allowed_without_confirmation: vec![ConfirmKind::DeleteModel.into()],
                ..pb::Client::default()
            },
            pb::Client {
                id: "tok_2".into(),
                name: "ci".into(),
                scopes: vec![pb::Scope::Write.into(), pb::Scope::Infer.into()],
                this_run_only: true,
                expires_unix_ms: now + 86_000_000,
                ..pb::Client::default()
            },
        ];
        assert_eq!(
            client_rows(&clients, now),
            [
                [
                    "tok_1",
                    "backup",
                    "read",
                    "/home/me/app",
                    "in 1 hour",
                    "2 minutes ago",
                    "2",
                    "delete-model"
                ]
                .map(String::from),
                [
                    "tok_2",
                    "ci",
                    "write, infer",
                    "all within project roots",
                    "this run only",
                    "never",
                    "0",
                    "-"
                ]
                .map(String::from),
            ]
        );
        assert_eq!(
            expiry_text(&clients[1], now),
            "for this run of the agent only"
        );
        assert_eq!(expiry_text(&pb::Client::default(), now), "until revoked");
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
