//! The Projects tab's mirror of the projects' files, per project id: the
//! folders of the tree read so far (lazily, kept current through `Watch`),
//! the last FindFiles answer, the streamed SearchText results and the
//! preview open. Folded in by [`FilesState::apply`]. Answers carry the tag
//! of the request that asked, so a late answer to an older request never
//! replaces a newer one.

use std::{
    collections::{HashMap, HashSet},
    path::PathBuf,
};

use omnipanel_client::proto::v1::{FileInfo, FileMatch, SearchSummary, TextMatch};

/// The most of a file the preview reads.
pub const PREVIEW_LIMIT: u64 = 1 << 20;

/// What the panel asks the backend to do on the files side. `project` is
/// always the project's id.
#[derive(Debug, Clone, PartialEq)]
pub enum FilesCommand {
    /// Read one folder of the tree (`dir` "" is the root).
    List {
        /// The project.
        project: String,
        /// The folder, relative to the root.
        dir: String,
    },
    /// Follow the project's changes (`None`: stop following).
    Watch(Option<String>),
    /// Fuzzy-find files by name.
    Find {
        /// The project.
        project: String,
        /// What was typed.
        query: String,
        /// Tags the answer (increasing per panel).
        tag: u64,
    },
    /// Search the files' text; results stream in.
    Search {
        /// The project.
        project: String,
        /// The text to look for (literal).
        pattern: String,
        /// Tags the results (increasing per panel).
        tag: u64,
    },
    /// Stop the running text search.
    StopSearch,
    /// Read a file for the preview, optionally scrolled to a match.
    Preview {
        /// The project.
        project: String,
        /// The file, relative to the root.
        path: String,
        /// Where to scroll, with the match ranges to highlight.
        highlight: Option<Highlight>,
    },
    /// Open a file in the user's editor (at a line when known).
    OpenInEditor {
        /// The file's absolute path.
        path: PathBuf,
        /// 1-based line.
        line: Option<u64>,
    },
    /// Copy files dropped from the desktop into a folder of the project.
    CopyIn {
        /// The project.
        project: String,
        /// The project's root folder (to tell sources inside it).
        root: PathBuf,
        /// The target folder, relative to the root ("" is the root).
        dir: String,
        /// The dropped files' local paths.
        sources: Vec<PathBuf>,
    },
}

impl FilesCommand {
    /// The key its outcome (a notice) is filed under.
    pub fn key(&self) -> String {
        match self {
            Self::List { .. } | Self::Watch(_) => "files:tree",
            Self::Find { .. } => "files:find",
            Self::Search { .. } | Self::StopSearch => "files:search",
            Self::Preview { .. } => "files:preview",
            Self::OpenInEditor { .. } => "files:editor",
            Self::CopyIn { .. } => "files:drop",
        }
        .to_owned()
    }
}

/// A line to scroll to and the byte ranges in it to highlight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Highlight {
    /// 1-based line number.
    pub line: u64,
    /// Byte ranges (start, end) within the line.
    pub ranges: Vec<(usize, usize)>,
}

/// One change to [`FilesState`].
#[derive(Debug, Clone)]
pub enum FilesUpdate {
    /// A folder was read (or reading it failed). `refresh`: a re-read after
    /// a change, dropped when the folder was never read (not in the tree).
    Listing {
        /// The project.
        project: String,
        /// The folder.
        dir: String,
        /// Its entries, or why they could not be read.
        entries: Result<Vec<FileInfo>, String>,
        /// Whether this re-reads a folder after a change.
        refresh: bool,
    },
    /// Changes may have been missed (the watch (re)started, or the agent
    /// lost some): every folder read is stale until read again.
    Rescan {
        /// The project.
        project: String,
    },
    /// A FindFiles answer.
    Found {
        /// The project.
        project: String,
        /// The request's tag.
        tag: u64,
        /// Best matches first, or the error.
        matches: Result<Vec<FileMatch>, String>,
    },
    /// Some text search results arrived.
    SearchMatches {
        /// The project.
        project: String,
        /// The search's tag.
        tag: u64,
        /// The matching lines.
        matches: Vec<TextMatch>,
    },
    /// A text search ended: its summary, or why it stopped.
    SearchDone {
        /// The project.
        project: String,
        /// The search's tag.
        tag: u64,
        /// The summary, or the error ("stopped" when the user stopped it).
        outcome: Result<SearchSummary, String>,
    },
    /// A file was read for the preview.
    Preview {
        /// The project.
        project: String,
        /// What was shown.
        preview: Preview,
    },
}

/// A folder of the tree as last read.
pub type Listing = Result<Vec<FileInfo>, String>;

/// The FindFiles answer shown.
#[derive(Debug, Clone)]
pub struct Found {
    /// The tag of the request it answers (0: none yet).
    pub tag: u64,
    /// Best first, or the error.
    pub matches: Result<Vec<FileMatch>, String>,
}

impl Default for Found {
    fn default() -> Self {
        Self {
            tag: 0,
            matches: Ok(Vec::new()),
        }
    }
}

/// The text search shown.
#[derive(Debug, Clone, Default)]
pub struct Search {
    /// The search's tag (0: none yet).
    pub tag: u64,
    /// Results so far.
    pub matches: Vec<TextMatch>,
    /// `None` while it runs; then the summary or why it stopped.
    pub outcome: Option<Result<SearchSummary, String>>,
}

/// A read-only view of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    /// The file, relative to the root.
    pub path: String,
    /// Its text (lossy UTF-8), or why it cannot be shown.
    pub text: Result<String, String>,
    /// True when only the first part was read.
    pub truncated: bool,
    /// The match to scroll to and highlight.
    pub highlight: Option<Highlight>,
}

/// What is known about one project's files.
#[derive(Debug, Clone, Default)]
pub struct ProjectFiles {
    /// Folders read so far, by path ("" is the root).
    pub dirs: HashMap<String, Listing>,
    /// Folders read before a rescan and not since (shown until re-read).
    pub stale: HashSet<String>,
    /// Bumped on each rescan (the UI asks again for what it shows).
    pub rescans: u64,
    /// The last FindFiles answer.
    pub found: Found,
    /// The text search.
    pub search: Search,
    /// The preview open.
    pub preview: Option<Preview>,
}

/// The mirrored state, per project id.
#[derive(Debug, Clone, Default)]
pub struct FilesState {
    projects: HashMap<String, ProjectFiles>,
}

impl FilesState {
    /// What is known about `project` (empty when nothing yet).
    pub fn project(&self, project: &str) -> Option<&ProjectFiles> {
        self.projects.get(project)
    }

    /// Fold one update in.
    pub fn apply(&mut self, update: FilesUpdate) {
        match update {
            FilesUpdate::Listing {
                project,
                dir,
                entries,
                refresh,
            } => {
                let files = self.projects.entry(project).or_default();
                // A re-read after a change only refreshes folders shown.
                if refresh && !files.dirs.contains_key(&dir) {
                    return;
                }
                files.stale.remove(&dir);
                files.dirs.insert(dir, entries);
            }
            FilesUpdate::Rescan { project } => {
                let files = self.projects.entry(project).or_default();
                files.stale = files.dirs.keys().cloned().collect();
                files.rescans = files.rescans.wrapping_add(1);
            }
            FilesUpdate::Found {
                project,
                tag,
                matches,
            } => {
                let files = self.projects.entry(project).or_default();
                if tag >= files.found.tag {
                    files.found = Found { tag, matches };
                }
            }
            FilesUpdate::SearchMatches {
                project,
                tag,
                matches,
            } => {
                let search = &mut self.projects.entry(project).or_default().search;
                if tag > search.tag {
                    *search = Search {
                        tag,
                        ..Search::default()
                    };
                }
                if tag == search.tag && search.outcome.is_none() {
                    search.matches.extend(matches);
                }
            }
            FilesUpdate::SearchDone {
                project,
                tag,
                outcome,
            } => {
                let search = &mut self.projects.entry(project).or_default().search;
                if tag > search.tag {
                    *search = Search {
                        tag,
                        ..Search::default()
                    };
                }
                if tag == search.tag && search.outcome.is_none() {
                    search.outcome = Some(outcome);
                }
            }
            FilesUpdate::Preview { project, preview } => {
                self.projects.entry(project).or_default().preview = Some(preview);
            }
        }
    }
}

/// The folder holding `path` ("" for a top-level entry).
pub fn parent_dir(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str) -> FileInfo {
        FileInfo {
            path: path.into(),
            name: path.rsplit('/').next().unwrap_or(path).into(),
            ..Default::default()
        }
    }

    fn listing(dir: &str, names: &[&str], refresh: bool) -> FilesUpdate {
        FilesUpdate::Listing {
            project: "p".into(),
            dir: dir.into(),
            entries: Ok(names.iter().map(|n| file(n)).collect()),
            refresh,
        }
    }

    fn names(state: &FilesState, dir: &str) -> Vec<String> {
        match state.project("p").and_then(|p| p.dirs.get(dir)) {
            Some(Ok(entries)) => entries.iter().map(|e| e.path.clone()).collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn folders_are_read_lazily_and_refreshed_only_when_shown() {
        let mut state = FilesState::default();
        state.apply(listing("", &["a.txt", "src"], false));
        assert_eq!(names(&state, ""), ["a.txt", "src"]);
        // A change under a folder never expanded is not mirrored.
        state.apply(listing("src", &["src/x.rs"], true));
        assert!(
            state
                .project("p")
                .is_some_and(|p| !p.dirs.contains_key("src"))
        );
        // A change to a folder shown replaces its entries.
        state.apply(listing("", &["a.txt", "b.txt", "src"], true));
        assert_eq!(names(&state, ""), ["a.txt", "b.txt", "src"]);
        // Other projects are kept apart.
        assert!(state.project("q").is_none());
    }

    #[test]
    fn a_rescan_marks_the_folders_read_stale_until_read_again() {
        let mut state = FilesState::default();
        state.apply(listing("", &["a.txt"], false));
        state.apply(listing("src", &["src/x.rs"], false));
        state.apply(FilesUpdate::Rescan {
            project: "p".into(),
        });
        let files = state.project("p").cloned().unwrap_or_default();
        assert_eq!(files.rescans, 1);
        assert_eq!(files.stale.len(), 2);
        // Still shown meanwhile.
        assert_eq!(names(&state, ""), ["a.txt"]);
        state.apply(listing("", &["a.txt", "b.txt"], true));
        let files = state.project("p").cloned().unwrap_or_default();
        assert!(!files.stale.contains(""));
        assert!(files.stale.contains("src"));
    }

    #[test]
    fn a_late_find_answer_does_not_replace_a_newer_one() {
        let mut state = FilesState::default();
        let found = |tag, path: &str| FilesUpdate::Found {
            project: "p".into(),
            tag,
            matches: Ok(vec![FileMatch {
                path: path.into(),
                ..Default::default()
            }]),
        };
        state.apply(found(2, "new.rs"));
        state.apply(found(1, "old.rs"));
        let files = state.project("p").cloned().unwrap_or_default();
        assert_eq!(files.found.tag, 2);
        assert_eq!(
            files.found.matches.unwrap_or_default()[0].path,
            "new.rs".to_owned()
        );
    }

    #[test]
    fn search_results_stream_in_and_a_new_search_starts_afresh() {
        let mut state = FilesState::default();
        let matches = |tag, path: &str| FilesUpdate::SearchMatches {
            project: "p".into(),
            tag,
            matches: vec![TextMatch {
                path: path.into(),
                ..Default::default()
            }],
        };
        state.apply(matches(1, "a"));
        state.apply(matches(1, "b"));
        let search = |s: &FilesState| s.project("p").cloned().unwrap_or_default().search;
        assert_eq!(search(&state).matches.len(), 2);
        assert!(search(&state).outcome.is_none(), "still running");
        state.apply(matches(2, "c"));
        assert_eq!(search(&state).matches.len(), 1);
        // A result of the older search arriving late is dropped.
        state.apply(matches(1, "d"));
        assert_eq!(search(&state).matches.len(), 1);
        state.apply(FilesUpdate::SearchDone {
            project: "p".into(),
            tag: 2,
            outcome: Err("stopped".into()),
        });
        // Nothing is added once it ended.
        state.apply(matches(2, "e"));
        assert_eq!(search(&state).matches.len(), 1);
        assert_eq!(search(&state).outcome, Some(Err("stopped".into())));
    }

    #[test]
    fn parents_of_paths() {
        assert_eq!(parent_dir("a.txt"), "");
        assert_eq!(parent_dir("src/nested/lib.rs"), "src/nested");
    }

    #[test]
    fn outcomes_are_filed_by_kind() {
        assert_eq!(FilesCommand::StopSearch.key(), "files:search");
        assert_eq!(FilesCommand::Watch(None).key(), "files:tree");
    }
}
