//! The selected project's files under the Projects tab's list: a lazy tree
//! honouring .gitignore (ignored entries are left out by the agent) and
//! kept current through `Watch`, go to file (Ctrl+K, FindFiles), text
//! search (SearchText, streamed) with a read-only preview of the match,
//! open in the user's editor, and files dropped from the desktop copied
//! into the folder under the pointer. Everything the agent does is asked
//! with a [`Command`]; nothing here waits.

use std::{collections::HashSet, path::PathBuf};

use egui::{Color32, Key, Rect, RichText, text::LayoutJob};
use omnipanel_client::{
    display,
    proto::v1::{FileKind, Project},
};

use super::notice_label;
use crate::core::{
    backend::Command,
    state::AgentState,
    workspace::files::{FilesCommand, Highlight, PREVIEW_LIMIT, Preview, ProjectFiles},
};

/// The background of a search match in the preview.
const MATCH_BACKGROUND: Color32 = Color32::from_rgb(0xff, 0xd5, 0x4f);
/// Lines shown above the match when the preview scrolls to it.
const LINES_ABOVE_MATCH: usize = 3;

/// The tab's own UI state (what is typed, expanded and picked), for the
/// project in `project`; it starts afresh when another is selected.
#[derive(Debug, Default)]
pub(super) struct FilesTab {
    project: String,
    expanded: HashSet<String>,
    /// Folders asked for since the last rescan (asked once each).
    requested: HashSet<String>,
    seen_rescans: u64,
    goto_open: bool,
    goto_focus: bool,
    goto_text: String,
    goto_sent: Option<String>,
    goto_selected: usize,
    /// Enter was pressed; open the pick once the answer is in.
    goto_enter: bool,
    find_tag: u64,
    search_text: String,
    search_tag: u64,
    /// The preview (path, line) already scrolled to.
    scrolled: Option<(String, u64)>,
    /// Folder rows drawn this frame, for drops: (row, folder).
    drop_rows: Vec<(Rect, String)>,
}

impl FilesTab {
    /// Open the go-to-file dialog (Ctrl+K).
    pub(super) fn open_goto(&mut self) {
        self.goto_open = true;
        self.goto_focus = true;
        self.goto_selected = 0;
        self.goto_enter = false;
    }

    /// Close the open dialog; whether there was one (Esc closes it first).
    pub(super) fn close_dialog(&mut self) -> bool {
        std::mem::take(&mut self.goto_open)
    }

    /// Draw the tab for `project` (`None`: no project open yet).
    pub(super) fn show(
        &mut self,
        ui: &mut egui::Ui,
        state: &AgentState,
        project: Option<&Project>,
        out: &mut Vec<Command>,
    ) {
        ui.separator();
        let Some(project) = project.filter(|p| p.open) else {
            ui.weak("Add a folder above (or press Select on a project) to see its files here.");
            self.goto_open = false;
            return;
        };
        if self.project != project.id {
            *self = Self {
                project: project.id.clone(),
                goto_open: self.goto_open,
                goto_focus: self.goto_open,
                ..Self::default()
            };
        }
        let empty = ProjectFiles::default();
        let files = state.files.project(&project.id).unwrap_or(&empty);
        if files.rescans != self.seen_rescans {
            self.seen_rescans = files.rescans;
            self.requested.clear();
        }
        ui.horizontal(|ui| {
            ui.heading(format!("Files of {}", project.name));
            if ui.button("Go to file… (Ctrl+K)").clicked() {
                self.open_goto();
            }
        });
        self.search_bar(ui, project, files, out);
        self.search_results(ui, project, files, out);
        ui.add_space(4.0);
        self.drop_rows.clear();
        let tree = egui::Frame::group(ui.style()).show(ui, |ui| {
            ui.set_width(ui.available_width());
            self.folder(ui, project, files, "", 0, out);
        });
        show_notice(ui, state, "files:tree");
        self.drops(ui, project, tree.response.rect, out);
        show_notice(ui, state, "files:drop");
        if let Some(preview) = &files.preview {
            self.preview(ui, project, preview, out);
        }
        show_notice(ui, state, "files:preview");
        show_notice(ui, state, "files:editor");
        if self.goto_open {
            self.goto(ui, project, files, out);
        }
    }

    fn search_bar(
        &mut self,
        ui: &mut egui::Ui,
        project: &Project,
        files: &ProjectFiles,
        out: &mut Vec<Command>,
    ) {
        let search = &files.search;
        let running = self.search_tag != 0
            && (search.tag < self.search_tag
                || (search.tag == self.search_tag && search.outcome.is_none()));
        ui.horizontal(|ui| {
            let label = ui.label("Search text:");
            let field = ui
                .text_edit_singleline(&mut self.search_text)
                .labelled_by(label.id);
            let entered = field.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter));
            let pattern = self.search_text.trim().to_owned();
            if (entered || ui.button("Search").clicked()) && !pattern.is_empty() {
                self.search_tag += 1;
                out.push(Command::Files(FilesCommand::Search {
                    project: project.id.clone(),
                    pattern,
                    tag: self.search_tag,
                }));
            }
            if running {
                ui.spinner();
                ui.weak(format!("{} found so far", search.matches.len()));
                if ui.button("Stop").clicked() {
                    out.push(Command::Files(FilesCommand::StopSearch));
                }
            } else if search.tag != 0 {
                match &search.outcome {
                    Some(Ok(summary)) => {
                        let more = if summary.truncated {
                            " (first ones)"
                        } else {
                            ""
                        };
                        ui.label(format!(
                            "{} in {} of {} files{more}",
                            count(search.matches.len() as u64, "match", "matches"),
                            summary.files_matched,
                            summary.files_searched,
                        ));
                    }
                    Some(Err(err)) if err == "stopped" => {
                        ui.label(format!(
                            "stopped after {}",
                            count(search.matches.len() as u64, "match", "matches")
                        ));
                    }
                    _ => {}
                }
            }
        });
        if let Some(Err(err)) = &search.outcome
            && err != "stopped"
        {
            notice_label(ui, err, true);
        }
    }

    fn search_results(
        &mut self,
        ui: &mut egui::Ui,
        project: &Project,
        files: &ProjectFiles,
        out: &mut Vec<Command>,
    ) {
        let matches = &files.search.matches;
        if files.search.tag == 0 {
            return;
        }
        if matches.is_empty() && files.search.outcome.is_some() {
            ui.weak("No file contains this text (files .gitignore leaves out are not searched).");
            return;
        }
        let row_height = ui.text_style_height(&egui::TextStyle::Body);
        egui::ScrollArea::vertical()
            .id_salt("search results")
            .max_height(180.0)
            .auto_shrink([false, true])
            .show_rows(ui, row_height, matches.len(), |ui, rows| {
                for m in matches.iter().skip(rows.start).take(rows.len()) {
                    let text = format!("{}:{}: {}", m.path, m.line_number, m.text.trim());
                    if ui.selectable_label(false, text).clicked() {
                        let ranges = m
                            .ranges
                            .iter()
                            .map(|r| (r.start as usize, r.end as usize))
                            .collect();
                        out.push(preview_command(
                            project,
                            &m.path,
                            Some(Highlight {
                                line: m.line_number,
                                ranges,
                            }),
                        ));
                    }
                }
            });
    }

    /// One folder's entries, its expanded subfolders under them.
    fn folder(
        &mut self,
        ui: &mut egui::Ui,
        project: &Project,
        files: &ProjectFiles,
        dir: &str,
        depth: usize,
        out: &mut Vec<Command>,
    ) {
        let indent = 16.0 * depth as f32;
        let listing = files.dirs.get(dir);
        // Read once when first shown, and again once after a rescan.
        if (listing.is_none() || files.stale.contains(dir)) && self.requested.insert(dir.to_owned())
        {
            out.push(Command::Files(FilesCommand::List {
                project: project.id.clone(),
                dir: dir.to_owned(),
            }));
        }
        let Some(listing) = listing else {
            ui.horizontal(|ui| {
                ui.add_space(indent);
                ui.spinner();
                ui.weak("reading…");
            });
            return;
        };
        let entries = match listing {
            Ok(entries) => entries,
            Err(err) => {
                ui.horizontal(|ui| {
                    ui.add_space(indent);
                    notice_label(ui, err, true);
                    if ui.button("Retry").clicked() {
                        out.push(Command::Files(FilesCommand::List {
                            project: project.id.clone(),
                            dir: dir.to_owned(),
                        }));
                    }
                });
                return;
            }
        };
        if entries.is_empty() {
            ui.horizontal(|ui| {
                ui.add_space(indent);
                ui.weak(if dir.is_empty() {
                    "This project has no files yet: drop some here."
                } else {
                    "(empty folder)"
                });
            });
        }
        let previewing = files.preview.as_ref().map(|p| p.path.as_str());
        for entry in entries {
            let is_dir = entry.kind() == FileKind::Directory;
            let open = is_dir && self.expanded.contains(&entry.path);
            let row = ui.horizontal(|ui| {
                ui.add_space(indent);
                if is_dir {
                    ui.weak(if open { "-" } else { "+" });
                    if ui
                        .selectable_label(open, format!("{}/", entry.name))
                        .clicked()
                        && !self.expanded.remove(&entry.path)
                    {
                        self.expanded.insert(entry.path.clone());
                    }
                } else {
                    ui.add_space(ui.spacing().icon_width);
                    let picked = previewing == Some(entry.path.as_str());
                    if ui.selectable_label(picked, &entry.name).clicked() {
                        out.push(preview_command(project, &entry.path, None));
                    }
                    if entry.kind() == FileKind::Symlink {
                        ui.weak(format!("-> {}", entry.symlink_target));
                    } else {
                        ui.weak(display::bytes(entry.size));
                    }
                }
            });
            if is_dir {
                self.drop_rows.push((row.response.rect, entry.path.clone()));
            }
            if open {
                self.folder(ui, project, files, &entry.path, depth + 1, out);
            }
        }
    }

    /// Files dropped from the desktop: into the folder row under the
    /// pointer, else the project's root.
    fn drops(&mut self, ui: &mut egui::Ui, project: &Project, tree: Rect, out: &mut Vec<Command>) {
        let (dropped, hovering, pointer) = ui.input(|i| {
            (
                i.raw.dropped_files.clone(),
                !i.raw.hovered_files.is_empty(),
                i.pointer.latest_pos(),
            )
        });
        if dropped.is_empty() && !hovering {
            return;
        }
        let row = pointer.and_then(|p| self.drop_rows.iter().find(|(rect, _)| rect.contains(p)));
        let (rect, dir) = row.cloned().unwrap_or((tree, String::new()));
        let place = if dir.is_empty() {
            format!("{} (the root)", project.name)
        } else {
            dir.clone()
        };
        if hovering {
            ui.painter().rect_stroke(
                rect,
                2.0,
                egui::Stroke::new(2.0, ui.visuals().selection.stroke.color),
                egui::StrokeKind::Inside,
            );
            ui.label(format!("Drop to copy into {place}"));
        }
        // Only local files (absolute paths) can be read and copied in.
        let sources: Vec<PathBuf> = dropped
            .iter()
            .map(|f| f.path().to_path_buf())
            .filter(|p| p.is_absolute())
            .collect();
        if !sources.is_empty() {
            out.push(Command::Files(FilesCommand::CopyIn {
                project: project.id.clone(),
                root: PathBuf::from(&project.path),
                dir,
                sources,
            }));
        }
    }

    fn preview(
        &mut self,
        ui: &mut egui::Ui,
        project: &Project,
        preview: &Preview,
        out: &mut Vec<Command>,
    ) {
        ui.separator();
        let line = preview.highlight.as_ref().map(|h| h.line);
        ui.horizontal(|ui| {
            ui.strong(&preview.path);
            if let Some(line) = line {
                ui.weak(format!("line {line}"));
            }
            if ui.button("Open in editor").clicked() {
                out.push(Command::Files(FilesCommand::OpenInEditor {
                    path: PathBuf::from(&project.path).join(&preview.path),
                    line,
                }));
            }
        });
        let text = match &preview.text {
            Ok(text) => text,
            Err(err) => {
                notice_label(ui, err, true);
                return;
            }
        };
        if preview.truncated {
            ui.weak(format!(
                "Only the first {} are shown.",
                display::bytes(PREVIEW_LIMIT)
            ));
        }
        let font = egui::TextStyle::Monospace.resolve(ui.style());
        let row_height = ui.fonts_mut(|f| f.row_height(&font));
        let total = text.lines().count();
        let mut area = egui::ScrollArea::both()
            .id_salt("preview")
            .max_height(320.0)
            .auto_shrink([false, true]);
        let target = (preview.path.clone(), line.unwrap_or(0));
        if self.scrolled.as_ref() != Some(&target) {
            self.scrolled = Some(target);
            let first = line
                .and_then(|l| usize::try_from(l).ok())
                .map_or(0, |l| l.saturating_sub(1 + LINES_ABOVE_MATCH));
            let spacing = ui.spacing().item_spacing.y;
            area = area.vertical_scroll_offset(first as f32 * (row_height + spacing));
        }
        area.show_rows(ui, row_height, total, |ui, rows| {
            for (index, text) in text.lines().enumerate().skip(rows.start).take(rows.len()) {
                let number = index + 1;
                let highlight = preview
                    .highlight
                    .as_ref()
                    .filter(|h| usize::try_from(h.line).ok() == Some(number));
                ui.horizontal(|ui| {
                    ui.label(RichText::new(format!("{number:>5}")).monospace().weak());
                    let job = line_job(ui, text, highlight.map_or(&[][..], |h| &h.ranges));
                    ui.add(egui::Label::new(job).extend());
                });
            }
        });
    }

    fn goto(
        &mut self,
        ui: &mut egui::Ui,
        project: &Project,
        files: &ProjectFiles,
        out: &mut Vec<Command>,
    ) {
        // Send when the text changed and the last answer is in: typing
        // fast sends one request per answer, never a queue of them.
        let in_flight = files.found.tag < self.find_tag;
        if !in_flight && self.goto_sent.as_deref() != Some(self.goto_text.as_str()) {
            self.find_tag += 1;
            self.goto_sent = Some(self.goto_text.clone());
            self.goto_selected = 0;
            out.push(Command::Files(FilesCommand::Find {
                project: project.id.clone(),
                query: self.goto_text.trim().to_owned(),
                tag: self.find_tag,
            }));
        }
        let in_flight = files.found.tag < self.find_tag;
        let matches = files.found.matches.as_ref();
        let count = matches.map_or(0, Vec::len);
        let (down, up, enter) = ui.input(|i| {
            (
                i.key_pressed(Key::ArrowDown),
                i.key_pressed(Key::ArrowUp),
                i.key_pressed(Key::Enter),
            )
        });
        if down && self.goto_selected + 1 < count {
            self.goto_selected += 1;
        }
        if up {
            self.goto_selected = self.goto_selected.saturating_sub(1);
        }
        let mut picked = None;
        egui::Window::new("Go to file")
            .collapsible(false)
            .resizable(false)
            .anchor(egui::Align2::CENTER_TOP, egui::vec2(0.0, 80.0))
            .show(ui.ctx(), |ui| {
                ui.horizontal(|ui| {
                    let label = ui.label("Go to file:");
                    let field = ui
                        .text_edit_singleline(&mut self.goto_text)
                        .labelled_by(label.id);
                    if std::mem::take(&mut self.goto_focus) {
                        field.request_focus();
                    }
                });
                ui.weak("Up/Down pick · Enter opens · Esc closes");
                match matches {
                    Ok(matches) if matches.is_empty() && files.found.tag != 0 => {
                        ui.weak("No file name matches.");
                    }
                    Ok(matches) => {
                        for (i, m) in matches.iter().enumerate() {
                            if ui
                                .selectable_label(i == self.goto_selected, &m.path)
                                .clicked()
                            {
                                picked = Some(m.path.clone());
                            }
                        }
                    }
                    Err(err) => notice_label(ui, err, true),
                }
            });
        // Enter while an answer is on its way opens the best match of that
        // answer: what was typed, not what was shown before.
        self.goto_enter |= enter;
        if self.goto_enter && picked.is_none() && !in_flight {
            self.goto_enter = false;
            picked = matches
                .ok()
                .and_then(|m| m.get(self.goto_selected))
                .map(|m| m.path.clone());
        }
        if let Some(path) = picked {
            out.push(preview_command(project, &path, None));
            self.goto_open = false;
        }
    }
}

fn preview_command(project: &Project, path: &str, highlight: Option<Highlight>) -> Command {
    Command::Files(FilesCommand::Preview {
        project: project.id.clone(),
        path: path.to_owned(),
        highlight,
    })
}

/// A line of the preview, the match ranges on a coloured background.
fn line_job(ui: &egui::Ui, text: &str, ranges: &[(usize, usize)]) -> LayoutJob {
    let font = egui::TextStyle::Monospace.resolve(ui.style());
    let plain = egui::TextFormat::simple(font.clone(), ui.visuals().text_color());
    let marked = egui::TextFormat {
        background: MATCH_BACKGROUND,
        ..egui::TextFormat::simple(font, Color32::BLACK)
    };
    let mut job = LayoutJob::default();
    let mut at = 0;
    for &(start, end) in ranges {
        // Ranges are bytes from the agent; skip any that do not fit.
        if start < at
            || end <= start
            || !text.is_char_boundary(start)
            || !text.is_char_boundary(end)
            || end > text.len()
        {
            continue;
        }
        job.append(&text[at..start], 0.0, plain.clone());
        job.append(&text[start..end], 0.0, marked.clone());
        at = end;
    }
    job.append(&text[at..], 0.0, plain);
    job
}

/// "1 match", "3 matches".
fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn show_notice(ui: &mut egui::Ui, state: &AgentState, key: &str) {
    if let Some(n) = state.notice(key) {
        notice_label(ui, &n.message, n.error);
    }
}

/// The files view driven through its accessibility tree without an agent:
/// what it sends for each action.
#[cfg(test)]
mod tests {
    use std::path::Path;

    use egui_kittest::{Harness, kittest::Queryable};
    use omnipanel_client::proto::v1::{FileInfo, SearchSummary, TextMatch};

    use super::*;
    use crate::panel::panel_ui::test_panel::{self, Panel};
    use crate::{
        core::{state::Update, workspace::files::FilesUpdate},
        panel::panel_ui::Tab,
    };

    #[derive(Debug)]
    struct DesktopFile(PathBuf);

    impl egui::DroppedFile for DesktopFile {
        fn path(&self) -> &Path {
            &self.0
        }

        fn bytes(&self) -> Result<Vec<u8>, String> {
            Err("not read in this test".into())
        }
    }

    fn entry(path: &str, kind: FileKind) -> FileInfo {
        FileInfo {
            path: path.into(),
            name: path.rsplit('/').next().unwrap_or(path).into(),
            kind: kind.into(),
            ..Default::default()
        }
    }

    /// A panel on the Projects tab with project "p" (at /w/demo) whose
    /// root holds `src/` and `README.md`.
    fn harness() -> Harness<'static, Panel> {
        let mut state = crate::core::state::connected_for_tests();
        state.apply(Update::Projects(vec![Project {
            id: "p".into(),
            name: "demo".into(),
            path: "/w/demo".into(),
            open: true,
            ..Default::default()
        }]));
        state.apply(Update::Files(FilesUpdate::Listing {
            project: "p".into(),
            dir: String::new(),
            entries: Ok(vec![
                entry("src", FileKind::Directory),
                entry("README.md", FileKind::File),
            ]),
            refresh: false,
        }));
        test_panel::harness(Tab::Projects, state, 900.0, 1200.0)
    }

    fn sent_files(harness: &Harness<'static, Panel>) -> Vec<FilesCommand> {
        harness
            .state()
            .sent
            .iter()
            .filter_map(|c| match c {
                Command::Files(f) => Some(f.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_file_dropped_on_a_folder_row_is_copied_into_that_folder() {
        let mut harness = harness();
        harness.run();
        assert_eq!(
            harness.state().ui.wanted_watch(&harness.state().state),
            Some("p".to_owned())
        );
        harness.get_by_label("src/").hover();
        harness.step();
        harness
            .input_mut()
            .dropped_files
            .push(std::sync::Arc::new(DesktopFile("/tmp/notes.txt".into())));
        harness.run_steps(2);
        assert!(sent_files(&harness).contains(&FilesCommand::CopyIn {
            project: "p".into(),
            root: "/w/demo".into(),
            dir: "src".into(),
            sources: vec!["/tmp/notes.txt".into()],
        }));
        // Elsewhere: into the root.
        harness.get_by_label("README.md").hover();
        harness.step();
        harness
            .input_mut()
            .dropped_files
            .push(std::sync::Arc::new(DesktopFile("/tmp/b.txt".into())));
        harness.run_steps(2);
        assert!(sent_files(&harness).iter().any(|c| matches!(
            c,
            FilesCommand::CopyIn { dir, .. } if dir.is_empty()
        )));
    }

    #[test]
    fn a_running_search_can_be_stopped_and_its_count_shows_when_done() {
        let mut harness = harness();
        harness.run();
        let field = harness.get_by_label("Search text:");
        field.focus();
        field.type_text("needle");
        harness.run();
        harness.key_press(Key::Enter);
        // A spinner shows from now on: step, never run to a still frame.
        harness.run_steps(2);
        assert!(sent_files(&harness).contains(&FilesCommand::Search {
            project: "p".into(),
            pattern: "needle".into(),
            tag: 1,
        }));
        harness
            .state_mut()
            .state
            .apply(Update::Files(FilesUpdate::SearchMatches {
                project: "p".into(),
                tag: 1,
                matches: vec![TextMatch {
                    path: "src/a.rs".into(),
                    line_number: 3,
                    text: "let needle = 1;".into(),
                    ..Default::default()
                }],
            }));
        harness.run_steps(2);
        harness.get_by_label("src/a.rs:3: let needle = 1;");
        harness.get_by_label("Stop").click();
        harness.run_steps(2);
        assert!(sent_files(&harness).contains(&FilesCommand::StopSearch));
        harness
            .state_mut()
            .state
            .apply(Update::Files(FilesUpdate::SearchDone {
                project: "p".into(),
                tag: 1,
                outcome: Ok(SearchSummary {
                    files_searched: 9,
                    files_matched: 1,
                    matches: 1,
                    ..Default::default()
                }),
            }));
        harness.run();
        harness.get_by_label("1 match in 1 of 9 files");
        assert!(harness.query_by_label("Stop").is_none());
    }

    #[test]
    fn ctrl_k_opens_go_to_file_and_esc_closes_it_not_the_panel() {
        let mut harness = harness();
        harness.state_mut().ui.tab = Tab::Overview;
        harness.run();
        harness.key_press_modifiers(egui::Modifiers::COMMAND, Key::K);
        harness.run();
        assert_eq!(harness.state().ui.tab, Tab::Projects);
        harness.get_by_label("Go to file:");
        assert!(
            sent_files(&harness)
                .iter()
                .any(|c| matches!(c, FilesCommand::Find { .. }))
        );
        harness.key_press(Key::Escape);
        harness.run();
        assert!(harness.query_by_label("Go to file:").is_none());
        assert!(!harness.state().ui.close);
        // With no dialog open, Esc closes the panel.
        harness.key_press(Key::Escape);
        harness.run();
        assert!(harness.state().ui.close);
    }
}
