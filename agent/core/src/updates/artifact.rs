//! Blocking file work of an update: verifying a downloaded artifact (size,
//! SHA-256, minisign signature), unpacking its binaries, keeping the
//! installed binaries as the rollback copy, and swapping binaries in
//! atomically (a copy next to the target, fsync, rename in the same
//! folder), so an interrupted install never leaves a half-written program,
//! and pointing the second names of the two executables at them
//! ([`LINKS`]). Callers run these on the blocking pool.

use std::{
    fs,
    io::{Read, Write},
    path::{Path, PathBuf},
};

use sha2::{Digest, Sha256};

use crate::reason::Reason;
use crate::{
    error::{Error, Result},
    platform,
    updates::manifest::Release,
};

/// The binaries an artifact may carry; `omnipanel-agent` is required.
pub const BINARIES: &[&str] = &[
    "omnipanel-agent",
    "omnipanel",
    "omnipanel-tray",
    "omnipanel-panel",
];
/// The binary without which an artifact is refused.
pub const AGENT_BINARY: &str = "omnipanel-agent";
/// Names installed as symbolic links to another binary, each with the
/// binary it names: one executable holds both programs and chooses by name
/// (`agent/src/program.rs`, `tray/src/program.rs`). An update that brings
/// the binary points the link at it, so no name is left on an older
/// version (installs from before the links had four files). An artifact
/// may carry a link's name as an identical copy of its binary, for
/// updaters that predate links; this one links it.
pub const LINKS: &[(&str, &str)] = &[
    ("omnipanel", AGENT_BINARY),
    ("omnipanel-panel", "omnipanel-tray"),
];
/// File in the rollback folder naming the version it holds.
const VERSION_FILE: &str = "VERSION";

fn io_error(what: &str, path: &Path, err: std::io::Error) -> Error {
    Error::internal(format!("cannot {what} {}: {err}", path.display()))
}

fn refused(message: String) -> Error {
    Error::failed_precondition(message).with_reason(Reason::UpdateVerificationFailed)
}

/// Check `path` against the release: size, then SHA-256, then the minisign
/// signature with `public_key` (base64). Reads the file once.
pub fn verify(path: &Path, release: &Release, public_key: &str) -> Result<()> {
    let key = minisign_verify::PublicKey::from_base64(public_key.trim()).map_err(|err| {
        Error::failed_precondition(format!(
            "the update public key is not valid ({err}); check [update] public_key"
        ))
    })?;
    let signature =
        minisign_verify::Signature::decode(release.signature.trim()).map_err(|err| {
            refused(format!(
                "the signature of version {} in the manifest cannot be read: {err}",
                release.version
            ))
        })?;
    let size = fs::metadata(path)
        .map_err(|err| io_error("read", path, err))?
        .len();
    if size != release.size {
        return Err(refused(format!(
            "the download of version {} has {size} bytes but the manifest says {}; it was deleted",
            release.version, release.size
        )));
    }
    let mut verifier = key.verify_stream(&signature).map_err(|err| {
        refused(format!(
            "the signature of version {} does not match the update key ({err}); it was deleted",
            release.version
        ))
    })?;
    let mut hasher = Sha256::new();
    let mut file = fs::File::open(path).map_err(|err| io_error("open", path, err))?;
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let read = file
            .read(&mut buffer)
            .map_err(|err| io_error("read", path, err))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        verifier.update(&buffer[..read]);
    }
    let digest = hex(&hasher.finalize());
    if digest != release.sha256 {
        return Err(refused(format!(
            "the download of version {} has SHA-256 {digest} but the manifest says {}; it was deleted",
            release.version, release.sha256
        )));
    }
    verifier.finalize().map_err(|err| {
        refused(format!(
            "the signature of version {} is not valid ({err}): the artifact was not signed with the update key; it was deleted",
            release.version
        ))
    })?;
    Ok(())
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Unpack the binaries of a `.tar.gz` (or plain tar) artifact into `dest`
/// (emptied first). Only regular files named in [`BINARIES`] are taken,
/// wherever they sit in the archive; nothing else is written, so a hostile
/// archive cannot place files anywhere. Returns the names unpacked.
pub fn unpack(artifact: &Path, dest: &Path) -> Result<Vec<String>> {
    let _ = fs::remove_dir_all(dest);
    fs::create_dir_all(dest).map_err(|err| io_error("create", dest, err))?;
    let mut file = fs::File::open(artifact).map_err(|err| io_error("open", artifact, err))?;
    let mut magic = [0u8; 2];
    let gzipped = file.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
    let file = fs::File::open(artifact).map_err(|err| io_error("open", artifact, err))?;
    let reader: Box<dyn Read> = if gzipped {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let bad = |err: std::io::Error| {
        Error::failed_precondition(format!(
            "the update artifact is not a readable tar archive: {err}"
        ))
        .with_reason(Reason::UpdateArtifactInvalid)
    };
    let mut archive = tar::Archive::new(reader);
    let mut found = Vec::new();
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().map_err(bad)?.into_owned();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !BINARIES.contains(&name) || found.iter().any(|f| f == name) {
            continue;
        }
        let target = dest.join(name);
        let mut out = fs::File::create(&target).map_err(|err| io_error("create", &target, err))?;
        std::io::copy(&mut entry, &mut out).map_err(bad)?;
        out.sync_all()
            .map_err(|err| io_error("write", &target, err))?;
        platform::fs::make_executable(&target)
            .map_err(|err| io_error("set permissions on", &target, err))?;
        found.push(name.to_owned());
    }
    if !found.iter().any(|f| f == AGENT_BINARY) {
        return Err(Error::failed_precondition(format!(
            "the update artifact holds no {AGENT_BINARY}; nothing was installed"
        ))
        .with_reason(Reason::UpdateArtifactInvalid));
    }
    Ok(found)
}

/// Check that binaries can be replaced in `dir` (a package-managed
/// /usr/bin cannot).
pub fn check_writable(dir: &Path) -> Result<()> {
    let probe = dir.join(".omnipanel-update-probe");
    match fs::File::create(&probe) {
        Ok(_) => {
            let _ = fs::remove_file(&probe);
            Ok(())
        }
        Err(err) => Err(Error::failed_precondition(format!(
            "cannot replace the programs in {} ({err}); if OmniPanel came from a package, update it with your package manager",
            dir.display()
        ))
        .with_reason(Reason::UpdateNotWritable)),
    }
}

/// Replace `target` with a copy of `source` atomically: copy to a
/// temporary name in the target's folder, fsync, rename over.
fn replace_file(source: &Path, target: &Path) -> Result<()> {
    let dir = target
        .parent()
        .ok_or_else(|| Error::internal(format!("{} has no folder", target.display())))?;
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("binary");
    let temp = dir.join(format!(".{name}.omnipanel-new"));
    let _ = fs::remove_file(&temp);
    fs::copy(source, &temp).map_err(|err| io_error("copy to", &temp, err))?;
    platform::fs::make_executable(&temp)
        .map_err(|err| io_error("set permissions on", &temp, err))?;
    fs::File::open(&temp)
        .and_then(|f| f.sync_all())
        .map_err(|err| io_error("write", &temp, err))?;
    fs::rename(&temp, target).map_err(|err| {
        let _ = fs::remove_file(&temp);
        io_error("replace", target, err)
    })?;
    if let Ok(folder) = fs::File::open(dir) {
        // Make the rename durable; failure only weakens crash safety.
        let _ = folder.sync_all();
    }
    Ok(())
}

/// Copy the installed binaries of `install_dir` to `rollback_dir`
/// (replacing an older rollback copy), recording `version`.
pub fn save_rollback(install_dir: &Path, rollback_dir: &Path, version: &str) -> Result<()> {
    let _ = fs::remove_dir_all(rollback_dir);
    fs::create_dir_all(rollback_dir).map_err(|err| io_error("create", rollback_dir, err))?;
    for name in BINARIES {
        let source = install_dir.join(name);
        // A link is remade from its binary on restore; copying it would
        // keep a second whole program.
        let is_link = fs::symlink_metadata(&source).is_ok_and(|m| m.file_type().is_symlink());
        if source.is_file() && !is_link {
            let target = rollback_dir.join(name);
            fs::copy(&source, &target).map_err(|err| io_error("copy to", &target, err))?;
        }
    }
    let version_file = rollback_dir.join(VERSION_FILE);
    let mut file =
        fs::File::create(&version_file).map_err(|err| io_error("create", &version_file, err))?;
    file.write_all(version.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|err| io_error("write", &version_file, err))?;
    Ok(())
}

/// The version held by the rollback copy, if there is one.
pub fn rollback_version(rollback_dir: &Path) -> Option<String> {
    if !rollback_dir.join(AGENT_BINARY).is_file() {
        return None;
    }
    fs::read_to_string(rollback_dir.join(VERSION_FILE))
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// Swap every binary in `source_dir` into `install_dir`, then point each
/// of [`LINKS`] whose binary came and which did not come itself at its
/// binary. Returns the names swapped (links included).
pub fn swap_in(source_dir: &Path, install_dir: &Path) -> Result<Vec<String>> {
    let mut swapped = Vec::new();
    // The agent last: when it is in place, everything else already is.
    let mut names: Vec<&str> = BINARIES.iter().rev().copied().collect();
    names.sort_by_key(|n| *n == AGENT_BINARY);
    for name in names {
        let source = source_dir.join(name);
        if source.is_file() && !is_copy_of_its_binary(source_dir, name) {
            replace_file(&source, &install_dir.join(name))?;
            swapped.push(name.to_owned());
        }
    }
    // After the agent: until a link is remade its name runs the older
    // program, which works; a link made first would start the older agent
    // file under a name it does not know.
    for (link, binary) in LINKS {
        let came = |name: &str| swapped.iter().any(|s| s == name);
        if came(binary) && !came(link) {
            // The older file still works, so a failure here is told, not
            // fatal: the next update tries again.
            match replace_with_link(binary, &install_dir.join(link)) {
                Ok(()) => swapped.push((*link).to_owned()),
                Err(err) => tracing::warn!(error = %err, "cannot link {link} to {binary}"),
            }
        }
    }
    Ok(swapped)
}

/// Whether `name` in `dir` is one of [`LINKS`] and holds the same bytes as
/// its binary there: how an artifact carries the second names for
/// updaters that predate links (they copy every file); this one links.
fn is_copy_of_its_binary(dir: &Path, name: &str) -> bool {
    let Some((_, binary)) = LINKS.iter().find(|(link, _)| *link == name) else {
        return false;
    };
    let (copy, original) = (dir.join(name), dir.join(binary));
    let same_size = match (fs::metadata(&copy), fs::metadata(&original)) {
        (Ok(a), Ok(b)) => a.len() == b.len(),
        _ => false,
    };
    same_size
        && fs::read(&copy)
            .ok()
            .zip(fs::read(&original).ok())
            .is_some_and(|(a, b)| a == b)
}

/// Replace `link` with a symbolic link to `binary` (a name in the same
/// folder) atomically: a link at a temporary name, renamed over.
fn replace_with_link(binary: &str, link: &Path) -> Result<()> {
    let dir = link
        .parent()
        .ok_or_else(|| Error::internal(format!("{} has no folder", link.display())))?;
    let name = link.file_name().and_then(|n| n.to_str()).unwrap_or("link");
    let temp = dir.join(format!(".{name}.omnipanel-new"));
    let _ = fs::remove_file(&temp);
    platform::fs::symlink(Path::new(binary), &temp)
        .map_err(|err| io_error("create a link at", &temp, err))?;
    fs::rename(&temp, link).map_err(|err| {
        let _ = fs::remove_file(&temp);
        io_error("replace", link, err)
    })
}

/// Put the rollback copy back in `install_dir`; returns its version.
pub fn restore_rollback(rollback_dir: &Path, install_dir: &Path) -> Result<String> {
    let version = rollback_version(rollback_dir).ok_or_else(|| {
        Error::failed_precondition(
            "there is nothing to roll back to: no earlier version was kept by an update",
        )
        .with_reason(Reason::UpdateNoRollback)
    })?;
    swap_in(rollback_dir, install_dir)?;
    Ok(version)
}

/// Remove `path` if it exists.
pub fn remove_file_if_present(path: &Path) {
    if let Err(err) = fs::remove_file(path)
        && err.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %err, "cannot remove a file");
    }
}

/// The folder holding `exe`.
pub fn install_dir_of(exe: &Path) -> Result<PathBuf> {
    exe.parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| Error::internal(format!("{} has no folder", exe.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        for (name, data) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o755);
            header.set_cksum();
            builder
                .append_data(&mut header, name, *data)
                .expect("append");
        }
        builder
            .into_inner()
            .and_then(|gz| gz.finish())
            .expect("finish")
    }

    #[test]
    fn unpack_takes_only_known_binaries() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::internal(e.to_string()))?;
        let artifact = dir.path().join("a.tar.gz");
        let data = tar_gz(&[
            ("pkg/omnipanel-agent", b"agent"),
            ("pkg/README", b"no"),
            ("pkg/omnipanel", b"cli"),
        ]);
        fs::write(&artifact, data).map_err(|e| Error::internal(e.to_string()))?;
        let mut found = unpack(&artifact, &dir.path().join("out"))?;
        found.sort();
        assert_eq!(found, vec!["omnipanel", "omnipanel-agent"]);
        assert!(!dir.path().join("out/README").exists());
        let without_agent = dir.path().join("b.tar.gz");
        fs::write(&without_agent, tar_gz(&[("omnipanel", b"cli")]))
            .map_err(|e| Error::internal(e.to_string()))?;
        let err = unpack(&without_agent, &dir.path().join("out2")).err();
        assert_eq!(
            err.and_then(|e| e.reason()),
            Some(Reason::UpdateArtifactInvalid)
        );
        Ok(())
    }

    #[test]
    fn rollback_round_trip_restores_the_old_binaries() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::internal(e.to_string()))?;
        let install = dir.path().join("bin");
        let new = dir.path().join("new");
        let rollback = dir.path().join("rollback");
        for d in [&install, &new] {
            fs::create_dir_all(d).map_err(|e| Error::internal(e.to_string()))?;
        }
        fs::write(install.join(AGENT_BINARY), b"old")
            .map_err(|e| Error::internal(e.to_string()))?;
        fs::write(new.join(AGENT_BINARY), b"new").map_err(|e| Error::internal(e.to_string()))?;
        assert_eq!(rollback_version(&rollback), None);
        save_rollback(&install, &rollback, "0.1.0")?;
        swap_in(&new, &install)?;
        assert_eq!(
            fs::read(install.join(AGENT_BINARY)).ok(),
            Some(b"new".to_vec())
        );
        assert_eq!(restore_rollback(&rollback, &install)?, "0.1.0");
        assert_eq!(
            fs::read(install.join(AGENT_BINARY)).ok(),
            Some(b"old".to_vec())
        );
        Ok(())
    }

    fn err(e: std::io::Error) -> Error {
        Error::internal(e.to_string())
    }

    /// A temporary folder with two empty folders: `bin` (the install) and
    /// `new` (what an update unpacked).
    fn install_and_new() -> Result<(tempfile::TempDir, PathBuf, PathBuf)> {
        let dir = tempfile::tempdir().map_err(err)?;
        let (install, new) = (dir.path().join("bin"), dir.path().join("new"));
        for d in [&install, &new] {
            fs::create_dir_all(d).map_err(err)?;
        }
        Ok((dir, install, new))
    }

    /// Every one of [`BINARIES`] in `dir`, as a file of `bytes(name)`.
    fn install_all(dir: &Path, bytes: impl Fn(&str) -> Vec<u8>) -> Result<()> {
        for name in BINARIES {
            fs::write(dir.join(name), bytes(name)).map_err(err)?;
        }
        Ok(())
    }

    fn is_link_to(path: &Path, binary: &str) -> bool {
        fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
            && fs::read_link(path).ok() == Some(PathBuf::from(binary))
    }

    /// An install from before the links (four files) updated to two
    /// executables: the second names become links to the new files, the
    /// rollback keeps the old four, and restoring it gives them back.
    #[test]
    fn an_update_links_the_second_names_and_a_rollback_unlinks_them() -> Result<()> {
        let (dir, install, new) = install_and_new()?;
        install_all(&install, |name| format!("old {name}").into_bytes())?;
        let rollback = dir.path().join("rollback");
        fs::write(new.join(AGENT_BINARY), b"new agent").map_err(err)?;
        fs::write(new.join("omnipanel-tray"), b"new tray").map_err(err)?;
        save_rollback(&install, &rollback, "0.1.0")?;

        let mut swapped = swap_in(&new, &install)?;
        swapped.sort();
        assert_eq!(
            swapped,
            [
                "omnipanel",
                "omnipanel-agent",
                "omnipanel-panel",
                "omnipanel-tray"
            ]
        );
        assert!(is_link_to(&install.join("omnipanel"), AGENT_BINARY));
        assert!(is_link_to(
            &install.join("omnipanel-panel"),
            "omnipanel-tray"
        ));
        assert_eq!(
            fs::read(install.join("omnipanel")).ok(),
            Some(b"new agent".to_vec())
        );
        assert!(!install.join(".omnipanel.omnipanel-new").exists());

        // The next update's rollback holds the two files, not the links.
        let second = dir.path().join("rollback2");
        save_rollback(&install, &second, "0.2.0")?;
        assert!(!second.join("omnipanel").exists());
        assert!(second.join(AGENT_BINARY).is_file());

        assert_eq!(restore_rollback(&rollback, &install)?, "0.1.0");
        for name in BINARIES {
            let path = install.join(name);
            assert!(!is_link_to(&path, AGENT_BINARY) && !is_link_to(&path, "omnipanel-tray"));
            assert_eq!(
                fs::read(&path).ok(),
                Some(format!("old {name}").into_bytes())
            );
        }
        // And forward again from a rollback of links: remade.
        assert_eq!(restore_rollback(&second, &install)?, "0.2.0");
        assert!(is_link_to(&install.join("omnipanel"), AGENT_BINARY));
        Ok(())
    }

    /// An artifact made for updaters from before the links carries the
    /// second names as identical copies: linked, not copied. A different
    /// file under such a name (an older version's CLI) is copied.
    #[test]
    fn an_identical_copy_becomes_a_link() -> Result<()> {
        let (_dir, install, new) = install_and_new()?;
        fs::write(new.join(AGENT_BINARY), b"agent and cli").map_err(err)?;
        fs::write(new.join("omnipanel"), b"agent and cli").map_err(err)?;
        fs::write(new.join("omnipanel-tray"), b"tray and panel").map_err(err)?;
        fs::write(new.join("omnipanel-panel"), b"an older panel").map_err(err)?;
        swap_in(&new, &install)?;
        assert!(is_link_to(&install.join("omnipanel"), AGENT_BINARY));
        assert!(!is_link_to(
            &install.join("omnipanel-panel"),
            "omnipanel-tray"
        ));
        assert_eq!(
            fs::read(install.join("omnipanel-panel")).ok(),
            Some(b"an older panel".to_vec())
        );
        Ok(())
    }

    /// An update that brings the agent alone leaves the tray's names as
    /// they are.
    #[test]
    fn a_link_follows_only_its_own_binary() -> Result<()> {
        let (_dir, install, new) = install_and_new()?;
        install_all(&install, |_| b"old".to_vec())?;
        fs::write(new.join(AGENT_BINARY), b"new").map_err(err)?;
        swap_in(&new, &install)?;
        assert!(is_link_to(&install.join("omnipanel"), AGENT_BINARY));
        assert_eq!(
            fs::read(install.join("omnipanel-panel")).ok(),
            Some(b"old".to_vec())
        );
        Ok(())
    }
}
