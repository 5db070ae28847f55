//! git's smart HTTP protocol (http:// and https:// remotes) over reqwest:
//! the references are listed with `GET info/refs?service=…`, and each
//! round of the exchange is one `POST` of what libgit2 wrote, whose answer
//! libgit2 then reads. Redirects are followed on the first request only,
//! as git does, and never from https to plain http. Credentials are sent
//! only after the server asks (401), each source tried once, in order: a
//! password in the remote's URL, the user's own git credential helper
//! (from their git config, never the repository's: `credentials.rs`), then
//! `git.token` where it may go. Whatever the server accepted is used for
//! the rest of the transfer.

use std::{
    io::{self, Read, Write},
    sync::Mutex,
};

use git2::{
    ErrorCode,
    transport::{Service, SmartSubtransport, SmartSubtransportStream},
};
use reqwest::{StatusCode, Url, header};
use tokio::runtime::Handle;

use super::{Network, Unread, net_error, refused};
use crate::{
    git::credentials::{self, Token},
    http::{HttpOptions, Tls, describe},
};

/// Redirects followed on the first request: git's own limit is 5 too.
const MOST_REDIRECTS: usize = 5;

/// One connection's worth of smart HTTP (libgit2 makes one per fetch or
/// push).
pub(super) struct HttpSubtransport {
    network: Network,
    client: reqwest::Client,
    session: Mutex<Session>,
}

/// What the first request settled for the rest of the transfer.
#[derive(Default)]
struct Session {
    /// The repository's URL, after redirects.
    base: Option<Url>,
    /// The credentials the server accepted.
    login: Option<Login>,
}

/// HTTP Basic credentials.
#[derive(Clone)]
struct Login {
    user: String,
    password: String,
}

impl HttpSubtransport {
    /// A subtransport with its own client: loading the trust store costs
    /// tens of milliseconds, nothing beside a network transfer, and the
    /// client goes when the transfer ends instead of staying in an idle
    /// agent.
    pub(super) fn new(network: Network) -> Result<Self, git2::Error> {
        let options = HttpOptions {
            connect_timeout: network.timeout,
            read_timeout: Some(network.timeout),
            max_idle_per_host: Some(1),
            tls: Tls::SystemRoots,
            follow_redirects: false,
        };
        let client = crate::http::client(&options).map_err(|err| {
            net_error(
                ErrorCode::GenericError,
                format!("cannot set up HTTPS: {}", describe(&err)),
            )
        })?;
        Ok(Self {
            network,
            client,
            session: Mutex::default(),
        })
    }

    /// `GET info/refs`: follows redirects and answers 401s with the next
    /// credentials, then keeps where it ended and what was accepted.
    fn advertisement(&self, url: &str, service: &str) -> Result<reqwest::Response, git2::Error> {
        let given = Url::parse(url)
            .map_err(|err| refused(format!("the remote's URL {url:?} is not valid: {err}")))?;
        let mut logins = Logins::new(&given, self.network.token.clone());
        let mut base = bare(&given);
        let mut login: Option<Login> = None;
        let mut redirects = 0;
        loop {
            let target = joined(&base, "info/refs")?;
            let mut target_with_query = target.clone();
            target_with_query.set_query(Some(&format!("service={service}")));
            let mut request = self
                .client
                .get(target_with_query)
                .header(header::USER_AGENT, user_agent())
                .header(header::ACCEPT, "*/*")
                .header(header::PRAGMA, "no-cache");
            if let Some(login) = &login {
                request = request.basic_auth(&login.user, Some(&login.password));
            }
            let response = self
                .network
                .runtime
                .block_on(request.send())
                .map_err(|err| unreachable(&base, &err))?;
            let status = response.status();
            if status.is_redirection() {
                redirects += 1;
                if redirects > MOST_REDIRECTS {
                    return Err(net_error(
                        ErrorCode::GenericError,
                        format!("{given} redirected more than {MOST_REDIRECTS} times"),
                    ));
                }
                let next = redirected(&base, &target, &response)?;
                if next.origin() != base.origin() {
                    // Credentials belong to the server that accepted them.
                    login = None;
                }
                base = next;
                continue;
            }
            if status == StatusCode::UNAUTHORIZED {
                match logins.next(&base) {
                    Some(next) => {
                        login = Some(next);
                        continue;
                    }
                    None => return Err(logins.failure()),
                }
            }
            if status == StatusCode::NOT_FOUND {
                return Err(net_error(
                    ErrorCode::NotFound,
                    format!("{base} has no git repository (HTTP 404)"),
                ));
            }
            if !status.is_success() {
                return Err(net_error(
                    ErrorCode::GenericError,
                    format!("{base} answered HTTP {status}"),
                ));
            }
            let wanted = format!("application/x-{service}-advertisement");
            let content_type = response
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("");
            if content_type != wanted {
                return Err(net_error(
                    ErrorCode::GenericError,
                    format!(
                        "{base} did not answer as a smart git server (content type {content_type:?}, not {wanted}); git's older \"dumb\" HTTP is not supported"
                    ),
                ));
            }
            let mut session = crate::sync::lock(&self.session);
            session.base = Some(base);
            session.login = login;
            return Ok(response);
        }
    }
}

impl SmartSubtransport for HttpSubtransport {
    fn action(
        &self,
        url: &str,
        action: Service,
    ) -> Result<Box<dyn SmartSubtransportStream>, git2::Error> {
        let (service, listing) = match action {
            Service::UploadPackLs => ("git-upload-pack", true),
            Service::UploadPack => ("git-upload-pack", false),
            Service::ReceivePackLs => ("git-receive-pack", true),
            Service::ReceivePack => ("git-receive-pack", false),
        };
        if listing {
            let response = self.advertisement(url, service)?;
            let remote = response.url().to_string();
            return Ok(Box::new(Exchange {
                runtime: self.network.runtime.clone(),
                request: None,
                body: Vec::new(),
                response: Some(response),
                unread: Unread::default(),
                remote,
            }));
        }
        let (base, login) = {
            let session = crate::sync::lock(&self.session);
            (session.base.clone(), session.login.clone())
        };
        let base =
            match base {
                Some(base) => base,
                None => bare(&Url::parse(url).map_err(|err| {
                    refused(format!("the remote's URL {url:?} is not valid: {err}"))
                })?),
            };
        let target = joined(&base, service)?;
        let mut request = self
            .client
            .post(target.clone())
            .header(header::USER_AGENT, user_agent())
            .header(
                header::CONTENT_TYPE,
                format!("application/x-{service}-request"),
            )
            .header(header::ACCEPT, format!("application/x-{service}-result"));
        if let Some(login) = &login {
            request = request.basic_auth(&login.user, Some(&login.password));
        }
        Ok(Box::new(Exchange {
            runtime: self.network.runtime.clone(),
            request: Some(request),
            body: Vec::new(),
            response: None,
            unread: Unread::default(),
            remote: target.to_string(),
        }))
    }

    fn close(&self) -> Result<(), git2::Error> {
        Ok(())
    }
}

/// Where credentials come from, each source tried once.
struct Logins {
    /// A user and password written in the remote's URL, for its own server
    /// only (not one it redirects to).
    from_url: Option<(Url, Login)>,
    /// The user named in the URL, if any.
    user: Option<String>,
    tried_helper: bool,
    token: Option<Token>,
    /// Why `git.token` was not sent, for the final error.
    withheld: Option<String>,
}

impl Logins {
    fn new(url: &Url, token: Option<Token>) -> Self {
        let decode = |text: &str| percent_decoded(text).unwrap_or_else(|| text.to_owned());
        let user = Some(decode(url.username())).filter(|user| !user.is_empty());
        let from_url = match (&user, url.password()) {
            (Some(user), Some(password)) => Some((
                bare(url),
                Login {
                    user: user.clone(),
                    password: decode(password),
                },
            )),
            _ => None,
        };
        Self {
            from_url,
            user,
            tried_helper: false,
            token,
            withheld: None,
        }
    }

    /// The next credentials to offer `base`, or `None` when every source
    /// was tried.
    fn next(&mut self, base: &Url) -> Option<Login> {
        if let Some((server, login)) = self.from_url.take()
            && server.origin() == base.origin()
        {
            return Some(login);
        }
        if !self.tried_helper {
            self.tried_helper = true;
            // Never the repository's config: its `credential.helper` would
            // run whatever the repository names.
            if let Some(config) = credentials::user_config() {
                let mut helper = git2::CredentialHelper::new(base.as_str());
                helper.config(&config).username(self.user.as_deref());
                if let Some((user, password)) = helper.execute() {
                    return Some(Login { user, password });
                }
            }
        }
        if let Some(token) = self.token.take() {
            match token.for_url(base.as_str()) {
                Ok(secret) => {
                    return Some(Login {
                        user: self
                            .user
                            .clone()
                            .unwrap_or_else(|| "x-access-token".to_owned()),
                        password: secret.to_owned(),
                    });
                }
                Err(why) => self.withheld = Some(why),
            }
        }
        None
    }

    /// The error once every source was refused or had nothing.
    fn failure(&self) -> git2::Error {
        let mut message = "no (more) credentials to try from your git credential helper (from your own git config, never the repository's) or git.token".to_owned();
        if let Some(why) = &self.withheld {
            message.push_str("; ");
            message.push_str(why);
        }
        net_error(ErrorCode::Auth, message)
    }
}

/// One request and its answer, as the stream libgit2 writes to and then
/// reads from.
struct Exchange {
    runtime: Handle,
    /// The POST, until its body is complete (the first read sends it).
    request: Option<reqwest::RequestBuilder>,
    body: Vec<u8>,
    response: Option<reqwest::Response>,
    /// The part of the answer received and not yet read.
    unread: Unread,
    /// Where the request went, for errors.
    remote: String,
}

impl Exchange {
    fn send(&mut self, request: reqwest::RequestBuilder) -> io::Result<reqwest::Response> {
        let body = std::mem::take(&mut self.body);
        let response = self
            .runtime
            .block_on(request.body(body).send())
            .map_err(|err| io::Error::other(format!("{}: {}", self.remote, describe(&err))))?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED {
            return Err(io::Error::other(format!(
                "{} refused the credentials it accepted a moment ago (HTTP 401): authentication failed",
                self.remote
            )));
        }
        if !status.is_success() {
            return Err(io::Error::other(format!(
                "{} answered HTTP {status}",
                self.remote
            )));
        }
        Ok(response)
    }
}

impl Read for Exchange {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(request) = self.request.take() {
            self.response = Some(self.send(request)?);
        }
        while self.unread.is_empty() {
            let Some(response) = self.response.as_mut() else {
                return Ok(0);
            };
            match self.runtime.block_on(response.chunk()) {
                Ok(Some(bytes)) => {
                    self.unread = Unread::from(bytes.to_vec());
                }
                Ok(None) => {
                    self.response = None;
                    return Ok(0);
                }
                Err(err) => {
                    return Err(io::Error::other(format!(
                        "reading from {}: {}",
                        self.remote,
                        describe(&err)
                    )));
                }
            }
        }
        Ok(self.unread.read_into(buf))
    }
}

impl Write for Exchange {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.request.is_none() {
            return Err(io::Error::other(format!(
                "git wrote to {} after reading its answer",
                self.remote
            )));
        }
        self.body.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Some servers speak smart HTTP only to clients that name themselves git.
fn user_agent() -> String {
    format!("git/2.0 (omnipanel/{})", crate::version::current())
}

/// `url` without credentials, query or fragment, and without a trailing
/// slash: the base every request path is joined to.
fn bare(url: &Url) -> Url {
    let mut base = url.clone();
    // Only fails for URLs that cannot have credentials, which have none.
    let _ = base.set_username("");
    let _ = base.set_password(None);
    base.set_query(None);
    base.set_fragment(None);
    let path = base.path().trim_end_matches('/').to_owned();
    base.set_path(&path);
    base
}

/// `base` with `suffix` as a further path segment.
fn joined(base: &Url, suffix: &str) -> Result<Url, git2::Error> {
    let text = format!("{}/{suffix}", base.as_str().trim_end_matches('/'));
    Url::parse(&text)
        .map_err(|err| refused(format!("cannot make a request URL from {base}: {err}")))
}

/// The repository's new base after a redirect of `target` (its
/// `info/refs`), refusing a step down from https and a place that is not
/// a repository's `info/refs`.
fn redirected(base: &Url, target: &Url, response: &reqwest::Response) -> Result<Url, git2::Error> {
    let location = response
        .headers()
        .get(header::LOCATION)
        .and_then(|value| value.to_str().ok())
        .ok_or_else(|| {
            net_error(
                ErrorCode::GenericError,
                format!("{base} redirected without saying where to"),
            )
        })?;
    let next = target.join(location).map_err(|err| {
        net_error(
            ErrorCode::GenericError,
            format!("{base} redirected to an invalid URL {location:?}: {err}"),
        )
    })?;
    if !matches!(next.scheme(), "http" | "https") {
        return Err(refused(format!(
            "{base} redirected to {next}, which is not http or https"
        )));
    }
    if base.scheme() == "https" && next.scheme() != "https" {
        return Err(refused(format!(
            "{base} redirected from https to plain http ({next}); refusing to leave https"
        )));
    }
    let Some(repository) = next.path().strip_suffix("/info/refs") else {
        return Err(net_error(
            ErrorCode::GenericError,
            format!("{base} redirected to {next}, which is not a git repository's address"),
        ));
    };
    let mut moved = bare(&next);
    moved.set_path(repository);
    Ok(moved)
}

/// A request that found no server, or no answer in time.
fn unreachable(base: &Url, err: &reqwest::Error) -> git2::Error {
    net_error(
        ErrorCode::GenericError,
        format!("{base}: {}", describe(err)),
    )
}

/// `%XX` escapes decoded, when they make UTF-8.
fn percent_decoded(text: &str) -> Option<String> {
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .ok()
        .map(std::borrow::Cow::into_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_drops_credentials_query_and_trailing_slashes()
    -> Result<(), Box<dyn std::error::Error>> {
        let url = Url::parse("https://me:pw@host.example:8443/team/repo.git/?x=1#f")?;
        assert_eq!(
            bare(&url).as_str(),
            "https://host.example:8443/team/repo.git"
        );
        Ok(())
    }

    #[test]
    fn credentials_in_the_url_are_decoded_and_tried_first() -> Result<(), Box<dyn std::error::Error>>
    {
        let url = Url::parse("https://me%40work:p%3Ass@host.example/repo.git")?;
        let mut logins = Logins::new(&url, None);
        let first = logins.next(&bare(&url)).map(|l| (l.user, l.password));
        assert_eq!(first, Some(("me@work".to_owned(), "p:ss".to_owned())));
        Ok(())
    }

    #[test]
    fn credentials_in_the_url_are_not_sent_to_another_server()
    -> Result<(), Box<dyn std::error::Error>> {
        let url = Url::parse("https://me:pw@host.example/repo.git")?;
        let mut logins = Logins::new(&url, None);
        logins.tried_helper = true;
        let elsewhere = Url::parse("https://mirror.example/repo.git")?;
        assert!(logins.next(&elsewhere).is_none());
        Ok(())
    }

    #[test]
    fn the_token_goes_as_x_access_token_only_where_listed() -> Result<(), Box<dyn std::error::Error>>
    {
        let token = Token {
            secret: "s3cret".to_owned(),
            hosts: vec!["host.example".to_owned()],
        };
        let listed = Url::parse("https://host.example/repo.git")?;
        let mut logins = Logins::new(&listed, Some(token.clone()));
        logins.tried_helper = true;
        let login = logins.next(&listed).map(|l| (l.user, l.password));
        assert_eq!(
            login,
            Some(("x-access-token".to_owned(), "s3cret".to_owned()))
        );
        assert!(logins.next(&listed).is_none(), "tried twice");

        let plain = Url::parse("http://host.example/repo.git")?;
        let mut logins = Logins::new(&plain, Some(token));
        logins.tried_helper = true;
        assert!(logins.next(&plain).is_none());
        let failure = logins.failure();
        assert_eq!(failure.code(), ErrorCode::Auth);
        assert!(failure.message().contains("plain http"), "{failure}");
        Ok(())
    }
}
