//! What the kernel says about a process on the other end of the socket:
//! its executable, command line and parent chain, read from `/proc` on
//! Linux. Access requests and the activity log show these, because a
//! client's name is only what it claims. Elsewhere the chain is empty and
//! callers show the pid alone.

use std::path::Path;

/// One process of a caller's ancestry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeerProcess {
    /// Process id.
    pub pid: u32,
    /// Path of the executable; empty when it could not be read.
    pub executable: String,
    /// Command line, arguments joined by spaces, at most [`MAX_COMMAND_LINE`]
    /// bytes.
    pub command_line: String,
}

/// How many processes of the chain are read: the caller and its parents.
pub const MAX_CHAIN: usize = 8;
/// Longest command line kept, in bytes.
pub const MAX_COMMAND_LINE: usize = 1024;

/// The process `pid` and its parents, nearest first, stopping before init
/// (pid 1) and after [`MAX_CHAIN`]. Blocking (reads `/proc`); a process that
/// is gone yields what was read up to it.
pub fn chain(pid: u32) -> Vec<PeerProcess> {
    let mut chain = Vec::new();
    let mut next = Some(pid);
    while let Some(pid) = next {
        if pid <= 1 || chain.len() >= MAX_CHAIN {
            break;
        }
        let Some((process, parent)) = read(pid) else {
            if chain.is_empty() {
                chain.push(PeerProcess {
                    pid,
                    ..PeerProcess::default()
                });
            }
            break;
        };
        chain.push(process);
        next = parent;
    }
    chain
}

#[cfg(target_os = "linux")]
fn read(pid: u32) -> Option<(PeerProcess, Option<u32>)> {
    let dir = Path::new("/proc").join(pid.to_string());
    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
    // The command name in parentheses may itself hold spaces and
    // parentheses; the fields after the last ')' are fixed.
    let after = &stat[stat.rfind(')')? + 1..];
    let parent = after
        .split_whitespace()
        .nth(1)
        .and_then(|field| field.parse::<u32>().ok());
    let executable = std::fs::read_link(dir.join("exe"))
        .map(|path| path.to_string_lossy().into_owned())
        .unwrap_or_default();
    let raw = std::fs::read(dir.join("cmdline")).unwrap_or_default();
    let mut command_line = raw
        .split(|byte| *byte == 0)
        .filter(|part| !part.is_empty())
        .map(String::from_utf8_lossy)
        .collect::<Vec<_>>()
        .join(" ");
    if command_line.len() > MAX_COMMAND_LINE {
        let mut end = MAX_COMMAND_LINE;
        while !command_line.is_char_boundary(end) {
            end -= 1;
        }
        command_line.truncate(end);
    }
    Some((
        PeerProcess {
            pid,
            executable,
            command_line,
        },
        parent,
    ))
}

#[cfg(not(target_os = "linux"))]
fn read(_pid: u32) -> Option<(PeerProcess, Option<u32>)> {
    let _ = Path::new("");
    None
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn our_own_chain_starts_with_this_test_binary() {
        let chain = chain(std::process::id());
        assert!(!chain.is_empty());
        assert_eq!(chain[0].pid, std::process::id());
        let exe = std::env::current_exe().map(|p| p.to_string_lossy().into_owned());
        assert_eq!(Some(chain[0].executable.clone()), exe.ok());
        assert!(chain.iter().all(|process| process.pid > 1));
        assert!(chain.len() <= MAX_CHAIN);
    }

    #[test]
    fn a_gone_process_is_its_pid_alone() {
        // Pids above the kernel's maximum (4 194 304) never exist.
        let chain = chain(4_194_305 + 7);
        assert_eq!(chain.len(), 1);
        assert!(chain[0].executable.is_empty());
    }
}
