//! The panel's window state (size, tab, last project), kept in the agent's
//! workspace state under client key [`CLIENT_KEY`]. Workspace state is
//! keyed by project (the agent has no project-less key, and adding one
//! would change the API for one client), so the blob lives under the
//! panel's last project, and a one-line local file
//! (`$XDG_STATE_HOME/omnipanel/panel-project`) says which project that was.
//! With no project at all nothing is kept and the panel opens as new.
//!
//! The blob is a few `key=value` lines (no serde in this crate); a blob
//! that does not read as one is ignored with a log line, never fatal, and
//! the next save replaces it.

use std::path::PathBuf;

/// The workspace state's client key.
pub const CLIENT_KEY: &str = "panel";

/// The first line of every blob: what it is and its format's version.
const HEADER: &str = "omnipanel-panel 1";

/// Sizes outside this are not restored (a blob from a bigger screen, or
/// damaged): logical pixels.
const SANE: std::ops::RangeInclusive<u32> = 200..=10_000;

/// What the panel restores at start.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WindowState {
    /// Inner width, logical pixels.
    pub width: u32,
    /// Inner height, logical pixels.
    pub height: u32,
    /// The tab's title (`Models`).
    pub tab: String,
    /// The project the Chat, Projects and Git tabs worked on (its id).
    pub project: Option<String>,
}

impl WindowState {
    /// The blob saved.
    pub fn encode(&self) -> Vec<u8> {
        let mut text = format!(
            "{HEADER}\nwidth={}\nheight={}\ntab={}\n",
            self.width,
            self.height,
            one_line(&self.tab)
        );
        if let Some(project) = &self.project {
            text.push_str(&format!("project={}\n", one_line(project)));
        }
        text.into_bytes()
    }

    /// Read a saved blob; `None` (and a log line) when it is not one of
    /// ours or its size is not believable. Unknown keys are skipped, so a
    /// later panel's additions do not lose the rest.
    pub fn decode(data: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(data).ok();
        let Some((HEADER, rest)) = text.and_then(|t| t.split_once('\n')) else {
            tracing::warn!(
                "ignoring the saved panel state ({} bytes): not a panel state",
                data.len()
            );
            return None;
        };
        let mut state = Self::default();
        for line in rest.lines() {
            match line.split_once('=') {
                Some(("width", v)) => state.width = v.trim().parse().unwrap_or(0),
                Some(("height", v)) => state.height = v.trim().parse().unwrap_or(0),
                Some(("tab", v)) => state.tab = v.to_owned(),
                Some(("project", v)) if !v.is_empty() => state.project = Some(v.to_owned()),
                _ => {}
            }
        }
        if !SANE.contains(&state.width) || !SANE.contains(&state.height) {
            tracing::warn!(
                "ignoring the saved panel size {}x{}",
                state.width,
                state.height
            );
            state.width = 0;
            state.height = 0;
        }
        Some(state)
    }

    /// Whether it has a size to restore.
    pub fn has_size(&self) -> bool {
        self.width > 0 && self.height > 0
    }
}

fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

/// The local file naming the project the panel state is saved under.
pub fn last_project_file() -> PathBuf {
    omnipanel_paths::state_dir().join("panel-project")
}

/// The project the panel state was last saved under, if any.
pub fn read_last_project() -> Option<String> {
    let text = std::fs::read_to_string(last_project_file()).ok()?;
    let id = text.trim();
    (!id.is_empty()).then(|| id.to_owned())
}

/// Remember the project the panel state is saved under.
pub fn write_last_project(id: &str) -> std::io::Result<()> {
    let file = last_project_file();
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(file, format!("{id}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_reads_back_as_written() {
        let state = WindowState {
            width: 900,
            height: 700,
            tab: "Models".into(),
            project: Some("p-1".into()),
        };
        assert_eq!(WindowState::decode(&state.encode()), Some(state));
        let none = WindowState {
            project: None,
            ..WindowState::default()
        };
        let read = WindowState::decode(&none.encode()).unwrap_or_default();
        assert_eq!(read.project, None);
        assert!(!read.has_size());
    }

    #[test]
    fn a_bad_blob_is_ignored_and_a_bad_size_dropped() {
        assert_eq!(WindowState::decode(b"{\"json\": true}"), None);
        assert_eq!(WindowState::decode(&[0xff, 0xfe, b'\n']), None);
        assert_eq!(WindowState::decode(b""), None);
        let huge =
            WindowState::decode(b"omnipanel-panel 1\nwidth=99999\nheight=x\ntab=Git\nfuture=1\n");
        assert_eq!(
            huge,
            Some(WindowState {
                tab: "Git".into(),
                ..WindowState::default()
            })
        );
    }
}
