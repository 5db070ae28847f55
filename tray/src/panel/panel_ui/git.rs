//! The Git tab: the selected project's status (staged, unstaged, untracked, conflicts), a file's coloured diff, stage/unstage, commit, branches (switch, create), pull/push with progress, kept current by the "repository changed" event.
//!
//! The tab reads the status when it is shown and again each time the
//! agent says the repository changed (the count in
//! [`crate::core::workspace::git::GitState::changes`] moved): no timer.
//! Every action is a [`GitCommand`] pushed to `out`; results come back as
//! state and as notices shown in place, next to the control that asked.

use std::collections::HashSet;

use egui::{Color32, Key, RichText};
use omnipanel_client::{
    display,
    proto::v1::{FileDiff, Project, RepoOperation, RepoStatus, StatusEntry},
};

use super::notice;
use crate::core::{
    backend::Command,
    state::AgentState,
    workspace::git::{GitCommand, GitProblem},
};

/// Added lines (and the green of successes elsewhere in the panel).
const ADDED: Color32 = Color32::from_rgb(0x43, 0xa0, 0x47);
/// Removed lines (and errors).
const REMOVED: Color32 = Color32::from_rgb(0xe5, 0x39, 0x35);
/// The most diff lines drawn: a huge diff would make every frame slow.
const MAX_DIFF_LINES: usize = 2000;

/// The tab's own UI state (what is typed and picked).
#[derive(Debug, Default)]
pub(super) struct GitTab {
    /// The project shown; what is picked and typed belongs to it.
    project: Option<String>,
    /// The project and its change count the status was last asked at;
    /// `None` when the tab was hidden (showing it reads again).
    seen: Option<(String, u64)>,
    /// The file whose diff shows: (path, staged side).
    selected: Option<(String, bool)>,
    /// The commit message being typed.
    message: String,
    /// A commit was sent at this HEAD: its message is cleared once HEAD
    /// moves (it succeeded), kept if it failed.
    committing: Option<String>,
    /// The "New branch…" dialog, with the name typed, when open.
    new_branch: Option<String>,
}

impl GitTab {
    /// The tab is not shown this frame: read again when it shows.
    pub(super) fn hidden(&mut self) {
        self.seen = None;
    }

    /// Close the open dialog (Esc); whether one was open.
    pub(super) fn close_dialog(&mut self) -> bool {
        self.new_branch.take().is_some()
    }

    /// Draw the tab for `project` (`None`: no project open yet); `pending`
    /// holds the keys of the commands still running.
    pub(super) fn show(
        &mut self,
        ui: &mut egui::Ui,
        state: &AgentState,
        project: Option<&Project>,
        pending: &HashSet<String>,
        out: &mut Vec<Command>,
    ) {
        let Some(project) = project else {
            ui.weak("Open a project on the Projects tab first: its repository shows here.");
            return;
        };
        let id = project.id.clone();
        if self.project.as_ref() != Some(&id) {
            // Another project: nothing picked or typed for the old one applies.
            *self = Self {
                project: Some(id.clone()),
                ..Self::default()
            };
        }
        let seen = (id.clone(), state.git.changes(&id));
        if !state.connected() {
            // Asking now would only fail; what was read may be stale by
            // the time the agent is back, so read again then.
            self.seen = None;
        } else if self.seen.as_ref() != Some(&seen) {
            self.seen = Some(seen);
            out.push(Command::Git(GitCommand::Refresh {
                project: id.clone(),
                diff: self.selected.clone(),
            }));
        }
        match state.git.status_of(&id) {
            None => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.weak(format!("reading the repository of {}…", project.name));
                });
            }
            Some(Err(problem)) => self.problem(ui, &id, problem, out),
            Some(Ok(status)) => {
                self.header(ui, state, &id, status, pending, out);
                ui.separator();
                self.changes(ui, state, &id, status, pending, out);
                ui.separator();
                self.commit(ui, state, &id, status, pending, out);
                self.branch_dialog(ui, &id, out);
            }
        }
    }

    fn problem(
        &mut self,
        ui: &mut egui::Ui,
        project: &str,
        problem: &GitProblem,
        out: &mut Vec<Command>,
    ) {
        ui.label(RichText::new(&problem.message).color(REMOVED));
        // Not a repository: nothing here applies until one exists; any
        // other failure may pass, so offer to read again.
        if !problem.not_a_repository && ui.button("Retry").clicked() {
            out.push(refresh(project, None));
        }
    }

    fn header(
        &mut self,
        ui: &mut egui::Ui,
        state: &AgentState,
        project: &str,
        status: &RepoStatus,
        pending: &HashSet<String>,
        out: &mut Vec<Command>,
    ) {
        ui.horizontal_wrapped(|ui| {
            ui.heading(branch_line(status));
            if let Some(upstream) = &status.upstream {
                ui.weak(format!(
                    "{} ahead, {} behind {}",
                    upstream.ahead, upstream.behind, upstream.name
                ));
            }
            if ui.button("Refresh").clicked() {
                out.push(refresh(project, self.selected.clone()));
            }
        });
        if let Some(operation) = operation_line(status.operation()) {
            ui.colored_label(Color32::from_rgb(0xfb, 0x8c, 0x00), operation);
        }
        ui.horizontal(|ui| {
            let label = ui.label("Branch:");
            let current = if status.branch.is_empty() {
                "(detached)".to_owned()
            } else {
                status.branch.clone()
            };
            let mut pick = None;
            let combo = egui::ComboBox::from_id_salt("git-branch")
                .selected_text(&current)
                .show_ui(ui, |ui| {
                    for branch in state.git.branches_of(project) {
                        if branch.remote {
                            continue;
                        }
                        if ui.selectable_label(branch.current, &branch.name).clicked()
                            && !branch.current
                        {
                            pick = Some(branch.name.clone());
                        }
                    }
                });
            combo.response.labelled_by(label.id);
            if let Some(branch) = pick {
                out.push(Command::Git(GitCommand::Checkout {
                    project: project.to_owned(),
                    branch,
                }));
            }
            if ui.button("New branch…").clicked() {
                self.new_branch = Some(String::new());
            }
            let transfer = state.git.transfer_of(project);
            let upstream = status.upstream.is_some();
            let pull = ui
                .add_enabled(upstream && transfer.is_none(), egui::Button::new("Pull"))
                .on_disabled_hover_text("this branch tracks no upstream yet: Push publishes it");
            if pull.clicked() {
                out.push(Command::Git(GitCommand::Pull {
                    project: project.to_owned(),
                }));
            }
            let push = ui.add_enabled(
                transfer.is_none() && !status.detached && !status.empty,
                egui::Button::new("Push"),
            );
            if push.clicked() {
                out.push(Command::Git(GitCommand::Push {
                    project: project.to_owned(),
                    set_upstream: !upstream,
                }));
            }
        });
        if status.upstream.is_none() && !status.detached && !status.empty {
            ui.weak("No upstream yet: Push publishes this branch to origin and tracks it.");
        }
        notice(pending, ui, state, "git:branch");
        if let Some(transfer) = state.git.transfer_of(project) {
            ui.horizontal(|ui| {
                ui.add(
                    egui::ProgressBar::new(transfer.fraction())
                        .text(format!(
                            "{}: {}",
                            transfer.kind.verb(),
                            display::transfer_line(&transfer.progress)
                        ))
                        .desired_width(420.0),
                );
                if ui.button("Cancel").clicked() {
                    out.push(Command::Git(GitCommand::Cancel {
                        project: project.to_owned(),
                    }));
                }
            });
        } else {
            notice(pending, ui, state, "git:remote");
        }
    }

    fn changes(
        &mut self,
        ui: &mut egui::Ui,
        state: &AgentState,
        project: &str,
        status: &RepoStatus,
        pending: &HashSet<String>,
        out: &mut Vec<Command>,
    ) {
        let groups: [(&str, &[StatusEntry], bool); 4] = [
            ("Conflicts", &status.conflicted, false),
            ("Staged", &status.staged, true),
            ("Changes", &status.unstaged, false),
            ("Untracked", &status.untracked, false),
        ];
        if groups.iter().all(|(_, entries, _)| entries.is_empty()) {
            ui.weak("Nothing to commit: the working tree is clean.");
            self.selected = None;
            return;
        }
        // A file that left the side it was picked on (staged, committed)
        // shows no stale diff.
        if let Some((path, staged)) = &self.selected {
            let still = groups
                .iter()
                .filter(|(_, _, side)| side == staged)
                .any(|(_, entries, _)| entries.iter().any(|e| e.path == *path));
            if !still {
                self.selected = None;
            }
        }
        for (title, entries, staged) in groups {
            if entries.is_empty() {
                continue;
            }
            ui.horizontal(|ui| {
                ui.strong(format!("{title} ({})", entries.len()));
                let (text, command) = if staged {
                    ("Unstage all", unstage(project, Vec::new()))
                } else {
                    let paths = entries.iter().map(|e| e.path.clone()).collect();
                    ("Stage all", stage(project, paths))
                };
                if ui
                    .small_button(text)
                    .accessible_name(format!("{text} {}", title.to_lowercase()))
                    .clicked()
                {
                    out.push(command);
                }
            });
            for entry in entries {
                ui.horizontal(|ui| {
                    let (verb, command) = if staged {
                        ("Unstage", unstage(project, vec![entry.path.clone()]))
                    } else {
                        ("Stage", stage(project, vec![entry.path.clone()]))
                    };
                    if ui
                        .small_button(verb)
                        .accessible_name(format!("{verb} {}", entry.path))
                        .clicked()
                    {
                        out.push(command);
                    }
                    let picked = self.selected.as_ref() == Some(&(entry.path.clone(), staged));
                    let name = if entry.old_path.is_empty() {
                        entry.path.clone()
                    } else {
                        format!("{} (from {})", entry.path, entry.old_path)
                    };
                    if ui
                        .selectable_label(picked, RichText::new(name).monospace())
                        .on_hover_text("Show its diff")
                        .clicked()
                    {
                        self.selected = if picked {
                            None
                        } else {
                            Some((entry.path.clone(), staged))
                        };
                        if !picked && title != "Untracked" {
                            out.push(Command::Git(GitCommand::Diff {
                                project: project.to_owned(),
                                path: entry.path.clone(),
                                staged,
                            }));
                        }
                    }
                    ui.weak(display::change_label(entry.change));
                });
            }
        }
        notice(pending, ui, state, "git:stage");
        if let Some((path, staged)) = self.selected.clone() {
            ui.separator();
            let side = if staged { "staged" } else { "unstaged" };
            ui.strong(format!("{path} ({side})"));
            let untracked = !staged && status.untracked.iter().any(|e| e.path == path);
            if untracked {
                ui.weak("A new file Git does not track yet: Stage it to see it as a diff.");
            } else {
                match state.git.diff_of(project, &path, staged) {
                    None => {
                        ui.spinner();
                    }
                    Some(diff) => match &diff.file {
                        Err(why) => {
                            ui.label(RichText::new(why).color(REMOVED));
                        }
                        Ok(None) => {
                            ui.weak("No changes on this side.");
                        }
                        Ok(Some(file)) => hunks(ui, file, diff.truncated),
                    },
                }
            }
        }
    }

    fn commit(
        &mut self,
        ui: &mut egui::Ui,
        state: &AgentState,
        project: &str,
        status: &RepoStatus,
        pending: &HashSet<String>,
        out: &mut Vec<Command>,
    ) {
        // A commit that succeeded takes its message with it; a failed one
        // leaves it to be fixed and sent again.
        if let Some(head) = &self.committing {
            if status.head != *head {
                self.message.clear();
                self.committing = None;
            } else if !pending.contains("git:commit")
                && state.notice("git:commit").is_some_and(|n| n.error)
            {
                self.committing = None;
            }
        }
        let label = ui.label("Commit message:");
        let edit = ui
            .add(
                egui::TextEdit::multiline(&mut self.message)
                    .desired_rows(3)
                    .desired_width(f32::INFINITY)
                    .hint_text("What changed, and why"),
            )
            .labelled_by(label.id);
        let ready = !status.staged.is_empty() && !self.message.trim().is_empty();
        let ctrl_enter =
            edit.has_focus() && ui.input(|i| i.modifiers.command && i.key_pressed(Key::Enter));
        ui.horizontal(|ui| {
            let button = ui
                .add_enabled(ready, egui::Button::new("Commit"))
                .on_disabled_hover_text("Stage changes and write a message first");
            if ready && (button.clicked() || ctrl_enter) && !pending.contains("git:commit") {
                out.push(Command::Git(GitCommand::Commit {
                    project: project.to_owned(),
                    message: self.message.trim().to_owned(),
                }));
                self.committing = Some(status.head.clone());
            }
            ui.weak(if status.staged.is_empty() {
                "Nothing staged yet".to_owned()
            } else {
                format!("{} staged · Ctrl+Enter commits", status.staged.len())
            });
        });
        notice(pending, ui, state, "git:commit");
    }

    fn branch_dialog(&mut self, ui: &mut egui::Ui, project: &str, out: &mut Vec<Command>) {
        let Some(name) = self.new_branch.as_mut() else {
            return;
        };
        let mut answer = None;
        egui::Modal::new(egui::Id::unique("git-new-branch")).show(ui.ctx(), |ui| {
            ui.heading("New branch");
            ui.weak("Starts at the current commit and becomes the current branch.");
            let label = ui.label("Branch name:");
            let edit = ui.text_edit_singleline(name).labelled_by(label.id);
            // Focus the field on opening, so typing goes there at once.
            if !edit.has_focus() && !edit.lost_focus() && name.is_empty() {
                edit.request_focus();
            }
            let enter = edit.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter));
            let valid = !name.trim().is_empty() && !name.trim().contains(char::is_whitespace);
            if !name.trim().is_empty() && !valid {
                ui.label(RichText::new("A branch name has no spaces.").color(REMOVED));
            }
            ui.weak("Enter creates · Esc cancels");
            ui.horizontal(|ui| {
                if ui.add_enabled(valid, egui::Button::new("Create")).clicked() || (enter && valid)
                {
                    answer = Some(true);
                }
                if ui.button("Cancel").clicked() {
                    answer = Some(false);
                }
            });
        });
        match answer {
            Some(true) => {
                let name = name.trim().to_owned();
                self.new_branch = None;
                out.push(Command::Git(GitCommand::CreateBranch {
                    project: project.to_owned(),
                    name,
                }));
            }
            Some(false) => self.new_branch = None,
            None => {}
        }
    }
}

fn refresh(project: &str, diff: Option<(String, bool)>) -> Command {
    Command::Git(GitCommand::Refresh {
        project: project.to_owned(),
        diff,
    })
}

fn stage(project: &str, paths: Vec<String>) -> Command {
    Command::Git(GitCommand::Stage {
        project: project.to_owned(),
        paths,
    })
}

fn unstage(project: &str, paths: Vec<String>) -> Command {
    Command::Git(GitCommand::Unstage {
        project: project.to_owned(),
        paths,
    })
}

/// "On branch main", "HEAD detached at 1a2b3c4d", "No commits yet on main".
fn branch_line(status: &RepoStatus) -> String {
    if status.detached {
        format!("HEAD detached at {}", display::short_id(&status.head))
    } else if status.empty {
        format!("No commits yet on {}", status.branch)
    } else {
        format!("On branch {}", status.branch)
    }
}

/// What an operation in progress asks of the user, if one is.
fn operation_line(operation: RepoOperation) -> Option<&'static str> {
    Some(match operation {
        RepoOperation::Unspecified => return None,
        RepoOperation::Merge => "A merge is in progress: resolve the conflicts, stage, and commit.",
        RepoOperation::Rebase => "A rebase is in progress: finish it in a terminal.",
        RepoOperation::CherryPick => "A cherry-pick is in progress: resolve, stage, and commit.",
        RepoOperation::Revert => "A revert is in progress: resolve, stage, and commit.",
        RepoOperation::Bisect => "A bisect is in progress: finish it in a terminal.",
        RepoOperation::ApplyMailbox => "git am is in progress: finish it in a terminal.",
    })
}

/// A file's hunks: headers weak, added lines green, removed red, all
/// monospace; at most [`MAX_DIFF_LINES`] lines.
fn hunks(ui: &mut egui::Ui, file: &FileDiff, truncated: bool) {
    if file.binary {
        ui.weak("Binary file: no text to show.");
        return;
    }
    ui.weak(format!("+{} -{}", file.additions, file.deletions));
    let mut drawn = 0usize;
    let total: usize = file.hunks.iter().map(|h| h.lines.len() + 1).sum();
    'hunks: for hunk in &file.hunks {
        ui.label(RichText::new(&hunk.header).monospace().weak());
        drawn += 1;
        for line in &hunk.lines {
            if drawn >= MAX_DIFF_LINES {
                break 'hunks;
            }
            let text = RichText::new(format!("{}{}", line.origin, line.content)).monospace();
            let text = match line.origin.as_str() {
                "+" => text.color(ADDED),
                "-" => text.color(REMOVED),
                _ => text,
            };
            ui.label(text);
            drawn += 1;
        }
    }
    if drawn < total || truncated {
        ui.weak("The diff is longer than shown: open the file in your editor to see it all.");
    }
}

/// The tab driven through its accessibility tree, with the agent's side
/// played by updates folded into the state.
#[cfg(test)]
mod tests {
    use egui_kittest::{Harness, kittest::Queryable};
    use omnipanel_client::proto::v1::{
        Branch, ChangeType, DiffLine, Hunk, TransferProgress, Upstream,
    };

    use super::*;
    use crate::panel::panel_ui::test_panel::{self, Panel};
    use crate::{
        core::{
            state::Update,
            workspace::git::{GitUpdate, ShownDiff, Transfer, TransferKind},
        },
        panel::panel_ui::Tab,
    };

    fn harness(state: AgentState) -> Harness<'static, Panel> {
        test_panel::harness(Tab::Git, state, 900.0, 1200.0)
    }

    fn entry(path: &str, change: ChangeType) -> StatusEntry {
        StatusEntry {
            path: path.into(),
            change: change as i32,
            ..Default::default()
        }
    }

    fn status() -> RepoStatus {
        RepoStatus {
            branch: "main".into(),
            head: "0123456789abcdef".into(),
            upstream: Some(Upstream {
                name: "origin/main".into(),
                ahead: 1,
                behind: 0,
            }),
            staged: vec![entry("staged.rs", ChangeType::Modified)],
            unstaged: vec![entry("src/lib.rs", ChangeType::Modified)],
            untracked: vec![entry("new.txt", ChangeType::Untracked)],
            ..Default::default()
        }
    }

    /// Connected, with project "p1" open and `status` read for it.
    fn with_status(status: Result<RepoStatus, GitProblem>) -> AgentState {
        let mut state = crate::core::state::connected_for_tests();
        state.apply(Update::Projects(vec![Project {
            id: "p1".into(),
            name: "app".into(),
            open: true,
            ..Default::default()
        }]));
        state.apply(Update::Git(GitUpdate::Status {
            project: "p1".into(),
            status: Box::new(status),
        }));
        state.apply(Update::Git(GitUpdate::Branches {
            project: "p1".into(),
            branches: ["dev", "main"]
                .into_iter()
                .map(|name| Branch {
                    name: name.into(),
                    current: name == "main",
                    ..Default::default()
                })
                .collect(),
        }));
        state
    }

    fn git_sent(harness: &Harness<'static, Panel>) -> Vec<GitCommand> {
        harness
            .state()
            .sent
            .iter()
            .filter_map(|c| match c {
                Command::Git(g) => Some(g.clone()),
                _ => None,
            })
            .filter(|g| !matches!(g, GitCommand::Refresh { .. }))
            .collect()
    }

    fn refreshes(harness: &Harness<'static, Panel>) -> usize {
        harness
            .state()
            .sent
            .iter()
            .filter(|c| matches!(c, Command::Git(GitCommand::Refresh { .. })))
            .count()
    }

    #[test]
    fn without_a_project_it_says_how_to_open_one() {
        let mut harness = harness(crate::core::state::connected_for_tests());
        harness.run();
        harness.get_by_label_contains("Open a project on the Projects tab first");
        assert!(harness.state().sent.is_empty());
    }

    #[test]
    fn a_folder_that_is_no_repository_offers_nothing_else() {
        let mut harness = harness(with_status(Err(GitProblem {
            message: "~/app is not a Git repository. Run `git init` there".into(),
            not_a_repository: true,
        })));
        harness.run();
        harness.get_by_label_contains("is not a Git repository");
        for control in ["Commit", "Pull", "Push", "Retry", "New branch…"] {
            assert!(harness.query_by_label(control).is_none(), "{control} shows");
        }
    }

    #[test]
    fn the_status_is_grouped_with_counts_and_files_stage_and_show_their_diff() {
        let mut harness = harness(with_status(Ok(status())));
        harness.run();
        harness.get_by_label("On branch main");
        harness.get_by_label("1 ahead, 0 behind origin/main");
        harness.get_by_label("Staged (1)");
        harness.get_by_label("Changes (1)");
        harness.get_by_label("Untracked (1)");
        assert!(harness.query_by_label_contains("Conflicts").is_none());
        harness.get_by_label("Stage new.txt").click();
        harness.run();
        harness.get_by_label("Unstage staged.rs").click();
        harness.run();
        harness.get_by_label("Stage all changes").click();
        harness.run();
        harness.get_by_label("src/lib.rs").click();
        // The diff is being read: a spinner turns until it comes.
        harness.run_steps(2);
        let p = || "p1".to_owned();
        assert_eq!(
            git_sent(&harness),
            vec![
                GitCommand::Stage {
                    project: p(),
                    paths: vec!["new.txt".into()]
                },
                GitCommand::Unstage {
                    project: p(),
                    paths: vec!["staged.rs".into()]
                },
                GitCommand::Stage {
                    project: p(),
                    paths: vec!["src/lib.rs".into()]
                },
                GitCommand::Diff {
                    project: p(),
                    path: "src/lib.rs".into(),
                    staged: false
                },
            ]
        );
        let line = |origin: &str, content: &str| DiffLine {
            origin: origin.into(),
            content: content.into(),
            ..Default::default()
        };
        harness
            .state_mut()
            .state
            .apply(Update::Git(GitUpdate::Diff {
                project: p(),
                diff: Box::new(ShownDiff {
                    path: "src/lib.rs".into(),
                    staged: false,
                    file: Ok(Some(FileDiff {
                        new_path: "src/lib.rs".into(),
                        additions: 1,
                        deletions: 1,
                        hunks: vec![Hunk {
                            header: "@@ -1,2 +1,2 @@".into(),
                            lines: vec![
                                line(" ", "fn main() {"),
                                line("-", "old()"),
                                line("+", "new()"),
                            ],
                            ..Default::default()
                        }],
                        ..Default::default()
                    })),
                    truncated: false,
                }),
            }));
        harness.run();
        harness.get_by_label("src/lib.rs (unstaged)");
        harness.get_by_label("@@ -1,2 +1,2 @@");
        harness.get_by_label("-old()");
        harness.get_by_label("+new()");
        // An untracked file has no diff to read: it says what to do.
        harness.get_by_label("new.txt").click();
        harness.run();
        harness.get_by_label_contains("Stage it to see it as a diff");
    }

    #[test]
    fn commit_needs_staged_changes_and_a_message_and_ctrl_enter_commits() {
        let mut nothing_staged = status();
        nothing_staged.staged.clear();
        let mut harness = harness(with_status(Ok(nothing_staged)));
        harness.run();
        let field = harness.get_by_label("Commit message:");
        field.focus();
        field.type_text("Fix the parser");
        harness.run();
        harness.get_by_label("Commit").click();
        harness.run();
        assert!(
            git_sent(&harness).is_empty(),
            "committed with nothing staged"
        );
        harness
            .state_mut()
            .state
            .apply(Update::Git(GitUpdate::Status {
                project: "p1".into(),
                status: Box::new(Ok(status())),
            }));
        harness.run();
        harness.get_by_label("Commit message:").focus();
        harness.run();
        harness.key_press_modifiers(egui::Modifiers::COMMAND, Key::Enter);
        harness.run();
        assert_eq!(
            git_sent(&harness),
            vec![GitCommand::Commit {
                project: "p1".into(),
                message: "Fix the parser".into()
            }]
        );
        // Its success (HEAD moved) clears the message.
        harness
            .state_mut()
            .state
            .apply(Update::Git(GitUpdate::Status {
                project: "p1".into(),
                status: Box::new(Ok(RepoStatus {
                    head: "fedcba9876543210".into(),
                    ..status()
                })),
            }));
        harness.run();
        assert!(harness.state().ui.git.message.is_empty());
    }

    #[test]
    fn a_new_branch_is_made_with_enter_and_esc_closes_the_dialog_first() {
        let mut harness = harness(with_status(Ok(status())));
        harness.run();
        harness.get_by_label("New branch…").click();
        harness.run();
        harness.get_by_label("New branch");
        harness.key_press(Key::Escape);
        harness.run();
        assert!(harness.query_by_label("Branch name:").is_none());
        assert!(!harness.state().ui.close, "Esc closed the panel");
        harness.get_by_label("New branch…").click();
        harness.run();
        harness.get_by_label("Branch name:").type_text("feature/x");
        harness.run();
        harness.key_press(Key::Enter);
        harness.run();
        assert!(harness.query_by_label("Branch name:").is_none());
        // Switching through the list checks the branch out.
        harness.get_by_label("Branch:").click();
        harness.run();
        harness.get_by_label("dev").click();
        harness.run();
        assert_eq!(
            git_sent(&harness),
            vec![
                GitCommand::CreateBranch {
                    project: "p1".into(),
                    name: "feature/x".into()
                },
                GitCommand::Checkout {
                    project: "p1".into(),
                    branch: "dev".into()
                },
            ]
        );
    }

    #[test]
    fn it_reads_again_on_a_repository_change_when_shown_and_on_reconnecting_never_idle() {
        let mut harness = harness(with_status(Ok(status())));
        harness.run();
        assert_eq!(refreshes(&harness), 1);
        harness.run();
        assert_eq!(refreshes(&harness), 1, "read again with nothing changed");
        harness
            .state_mut()
            .state
            .apply(Update::Git(GitUpdate::Changed {
                project: "other".into(),
            }));
        harness.run();
        assert_eq!(refreshes(&harness), 1, "another project's change re-read");
        harness
            .state_mut()
            .state
            .apply(Update::Repository(Default::default()));
        harness.state_mut().state.apply(Update::Repository(
            omnipanel_client::proto::v1::RepositoryChangedEvent {
                project_id: "p1".into(),
                ..Default::default()
            },
        ));
        harness.run();
        assert_eq!(refreshes(&harness), 2);
        harness.state_mut().ui.tab = Tab::Overview;
        harness.run();
        harness.state_mut().ui.tab = Tab::Git;
        harness.run();
        assert_eq!(refreshes(&harness), 3);
        // Nothing is asked of a lost agent; everything again once it is back.
        harness.state_mut().state.apply(Update::Disconnected {
            error: "gone".into(),
            attempt: 1,
            launched_agent: false,
        });
        harness.run();
        assert_eq!(refreshes(&harness), 3);
        harness
            .state_mut()
            .state
            .apply(Update::Connected(Box::default()));
        harness.run();
        assert_eq!(refreshes(&harness), 4);
    }

    #[test]
    fn a_push_shows_its_progress_and_cancels() {
        let mut state = with_status(Ok(status()));
        state.apply(Update::Git(GitUpdate::Transfer(Transfer {
            project: "p1".into(),
            kind: TransferKind::Push,
            progress: TransferProgress {
                objects_done: 2,
                objects_total: 4,
                bytes: 2_000,
                ..Default::default()
            },
        })));
        let mut harness = harness(state);
        harness.run();
        harness.get_by_label_contains("Pushing: objects 2/4 (2.0 KB)");
        assert!(harness.query_by_label("Force push").is_none());
        harness.get_by_label("Cancel").click();
        harness.run();
        assert_eq!(
            git_sent(&harness),
            vec![GitCommand::Cancel {
                project: "p1".into()
            }]
        );
    }
}
