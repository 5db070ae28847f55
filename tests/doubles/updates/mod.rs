//! A test double of an update server: a tiny HTTP/1.1 server on loopback
//! (std threads, no framework) serving fixed files, with byte ranges
//! (`Range: bytes=N-` answered 206) and a switch that cuts the first
//! response of one file short to simulate a dropped connection. It records
//! every request so tests can check that a download resumed. Also helpers
//! to build update artifacts: stamping a version into a copy of the agent
//! binary (see agent/src/version.rs), packing binaries into a .tar.gz, and
//! signing artifacts and manifests with a key generated per run.

use std::{
    collections::HashMap,
    io::{BufRead, BufReader, Write},
    net::{TcpListener, TcpStream},
    sync::{Arc, Mutex},
};

use crate::TestResult;

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRequest {
    /// Path requested.
    pub path: String,
    /// The Range header, if any.
    pub range: Option<String>,
}

#[derive(Debug, Default)]
struct Shared {
    files: HashMap<String, Vec<u8>>,
    /// Path whose next response sends only this many body bytes, then
    /// closes (the header still announces the full length).
    cut: Option<(String, usize)>,
    seen: Vec<SeenRequest>,
}

/// The running server; stops when dropped (its thread ends with the
/// process, it holds no resources worth reclaiming earlier).
#[derive(Debug, Clone)]
pub struct UpdateServer {
    port: u16,
    shared: Arc<Mutex<Shared>>,
}

impl UpdateServer {
    /// Start on a free loopback port.
    pub fn start() -> TestResult<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let server_shared = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = server_shared.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &shared);
                });
            }
        });
        Ok(Self { port, shared })
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:port/path`.
    pub fn url(&self, path: &str) -> String {
        format!(
            "http://127.0.0.1:{}/{}",
            self.port,
            path.trim_start_matches('/')
        )
    }

    /// Serve `data` at `path`.
    pub fn put(&self, path: &str, data: Vec<u8>) {
        if let Ok(mut shared) = self.shared.lock() {
            shared
                .files
                .insert(format!("/{}", path.trim_start_matches('/')), data);
        }
    }

    /// Cut the next response for `path` after `bytes` body bytes.
    pub fn cut_next(&self, path: &str, bytes: usize) {
        if let Ok(mut shared) = self.shared.lock() {
            shared.cut = Some((format!("/{}", path.trim_start_matches('/')), bytes));
        }
    }

    /// Requests seen so far.
    pub fn seen(&self) -> Vec<SeenRequest> {
        self.shared
            .lock()
            .map(|s| s.seen.clone())
            .unwrap_or_default()
    }
}

fn serve(stream: TcpStream, shared: &Mutex<Shared>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut stream = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("/")
            .to_owned();
        let mut range = None;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("range")
            {
                range = Some(value.trim().to_owned());
            }
        }
        let (body, cut) = {
            let mut shared = shared
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?;
            shared.seen.push(SeenRequest {
                path: path.clone(),
                range: range.clone(),
            });
            let cut = match &shared.cut {
                Some((cut_path, bytes)) if *cut_path == path => {
                    let bytes = *bytes;
                    shared.cut = None;
                    Some(bytes)
                }
                _ => None,
            };
            (shared.files.get(&path).cloned(), cut)
        };
        let Some(body) = body else {
            stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")?;
            continue;
        };
        let start = range
            .as_deref()
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.strip_suffix('-'))
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n <= body.len());
        let (status, slice) = match start {
            Some(start) => (
                format!(
                    "206 Partial Content\r\nContent-Range: bytes {start}-{}/{}",
                    body.len().saturating_sub(1),
                    body.len()
                ),
                &body[start..],
            ),
            None => ("200 OK".to_owned(), &body[..]),
        };
        write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\n\r\n",
            slice.len()
        )?;
        match cut {
            Some(bytes) => {
                stream.write_all(&slice[..bytes.min(slice.len())])?;
                stream.flush()?;
                // Drop the connection mid-body.
                return stream.shutdown(std::net::Shutdown::Both);
            }
            None => stream.write_all(slice)?,
        }
    }
}

/// The marker of the version slot in the agent binary.
const VERSION_MARKER: &[u8] = b"@@OMNIPANEL-VERSION-SLOT@@";
/// Bytes of the slot after the marker.
const VERSION_CAPACITY: usize = 40;

/// A copy of `binary` that reports `version`.
pub fn stamp_version(binary: &[u8], version: &str) -> TestResult<Vec<u8>> {
    let positions: Vec<usize> = binary
        .windows(VERSION_MARKER.len())
        .enumerate()
        .filter(|(_, w)| *w == VERSION_MARKER)
        .map(|(i, _)| i)
        .collect();
    let [at] = positions[..] else {
        return Err(format!("expected one version slot, found {}", positions.len()).into());
    };
    if version.len() > VERSION_CAPACITY {
        return Err("version too long".into());
    }
    let mut out = binary.to_vec();
    let slot = &mut out[at + VERSION_MARKER.len()..at + VERSION_MARKER.len() + VERSION_CAPACITY];
    slot.fill(0);
    slot[..version.len()].copy_from_slice(version.as_bytes());
    Ok(out)
}

/// A .tar.gz holding `files` (name, bytes) under a top-level folder, as
/// release artifacts do.
pub fn tar_gz(files: &[(&str, &[u8])]) -> TestResult<Vec<u8>> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (name, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o755);
        header.set_cksum();
        builder.append_data(&mut header, format!("omnipanel/{name}"), *data)?;
    }
    Ok(builder.into_inner()?.finish()?)
}

/// A test-only minisign key pair, generated per test run (nothing secret
/// is committed).
pub struct SigningKey {
    keypair: minisign::KeyPair,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey")
    }
}

impl SigningKey {
    /// A fresh key pair.
    pub fn generate() -> TestResult<Self> {
        Ok(Self {
            keypair: minisign::KeyPair::generate_unencrypted_keypair()?,
        })
    }

    /// The public key as `[update] public_key` takes it.
    pub fn public_base64(&self) -> String {
        self.keypair.pk.to_base64()
    }

    /// A minisign signature of `data` (the .minisig text).
    pub fn sign(&self, data: &[u8]) -> TestResult<String> {
        self.sign_with_comment(data, "test artifact")
    }

    /// A minisign signature of `data` whose signed trusted comment is
    /// `comment`.
    pub fn sign_with_comment(&self, data: &[u8], comment: &str) -> TestResult<String> {
        let signature = minisign::sign(
            Some(&self.keypair.pk),
            &self.keypair.sk,
            std::io::Cursor::new(data),
            Some(comment),
            None,
        )?;
        Ok(signature.into_string())
    }

    /// The detached signature of a release manifest, as
    /// scripts/release-manifest.py has it signed: the trusted comment
    /// names the manifest's version, channel and platforms.
    pub fn sign_manifest(&self, manifest: &[u8]) -> TestResult<String> {
        let value: serde_json::Value = serde_json::from_slice(manifest)?;
        let mut platforms: Vec<String> = value["platforms"]
            .as_object()
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        platforms.sort();
        let comment = format!(
            "omnipanel-manifest version={} channel={} platforms={}",
            value["version"].as_str().unwrap_or_default(),
            value["channel"].as_str().unwrap_or_default(),
            platforms.join(",")
        );
        self.sign_with_comment(manifest, &comment)
    }
}

/// SHA-256 of `data`, lowercase hex.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
