//! Crash-safe file replacement: write a temporary file in the same folder,
//! fsync it, rename it over the target, fsync the folder. A reader (or the
//! next start after a power cut) sees the old file or the new one, never a
//! mix. Permissions of an existing target are kept.
//!
//! A writer killed mid-write leaves its temporary behind, so temporaries
//! are named for their writer: `.NAME.omnipanel-PID-START-RANDOM.tmp`,
//! with the writing process's pid and start time. [`is_stale_temporary`]
//! tells a dead writer's temporary (removable) from a live one's (never
//! touched) and from any other name (the exact pattern or nothing); the
//! project walk and [`remove_stale_temporaries`] remove them.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Write},
    path::Path,
    sync::OnceLock,
};

use crate::platform::process;

/// What every temporary's name has between its target's name and its
/// writer.
const MARKER: &str = ".omnipanel-";
/// Characters of a target's name kept in its temporary's name, so the
/// whole stays under the usual 255-byte limit.
const NAME_KEPT: usize = 100;
/// Random hex digits that tell one write's temporary from another's.
const RANDOM_HEX: usize = 12;

/// This process as temporaries name it: its pid and start time.
fn this_writer() -> (u32, u64) {
    static WRITER: OnceLock<(u32, u64)> = OnceLock::new();
    *WRITER.get_or_init(|| {
        let pid = std::process::id();
        (pid, process::start_time(pid).unwrap_or(0))
    })
}

/// The name of a fresh temporary for a file named `target`, written by
/// this process.
pub fn temp_name(target: &str) -> io::Result<String> {
    let mut bytes = [0u8; RANDOM_HEX / 2];
    getrandom::fill(&mut bytes)
        .map_err(|err| io::Error::other(format!("no randomness from the OS: {err}")))?;
    let random: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let short: String = target.chars().take(NAME_KEPT).collect();
    let (pid, start) = this_writer();
    Ok(format!(".{short}{MARKER}{pid}-{start}-{random}.tmp"))
}

/// The target's (shortened) name and the writer of a temporary's name;
/// `None` for any name not made by [`temp_name`].
fn parse(name: &str) -> Option<(&str, u32, u64)> {
    let inner = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (target, writer) = inner.rsplit_once(MARKER)?;
    let mut parts = writer.split('-');
    let (pid, start, random) = (parts.next()?, parts.next()?, parts.next()?);
    let digits = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    let hex = random.len() == RANDOM_HEX
        && random
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if target.is_empty() || parts.next().is_some() || !digits(pid) || !digits(start) || !hex {
        return None;
    }
    Some((target, pid.parse().ok()?, start.parse().ok()?))
}

/// Whether `name` is a temporary of [`temp_name`]'s making whose writer no
/// longer runs (killed mid-write): such a file is nobody's and may go. A
/// process with the writer's pid but another start time is another
/// process. This process's own temporaries are live writes.
pub fn is_stale_temporary(name: &str) -> bool {
    let Some((_, pid, start)) = parse(name) else {
        return false;
    };
    if (pid, start) == this_writer() {
        return false;
    }
    process::start_time(pid) != Some(start)
}

/// Remove the temporaries dead writers left beside `path` (a kill during
/// [`write_atomically`]); how many went. Files of other names are never
/// touched, whatever they look like.
pub fn remove_stale_temporaries(path: &Path) -> usize {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return 0;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let short: String = name.chars().take(NAME_KEPT).collect();
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(candidate) = file_name.to_str() else {
            continue;
        };
        let ours = parse(candidate).is_some_and(|(target, _, _)| target == short);
        if ours
            && is_stale_temporary(candidate)
            && entry.file_type().is_ok_and(|t| t.is_file())
            && fs::remove_file(entry.path()).is_ok()
        {
            removed += 1;
        }
    }
    removed
}

/// Replace `path` with `contents` atomically, creating parent folders;
/// temporaries an earlier, killed writer left beside it are removed first.
pub fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir)?;
    remove_stale_temporaries(path);
    let existing_permissions = fs::metadata(path).ok().map(|meta| meta.permissions());
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let temp = dir.join(temp_name(name)?);
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    // Owner-only until the target's own mode is applied: the contents may
    // be secrets.
    crate::platform::fs::private_file(&mut options);
    let written = (|| {
        let mut file = options.open(&temp)?;
        file.write_all(contents)?;
        if let Some(permissions) = existing_permissions {
            file.set_permissions(permissions)?;
        }
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if let Err(err) = written {
        let _ = fs::remove_file(&temp);
        return Err(err);
    }
    // The rename is only durable once the folder entry is on disk.
    File::open(dir)?.sync_all()?;
    Ok(())
}

/// For tests: the name of a temporary for `target` as a process that has
/// ended left it (a real, reaped child's pid and start time).
#[cfg(test)]
pub(crate) fn dead_writers_temporary(target: &str) -> io::Result<String> {
    let mut child = std::process::Command::new("sleep").arg("0.01").spawn()?;
    let pid = child.id();
    let start = process::start_time(pid).unwrap_or(0);
    child.wait()?;
    Ok(format!(".{target}{MARKER}{pid}-{start}-0123456789ab.tmp"))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn replaces_contents_and_keeps_permissions() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("a.txt");
        fs::write(&path, b"old")?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640))?;
        write_atomically(&path, b"new")?;
        assert_eq!(fs::read(&path)?, b"new");
        assert_eq!(fs::metadata(&path)?.permissions().mode() & 0o777, 0o640);
        let leftovers = fs::read_dir(dir.path())?.count();
        assert_eq!(leftovers, 1, "no temporary file may be left behind");
        Ok(())
    }

    #[test]
    fn creates_missing_parents() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("x/y/z.toml");
        write_atomically(&path, b"k = 1\n")?;
        assert_eq!(fs::read_to_string(&path)?, "k = 1\n");
        Ok(())
    }

    #[test]
    fn only_a_dead_writers_temporary_is_stale() -> io::Result<()> {
        let dead = dead_writers_temporary("config.toml")?;
        assert!(is_stale_temporary(&dead), "{dead}");
        // This process's own, and another live process's.
        assert!(!is_stale_temporary(&temp_name("config.toml")?));
        let mut child = std::process::Command::new("sleep").arg("30").spawn()?;
        let pid = child.id();
        let start = process::start_time(pid).unwrap_or(0);
        let live = format!(".config.toml{MARKER}{pid}-{start}-0123456789ab.tmp");
        assert!(
            !is_stale_temporary(&live),
            "a live writer's temporary: {live}"
        );
        // The same pid started at another time is another process.
        let reused = format!(".config.toml{MARKER}{pid}-{}-0123456789ab.tmp", start + 1);
        assert!(is_stale_temporary(&reused), "{reused}");
        child.kill()?;
        child.wait()?;
        assert!(is_stale_temporary(&live), "its writer has ended: {live}");
        Ok(())
    }

    #[test]
    fn names_that_merely_look_alike_are_never_temporaries() -> io::Result<()> {
        let dead = dead_writers_temporary("a.txt")?;
        let (pid_start, _) = dead
            .strip_prefix(".a.txt.omnipanel-")
            .and_then(|rest| rest.rsplit_once('-'))
            .unwrap_or_default();
        for name in [
            // Earlier releases' names, whose writer is unknown.
            ".a.txt.omnipanel-0123456789ab.tmp".to_owned(),
            ".omnipanel-Ab3dEf.tmp".to_owned(),
            // A piece missing, added or changed.
            format!("a.txt.omnipanel-{pid_start}-0123456789ab.tmp"),
            format!(".a.txt.omnipanel-{pid_start}-0123456789ab.tmp.bak"),
            format!(".a.txt.omnipanel-{pid_start}-0123456789AB.tmp"),
            format!(".a.txt.omnipanel-{pid_start}-0123456789a.tmp"),
            format!(".a.txt.omnipanel-{pid_start}-0123456789ab-x.tmp"),
            format!("..omnipanel-{pid_start}-0123456789ab.tmp"),
            ".a.txt.omnipanel--1-0123456789ab.tmp".to_owned(),
        ] {
            assert!(!is_stale_temporary(&name), "{name}");
        }
        assert!(is_stale_temporary(&dead));
        Ok(())
    }

    #[test]
    fn a_killed_writers_temporaries_are_removed_and_nothing_else() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("config.toml");
        let dead = dead_writers_temporary("config.toml")?;
        let other_target = dead_writers_temporary("other.toml")?;
        let live = temp_name("config.toml")?;
        let users = ".config.toml.omnipanel-notes.tmp";
        for name in [&dead, &other_target, &live, &users.to_owned()] {
            fs::write(dir.path().join(name), b"x")?;
        }
        write_atomically(&path, b"k = 1\n")?;
        let mut left: Vec<String> = fs::read_dir(dir.path())?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let mut expected = vec![
            "config.toml".to_owned(),
            other_target.clone(),
            live,
            users.to_owned(),
        ];
        expected.sort();
        assert_eq!(left, expected, "only {dead} goes");
        assert_eq!(remove_stale_temporaries(&dir.path().join("other.toml")), 1);
        Ok(())
    }
}
