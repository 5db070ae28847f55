//! The agent's own git transports, end to end. https: a loopback
//! smart-HTTP server written here (`git http-backend` run as CGI, behind
//! TLS with a self-signed certificate the agent trusts through
//! SSL_CERT_FILE) that wants `git.token`, for a push, fetch and pull round
//! trip between two clones; the same server on plain http, which is never
//! sent the token. ssh: a stand-in `ssh` script first on the agent's PATH
//! that logs how it was run and runs the remote command locally, for
//! `ssh://` and scp-like remotes; hosts and users that ssh would read as
//! options, refused before ssh runs; and ssh refusing the key, reported as
//! such.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{TcpListener, TcpStream},
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::Arc,
};

use base64::Engine as _;
use omnipanel_client::{Client, proto::v1 as pb};
use omnipanel_tests::{PATIENCE, Sandbox, TestResult, self_signed_certificate};
use tonic::Code;

use crate::{
    git::{commit_file, drain, git, init_repo, open, pull, push, set_identity, two_clones},
    git_safety::{Seen, fetch_error, push_error, quoted},
};

/// `git.token` in the tests that configure one.
const TOKEN: &str = "s3cret";

/// The Authorization header `git.token` makes: HTTP Basic with the user
/// `x-access-token`, as GitHub and its imitators expect.
fn token_authorization() -> String {
    let pair = format!("x-access-token:{TOKEN}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// A loopback smart-HTTP git server serving the repositories under a
/// folder (see [`GitHttpServer::start`]).
struct GitHttpServer {
    port: u16,
    /// The request lines it got (`GET /remote.git/info/refs?...`).
    requests: Seen,
    /// The Authorization headers it got.
    authorizations: Seen,
}

/// What a connection of a [`GitHttpServer`] needs.
struct Backend {
    root: PathBuf,
    home: PathBuf,
    requests: Seen,
    authorizations: Seen,
}

impl GitHttpServer {
    /// Serve the repositories under `root` with `git http-backend` (run as
    /// CGI, `home` as its HOME), over TLS with `tls`, else plain http. Every
    /// request must carry [`token_authorization`]; without it the answer is
    /// a 401 asking for Basic credentials, as a forge answers a private
    /// repository.
    fn start(root: &Path, home: &Path, tls: Option<Arc<rustls::ServerConfig>>) -> TestResult<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let backend = Arc::new(Backend {
            root: root.to_owned(),
            home: home.to_owned(),
            requests: Seen::default(),
            authorizations: Seen::default(),
        });
        let server = Self {
            port,
            requests: backend.requests.clone(),
            authorizations: backend.authorizations.clone(),
        };
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { break };
                let (backend, tls) = (backend.clone(), tls.clone());
                // A thread per connection: a client may open the next
                // connection before it is done with the last.
                std::thread::spawn(move || {
                    if let Err(err) = serve_connection(stream, tls, &backend) {
                        eprintln!("test git server: {err}");
                    }
                });
            }
        });
        Ok(server)
    }

    /// What the server recorded in `seen`, so far.
    fn recorded(seen: &Seen) -> TestResult<Vec<String>> {
        Ok(seen.lock().map_err(|_| "poisoned")?.clone())
    }
}

/// The server side of TLS with the certificate and key at these paths.
fn server_tls(cert: &Path, key: &Path) -> TestResult<Arc<rustls::ServerConfig>> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    let chain = CertificateDer::pem_file_iter(cert)?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(key)?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(chain, key)?;
    Ok(Arc::new(config))
}

/// Answer the one request of a connection (every answer says
/// `Connection: close`).
fn serve_connection(
    stream: TcpStream,
    tls: Option<Arc<rustls::ServerConfig>>,
    backend: &Backend,
) -> TestResult {
    // A client that stops mid-request must not hold a thread forever.
    stream.set_read_timeout(Some(PATIENCE))?;
    match tls {
        None => answer(stream, backend),
        Some(config) => {
            let mut tls = rustls::StreamOwned::new(rustls::ServerConnection::new(config)?, stream);
            answer(&mut tls, backend)?;
            // Close TLS cleanly, so the client knows the answer is whole.
            tls.conn.send_close_notify();
            tls.flush()?;
            Ok(())
        }
    }
}

/// An HTTP request as read off the wire.
struct Request {
    method: String,
    target: String,
    /// Names in lower case.
    headers: Vec<(String, String)>,
    /// Un-chunked.
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn answer<S: Read + Write>(mut stream: S, backend: &Backend) -> TestResult {
    let request = read_request(&mut stream)?;
    let response = respond(&request, backend)?;
    stream.write_all(&response)?;
    stream.flush()?;
    Ok(())
}

fn read_request(stream: &mut impl Read) -> TestResult<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut words = line.split_whitespace();
    let method = words.next().ok_or("no request line")?.to_owned();
    let target = words.next().ok_or("no request target")?.to_owned();
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err("the request ended inside its headers".into());
        }
        let text = line.trim_end();
        if text.is_empty() {
            break;
        }
        let (name, value) = text.split_once(':').ok_or("a header without a colon")?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let mut request = Request {
        method,
        target,
        headers,
        body: Vec::new(),
    };
    // A client streaming its request body (a push's pack) may send it
    // chunked rather than say its length first.
    if request
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    {
        request.body = read_chunked(&mut reader)?;
    } else if let Some(length) = request.header("content-length") {
        request.body = vec![0; length.parse()?];
        reader.read_exact(&mut request.body)?;
    }
    Ok(request)
}

/// A chunked body (RFC 9112 section 7.1), trailers skipped.
fn read_chunked(reader: &mut impl BufRead) -> TestResult<Vec<u8>> {
    let mut body = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let size = line.trim().split(';').next().unwrap_or_default();
        let size = usize::from_str_radix(size, 16)?;
        if size == 0 {
            loop {
                line.clear();
                if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        line.clear();
        reader.read_line(&mut line)?;
    }
}

/// The whole response to `request`: a 401 without the token, else what
/// `git http-backend` answers.
fn respond(request: &Request, backend: &Backend) -> TestResult<Vec<u8>> {
    backend
        .requests
        .lock()
        .map_err(|_| "poisoned")?
        .push(format!("{} {}", request.method, request.target));
    let authorization = request.header("authorization");
    if let Some(value) = authorization {
        backend
            .authorizations
            .lock()
            .map_err(|_| "poisoned")?
            .push(value.to_owned());
    }
    if authorization != Some(token_authorization().as_str()) {
        return Ok(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec());
    }
    let (path, query) = request
        .target
        .split_once('?')
        .unwrap_or((&request.target, ""));
    let mut cgi = Command::new("git");
    cgi.arg("http-backend")
        .env("GIT_PROJECT_ROOT", &backend.root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("REQUEST_METHOD", &request.method)
        .env(
            "CONTENT_TYPE",
            request.header("content-type").unwrap_or_default(),
        )
        .env("CONTENT_LENGTH", request.body.len().to_string())
        // http-backend serves receive-pack (a push) only to an
        // authenticated user, which the token made this one.
        .env("REMOTE_USER", "x-access-token")
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("HOME", &backend.home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("GIT_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (header, variable) in [
        ("git-protocol", "GIT_PROTOCOL"),
        ("content-encoding", "HTTP_CONTENT_ENCODING"),
    ] {
        if let Some(value) = request.header(header) {
            cgi.env(variable, value);
        }
    }
    let mut child = cgi.spawn()?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let body = request.body.clone();
    // Written from another thread: a large pack must not fill one pipe
    // while the answer fills the other.
    let writer = std::thread::spawn(move || stdin.write_all(&body));
    let output = child.wait_with_output()?;
    // A backend that stopped reading early says why in its output.
    let _ = writer.join();
    let cut = |separator: &[u8]| {
        output
            .stdout
            .windows(separator.len())
            .position(|w| w == separator)
            .map(|at| (&output.stdout[..at], &output.stdout[at + separator.len()..]))
    };
    let (head, body) = cut(b"\r\n\r\n").or_else(|| cut(b"\n\n")).ok_or_else(|| {
        format!(
            "git http-backend gave no headers: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })?;
    let mut status = "200 OK".to_owned();
    let mut headers = String::new();
    for line in std::str::from_utf8(head)?.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let lower = name.trim().to_ascii_lowercase();
        if lower == "status" {
            value.trim().clone_into(&mut status);
        } else if !["content-length", "connection", "transfer-encoding"].contains(&lower.as_str()) {
            headers.push_str(&format!("{}: {}\r\n", name.trim(), value.trim()));
        }
    }
    let mut response = format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(body);
    Ok(response)
}

/// Fetch `remote` through the agent to its end; the last message.
async fn fetch(client: &Client, project: &str, remote: &str) -> TestResult<pb::FetchResponse> {
    let stream = client
        .git()
        .fetch(pb::FetchRequest {
            project: project.into(),
            remote: remote.into(),
        })
        .await?
        .into_inner();
    let drained = drain(stream, |m: &pb::FetchResponse| m.progress.as_ref());
    Ok(tokio::time::timeout(PATIENCE, drained).await??.1)
}

/// Push the current branch to its upstream through the agent, and check
/// that the remote took `main`.
async fn push_main(client: &Client, project: &str) -> TestResult {
    let (_, pushed) = tokio::time::timeout(PATIENCE, push(client, project)).await??;
    assert!(pushed.done, "{pushed:?}");
    let main = pushed
        .updated
        .iter()
        .find(|r| r.name == "refs/heads/main")
        .ok_or_else(|| format!("main was not pushed: {pushed:?}"))?;
    assert!(main.error.is_empty(), "{main:?}");
    Ok(())
}

/// Pull through the agent, fast-forward only; HEAD after it.
async fn pull_head(client: &Client, project: &str) -> TestResult<String> {
    let pulling = pull(client, project, pb::PullMode::FastForwardOnly);
    let (_, pulled) = tokio::time::timeout(PATIENCE, pulling).await??;
    assert!(pulled.done, "{pulled:?}");
    assert_eq!(
        pulled.outcome,
        i32::from(pb::PullOutcome::FastForwarded),
        "{pulled:?}"
    );
    Ok(pulled.head)
}

#[tokio::test]
async fn a_round_trip_over_https_sends_the_token_and_plain_http_never_gets_it() -> TestResult {
    let sandbox = Sandbox::new()?;
    set_identity(&sandbox)?;
    let (cert, key) = self_signed_certificate(sandbox.root())?;
    sandbox.write_config(&format!(
        "[git]\ntimeout = \"10s\"\ntoken = \"{TOKEN}\"\ntoken_hosts = [\"localhost\"]\n"
    ))?;
    // The agent trusts the system's certificates, which SSL_CERT_FILE
    // replaces (as it does for curl and git): here with the one that the
    // test's server presents.
    let agent = sandbox
        .start_agent_with(&[("SSL_CERT_FILE".to_owned(), cert.display().to_string())])
        .await?;
    let client = agent.client().await?;
    let (alice_dir, alice, bob_dir, bob) = two_clones(&sandbox, &client).await?;
    let bare = sandbox.root().join("remote.git");

    // The clones' bare remote, now served over https by name (the
    // certificate is for localhost; so is git.token_hosts).
    let https = GitHttpServer::start(
        sandbox.root(),
        &sandbox.home(),
        Some(server_tls(&cert, &key)?),
    )?;
    let url = format!("https://localhost:{}/remote.git", https.port);
    for dir in [&alice_dir, &bob_dir] {
        git(&sandbox, dir, &["remote", "set-url", "origin", &url])?;
    }

    let pushed = commit_file(
        &sandbox,
        &alice_dir,
        "over-https.txt",
        "sent over https\n",
        "over https",
    )?;
    push_main(&client, &alice).await?;
    assert_eq!(git(&sandbox, &bare, &["rev-parse", "main"])?, pushed);

    let fetched = fetch(&client, &bob, "origin").await?;
    assert!(fetched.done, "{fetched:?}");
    assert_eq!(
        git(&sandbox, &bob_dir, &["rev-parse", "origin/main"])?,
        pushed
    );
    assert_eq!(pull_head(&client, &bob).await?, pushed);
    assert_eq!(
        std::fs::read_to_string(bob_dir.join("over-https.txt"))?,
        "sent over https\n"
    );

    // Every request was refused without the token, so the round trip above
    // proves that the agent sent it; and it sent nothing else.
    let sent = GitHttpServer::recorded(&https.authorizations)?;
    assert!(!sent.is_empty(), "the https server got no credentials");
    assert!(
        sent.iter().all(|header| *header == token_authorization()),
        "{sent:?}"
    );

    // The same server on plain http, at the listed host: it is asked, and
    // the token is refused to it, saying why.
    let plain = GitHttpServer::start(sandbox.root(), &sandbox.home(), None)?;
    let plain_url = format!("http://localhost:{}/remote.git", plain.port);
    git(&sandbox, &bob_dir, &["remote", "add", "plain", &plain_url])?;
    let err = fetch_error(&client, &bob, "plain").await?;
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    assert!(
        err.message().contains("plain http") && err.message().contains(&plain_url),
        "{err:?}"
    );
    let err = push_error(&client, &bob, "plain").await?;
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    assert!(err.message().contains("plain http"), "{err:?}");
    assert!(
        !GitHttpServer::recorded(&plain.requests)?.is_empty(),
        "the plain http server was never asked: the test proves nothing"
    );
    let sent = GitHttpServer::recorded(&plain.authorizations)?;
    assert!(
        sent.is_empty(),
        "credentials went over plain http: {sent:?}"
    );
    Ok(())
}

/// What the stand-in ssh writes after each call's arguments in its log.
const END_OF_CALL: &str = "--- end of call ---";

/// What the stand-in ssh does after logging, in [`RUN_REMOTE_COMMAND`]'s
/// case what a real ssh does on the server: run its last argument with a
/// shell, in the "server's" working folder.
const RUN_REMOTE_COMMAND: &str = "for last in \"$@\"; do :; done\nexec sh -c \"$last\"\n";

/// A stand-in for the user's `ssh`: a shell script in a folder of its own
/// that appends its arguments to a log, one a line and [`END_OF_CALL`]
/// after them, changes to the sandbox root (the "server's" home, where
/// scp-like relative paths resolve) and goes on with the script text
/// `then`.
struct FakeSsh {
    bin: PathBuf,
    log: PathBuf,
}

impl FakeSsh {
    fn install(sandbox: &Sandbox, then: &str) -> TestResult<Self> {
        let bin = sandbox.root().join("fake-bin");
        std::fs::create_dir_all(&bin)?;
        let log = sandbox.root().join("ssh-calls.log");
        let script = bin.join("ssh");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nfor arg in \"$@\"; do printf '%s\\n' \"$arg\"; done >> {log}\nprintf '%s\\n' '{END_OF_CALL}' >> {log}\ncd {home} || exit 1\n{then}",
                log = quoted(&log),
                home = quoted(sandbox.root()),
            ),
        )?;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
        Ok(Self { bin, log })
    }

    /// PATH for the agent: this ssh first, then the test's own (where git's
    /// `git-upload-pack` and `git-receive-pack` are found).
    fn path(&self) -> TestResult<(String, String)> {
        let inherited = std::env::var("PATH")?;
        Ok((
            "PATH".to_owned(),
            format!("{}:{inherited}", self.bin.display()),
        ))
    }

    /// The arguments of each call, in order.
    fn calls(&self) -> TestResult<Vec<Vec<String>>> {
        let text = std::fs::read_to_string(&self.log)?;
        let mut calls = vec![Vec::new()];
        for line in text.lines() {
            if line == END_OF_CALL {
                calls.push(Vec::new());
            } else if let Some(call) = calls.last_mut() {
                call.push(line.to_owned());
            }
        }
        calls.pop();
        Ok(calls)
    }
}

/// Check that ssh was run for `command` (its last argument) as the agent
/// promises: batch mode (never a prompt the agent could not answer), a
/// connect timeout, user `git`, the port if `port`, and the host after
/// `--` so it can never be read as an option.
fn assert_called(calls: &[Vec<String>], command: &str, port: Option<&str>) -> TestResult {
    let call = calls
        .iter()
        .find(|call| call.last().is_some_and(|last| last == command))
        .ok_or_else(|| format!("ssh never ran {command}: {calls:#?}"))?;
    let has = |pair: [&str; 2]| call.windows(2).any(|w| w == pair);
    assert!(has(["-o", "BatchMode=yes"]), "{call:?}");
    assert!(
        call.windows(2)
            .any(|w| w[0] == "-o" && w[1].starts_with("ConnectTimeout=")),
        "{call:?}"
    );
    assert!(has(["-l", "git"]), "{call:?}");
    match port {
        Some(port) => assert!(has(["-p", port]), "{call:?}"),
        None => assert!(!call.iter().any(|a| a == "-p"), "{call:?}"),
    }
    let tail = call.get(call.len().saturating_sub(3)..).unwrap_or_default();
    assert!(tail == ["--", "example.invalid", command], "{call:?}");
    Ok(())
}

#[tokio::test]
async fn fetch_and_push_over_ssh_run_the_users_ssh_with_batch_mode() -> TestResult {
    let sandbox = Sandbox::new()?;
    set_identity(&sandbox)?;
    sandbox.write_config("[git]\ntimeout = \"10s\"\n")?;
    let ssh = FakeSsh::install(&sandbox, RUN_REMOTE_COMMAND)?;
    let agent = sandbox.start_agent_with(&[ssh.path()?]).await?;
    let client = agent.client().await?;
    let (alice_dir, alice, bob_dir, bob) = two_clones(&sandbox, &client).await?;

    // One clone by ssh:// with a port and an absolute path, the other
    // scp-like with a path relative to the "server's" home (the sandbox
    // root, where the bare remote is).
    let bare = sandbox.root().join("remote.git");
    let ssh_url = format!("ssh://git@example.invalid:2222{}", bare.display());
    git(
        &sandbox,
        &alice_dir,
        &["remote", "set-url", "origin", &ssh_url],
    )?;
    git(
        &sandbox,
        &bob_dir,
        &[
            "remote",
            "set-url",
            "origin",
            "git@example.invalid:remote.git",
        ],
    )?;

    let first = commit_file(&sandbox, &alice_dir, "alice.txt", "alice\n", "alice")?;
    push_main(&client, &alice).await?;
    assert_eq!(git(&sandbox, &bare, &["rev-parse", "main"])?, first);
    let fetched = fetch(&client, &bob, "origin").await?;
    assert!(fetched.done, "{fetched:?}");
    assert_eq!(
        git(&sandbox, &bob_dir, &["rev-parse", "origin/main"])?,
        first
    );
    assert_eq!(pull_head(&client, &bob).await?, first);

    // And back the other way.
    let second = commit_file(&sandbox, &bob_dir, "bob.txt", "bob\n", "bob")?;
    push_main(&client, &bob).await?;
    assert_eq!(pull_head(&client, &alice).await?, second);
    assert_eq!(std::fs::read_to_string(alice_dir.join("bob.txt"))?, "bob\n");

    let calls = ssh.calls()?;
    let absolute = quoted(&bare);
    assert_called(
        &calls,
        &format!("git-receive-pack {absolute}"),
        Some("2222"),
    )?;
    assert_called(&calls, &format!("git-upload-pack {absolute}"), Some("2222"))?;
    assert_called(&calls, "git-receive-pack 'remote.git'", None)?;
    assert_called(&calls, "git-upload-pack 'remote.git'", None)?;
    Ok(())
}

#[tokio::test]
async fn an_ssh_host_or_user_that_looks_like_an_option_is_refused_before_ssh_runs() -> TestResult {
    let sandbox = Sandbox::new()?;
    set_identity(&sandbox)?;
    sandbox.write_config("[git]\ntimeout = \"10s\"\n")?;
    // This stand-in does what an ssh that took the host for an option
    // would do: run the ProxyCommand. So had any of these reached it, there
    // would be a `pwned` file as well as its log.
    let ssh = FakeSsh::install(
        &sandbox,
        "for arg in \"$@\"; do\n  case \"$arg\" in -oProxyCommand=*) sh -c \"${arg#-oProxyCommand=}\" ;; esac\ndone\nexit 255\n",
    )?;
    let agent = sandbox.start_agent_with(&[ssh.path()?]).await?;
    let client = agent.client().await?;
    let dir = init_repo(&sandbox, "options")?;
    commit_file(&sandbox, &dir, "a.txt", "one\n", "first")?;
    let remotes = [
        ("host", "ssh://-oProxyCommand=touch${IFS}pwned/x.git"),
        ("scp", "-oProxyCommand=touch${IFS}pwned:repo.git"),
        ("user", "ssh://-lroot@example.invalid/x.git"),
        ("scp-user", "-lroot@example.invalid:repo.git"),
    ];
    for (name, url) in remotes {
        // Set in the config directly: `git remote add` is not what is
        // tested, and may itself refuse some of these.
        git(
            &sandbox,
            &dir,
            &["config", &format!("remote.{name}.url"), url],
        )?;
        git(
            &sandbox,
            &dir,
            &[
                "config",
                &format!("remote.{name}.fetch"),
                &format!("+refs/heads/*:refs/remotes/{name}/*"),
            ],
        )?;
    }
    let project = open(&client, &dir).await?;

    for (name, url) in remotes {
        let err = fetch_error(&client, &project, name).await?;
        assert_eq!(err.code(), Code::FailedPrecondition, "{name}: {err:?}");
        assert!(
            err.message().contains(url) && err.message().contains("option"),
            "{name}: {err:?}"
        );
    }
    let err = push_error(&client, &project, "host").await?;
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");

    assert!(
        !ssh.log.exists(),
        "ssh ran: {}",
        std::fs::read_to_string(&ssh.log).unwrap_or_default()
    );
    let pwned = [sandbox.root(), &sandbox.home(), &dir].map(|at| at.join("pwned"));
    assert!(pwned.iter().all(|p| !p.exists()), "{pwned:?}");

    // The stand-in does leave both behind when run with such an option, so
    // the checks above could have failed.
    let ran = Command::new(ssh.bin.join("ssh"))
        .arg("-oProxyCommand=touch${IFS}pwned")
        .arg("true")
        .output()?;
    assert_eq!(ran.status.code(), Some(255));
    assert!(ssh.log.exists() && sandbox.root().join("pwned").exists());
    Ok(())
}

/// A project with one commit whose `origin` is
/// `ssh://git@example.invalid/srv/repo.git`, opened; its id.
async fn project_with_ssh_origin(
    sandbox: &Sandbox,
    client: &Client,
    name: &str,
) -> TestResult<String> {
    let dir = init_repo(sandbox, name)?;
    commit_file(sandbox, &dir, "a.txt", "one\n", "first")?;
    git(
        sandbox,
        &dir,
        &[
            "remote",
            "add",
            "origin",
            "ssh://git@example.invalid/srv/repo.git",
        ],
    )?;
    open(client, &dir).await
}

#[tokio::test]
async fn an_ssh_server_that_stops_answering_fails_after_the_timeout_and_ssh_is_stopped()
-> TestResult {
    let sandbox = Sandbox::new()?;
    set_identity(&sandbox)?;
    sandbox.write_config("[git]\ntimeout = \"1s\"\n")?;
    // Connected, then never a word: a hung server, seen from the client.
    let pid_file = sandbox.root().join("ssh.pid");
    let ssh = FakeSsh::install(
        &sandbox,
        &format!("echo $$ > {}\nexec sleep 600\n", quoted(&pid_file)),
    )?;
    let agent = sandbox.start_agent_with(&[ssh.path()?]).await?;
    let client = agent.client().await?;
    let project = project_with_ssh_origin(&sandbox, &client, "silent").await?;

    let err = fetch_error(&client, &project, "origin").await?;
    assert!(
        matches!(err.code(), Code::Unavailable | Code::DeadlineExceeded),
        "{err:?}"
    );
    assert!(
        err.message().contains("no answer") && err.message().contains("origin"),
        "{err:?}"
    );
    // The silent ssh is not left behind.
    let pid: u32 = std::fs::read_to_string(&pid_file)?.trim().parse()?;
    let gone = async {
        while omnipanel_tests::process_exists(pid) {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(PATIENCE, gone)
        .await
        .map_err(|_| format!("ssh ({pid}) still runs after the fetch gave up"))?;
    Ok(())
}

#[tokio::test]
async fn ssh_refusing_the_key_is_unauthenticated_and_says_what_ssh_said() -> TestResult {
    let sandbox = Sandbox::new()?;
    set_identity(&sandbox)?;
    sandbox.write_config("[git]\ntimeout = \"10s\"\n")?;
    // What OpenSSH prints when the server takes none of the user's keys,
    // with its exit status for a failed connection.
    let ssh = FakeSsh::install(
        &sandbox,
        "echo 'git@example.invalid: Permission denied (publickey).' >&2\nexit 255\n",
    )?;
    let agent = sandbox.start_agent_with(&[ssh.path()?]).await?;
    let client = agent.client().await?;
    let project = project_with_ssh_origin(&sandbox, &client, "refused").await?;

    let err = fetch_error(&client, &project, "origin").await?;
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    assert!(err.message().contains("Permission denied"), "{err:?}");
    let err = push_error(&client, &project, "origin").await?;
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    assert!(err.message().contains("Permission denied"), "{err:?}");
    // The refusal came from ssh itself, run as the agent promises.
    assert_called(&ssh.calls()?, "git-upload-pack '/srv/repo.git'", None)?;
    Ok(())
}
