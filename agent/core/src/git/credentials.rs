//! Where a transfer's credentials may come from, and where they may go.
//! The repository is not trusted: its `.git/config` chooses the remote's
//! URL, but never a program to run. So credential helpers are read only
//! from the user's own git configuration (global, XDG and system files,
//! libgit2's "default" config, which leaves out the repository's local
//! one): a `credential.helper` (`!command` or a path) that only the
//! repository names never runs. And `git.token` is a secret of the user's
//! for particular hosts: it is sent only over https, only to a host listed
//! in `git.token_hosts`; anywhere else it is withheld, and the final
//! authentication error says why the token was not sent and which key to
//! set. The HTTP transport (`transport/http.rs`) asks these in turn; ssh
//! remotes authenticate through the user's own `ssh`.

use git2::Config;

/// `git.token` with the hosts it may be sent to.
#[derive(Clone, Default)]
pub struct Token {
    /// The secret.
    pub secret: String,
    /// Host names (lower case) it may be sent to, over https only.
    pub hosts: Vec<String>,
}

// Never print the secret.
impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("hosts", &self.hosts)
            .finish_non_exhaustive()
    }
}

impl Token {
    /// The secret, when it may be sent to `url`; otherwise why not, in
    /// words that name the remote and the setting to change.
    pub fn for_url(&self, url: &str) -> Result<&str, String> {
        let parsed = reqwest::Url::parse(url).ok();
        let host = parsed.as_ref().and_then(|u| u.host_str()).map(|h| {
            h.trim_start_matches('[')
                .trim_end_matches(']')
                .to_ascii_lowercase()
        });
        let Some(host) = host else {
            return Err(format!(
                "git.token is only sent to https remotes, and {url} is not one"
            ));
        };
        if self.hosts.is_empty() {
            return Err(format!(
                "git.token is set but git.token_hosts lists no hosts, so it is sent nowhere; add \"{host}\" to git.token_hosts in config.toml to use it for {url}"
            ));
        }
        if !self
            .hosts
            .iter()
            .any(|listed| listed.eq_ignore_ascii_case(&host))
        {
            return Err(format!(
                "git.token is not sent to {host} ({url}): that host is not in git.token_hosts"
            ));
        }
        match parsed.as_ref().map(reqwest::Url::scheme) {
            Some("https") => Ok(&self.secret),
            Some("http") => Err(format!(
                "git.token is never sent over plain http ({url}); use the remote's https:// URL"
            )),
            _ => Err(format!(
                "git.token is only sent to https remotes, and {url} is not one"
            )),
        }
    }
}

/// The user's own git configuration (global, XDG, system), without the
/// repository's: the only place credential helpers are taken from.
/// `None` when it cannot be read (then no helper runs).
pub fn user_config() -> Option<Config> {
    match Config::open_default() {
        Ok(config) => Some(config),
        Err(err) => {
            tracing::debug!(error = %err, "cannot read the user's git config; no credential helper will run");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(hosts: &[&str]) -> Token {
        Token {
            secret: "s3cret".to_owned(),
            hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
        }
    }

    #[test]
    fn sent_only_over_https_to_listed_hosts() {
        let listed = token(&["github.com", "git.example.org"]);
        assert_eq!(
            listed.for_url("https://github.com/me/repo.git"),
            Ok("s3cret")
        );
        assert_eq!(
            listed.for_url("https://GIT.Example.org:8443/x.git"),
            Ok("s3cret")
        );
        let http = listed
            .for_url("http://github.com/me/repo.git")
            .expect_err("plain http");
        assert!(
            http.contains("plain http") && http.contains("http://github.com/me/repo.git"),
            "{http}"
        );
        let other = listed
            .for_url("https://evil.example.net/me/repo.git")
            .expect_err("unlisted host");
        assert!(
            other.contains("evil.example.net") && other.contains("git.token_hosts"),
            "{other}"
        );
        // A suffix is not the host.
        assert!(listed.for_url("https://notgithub.com/x").is_err());
        assert!(listed.for_url("https://github.com.evil.net/x").is_err());
        // ssh (and scp-like) remotes never get the token as a password.
        assert!(listed.for_url("ssh://git@github.com/me/repo.git").is_err());
        assert!(listed.for_url("git@github.com:me/repo.git").is_err());
    }

    #[test]
    fn no_hosts_means_nowhere_and_says_which_key_to_set() {
        let unlisted = token(&[]);
        let why = unlisted
            .for_url("https://github.com/me/repo.git")
            .expect_err("no hosts");
        assert!(
            why.contains("git.token_hosts") && why.contains("\"github.com\""),
            "{why}"
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        assert!(!format!("{:?}", token(&["a"])).contains("s3cret"));
    }
}
