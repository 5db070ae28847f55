//! How `omnipanel mcp` words the agent's answers for a model: plain text,
//! compact, one item per line, with the same names and units as the CLI
//! (through the client library's display module), and a closing line
//! whenever something was left out so the model knows to ask for more.

use omnipanel_client::display;
use omnipanel_proto::v1::{self as pb, FileKind};

/// A folder's entries: folders first (with a trailing `/`), then files
/// with their sizes.
pub fn directory(entries: &[pb::FileInfo]) -> String {
    if entries.is_empty() {
        return "(empty folder)".to_owned();
    }
    let is_dir = |entry: &pb::FileInfo| entry.kind == i32::from(FileKind::Directory);
    let mut lines: Vec<String> = entries
        .iter()
        .filter(|entry| is_dir(entry))
        .map(|entry| format!("{}/", entry.name))
        .collect();
    lines.extend(
        entries
            .iter()
            .filter(|entry| !is_dir(entry))
            .map(|entry| format!("{}  {}", entry.name, display::bytes(entry.size))),
    );
    lines.join("\n")
}

/// A part of a file: its text, or why there is none, and where to go on.
pub fn file_part(path: &str, response: &pb::ReadFileResponse) -> String {
    let info = response.info.clone().unwrap_or_default();
    if response.binary {
        return format!(
            "{path} is a binary file ({}); it is not shown as text",
            display::bytes(info.size)
        );
    }
    let mut text = String::from_utf8_lossy(&response.data).into_owned();
    let end = response.offset + response.data.len() as u64;
    if end < info.size {
        text.push_str(&format!(
            "\n[... {path} goes on: bytes {end} to {} not shown; read again with offset {end}]",
            info.size
        ));
    }
    text
}

/// The best fuzzy matches, one path per line.
pub fn found_files(response: &pb::FindFilesResponse) -> String {
    let mut lines: Vec<String> = response
        .matches
        .iter()
        .map(|found| found.path.clone())
        .collect();
    if lines.is_empty() {
        lines.push("no file matches".to_owned());
    }
    if !response.index_complete {
        lines.push(format!(
            "[the project is still being indexed ({} files so far): results may be incomplete]",
            response.total_files
        ));
    }
    lines.join("\n")
}

/// Matching lines as `path:line: text`.
pub fn text_matches(matches: &[pb::TextMatch], max: u64) -> String {
    if matches.is_empty() {
        return "no matches".to_owned();
    }
    let mut lines: Vec<String> = matches
        .iter()
        .map(|found| {
            format!(
                "{}:{}: {}",
                found.path,
                found.line_number,
                found.text.trim_end()
            )
        })
        .collect();
    if matches.len() as u64 >= max {
        lines.push(format!(
            "[stopped at {max} matching lines; narrow the search or raise max_results]"
        ));
    }
    lines.join("\n")
}

/// Status in sections, like `git status` without the advice.
pub fn git_status(status: &pb::RepoStatus) -> String {
    let head = if status.empty {
        format!("On {} (no commits yet)", status.branch)
    } else if status.detached {
        format!(
            "HEAD detached at {} {}",
            display::short_id(&status.head),
            status.head_summary
        )
    } else {
        format!(
            "On {} at {} {}",
            status.branch,
            display::short_id(&status.head),
            status.head_summary
        )
    };
    let mut lines = vec![head];
    if let Some(up) = &status.upstream {
        lines.push(format!(
            "Upstream {}: {} ahead, {} behind",
            up.name, up.ahead, up.behind
        ));
    }
    let sections = [
        ("Staged", &status.staged),
        ("Not staged", &status.unstaged),
        ("Untracked", &status.untracked),
        ("Conflicted", &status.conflicted),
    ];
    let mut clean = true;
    for (title, entries) in sections {
        if entries.is_empty() {
            continue;
        }
        clean = false;
        lines.push(format!("{title}:"));
        for entry in entries {
            let renamed = if entry.old_path.is_empty() {
                String::new()
            } else {
                format!(" (from {})", entry.old_path)
            };
            lines.push(format!(
                "  {}: {}{renamed}",
                display::change_label(entry.change),
                entry.path
            ));
        }
    }
    if clean {
        lines.push("Nothing to commit: the work tree is clean".to_owned());
    }
    lines.join("\n")
}

/// The patch, with a note when the agent cut it short.
pub fn diff(response: &pb::GetDiffResponse) -> String {
    if response.patch.is_empty() && response.files.is_empty() {
        return "no changes".to_owned();
    }
    let mut text = response.patch.clone();
    if response.truncated {
        text.push_str("\n[the diff was cut short; ask for fewer paths]");
    }
    text
}

/// Models, one per line: name, size, provider, default.
pub fn models(models: &[pb::Model]) -> String {
    if models.is_empty() {
        return "no models yet: the user can pull one, e.g. `omnipanel models pull llama3.2:1b`"
            .to_owned();
    }
    models
        .iter()
        .map(|model| {
            let mut line = format!("{}  {}", model.name, display::bytes(model.size_bytes));
            if !model.provider.is_empty() {
                line.push_str(&format!("  provider {}", model.provider));
            }
            if model.is_default {
                line.push_str("  (default)");
            }
            line
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The state of OmniPanel, Ollama and the machine, in a few lines.
pub fn system(
    info: &pb::GetInfoResponse,
    server: &pb::ServerStatus,
    snapshot: &pb::Snapshot,
    alerts: &[pb::Alert],
) -> String {
    let mut lines = vec![
        format!("OmniPanel agent {}", info.version),
        display::server_status_line(server),
        format!("Default model: {}", display::or_dash(&server.default_model)),
    ];
    if let Some(cpu) = &snapshot.cpu {
        lines.push(format!(
            "CPU: {}% of {} cores",
            display::trim_float(cpu.usage_percent),
            cpu.logical_cores
        ));
    }
    if let Some(memory) = &snapshot.memory {
        lines.push(format!(
            "Memory: {} used of {} ({} available)",
            display::bytes(memory.used_bytes),
            display::bytes(memory.total_bytes),
            display::bytes(memory.available_bytes)
        ));
    }
    for gpu in snapshot.gpu.iter().flat_map(|gpu| &gpu.gpus) {
        lines.push(format!(
            "GPU {} {}: {} used of {}",
            gpu.index,
            gpu.name,
            display::bytes(gpu.memory_used_bytes),
            display::bytes(gpu.memory_total_bytes)
        ));
    }
    if alerts.is_empty() {
        lines.push("No active alerts".to_owned());
    }
    for alert in alerts {
        lines.push(format!(
            "Alert: {} {} is {} (threshold {})",
            alert.metric,
            alert.subject,
            display::trim_float(alert.value),
            display::trim_float(alert.threshold_value)
        ));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, kind: FileKind, size: u64) -> pb::FileInfo {
        pb::FileInfo {
            name: name.to_owned(),
            path: name.to_owned(),
            kind: kind.into(),
            size,
            ..Default::default()
        }
    }

    #[test]
    fn folders_come_first_and_files_carry_sizes() {
        let text = directory(&[
            entry("README.md", FileKind::File, 2048),
            entry("src", FileKind::Directory, 0),
        ]);
        assert_eq!(text, "src/\nREADME.md  2.0 KB");
        assert_eq!(directory(&[]), "(empty folder)");
    }

    #[test]
    fn a_file_cut_short_says_where_to_go_on() {
        let response = pb::ReadFileResponse {
            info: Some(entry("big.txt", FileKind::File, 10)),
            data: b"hello".to_vec(),
            offset: 0,
            binary: false,
        };
        let text = file_part("big.txt", &response);
        assert!(text.starts_with("hello\n"), "{text}");
        assert!(text.contains("read again with offset 5"), "{text}");
        let whole = pb::ReadFileResponse {
            info: Some(entry("small.txt", FileKind::File, 5)),
            data: b"hello".to_vec(),
            ..Default::default()
        };
        assert_eq!(file_part("small.txt", &whole), "hello");
        let binary = pb::ReadFileResponse {
            binary: true,
            ..whole
        };
        assert!(file_part("small.txt", &binary).contains("binary file"));
    }

    #[test]
    fn status_lists_each_section_and_says_when_clean() {
        let mut status = pb::RepoStatus {
            branch: "main".to_owned(),
            head: "0123456789abcdef".to_owned(),
            head_summary: "First".to_owned(),
            ..Default::default()
        };
        assert!(git_status(&status).ends_with("Nothing to commit: the work tree is clean"));
        status.unstaged.push(pb::StatusEntry {
            path: "a.txt".to_owned(),
            change: pb::ChangeType::Modified.into(),
            ..Default::default()
        });
        status.untracked.push(pb::StatusEntry {
            path: "b.txt".to_owned(),
            change: pb::ChangeType::Untracked.into(),
            ..Default::default()
        });
        let text = git_status(&status);
        assert!(text.contains("Not staged:\n  modified: a.txt"), "{text}");
        assert!(text.contains("Untracked:\n  untracked: b.txt"), "{text}");
    }

    #[test]
    fn search_results_say_when_they_stopped() {
        let found = pb::TextMatch {
            path: "src/lib.rs".to_owned(),
            line_number: 3,
            text: "fn main() {}\n".to_owned(),
            ..Default::default()
        };
        assert_eq!(
            text_matches(std::slice::from_ref(&found), 10),
            "src/lib.rs:3: fn main() {}"
        );
        assert!(text_matches(&[found], 1).contains("stopped at 1"));
        assert_eq!(text_matches(&[], 10), "no matches");
    }

    #[test]
    fn models_mark_the_default() {
        let text = models(&[pb::Model {
            name: "llama3.2:1b".to_owned(),
            size_bytes: 1_300_000_000,
            provider: "local".to_owned(),
            is_default: true,
            ..Default::default()
        }]);
        assert!(text.starts_with("llama3.2:1b  "), "{text}");
        assert!(text.ends_with("(default)"), "{text}");
        assert!(models(&[]).contains("pull"));
    }
}
