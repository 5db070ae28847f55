//! Target `update_manifest`: the signed update manifest, its detached
//! minisign signature and version order (`omnipanel_core::updates::
//! manifest`). The input is text whose first line picks the mode:
//!
//! - `sign CHANNEL PLATFORM`, then the signature's trusted comment on one
//!   line, then the manifest body: the body is signed here with a key made
//!   for this process, so the fuzzer reaches everything `verify` does after
//!   the signature (the comment's fields against the body, the JSON, the
//!   channel rules, the platform's artifact, its URL and SHA-256);
//! - `raw CHANNEL PLATFORM`, then the body up to a line `-----`, then the
//!   signature file's text: what an attacker controls without the key;
//! - `versions`, then two versions, one per line: their order.
//!
//! Invariants, beyond "no panic":
//! - a raw manifest is never accepted (nobody but this process holds the
//!   key), and its refusal says the manifest is unsigned or invalid;
//! - an accepted manifest gives a release whose version parses, whose
//!   SHA-256 is 64 lowercase hex digits, whose URL is absolute, which is
//!   no pre-release on stable, and whose signed comment matches;
//! - changing one byte of an accepted body makes `verify` refuse it;
//! - version order is reflexive and antisymmetric.

use std::{cmp::Ordering, sync::OnceLock};

use omnipanel_core::{
    reason::Reason,
    updates::manifest::{self, Expected},
};

const MANIFEST_URL: &str = "https://updates.example.com/channels/manifest-stable.json";

struct Key {
    pair: minisign::KeyPair,
    public: String,
}

fn key() -> &'static Key {
    static KEY: OnceLock<Key> = OnceLock::new();
    KEY.get_or_init(|| {
        let pair =
            minisign::KeyPair::generate_unencrypted_keypair().expect("a minisign key can be made");
        let public = pair.pk.to_base64();
        Key { pair, public }
    })
}

fn sign(body: &[u8], comment: &str) -> Option<String> {
    let key = key();
    minisign::sign(
        Some(&key.pair.pk),
        &key.pair.sk,
        body,
        Some(comment),
        Some("fuzz"),
    )
    .ok()
    .map(|signature| signature.into_string())
}

/// Run one input.
pub fn run(data: &[u8]) {
    let input = crate::text(data);
    let (head, rest) = input.split_once('\n').unwrap_or((&input, ""));
    let mut words = head.split_whitespace();
    let mode = words.next().unwrap_or_default();
    let channel = words.next().unwrap_or("stable");
    let platform = words.next().unwrap_or("linux-x86_64");
    let expected = Expected {
        public_key: &key().public,
        channel,
        platform,
    };
    match mode {
        "sign" => {
            let (comment, body) = rest.split_once('\n').unwrap_or((rest, ""));
            signed(body.as_bytes(), comment, &expected);
        }
        "versions" => {
            let mut lines = rest.lines();
            versions(
                lines.next().unwrap_or_default(),
                lines.next().unwrap_or_default(),
            );
        }
        _ => {
            let (body, signature) = rest.split_once("\n-----\n").unwrap_or((rest, ""));
            let result = manifest::verify(body.as_bytes(), signature, MANIFEST_URL, &expected);
            let Err(err) = result else {
                panic!("a manifest not signed with the key was accepted");
            };
            assert!(
                matches!(
                    err.reason(),
                    Some(Reason::UpdateManifestUnsigned | Reason::UpdateManifestInvalid)
                ),
                "refused with {:?}: {err}",
                err.reason()
            );
            let _ = manifest::public_key(signature);
        }
    }
}

fn signed(body: &[u8], comment: &str, expected: &Expected<'_>) {
    let Some(signature) = sign(body, comment) else {
        return;
    };
    let Ok(release) = manifest::verify(body, &signature, MANIFEST_URL, expected) else {
        return;
    };
    assert!(
        manifest::parse_version(&release.version).is_some(),
        "accepted version {:?}",
        release.version
    );
    assert!(
        release.sha256.len() == 64
            && release
                .sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "accepted sha256 {:?}",
        release.sha256
    );
    let url = reqwest::Url::parse(&release.url);
    assert!(
        url.is_ok_and(|u| !u.cannot_be_a_base()),
        "accepted URL {:?}",
        release.url
    );
    if expected.channel == "stable" {
        assert!(
            !manifest::is_prerelease(&release.version),
            "a pre-release {} on stable",
            release.version
        );
    }
    assert!(
        comment
            .split_whitespace()
            .any(|w| w == "omnipanel-manifest")
            && comment.contains(&format!("version={}", release.version)),
        "accepted with the comment {comment:?} for version {}",
        release.version
    );
    for index in [0, body.len() / 2, body.len().saturating_sub(1)] {
        let mut tampered = body.to_vec();
        if let Some(byte) = tampered.get_mut(index) {
            *byte ^= 0x01;
            assert!(
                manifest::verify(&tampered, &signature, MANIFEST_URL, expected).is_err(),
                "a body changed at byte {index} still verified"
            );
        }
    }
}

fn versions(a: &str, b: &str) {
    let ab = manifest::compare_versions(a, b);
    let ba = manifest::compare_versions(b, a);
    assert_eq!(ab, ba.reverse(), "{a:?} vs {b:?}: not antisymmetric");
    assert_eq!(manifest::compare_versions(a, a), Ordering::Equal, "{a:?}");
    assert_eq!(
        manifest::is_newer(a, b),
        ab == Ordering::Greater,
        "{a:?} vs {b:?}"
    );
}
