//! The release manifest: a small JSON document per channel naming the
//! newest version, its channel, its notes, and per platform the artifact's
//! URL, size, SHA-256 and minisign signature. The manifest itself is signed
//! too: a detached minisign signature over its exact bytes (served at the
//! manifest's URL + `.minisig`, made with the same key as the artifacts)
//! whose signed trusted comment repeats version, channel and platforms
//! ([`trusted_comment`]). [`verify`] checks that signature before anything
//! in the manifest is parsed, then that the comment and the body agree, and
//! that the manifest belongs to the channel asked for (no pre-release on
//! stable). Also version ordering (semver without build metadata) and the
//! platform key of this build. Pure functions.
//!
//! ```json
//! {
//!   "version": "0.2.0",
//!   "channel": "stable",
//!   "notes": "What changed",
//!   "platforms": {
//!     "linux-x86_64": {
//!       "url": "omnipanel-0.2.0-linux-x86_64.tar.gz",
//!       "size": 12345678,
//!       "sha256": "…64 hex digits…",
//!       "signature": "untrusted comment: …\nRU…\ntrusted comment: …\n…"
//!     }
//!   }
//! }
//! ```
//!
//! with `manifest-stable.json.minisig` signed with the trusted comment
//! `omnipanel-manifest version=0.2.0 channel=stable platforms=linux-x86_64`.
//! A relative `url` is resolved against the manifest's own URL.

use std::{cmp::Ordering, collections::BTreeMap};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::reason::Reason;

/// The manifest as published.
#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    /// Newest version on the channel.
    pub version: String,
    /// The channel this manifest is for ("stable", "beta").
    pub channel: String,
    /// Release notes.
    #[serde(default)]
    pub notes: String,
    /// Artifacts by platform key (see [`platform_key`]).
    pub platforms: BTreeMap<String, Artifact>,
}

/// One platform's artifact.
#[derive(Debug, Clone, Deserialize)]
pub struct Artifact {
    /// Where to download it (absolute, or relative to the manifest).
    pub url: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256, hex.
    pub sha256: String,
    /// The minisign signature file's text.
    pub signature: String,
}

/// A release for this platform, ready to download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// Version.
    pub version: String,
    /// Notes.
    pub notes: String,
    /// Absolute artifact URL.
    pub url: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256, lowercase hex.
    pub sha256: String,
    /// Minisign signature text.
    pub signature: String,
}

/// This build's platform key, e.g. "linux-x86_64".
pub fn platform_key() -> String {
    format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH)
}

/// The first word of a manifest signature's trusted comment.
const COMMENT_TAG: &str = "omnipanel-manifest";

/// The trusted comment a manifest's signature carries: what the release
/// tooling (scripts/release-manifest.py) signs and [`verify`] expects.
pub fn trusted_comment<I, S>(version: &str, channel: &str, platforms: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut platforms: Vec<String> = platforms
        .into_iter()
        .map(|p| p.as_ref().to_owned())
        .collect();
    platforms.sort();
    format!(
        "{COMMENT_TAG} version={version} channel={channel} platforms={}",
        platforms.join(",")
    )
}

/// What the agent asks of a manifest it is about to act on.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The minisign public key (base64) that must have signed it.
    pub public_key: &'a str,
    /// The channel the agent follows.
    pub channel: &'a str,
    /// This build's platform key.
    pub platform: &'a str,
}

fn unsigned(message: String) -> Error {
    Error::failed_precondition(message).with_reason(Reason::UpdateManifestUnsigned)
}

fn wrong_channel(message: String) -> Error {
    Error::failed_precondition(message).with_reason(Reason::UpdateWrongChannel)
}

/// Parse a minisign public key (the base64 line of a .pub file).
pub fn public_key(text: &str) -> Result<minisign_verify::PublicKey> {
    minisign_verify::PublicKey::from_base64(text.trim()).map_err(|err| {
        Error::failed_precondition(format!(
            "the update public key is not valid ({err}); check [update] public_key"
        ))
    })
}

/// Verify the manifest `bytes` fetched from `manifest_url` against its
/// detached minisign `signature` before reading anything in it; then check
/// that the signed trusted comment names the manifest's own version,
/// channel and platforms, that the manifest is for `expected.channel` (and
/// offers no pre-release on stable), and pick this platform's artifact.
pub fn verify(
    bytes: &[u8],
    signature: &str,
    manifest_url: &str,
    expected: &Expected<'_>,
) -> Result<Release> {
    let key = public_key(expected.public_key)?;
    let signature = minisign_verify::Signature::decode(signature.trim()).map_err(|err| {
        unsigned(format!(
            "the signature of the update manifest ({manifest_url}.minisig) cannot be read ({err}); the manifest was ignored"
        ))
    })?;
    key.verify(bytes, &signature, false).map_err(|err| {
        unsigned(format!(
            "the update manifest at {manifest_url} is not signed with the update key ({err}); it was ignored and nothing changed"
        ))
    })?;
    let signed = SignedComment::parse(signature.trusted_comment()).ok_or_else(|| {
        unsigned(format!(
            "the signed comment of the update manifest at {manifest_url} is not \"{COMMENT_TAG} version=… channel=… platforms=…\" but {:?}; the manifest was ignored",
            signature.trusted_comment()
        ))
    })?;
    let text = std::str::from_utf8(bytes).map_err(|err| {
        Error::failed_precondition(format!(
            "the update manifest at {manifest_url} is not UTF-8 text: {err}"
        ))
        .with_reason(Reason::UpdateManifestInvalid)
    })?;
    let manifest = parse_manifest(text, manifest_url)?;
    let platforms: Vec<&str> = manifest.platforms.keys().map(String::as_str).collect();
    let mismatch = |what: &str, signed: &str, body: &str| {
        unsigned(format!(
            "the update manifest at {manifest_url} names {what} {body:?} but its signature says {signed:?}; it was ignored and nothing changed"
        ))
    };
    if signed.version != manifest.version {
        return Err(mismatch("version", &signed.version, &manifest.version));
    }
    if signed.channel != manifest.channel {
        return Err(mismatch("channel", &signed.channel, &manifest.channel));
    }
    if signed.platforms != platforms {
        return Err(mismatch(
            "platforms",
            &signed.platforms.join(","),
            &platforms.join(","),
        ));
    }
    if manifest.channel != expected.channel {
        return Err(wrong_channel(format!(
            "the update manifest at {manifest_url} is for the {:?} channel, but this agent follows {:?}; nothing changed",
            manifest.channel, expected.channel
        )));
    }
    if expected.channel == "stable" && is_prerelease(&manifest.version) {
        return Err(wrong_channel(format!(
            "the update manifest at {manifest_url} offers the pre-release {} on the stable channel; nothing changed",
            manifest.version
        )));
    }
    release_for(manifest, manifest_url, expected.platform)
}

/// The fields of a manifest signature's trusted comment.
#[derive(Debug, PartialEq, Eq)]
struct SignedComment {
    version: String,
    channel: String,
    /// Sorted, as [`trusted_comment`] writes them.
    platforms: Vec<String>,
}

impl SignedComment {
    fn parse(comment: &str) -> Option<Self> {
        let mut words = comment.split_whitespace();
        if words.next()? != COMMENT_TAG {
            return None;
        }
        let (mut version, mut channel, mut platforms) = (None, None, None);
        for word in words {
            let (key, value) = word.split_once('=')?;
            let slot = match key {
                "version" => &mut version,
                "channel" => &mut channel,
                "platforms" => &mut platforms,
                // Room for more signed facts later; an older agent skips them.
                _ => continue,
            };
            if slot.replace(value.to_owned()).is_some() {
                return None;
            }
        }
        let mut platforms: Vec<String> = platforms?
            .split(',')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect();
        platforms.sort();
        Some(Self {
            version: version?,
            channel: channel?,
            platforms,
        })
    }
}

fn parse_manifest(text: &str, manifest_url: &str) -> Result<Manifest> {
    let manifest: Manifest = serde_json::from_str(text).map_err(|err| {
        Error::failed_precondition(format!(
            "the update manifest at {manifest_url} is not valid: {err}"
        ))
        .with_reason(Reason::UpdateManifestInvalid)
    })?;
    if parse_version(&manifest.version).is_none() {
        return Err(Error::failed_precondition(format!(
            "the update manifest at {manifest_url} names version {:?}, which is not a version number",
            manifest.version
        ))
        .with_reason(Reason::UpdateManifestInvalid));
    }
    Ok(manifest)
}

/// Pick `platform`'s artifact of a verified manifest.
fn release_for(manifest: Manifest, manifest_url: &str, platform: &str) -> Result<Release> {
    let artifact = manifest.platforms.get(platform).ok_or_else(|| {
        Error::failed_precondition(format!(
            "version {} has no download for this platform ({platform}); the manifest offers {}",
            manifest.version,
            manifest
                .platforms
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .with_reason(Reason::UpdateNoArtifact)
    })?;
    let sha256 = artifact.sha256.trim().to_ascii_lowercase();
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::failed_precondition(format!(
            "the update manifest's sha256 for {platform} is not 64 hex digits"
        ))
        .with_reason(Reason::UpdateManifestInvalid));
    }
    let url = reqwest::Url::parse(manifest_url)
        .and_then(|base| base.join(&artifact.url))
        .map_err(|err| {
            Error::failed_precondition(format!(
                "the artifact URL {:?} in the manifest is not valid: {err}",
                artifact.url
            ))
            .with_reason(Reason::UpdateManifestInvalid)
        })?;
    Ok(Release {
        version: manifest.version,
        notes: manifest.notes,
        url: url.to_string(),
        size: artifact.size,
        sha256,
        signature: artifact.signature.clone(),
    })
}

/// A parsed version: numbers, then pre-release identifiers (empty for a
/// release).
type Version = (Vec<u64>, Vec<String>);

/// Parse "1.2.3", "v1.2.3", "1.2.3-beta.1" (build metadata ignored).
pub fn parse_version(text: &str) -> Option<Version> {
    let text = text.trim().trim_start_matches('v');
    let text = text.split('+').next().unwrap_or(text);
    let (core, pre) = match text.split_once('-') {
        Some((core, pre)) => (core, pre.split('.').map(str::to_owned).collect()),
        None => (text, Vec::new()),
    };
    let numbers: Option<Vec<u64>> = core.split('.').map(|part| part.parse().ok()).collect();
    let numbers = numbers?;
    (!numbers.is_empty() && numbers.len() <= 4).then_some((numbers, pre))
}

/// Order two versions; unparsable ones compare as equal (never "newer").
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let (Some((a_num, a_pre)), Some((b_num, b_pre))) = (parse_version(a), parse_version(b)) else {
        return Ordering::Equal;
    };
    let width = a_num.len().max(b_num.len());
    for i in 0..width {
        let order = a_num
            .get(i)
            .copied()
            .unwrap_or(0)
            .cmp(&b_num.get(i).copied().unwrap_or(0));
        if order != Ordering::Equal {
            return order;
        }
    }
    match (a_pre.is_empty(), b_pre.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => {
            for (x, y) in a_pre.iter().zip(&b_pre) {
                let order = match (x.parse::<u64>(), y.parse::<u64>()) {
                    (Ok(x), Ok(y)) => x.cmp(&y),
                    (Ok(_), Err(_)) => Ordering::Less,
                    (Err(_), Ok(_)) => Ordering::Greater,
                    (Err(_), Err(_)) => x.cmp(y),
                };
                if order != Ordering::Equal {
                    return order;
                }
            }
            a_pre.len().cmp(&b_pre.len())
        }
    }
}

/// Whether `version` has a pre-release part ("1.2.0-beta.1").
pub fn is_prerelease(version: &str) -> bool {
    parse_version(version).is_some_and(|(_, pre)| !pre.is_empty())
}

/// Whether `candidate` is newer than `current`.
pub fn is_newer(candidate: &str, current: &str) -> bool {
    compare_versions(candidate, current) == Ordering::Greater
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_like_semver() {
        assert!(is_newer("0.2.0", "0.1.0"));
        assert!(is_newer("0.10.0", "0.9.9"));
        assert!(is_newer("1.0.0", "1.0.0-beta.2"));
        assert!(is_newer("1.0.0-beta.10", "1.0.0-beta.2"));
        assert!(is_newer("v1.2.3", "1.2"));
        assert!(!is_newer("0.1.0", "0.1.0"));
        assert!(!is_newer("garbage", "0.1.0"));
    }

    #[test]
    fn picks_this_platform_and_resolves_relative_urls() -> Result<()> {
        let text = r#"{"version":"0.2.0","channel":"stable","notes":"n","platforms":{"linux-x86_64":{"url":"a/b.tar.gz","size":3,"sha256":"AB00000000000000000000000000000000000000000000000000000000000000","signature":"s"}}}"#;
        let parse = |text: &str, url: &str, platform: &str| {
            parse_manifest(text, url).and_then(|m| release_for(m, url, platform))
        };
        let release = parse(text, "http://127.0.0.1:1/ch/stable.json", "linux-x86_64")?;
        assert_eq!(release.url, "http://127.0.0.1:1/ch/a/b.tar.gz");
        assert!(release.sha256.starts_with("ab"));
        let missing = parse(text, "http://h/m.json", "windows-aarch64").err();
        assert_eq!(
            missing.and_then(|e| e.reason()),
            Some(Reason::UpdateNoArtifact)
        );
        let bad = parse("{", "http://h/m.json", "linux-x86_64").err();
        assert_eq!(
            bad.and_then(|e| e.reason()),
            Some(Reason::UpdateManifestInvalid)
        );
        Ok(())
    }
}
