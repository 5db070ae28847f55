//! Whether a package manager installed this agent, in which case apt (or
//! whichever manager it was), not the agent, replaces its programs: the
//! check still says whether a newer release exists, but download, install
//! and rollback are refused with `UPDATE_PACKAGE_MANAGED` and the command
//! that updates it, so the agent never overwrites files under /usr/bin that
//! dpkg owns.
//!
//! Two signs, either enough:
//! - the marker a package ships beside the programs: for an executable at
//!   `PREFIX/bin/omnipanel-agent`, the file
//!   `PREFIX/share/omnipanel/packaged-by` (the .deb installs
//!   `/usr/share/omnipanel/packaged-by`; see `packaging/packaged-by-deb`).
//!   Found relative to the running executable, so a per-user copy in
//!   `~/.local/bin` beside a .deb install still updates itself, and the
//!   end-to-end tests can fake a packaged install in a temporary prefix;
//! - dpkg's own list of the `omnipanel` package's files naming the running
//!   executable (`/var/lib/dpkg/info/omnipanel.list`), which also covers a
//!   .deb built before the marker existed.
//!
//! The marker is `key=value` lines (`#` comments): `format` (e.g. `deb`),
//! `package` and `update`, the command a person runs. Missing keys take
//! the .deb's values; an unreadable marker still counts as packaged (a
//! package put it there), with those defaults.

use std::path::{Path, PathBuf};

use crate::{error::Error, reason::Reason};

/// The marker's path under an installation prefix.
pub const MARKER: &str = "share/omnipanel/packaged-by";

/// Where dpkg lists the files of each installed package.
pub const DPKG_INFO: &str = "/var/lib/dpkg/info";

/// The package's name in the Debian archive and our apt repository.
const DEB_PACKAGE: &str = "omnipanel";

/// The command that updates the .deb.
pub const APT_UPDATE: &str = "sudo apt update && sudo apt upgrade omnipanel";

/// A package manager installed this agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageInstall {
    /// The package format, e.g. "deb".
    pub format: String,
    /// The package's name, e.g. "omnipanel".
    pub package: String,
    /// The command that updates it.
    pub update_command: String,
    /// What said so: the marker file, or dpkg's file list.
    pub evidence: PathBuf,
}

impl PackageInstall {
    /// What a person should be told, e.g. "installed from the .deb
    /// (package omnipanel): update with `sudo apt update && sudo apt
    /// upgrade omnipanel`".
    pub fn advice(&self) -> String {
        format!(
            "installed from the .{} (package {}): update with `{}`",
            self.format, self.package, self.update_command
        )
    }

    /// The refusal of `what` (e.g. "download updates") on this install.
    pub fn refusal(&self, what: &str) -> Error {
        Error::failed_precondition(format!(
            "this agent does not {what} itself: it was {}",
            self.advice()
        ))
        .with_reason(Reason::UpdatePackageManaged)
    }
}

/// Whether a package manager installed the agent at `exe`. Blocking (reads
/// files).
pub fn detect(exe: &Path) -> Option<PackageInstall> {
    detect_with(exe, Path::new(DPKG_INFO))
}

/// [`detect`] with dpkg's info folder given (tests).
pub fn detect_with(exe: &Path, dpkg_info: &Path) -> Option<PackageInstall> {
    // Through links (a /bin that is /usr/bin, a symlinked launcher): the
    // file that would be replaced is what counts.
    let exe = std::fs::canonicalize(exe).unwrap_or_else(|_| exe.to_owned());
    if let Some(marker) = marker_path(&exe)
        && marker.is_file()
    {
        let text = std::fs::read_to_string(&marker).unwrap_or_else(|err| {
            tracing::warn!(path = %marker.display(), error = %err, "cannot read the packaging marker; taking it as the .deb's");
            String::new()
        });
        return Some(parse_marker(&text, marker));
    }
    let list = dpkg_info.join(format!("{DEB_PACKAGE}.list"));
    let listed = std::fs::read_to_string(&list).ok()?;
    let wanted = exe.to_string_lossy();
    listed.lines().any(|line| line == wanted).then(|| deb(list))
}

/// `PREFIX/share/omnipanel/packaged-by` for `PREFIX/bin/EXE`.
fn marker_path(exe: &Path) -> Option<PathBuf> {
    let bin = exe.parent()?;
    if bin.file_name()? != "bin" {
        return None;
    }
    Some(bin.parent()?.join(MARKER))
}

/// The .deb's values.
fn deb(evidence: PathBuf) -> PackageInstall {
    PackageInstall {
        format: "deb".to_owned(),
        package: DEB_PACKAGE.to_owned(),
        update_command: APT_UPDATE.to_owned(),
        evidence,
    }
}

/// Read the marker's `key=value` lines over the .deb's values.
fn parse_marker(text: &str, evidence: PathBuf) -> PackageInstall {
    let mut install = deb(evidence);
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        match key.trim() {
            "format" => install.format = value.to_owned(),
            "package" => install.package = value.to_owned(),
            "update" => install.update_command = value.to_owned(),
            _ => {}
        }
    }
    install
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A prefix with `bin/omnipanel-agent` in a temporary folder.
    fn prefix() -> (tempfile::TempDir, PathBuf) {
        let temp = tempfile::tempdir().unwrap();
        let bin = temp.path().join("usr/bin");
        std::fs::create_dir_all(&bin).unwrap();
        let exe = bin.join("omnipanel-agent");
        std::fs::write(&exe, b"agent").unwrap();
        (temp, exe)
    }

    fn no_dpkg(temp: &tempfile::TempDir) -> PathBuf {
        temp.path().join("no-dpkg")
    }

    #[test]
    fn a_plain_install_is_not_packaged() {
        let (temp, exe) = prefix();
        assert_eq!(detect_with(&exe, &no_dpkg(&temp)), None);
    }

    #[test]
    fn the_marker_beside_the_programs_says_packaged_with_its_command() {
        let (temp, exe) = prefix();
        let marker = temp.path().join("usr").join(MARKER);
        std::fs::create_dir_all(marker.parent().unwrap()).unwrap();
        std::fs::write(
            &marker,
            "# shipped by the .deb\nformat=deb\npackage=omnipanel\nupdate=sudo apt update && sudo apt upgrade omnipanel\n",
        )
        .unwrap();
        let found = detect_with(&exe, &no_dpkg(&temp)).unwrap();
        assert_eq!(found.format, "deb");
        assert_eq!(found.update_command, APT_UPDATE);
        assert_eq!(found.evidence, std::fs::canonicalize(&marker).unwrap());
        assert_eq!(
            found.advice(),
            "installed from the .deb (package omnipanel): update with `sudo apt update && sudo apt upgrade omnipanel`"
        );
        let refusal = found.refusal("install updates");
        assert_eq!(refusal.reason(), Some(Reason::UpdatePackageManaged));
        assert!(
            refusal.message().contains("sudo apt upgrade omnipanel"),
            "{}",
            refusal.message()
        );
    }

    #[test]
    fn another_packager_names_its_own_command_and_blank_keys_keep_the_debs() {
        let (temp, exe) = prefix();
        let marker = temp.path().join("usr").join(MARKER);
        std::fs::create_dir_all(marker.parent().unwrap()).unwrap();
        std::fs::write(
            &marker,
            "format=rpm\nupdate=sudo dnf upgrade omnipanel\npackage=\nnonsense\n",
        )
        .unwrap();
        let found = detect_with(&exe, &no_dpkg(&temp)).unwrap();
        assert_eq!(
            (
                found.format.as_str(),
                found.package.as_str(),
                found.update_command.as_str()
            ),
            ("rpm", "omnipanel", "sudo dnf upgrade omnipanel")
        );
    }

    #[test]
    fn a_marker_in_another_prefix_does_not_count() {
        // The .deb's marker must not stop a per-user copy elsewhere from
        // updating itself.
        let (temp, _) = prefix();
        let marker = temp.path().join("usr").join(MARKER);
        std::fs::create_dir_all(marker.parent().unwrap()).unwrap();
        std::fs::write(&marker, "format=deb\n").unwrap();
        let own = temp.path().join("home/.local/bin");
        std::fs::create_dir_all(&own).unwrap();
        let exe = own.join("omnipanel-agent");
        std::fs::write(&exe, b"agent").unwrap();
        assert_eq!(detect_with(&exe, &no_dpkg(&temp)), None);
    }

    #[test]
    fn dpkg_listing_the_executable_says_packaged_without_a_marker() {
        let (temp, exe) = prefix();
        let info = temp.path().join("dpkg-info");
        std::fs::create_dir_all(&info).unwrap();
        let exe = std::fs::canonicalize(&exe).unwrap();
        std::fs::write(
            info.join("omnipanel.list"),
            format!("/.\n/usr\n{}\n/usr/bin/omnipanel\n", exe.display()),
        )
        .unwrap();
        let found = detect_with(&exe, &info).unwrap();
        assert_eq!(found.update_command, APT_UPDATE);
        assert_eq!(found.evidence, info.join("omnipanel.list"));
        // Another executable is not the package's.
        let other = exe.with_file_name("omnipanel-agent-copy");
        std::fs::write(&other, b"agent").unwrap();
        assert_eq!(detect_with(&other, &info), None);
    }

    #[test]
    fn a_link_to_a_packaged_executable_is_packaged() {
        let (temp, exe) = prefix();
        let marker = temp.path().join("usr").join(MARKER);
        std::fs::create_dir_all(marker.parent().unwrap()).unwrap();
        std::fs::write(&marker, "format=deb\n").unwrap();
        let link_dir = temp.path().join("elsewhere");
        std::fs::create_dir_all(&link_dir).unwrap();
        let link = link_dir.join("omnipanel-agent");
        std::os::unix::fs::symlink(&exe, &link).unwrap();
        assert!(detect_with(&link, &no_dpkg(&temp)).is_some());
    }
}
