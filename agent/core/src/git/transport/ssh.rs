//! ssh remotes (`ssh://`, `ssh+git://`, `git+ssh://` and scp-like
//! `user@host:path`) through the user's own `ssh`, the way git itself does:
//! `ssh … host "git-upload-pack '<path>'"`, then the git protocol over its
//! standard input and output. So `~/.ssh/config`, ssh-agent, keys and
//! known_hosts all apply, and nothing of libssh2 or OpenSSL is linked in.
//! `ssh` runs in batch mode (it never asks for a password or a new host
//! key: there is nobody to answer) with `git.timeout` for connecting and
//! for a server that stops answering. The repository chooses the URL, so
//! a host or user that `ssh` would read as an option (`-oProxyCommand=…`)
//! is refused before anything runs.

use std::{
    io::{self, Read, Write},
    process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
        mpsc::{self, Receiver, RecvTimeoutError, SyncSender},
    },
    thread::JoinHandle,
    time::Duration,
};

use git2::{
    ErrorClass, ErrorCode,
    transport::{Service, SmartSubtransport, SmartSubtransportStream},
};

use super::{Network, Unread, refused};

/// The end of what ssh wrote to its standard error, kept for errors.
const STDERR_KEPT: usize = 4096;

/// One connection: libgit2 lists the references and then fetches or pushes
/// on the same stream.
pub(super) struct SshSubtransport {
    network: Network,
}

impl SshSubtransport {
    pub(super) fn new(network: Network) -> Self {
        Self { network }
    }
}

impl SmartSubtransport for SshSubtransport {
    fn action(
        &self,
        url: &str,
        action: Service,
    ) -> Result<Box<dyn SmartSubtransportStream>, git2::Error> {
        let program = match action {
            Service::UploadPackLs => "git-upload-pack",
            Service::ReceivePackLs => "git-receive-pack",
            // A stateful transport goes on with the listing's stream;
            // libgit2 never asks for a second one.
            Service::UploadPack | Service::ReceivePack => {
                return Err(git2::Error::new(
                    ErrorCode::GenericError,
                    ErrorClass::Ssh,
                    "ssh: the exchange asked for a second connection",
                ));
            }
        };
        let target = Target::parse(url).map_err(refused)?;
        let mut stream = SshStream::start(&target, program, &self.network)?;
        stream.wait_for_first_answer()?;
        Ok(Box::new(stream))
    }

    fn close(&self) -> Result<(), git2::Error> {
        Ok(())
    }
}

/// Where an ssh remote points.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    user: Option<String>,
    host: String,
    port: Option<u16>,
    /// The repository's path on the host, as the remote command gets it.
    path: String,
}

impl Target {
    /// `ssh://[user@]host[:port]/path` (and its `ssh+git`/`git+ssh`
    /// spellings) or scp-like `[user@]host:path`; an IPv6 host in brackets.
    /// The error says what is wrong with the URL.
    fn parse(url: &str) -> Result<Self, String> {
        let (user_host, port, path) = match url.split_once("://") {
            Some((scheme, rest)) => {
                if !["ssh", "ssh+git", "git+ssh"]
                    .iter()
                    .any(|known| known.eq_ignore_ascii_case(scheme))
                {
                    return Err(format!("{url} is not an ssh URL"));
                }
                let (authority, path) = match rest.find('/') {
                    Some(at) => rest.split_at(at),
                    None => (rest, ""),
                };
                // git's convention: `ssh://host/~user/repo` is relative to
                // a home folder.
                let path = path
                    .strip_prefix('/')
                    .filter(|p| p.starts_with('~'))
                    .unwrap_or(path);
                let (user_host, port) = split_port(authority, url)?;
                (user_host, port, path)
            }
            None => {
                let colon = if url.starts_with('[') || url.contains("@[") {
                    let close = url
                        .find(']')
                        .ok_or_else(|| format!("{url}: unclosed '['"))?;
                    close
                        + url[close..]
                            .find(':')
                            .ok_or_else(|| format!("{url}: no ':' before the path"))?
                } else {
                    url.find(':')
                        .ok_or_else(|| format!("{url}: no ':' before the path"))?
                };
                (&url[..colon], None, &url[colon + 1..])
            }
        };
        let (user, host) = match user_host.rfind('@') {
            Some(at) => (Some(&user_host[..at]), &user_host[at + 1..]),
            None => (None, user_host),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("{url} names no host"));
        }
        if path.is_empty() {
            return Err(format!("{url} names no repository path"));
        }
        if host.starts_with('-') {
            return Err(format!(
                "the remote's host {host:?} in {url} looks like an ssh option; refusing to run ssh with it"
            ));
        }
        if let Some(user) = user
            && (user.starts_with('-') || user.is_empty())
        {
            return Err(format!(
                "the remote's user name {user:?} in {url} looks like an ssh option or is empty; refusing to run ssh with it"
            ));
        }
        Ok(Self {
            user: user.map(str::to_owned),
            host: host.to_owned(),
            port,
            path: path.to_owned(),
        })
    }

    /// The `ssh` command line for running `program` on the repository.
    fn command(&self, program: &str, timeout: Duration) -> Command {
        let seconds = timeout.as_secs().max(1);
        // Three unanswered keep-alives end the session: about `timeout`.
        let keep_alive = (seconds / 3).max(1);
        let mut command = Command::new("ssh");
        command
            .args(["-o", "BatchMode=yes"])
            .arg("-o")
            .arg(format!("ConnectTimeout={seconds}"))
            .arg("-o")
            .arg(format!("ServerAliveInterval={keep_alive}"))
            .args(["-o", "ServerAliveCountMax=3"]);
        if let Some(port) = self.port {
            command.arg("-p").arg(port.to_string());
        }
        if let Some(user) = &self.user {
            command.arg("-l").arg(user);
        }
        // `--`: nothing after it is an option, whatever `parse` missed.
        command
            .arg("--")
            .arg(&self.host)
            .arg(format!("{program} {}", shell_quoted(&self.path)));
        command
    }
}

/// `host[:port]` (or `[v6]:port`) split; the port must be a number.
fn split_port<'a>(authority: &'a str, url: &str) -> Result<(&'a str, Option<u16>), String> {
    let host_start = authority.rfind('@').map_or(0, |at| at + 1);
    let host_part = &authority[host_start..];
    let colon = if host_part.starts_with('[') {
        host_part
            .find(']')
            .ok_or_else(|| format!("{url}: unclosed '['"))?
            .checked_add(1)
            .filter(|&after| host_part[after..].starts_with(':'))
    } else {
        host_part.find(':')
    };
    let Some(colon) = colon else {
        return Ok((authority, None));
    };
    let port = &host_part[colon + 1..];
    if port.is_empty() {
        return Ok((&authority[..host_start + colon], None));
    }
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("{url}: the port {port:?} is not a number"))?;
    Ok((&authority[..host_start + colon], Some(port)))
}

/// `text` quoted for a POSIX shell on the server, as git quotes it (`!`
/// outside the quotes too, for csh users).
fn shell_quoted(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('\'');
    for c in text.chars() {
        match c {
            '\'' => quoted.push_str("'\\''"),
            '!' => quoted.push_str("'\\!'"),
            c => quoted.push(c),
        }
    }
    quoted.push('\'');
    quoted
}

/// Output chunks buffered between ssh and libgit2.
const CHUNKS_BUFFERED: usize = 4;

/// What the output reader hands on: a chunk of ssh's output, an empty one
/// at its end, or the error reading it.
type Chunk = io::Result<Vec<u8>>;

/// A running `ssh` as the stream libgit2 reads and writes. Its output is
/// read by a thread of its own, so that a read here can give up after
/// `git.timeout` when the server stops answering (a pipe has no read
/// timeout): what libgit2's socket timeout did for libssh2.
struct SshStream {
    /// `None` once handed to the reaper.
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    /// ssh's output, from `output_reader`.
    chunks: Receiver<Chunk>,
    output_reader: Option<JoinHandle<()>>,
    /// The chunk being handed on.
    unread: Unread,
    /// The end of ssh's standard error, filled by `stderr_reader`.
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_reader: Option<JoinHandle<()>>,
    /// ssh's output ended.
    ended: bool,
    /// How long the server may stay silent.
    timeout: Duration,
    /// The server stayed silent too long, or the transfer was cancelled:
    /// ssh is then stopped at once instead of left to finish.
    abandoned: bool,
    cancelled: Arc<AtomicBool>,
    host: String,
}

impl SshStream {
    fn start(target: &Target, program: &str, network: &Network) -> Result<Self, git2::Error> {
        let mut child = target
            .command(program, network.timeout)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| {
                if err.kind() == io::ErrorKind::NotFound {
                    refused(
                        "cannot run ssh: no `ssh` on PATH; install OpenSSH's client (e.g. apt install openssh-client)",
                    )
                } else {
                    ssh_error(format!("cannot run ssh: {err}"))
                }
            })?;
        let (Some(stdin), Some(stdout), Some(stderr_pipe)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(ssh_error("cannot run ssh: its pipes were not set up"));
        };
        let (sender, chunks) = mpsc::sync_channel(CHUNKS_BUFFERED);
        let output_reader = spawn_reader("ssh-stdout", move || read_output(stdout, &sender));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let kept = stderr.clone();
        // ssh's messages are read as they come, so that ssh never blocks
        // on a full pipe, keeping only the end.
        let stderr_reader = spawn_reader("ssh-stderr", move || keep_the_end(stderr_pipe, &kept));
        let (output_reader, stderr_reader) = match (output_reader, stderr_reader) {
            (Ok(output), Ok(stderr)) => (output, stderr),
            (Err(err), _) | (_, Err(err)) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(ssh_error(format!("cannot start reading ssh: {err}")));
            }
        };
        Ok(Self {
            child: Some(child),
            stdin: Some(stdin),
            chunks,
            output_reader: Some(output_reader),
            unread: Unread::default(),
            stderr,
            stderr_reader: Some(stderr_reader),
            ended: false,
            timeout: network.timeout,
            abandoned: false,
            cancelled: network.cancelled.clone(),
            host: target.host.clone(),
        })
    }

    /// The next chunk of output, waiting at most `timeout`; `None` at its
    /// end.
    fn next_chunk(&mut self, timeout: Duration) -> io::Result<Option<Vec<u8>>> {
        match self.chunks.recv_timeout(timeout) {
            Ok(Ok(chunk)) if chunk.is_empty() => Ok(None),
            Ok(Ok(chunk)) => Ok(Some(chunk)),
            Ok(Err(err)) => Err(err),
            Err(RecvTimeoutError::Disconnected) => Ok(None),
            Err(RecvTimeoutError::Timeout) => {
                self.abandoned = true;
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "ssh to {}: no answer for {}; the server stopped answering (git.timeout)",
                        self.host,
                        humantime::format_duration(timeout)
                    ),
                ))
            }
        }
    }

    /// Read the server's first bytes (the reference listing always comes
    /// first), so that an ssh that fails (refused key, unknown host key,
    /// no such host) is reported here with what ssh said and a code
    /// libgit2 passes on, rather than as git's "early EOF". Connecting
    /// has a timeout of its own, so this waits for twice `git.timeout`.
    fn wait_for_first_answer(&mut self) -> Result<(), git2::Error> {
        let first = self
            .next_chunk(self.timeout.saturating_mul(2))
            .map_err(|err| ssh_error(err.to_string()))?;
        if let Some(chunk) = first {
            self.unread = Unread::from(chunk);
            return Ok(());
        }
        self.ended = true;
        let (_, said) = self.finish();
        let said = said.trim();
        let what = if said.is_empty() {
            "ssh ended without a word".to_owned()
        } else {
            said.to_owned()
        };
        Err(if said.contains("Permission denied") {
            git2::Error::new(
                ErrorCode::Auth,
                ErrorClass::Ssh,
                format!("ssh to {} was refused: {what}", self.host),
            )
        } else if said.contains("Host key verification failed") {
            refused(format!(
                "ssh does not know {}'s host key ({what}); connect once with `ssh {}` in a terminal to check and accept it",
                self.host, self.host
            ))
        } else {
            ssh_error(format!("ssh to {}: {what}", self.host))
        })
    }

    /// Wait for ssh to end: whether it succeeded, and what it wrote to
    /// standard error (its exit status when it wrote nothing).
    fn finish(&mut self) -> (bool, String) {
        let status = self.child.as_mut().map(Child::wait);
        if let Some(reader) = self.stderr_reader.take() {
            let _ = reader.join();
        }
        let mut said = String::from_utf8_lossy(&crate::sync::lock(&self.stderr)).into_owned();
        let succeeded = match status {
            Some(Ok(status)) => {
                if !status.success() && said.trim().is_empty() {
                    said = format!("ssh ended with {status}");
                }
                status.success()
            }
            Some(Err(err)) => {
                said = format!("cannot learn how ssh ended: {err}");
                false
            }
            None => true,
        };
        (succeeded, said)
    }
}

/// Start a thread that reads one of ssh's pipes.
fn spawn_reader(name: &str, read: impl FnOnce() + Send + 'static) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(read)
}

/// Hand ssh's output on in chunks until it ends (an empty chunk) or fails,
/// or nobody reads any more.
fn read_output(mut stdout: ChildStdout, chunks: &SyncSender<Chunk>) {
    loop {
        let mut buf = vec![0u8; 64 * 1024];
        let chunk = match stdout.read(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                Ok(buf)
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => Err(io::Error::other(format!("reading from ssh: {err}"))),
        };
        let last = !matches!(&chunk, Ok(buf) if !buf.is_empty());
        if chunks.send(chunk).is_err() || last {
            return;
        }
    }
}

/// Keep the last [`STDERR_KEPT`] bytes of ssh's messages until it ends.
fn keep_the_end(mut stderr: ChildStderr, kept: &Mutex<Vec<u8>>) {
    let mut buf = [0u8; 1024];
    while let Ok(n) = stderr.read(&mut buf) {
        if n == 0 {
            break;
        }
        let mut kept = crate::sync::lock(kept);
        kept.extend_from_slice(&buf[..n]);
        let excess = kept.len().saturating_sub(STDERR_KEPT);
        kept.drain(..excess);
    }
}

impl Read for SshStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.unread.is_empty() {
            if self.ended {
                return Ok(0);
            }
            match self.next_chunk(self.timeout)? {
                Some(chunk) => {
                    self.unread = Unread::from(chunk);
                }
                None => {
                    self.ended = true;
                    // The server ended the exchange; if ssh failed, say why
                    // instead of leaving git to report a bare "early EOF".
                    let (succeeded, said) = self.finish();
                    if !succeeded {
                        return Err(io::Error::other(format!(
                            "ssh to {}: {}",
                            self.host,
                            said.trim()
                        )));
                    }
                    return Ok(0);
                }
            }
        }
        Ok(self.unread.read_into(buf))
    }
}

impl Write for SshStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(io::Error::other("ssh's input is already closed"));
        };
        stdin.write(buf).map_err(|err| {
            let said = crate::sync::lock(&self.stderr);
            let said = String::from_utf8_lossy(&said);
            io::Error::other(format!(
                "writing to ssh ({}): {err} {}",
                self.host,
                said.trim()
            ))
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stdin.as_mut().map_or(Ok(()), ChildStdin::flush)
    }
}

impl Drop for SshStream {
    fn drop(&mut self) {
        // Closing its input lets the server end (after a push, when its
        // hooks are done, as git waits for them); a silent server or a
        // cancelled transfer ends ssh at once.
        self.stdin = None;
        let Some(mut child) = self.child.take() else {
            return;
        };
        if self.abandoned || self.cancelled.load(Ordering::Relaxed) {
            let _ = child.kill();
        }
        // Reaped off this thread, so that libgit2 need not wait for ssh to
        // say goodbye. The readers end with ssh's pipes.
        let readers = [self.output_reader.take(), self.stderr_reader.take()];
        let _ = std::thread::Builder::new()
            .name("ssh-reaper".into())
            .spawn(move || {
                let _ = child.wait();
                for reader in readers.into_iter().flatten() {
                    let _ = reader.join();
                }
            });
    }
}

fn ssh_error(message: impl AsRef<str>) -> git2::Error {
    git2::Error::new(ErrorCode::GenericError, ErrorClass::Ssh, message.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(user: Option<&str>, host: &str, port: Option<u16>, path: &str) -> Target {
        Target {
            user: user.map(str::to_owned),
            host: host.to_owned(),
            port,
            path: path.to_owned(),
        }
    }

    #[test]
    fn ssh_urls_and_scp_like_remotes_are_read_as_git_reads_them() {
        let cases = [
            (
                "ssh://git@example.com/team/repo.git",
                target(Some("git"), "example.com", None, "/team/repo.git"),
            ),
            (
                "SSH://example.com:2222/srv/repo.git",
                target(None, "example.com", Some(2222), "/srv/repo.git"),
            ),
            (
                "git+ssh://me@[::1]:22/~/repo.git",
                target(Some("me"), "::1", Some(22), "~/repo.git"),
            ),
            (
                "ssh+git://host/~alice/repo",
                target(None, "host", None, "~alice/repo"),
            ),
            (
                "git@github.com:team/repo.git",
                target(Some("git"), "github.com", None, "team/repo.git"),
            ),
            ("host:/abs/repo", target(None, "host", None, "/abs/repo")),
            ("[::1]:repo", target(None, "::1", None, "repo")),
            (
                "me@[fe80::1]:repo",
                target(Some("me"), "fe80::1", None, "repo"),
            ),
        ];
        for (url, wanted) in cases {
            assert_eq!(Target::parse(url), Ok(wanted), "{url}");
        }
    }

    #[test]
    fn hosts_and_users_that_read_as_options_are_refused() {
        for url in [
            "ssh://-oProxyCommand=touch${IFS}pwned/x.git",
            "-oProxyCommand=touch:repo.git",
            "ssh://-lroot@host/x",
            "x@-oProxyCommand=y:repo",
            "ssh://@host/x",
        ] {
            let why = Target::parse(url).expect_err(url);
            assert!(why.contains(url), "{why}");
        }
        for url in [
            "ssh://host",
            "host:",
            "ssh://:22/x",
            "ssh://host:port/x",
            "ssh://[::1/x",
        ] {
            assert!(Target::parse(url).is_err(), "{url}");
        }
    }

    #[test]
    fn the_remote_command_quotes_the_path_and_options_end_before_the_host() {
        let command = target(Some("git"), "example.com", Some(2222), "/a b/it's!.git")
            .command("git-upload-pack", Duration::from_secs(30));
        let args: Vec<String> = command
            .get_args()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect();
        assert_eq!(command.get_program(), "ssh");
        assert_eq!(
            args,
            [
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=30",
                "-o",
                "ServerAliveInterval=10",
                "-o",
                "ServerAliveCountMax=3",
                "-p",
                "2222",
                "-l",
                "git",
                "--",
                "example.com",
                "git-upload-pack '/a b/it'\\''s'\\!'.git'",
            ]
        );
    }
}
