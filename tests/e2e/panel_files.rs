//! The Projects tab's files driven live, as a person uses them: the tree
//! (lazy, without what .gitignore leaves out, current through Watch), go
//! to file (Ctrl+K), text search with a preview of the match, and a file
//! dropped from the desktop onto a folder, each checked in the agent (or on
//! disk) and not only on screen.

use std::path::{Path, PathBuf};

use egui::{Key, Modifiers};
use egui_kittest::kittest::Queryable;
use omnipanel_client::proto::v1 as pb;
use omnipanel_tests::TestResult;
use omnipanel_tray::panel::panel_ui::Tab;

use crate::panel::{Live, LiveHarness, click, live, shows, type_into, wait_for};

/// A file dropped from the desktop (what egui-winit hands egui).
#[derive(Debug)]
struct DesktopFile(PathBuf);

impl egui::DroppedFile for DesktopFile {
    fn path(&self) -> &Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|err| err.to_string())
    }
}

/// Drop `file` with the pointer over the control labelled `label`.
fn drop_onto(harness: &mut LiveHarness, label: &str, file: &Path) {
    harness.get_by_label(label).hover();
    harness.step();
    harness
        .input_mut()
        .dropped_files
        .push(std::sync::Arc::new(DesktopFile(file.to_path_buf())));
    harness.run_steps(2);
}

fn preview_line(harness: &LiveHarness) -> Option<u64> {
    let state = &harness.state().state;
    let id = &state.projects.first()?.id;
    let preview = state.files.project(id)?.preview.as_ref()?;
    preview.highlight.as_ref().map(|h| h.line)
}

#[test]
fn a_project_is_browsed_searched_previewed_and_takes_a_dropped_file() -> TestResult {
    let Live {
        setup,
        mut harness,
        runtime,
    } = live(Tab::Projects)?;
    let root = setup.sandbox.project_dir("demo");
    std::fs::create_dir_all(root.join("src"))?;
    std::fs::write(root.join(".gitignore"), "build.log\n")?;
    std::fs::write(root.join("build.log"), "noise\n")?;
    std::fs::write(root.join("README.md"), "# demo\n")?;
    // The match is far down: the preview shows it only if it scrolls there.
    let filler = "    let _ = 0;\n".repeat(200);
    std::fs::write(
        root.join("src/main.rs"),
        format!("fn main() {{\n{filler}    println!(\"needle here\");\n}}\n"),
    )?;
    std::fs::write(root.join("src/lib.rs"), "pub fn helper() {}\n")?;
    let project = runtime.block_on(async {
        let client = setup.agent.client().await?;
        let project = client
            .projects()
            .open_project(pb::OpenProjectRequest {
                path: root.display().to_string(),
                name: String::new(),
            })
            .await?
            .into_inner()
            .project
            .ok_or("no project")?;
        TestResult::Ok(project.id)
    })?;

    // The tree: the root's files, not the ignored one; a folder expands.
    wait_for(&mut harness, "the project's root in the tree", |h| {
        shows(h, "README.md") && shows(h, "src/")
    })?;
    assert!(!shows(&harness, "build.log"), "an ignored file is listed");
    click(&mut harness, "src/");
    wait_for(&mut harness, "src/ expanded", |h| {
        shows(h, "main.rs") && shows(h, "lib.rs")
    })?;

    // Go to file: Ctrl+K, type, Enter opens the preview.
    harness.key_press_modifiers(Modifiers::COMMAND, Key::K);
    harness.run_steps(2);
    type_into(&mut harness, "Go to file:", "lib");
    wait_for(&mut harness, "the file among the matches", |h| {
        shows(h, "src/lib.rs") && !shows(h, "src/main.rs")
    })?;
    harness.key_press(Key::Enter);
    wait_for(&mut harness, "the preview of src/lib.rs", |h| {
        shows(h, "pub fn helper() {}") && !shows(h, "Go to file:")
    })?;

    // Esc closes the dialog, not the panel.
    harness.key_press_modifiers(Modifiers::COMMAND, Key::K);
    harness.run_steps(2);
    assert!(shows(&harness, "Go to file:"), "Ctrl+K opened no dialog");
    harness.key_press(Key::Escape);
    harness.run_steps(2);
    assert!(!shows(&harness, "Go to file:"), "Esc left the dialog open");
    assert!(!harness.state().ui.close, "Esc closed the panel");

    // Text search: results stream in; one opens the preview at its line.
    type_into(&mut harness, "Search text:", "needle");
    harness.key_press(Key::Enter);
    let result = "src/main.rs:202: println!(\"needle here\");";
    wait_for(&mut harness, "the search result", |h| {
        shows(h, result) && h.query_by_label_contains("1 match in 1 of").is_some()
    })?;
    click(&mut harness, result);
    wait_for(&mut harness, "the preview at the match", |h| {
        shows(h, "    println!(\"needle here\");") && preview_line(h) == Some(202)
    })?;
    assert!(shows(&harness, "line 202"));

    // Watch: a file made on disk appears in the expanded folder.
    std::fs::write(root.join("src/new.rs"), "// new\n")?;
    wait_for(&mut harness, "the new file in the tree", |h| {
        shows(h, "new.rs")
    })?;

    // Not watched while another tab shows; on coming back, what changed
    // meanwhile is read again.
    harness.key_press_modifiers(Modifiers::COMMAND, Key::Num1);
    wait_for(&mut harness, "the watch to stop on another tab", |h| {
        h.state().ui.watching().is_none()
    })?;
    std::fs::write(root.join("src/away.rs"), "// made meanwhile\n")?;
    harness.key_press_modifiers(Modifiers::COMMAND, Key::Num3);
    wait_for(&mut harness, "the file made meanwhile in the tree", |h| {
        shows(h, "away.rs")
    })?;

    // A file dropped from the desktop onto src/ is copied there.
    let outside = setup.sandbox.home().join("notes.txt");
    std::fs::write(&outside, "dropped in\n")?;
    drop_onto(&mut harness, "src/", &outside);
    wait_for(&mut harness, "the dropped file in the tree", |h| {
        shows(h, "notes.txt")
    })?;
    assert_eq!(
        std::fs::read_to_string(root.join("src/notes.txt"))?,
        "dropped in\n"
    );
    let listed = runtime.block_on(async {
        let client = setup.agent.client().await?;
        let entries = client
            .files()
            .list_directory(pb::ListDirectoryRequest {
                project: project.clone(),
                path: "src".into(),
                ..Default::default()
            })
            .await?
            .into_inner()
            .entries;
        TestResult::Ok(entries)
    })?;
    assert!(
        listed.iter().any(|e| e.name == "notes.txt"),
        "the agent does not list the dropped file: {listed:?}"
    );

    // The same name again is refused, not overwritten.
    std::fs::write(&outside, "changed\n")?;
    drop_onto(&mut harness, "src/", &outside);
    // (Shown in place and in the status line: twice.)
    wait_for(&mut harness, "the refusal", |h| {
        h.query_all_by_label("notes.txt already exists in src; not overwritten")
            .next()
            .is_some()
    })?;
    assert_eq!(
        std::fs::read_to_string(root.join("src/notes.txt"))?,
        "dropped in\n"
    );
    Ok(())
}
