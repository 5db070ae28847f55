//! The release feed: when `[update] manifest_url` answers with a GitHub
//! releases list (`https://api.github.com/repos/OWNER/REPO/releases`, a
//! JSON array) instead of a manifest, the channel's manifest is picked from
//! it. This is the default because GitHub's `/releases/latest` skips
//! pre-releases, so the beta channel could never reach a beta through it;
//! the list holds them. Stable takes only releases that are neither marked
//! pre-release nor carry a pre-release version; beta takes either. Of
//! those, the highest version with a `manifest-CHANNEL.json` asset wins
//! (drafts never). What it points at is verified like any manifest: the
//! feed itself is not trusted for anything but finding it. Pure functions.

use serde::Deserialize;

use super::manifest;
use crate::error::{Error, Result};
use crate::reason::Reason;

/// One release of the list, as far as the feed reads it.
#[derive(Debug, Deserialize)]
struct FeedRelease {
    tag_name: String,
    #[serde(default)]
    draft: bool,
    #[serde(default)]
    prerelease: bool,
    #[serde(default)]
    assets: Vec<Asset>,
}

#[derive(Debug, Deserialize)]
struct Asset {
    name: String,
    browser_download_url: String,
}

/// Whether a fetched body is a release list rather than a manifest.
pub fn is_feed(body: &[u8]) -> bool {
    body.iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'[')
}

/// The name of a channel's manifest among a release's assets.
pub fn manifest_asset(channel: &str) -> String {
    format!("manifest-{channel}.json")
}

/// The URL of `channel`'s newest manifest in the release list `body`
/// fetched from `feed_url`.
pub fn pick_manifest(body: &[u8], feed_url: &str, channel: &str) -> Result<String> {
    let releases: Vec<FeedRelease> = serde_json::from_slice(body).map_err(|err| {
        Error::failed_precondition(format!(
            "the release list at {feed_url} is not valid: {err}"
        ))
        .with_reason(Reason::UpdateManifestInvalid)
    })?;
    let wanted = manifest_asset(channel);
    let prereleases_too = channel != "stable";
    releases
        .iter()
        .filter(|r| !r.draft)
        .filter(|r| prereleases_too || !(r.prerelease || manifest::is_prerelease(&r.tag_name)))
        .filter(|r| manifest::parse_version(&r.tag_name).is_some())
        .filter_map(|r| {
            let asset = r.assets.iter().find(|a| a.name == wanted)?;
            Some((r.tag_name.as_str(), asset.browser_download_url.as_str()))
        })
        .max_by(|(a, _), (b, _)| manifest::compare_versions(a, b))
        .map(|(_, url)| url.to_owned())
        .ok_or_else(|| {
            Error::failed_precondition(format!(
                "no release in the list at {feed_url} offers {wanted} for the {channel} channel"
            ))
            .with_reason(Reason::UpdateManifestInvalid)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A trimmed GitHub API answer: newest first, as GitHub lists them,
    /// with a draft, a beta newer than the stable release, and a stable
    /// release that also publishes the beta channel's manifest.
    const FEED: &str = r#"[
      {"tag_name": "v1.4.0-beta.1", "draft": true, "prerelease": true,
       "assets": [{"name": "manifest-beta.json", "browser_download_url": "https://h/d/v1.4.0-beta.1/manifest-beta.json"}]},
      {"tag_name": "v1.3.0-beta.2", "draft": false, "prerelease": true,
       "assets": [
         {"name": "omnipanel-linux-x86_64.tar.gz", "browser_download_url": "https://h/d/v1.3.0-beta.2/omnipanel-linux-x86_64.tar.gz"},
         {"name": "manifest-beta.json", "browser_download_url": "https://h/d/v1.3.0-beta.2/manifest-beta.json"},
         {"name": "manifest-beta.json.minisig", "browser_download_url": "https://h/d/v1.3.0-beta.2/manifest-beta.json.minisig"}]},
      {"tag_name": "v1.2.0", "draft": false, "prerelease": false,
       "assets": [
         {"name": "manifest-stable.json", "browser_download_url": "https://h/d/v1.2.0/manifest-stable.json"},
         {"name": "manifest-beta.json", "browser_download_url": "https://h/d/v1.2.0/manifest-beta.json"}]},
      {"tag_name": "v1.10.0-rc.1", "draft": false, "prerelease": false,
       "assets": [{"name": "manifest-stable.json", "browser_download_url": "https://h/d/v1.10.0-rc.1/manifest-stable.json"}]},
      {"tag_name": "v1.1.0", "draft": false, "prerelease": false,
       "assets": [{"name": "manifest-stable.json", "browser_download_url": "https://h/d/v1.1.0/manifest-stable.json"}]}
    ]"#;

    #[test]
    fn beta_reaches_the_newest_prerelease_and_stable_never_does() -> Result<()> {
        assert!(is_feed(FEED.as_bytes()));
        assert!(!is_feed(br#" {"version": "1.0.0"}"#));
        assert_eq!(
            pick_manifest(FEED.as_bytes(), "https://api/releases", "beta")?,
            "https://h/d/v1.3.0-beta.2/manifest-beta.json",
            "the draft is skipped, the pre-release found"
        );
        assert_eq!(
            pick_manifest(FEED.as_bytes(), "https://api/releases", "stable")?,
            "https://h/d/v1.2.0/manifest-stable.json",
            "neither the marked pre-release nor an unmarked -rc tag"
        );
        Ok(())
    }

    #[test]
    fn beta_takes_a_stable_release_newer_than_every_beta() -> Result<()> {
        let feed = r#"[
          {"tag_name": "v2.0.0", "prerelease": false,
           "assets": [{"name": "manifest-beta.json", "browser_download_url": "https://h/v2.0.0/manifest-beta.json"}]},
          {"tag_name": "v2.0.0-beta.3", "prerelease": true,
           "assets": [{"name": "manifest-beta.json", "browser_download_url": "https://h/v2.0.0-beta.3/manifest-beta.json"}]}
        ]"#;
        assert_eq!(
            pick_manifest(feed.as_bytes(), "https://api/releases", "beta")?,
            "https://h/v2.0.0/manifest-beta.json"
        );
        Ok(())
    }

    #[test]
    fn a_list_without_the_channel_or_not_a_list_is_a_clear_error() {
        let none = pick_manifest(b"[]", "https://api/releases", "beta").unwrap_err();
        assert_eq!(none.reason(), Some(Reason::UpdateManifestInvalid));
        assert!(none.message().contains("manifest-beta.json"), "{none}");
        let bad = pick_manifest(b"[{\"x\": 1}]", "https://api/releases", "beta").unwrap_err();
        assert!(bad.message().contains("not valid"), "{bad}");
    }
}
