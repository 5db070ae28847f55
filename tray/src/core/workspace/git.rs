//! The Git tab's mirror of one project's repository: status, the diff shown, branches and the progress of a pull or push, kept current by the "repository changed" event. Folded in by [`GitState::apply`].
//!
//! The state holds one project at a time (the one the tab shows): reading
//! another project's status replaces it whole, so nothing of the old
//! repository lingers next to the new one. The "repository changed" events
//! only count, per project; the tab compares that count with the one it
//! last read at and asks for a fresh status when they differ, so a change
//! is read once, and only while someone looks.

use std::collections::HashMap;

use omnipanel_client::proto::v1::{Branch, FileDiff, RepoStatus, TransferProgress};

/// What the panel asks the backend to do on the git side. Every command
/// names the project (its id) it works on.
#[derive(Debug, Clone, PartialEq)]
pub enum GitCommand {
    /// Read the status and the local branches (and the diff shown again,
    /// when one is).
    Refresh {
        /// The project.
        project: String,
        /// The diff shown: (path, staged side).
        diff: Option<(String, bool)>,
    },
    /// Read the diff of one file: its staged side (index against HEAD) or
    /// its unstaged side (working tree against the index).
    Diff {
        /// The project.
        project: String,
        /// The file, relative to the repository root.
        path: String,
        /// Which side.
        staged: bool,
    },
    /// Stage these paths (empty: everything).
    Stage {
        /// The project.
        project: String,
        /// The paths; empty for all.
        paths: Vec<String>,
    },
    /// Unstage these paths (empty: everything).
    Unstage {
        /// The project.
        project: String,
        /// The paths; empty for all.
        paths: Vec<String>,
    },
    /// Commit what is staged.
    Commit {
        /// The project.
        project: String,
        /// The message.
        message: String,
    },
    /// Switch to a local branch.
    Checkout {
        /// The project.
        project: String,
        /// The branch.
        branch: String,
    },
    /// Create a branch at HEAD and switch to it.
    CreateBranch {
        /// The project.
        project: String,
        /// Its name.
        name: String,
    },
    /// Pull the upstream, fast-forward only (progress arrives as updates).
    Pull {
        /// The project.
        project: String,
    },
    /// Push the current branch (progress arrives as updates); never forced.
    Push {
        /// The project.
        project: String,
        /// Record the remote branch as the upstream (a branch without one).
        set_upstream: bool,
    },
    /// Stop following the project's pull or push (the stream is dropped).
    Cancel {
        /// The project.
        project: String,
    },
}

impl GitCommand {
    /// The key its outcome (a notice) is filed under.
    pub fn key(&self) -> String {
        match self {
            Self::Refresh { .. } => "git:status",
            Self::Diff { .. } => "git:diff",
            Self::Stage { .. } | Self::Unstage { .. } => "git:stage",
            Self::Commit { .. } => "git:commit",
            Self::Checkout { .. } | Self::CreateBranch { .. } => "git:branch",
            Self::Pull { .. } | Self::Push { .. } => "git:remote",
            Self::Cancel { .. } => "git:cancel",
        }
        .to_owned()
    }
}

/// Why a repository's status cannot be shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitProblem {
    /// For a person.
    pub message: String,
    /// The project folder is not a repository (nothing else to offer).
    pub not_a_repository: bool,
}

/// The diff the tab shows, as read.
#[derive(Debug, Clone, PartialEq)]
pub struct ShownDiff {
    /// The file.
    pub path: String,
    /// Its staged side (else unstaged).
    pub staged: bool,
    /// The file's diff (`None`: no textual change on that side), or why it
    /// could not be read.
    pub file: Result<Option<FileDiff>, String>,
    /// The agent cut it short (too big).
    pub truncated: bool,
}

/// A pull or a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferKind {
    /// A pull.
    Pull,
    /// A push.
    Push,
}

impl TransferKind {
    /// Its word in the UI.
    pub fn verb(self) -> &'static str {
        match self {
            Self::Pull => "Pulling",
            Self::Push => "Pushing",
        }
    }
}

/// A pull or push under way.
#[derive(Debug, Clone, PartialEq)]
pub struct Transfer {
    /// The project.
    pub project: String,
    /// Pull or push.
    pub kind: TransferKind,
    /// The latest progress (default until the first message).
    pub progress: TransferProgress,
}

impl Transfer {
    /// How far it got, 0..=1 (0 until the total is known).
    pub fn fraction(&self) -> f32 {
        let p = &self.progress;
        if p.objects_total == 0 {
            return 0.0;
        }
        // Precision loss is irrelevant for a progress bar.
        let fraction = p.objects_done as f32 / p.objects_total as f32;
        fraction.clamp(0.0, 1.0)
    }
}

/// One change to [`GitState`].
#[derive(Debug, Clone)]
pub enum GitUpdate {
    /// A project's status was read (or could not be).
    Status {
        /// The project.
        project: String,
        /// The status, or why not (boxed, as the diff below: every
        /// `Update` is as big as its largest variant).
        status: Box<Result<RepoStatus, GitProblem>>,
    },
    /// A project's local branches.
    Branches {
        /// The project.
        project: String,
        /// Local first, by name.
        branches: Vec<Branch>,
    },
    /// A file's diff was read.
    Diff {
        /// The project.
        project: String,
        /// The diff.
        diff: Box<ShownDiff>,
    },
    /// The agent said a project's repository changed (HEAD, index or refs).
    Changed {
        /// The project.
        project: String,
    },
    /// A pull or push moved on (the first one starts it).
    Transfer(Transfer),
    /// The project's pull or push ended (done, failed or cancelled; the
    /// outcome is a notice).
    TransferEnded {
        /// The project.
        project: String,
    },
}

/// The mirrored state.
#[derive(Debug, Clone, Default)]
pub struct GitState {
    /// The project the status, branches and diff below belong to.
    pub project: Option<String>,
    /// Its status, or why it cannot be shown; `None` until read.
    pub status: Option<Result<RepoStatus, GitProblem>>,
    /// Its local branches.
    pub branches: Vec<Branch>,
    /// The diff shown.
    pub diff: Option<ShownDiff>,
    /// The pull or push under way.
    pub transfer: Option<Transfer>,
    /// How many "repository changed" events each project had.
    changes: HashMap<String, u64>,
}

impl GitState {
    /// Fold one update in.
    pub fn apply(&mut self, update: GitUpdate) {
        match update {
            GitUpdate::Status { project, status } => {
                self.switch_to(&project);
                self.status = Some(*status);
            }
            GitUpdate::Branches { project, branches } => {
                self.switch_to(&project);
                self.branches = branches;
            }
            GitUpdate::Diff { project, diff } => {
                self.switch_to(&project);
                self.diff = Some(*diff);
            }
            GitUpdate::Changed { project } => {
                *self.changes.entry(project).or_default() += 1;
            }
            GitUpdate::Transfer(transfer) => self.transfer = Some(transfer),
            GitUpdate::TransferEnded { project } => {
                if self.transfer.as_ref().is_some_and(|t| t.project == project) {
                    self.transfer = None;
                }
            }
        }
    }

    /// The status of `project`, when it is the one mirrored.
    pub fn status_of(&self, project: &str) -> Option<&Result<RepoStatus, GitProblem>> {
        self.status
            .as_ref()
            .filter(|_| self.project.as_deref() == Some(project))
    }

    /// The local branches of `project`, when it is the one mirrored.
    pub fn branches_of(&self, project: &str) -> &[Branch] {
        if self.project.as_deref() == Some(project) {
            &self.branches
        } else {
            &[]
        }
    }

    /// The diff of `path` (staged or not) in `project`, when it is the one
    /// read last.
    pub fn diff_of(&self, project: &str, path: &str, staged: bool) -> Option<&ShownDiff> {
        self.diff.as_ref().filter(|d| {
            self.project.as_deref() == Some(project) && d.path == path && d.staged == staged
        })
    }

    /// The pull or push under way in `project`.
    pub fn transfer_of(&self, project: &str) -> Option<&Transfer> {
        self.transfer.as_ref().filter(|t| t.project == project)
    }

    /// How many times `project`'s repository changed (a count to compare).
    pub fn changes(&self, project: &str) -> u64 {
        self.changes.get(project).copied().unwrap_or(0)
    }

    /// Mirror `project` from now on; another one's data goes.
    fn switch_to(&mut self, project: &str) {
        if self.project.as_deref() != Some(project) {
            self.project = Some(project.to_owned());
            self.status = None;
            self.branches.clear();
            self.diff = None;
        }
    }
}

/// An agent error on a Git action, for a person: the agent's message and,
/// for the reasons a person can act on, what to do (never a force-push:
/// the panel does not offer one).
pub fn explain(reason: Option<&str>, message: &str) -> String {
    let hint = match reason {
        Some("GIT_AUTH") => {
            "The remote refused the credentials: set up ssh-agent or a git credential helper (or [git] token), then retry."
        }
        Some("GIT_NETWORK") => "Check the network and the remote's address, then retry.",
        Some("NOT_FAST_FORWARD") => {
            "Your branch and its upstream have diverged: merge or rebase them in a terminal, then push."
        }
        Some("PUSH_REJECTED") => "The remote has commits this branch lacks: Pull first, then Push.",
        Some("CHECKOUT_CONFLICT") => "Commit or stash these changes, then switch again.",
        Some("GIT_CONFLICT") => "Resolve the conflicts and stage the files, then retry.",
        Some("GIT_LOCKED") => {
            "Another git process is working on this repository: wait and retry (remove a stale .lock file if none runs)."
        }
        Some("GIT_IDENTITY_MISSING") => {
            "Tell Git who you are: git config --global user.name \"Your Name\" and user.email, then commit again."
        }
        Some("NOTHING_TO_COMMIT") => "Stage changes first.",
        _ => "",
    };
    if hint.is_empty() {
        message.to_owned()
    } else {
        format!("{message}. {hint}")
    }
}

#[cfg(test)]
mod tests {
    use omnipanel_client::proto::v1::StatusEntry;

    use super::*;

    fn status(branch: &str, staged: &[&str]) -> RepoStatus {
        RepoStatus {
            branch: branch.into(),
            staged: staged
                .iter()
                .map(|p| StatusEntry {
                    path: (*p).into(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn another_projects_status_replaces_everything_of_the_first() {
        let mut git = GitState::default();
        git.apply(GitUpdate::Status {
            project: "a".into(),
            status: Box::new(Ok(status("main", &["x"]))),
        });
        git.apply(GitUpdate::Branches {
            project: "a".into(),
            branches: vec![Branch {
                name: "main".into(),
                ..Default::default()
            }],
        });
        git.apply(GitUpdate::Diff {
            project: "a".into(),
            diff: Box::new(ShownDiff {
                path: "x".into(),
                staged: true,
                file: Ok(None),
                truncated: false,
            }),
        });
        assert!(git.diff_of("a", "x", true).is_some());
        assert!(git.diff_of("a", "x", false).is_none());
        assert_eq!(git.branches_of("a").len(), 1);
        git.apply(GitUpdate::Status {
            project: "b".into(),
            status: Box::new(Err(GitProblem {
                message: "not a repository".into(),
                not_a_repository: true,
            })),
        });
        assert!(git.status_of("a").is_none());
        assert!(git.branches_of("a").is_empty());
        assert!(git.branches_of("b").is_empty());
        assert!(git.diff.is_none());
        assert!(matches!(git.status_of("b"), Some(Err(p)) if p.not_a_repository));
        // The same project's status again keeps its branches.
        git.apply(GitUpdate::Branches {
            project: "b".into(),
            branches: vec![Branch::default()],
        });
        git.apply(GitUpdate::Status {
            project: "b".into(),
            status: Box::new(Ok(status("dev", &[]))),
        });
        assert_eq!(git.branches_of("b").len(), 1);
    }

    #[test]
    fn changes_are_counted_per_project() {
        let mut git = GitState::default();
        assert_eq!(git.changes("a"), 0);
        git.apply(GitUpdate::Changed {
            project: "a".into(),
        });
        git.apply(GitUpdate::Changed {
            project: "a".into(),
        });
        git.apply(GitUpdate::Changed {
            project: "b".into(),
        });
        assert_eq!(git.changes("a"), 2);
        assert_eq!(git.changes("b"), 1);
    }

    #[test]
    fn a_transfer_shows_until_its_project_ends_it() {
        let mut git = GitState::default();
        let mut transfer = Transfer {
            project: "a".into(),
            kind: TransferKind::Push,
            progress: TransferProgress::default(),
        };
        git.apply(GitUpdate::Transfer(transfer.clone()));
        assert_eq!(git.transfer_of("a").map(Transfer::fraction), Some(0.0));
        transfer.progress.objects_done = 3;
        transfer.progress.objects_total = 4;
        git.apply(GitUpdate::Transfer(transfer));
        assert_eq!(git.transfer_of("a").map(Transfer::fraction), Some(0.75));
        assert!(git.transfer_of("b").is_none());
        git.apply(GitUpdate::TransferEnded {
            project: "b".into(),
        });
        assert!(git.transfer_of("a").is_some());
        git.apply(GitUpdate::TransferEnded {
            project: "a".into(),
        });
        assert!(git.transfer.is_none());
    }

    #[test]
    fn errors_say_what_to_do_for_known_reasons() {
        let rejected = explain(Some("PUSH_REJECTED"), "the remote rejected main");
        assert!(rejected.starts_with("the remote rejected main. "));
        assert!(rejected.contains("Pull first"));
        assert!(!rejected.contains("force"));
        assert_eq!(
            explain(None, "main has no upstream"),
            "main has no upstream"
        );
        assert!(explain(Some("GIT_AUTH"), "denied").contains("credential helper"));
    }

    #[test]
    fn commands_report_under_their_area() {
        let project = String::from("p");
        assert_eq!(
            GitCommand::Stage {
                project: project.clone(),
                paths: Vec::new()
            }
            .key(),
            "git:stage"
        );
        assert_eq!(
            GitCommand::Unstage {
                project: project.clone(),
                paths: Vec::new()
            }
            .key(),
            "git:stage"
        );
        assert_eq!(
            GitCommand::Push {
                project: project.clone(),
                set_upstream: false
            }
            .key(),
            GitCommand::Pull { project }.key()
        );
    }
}
