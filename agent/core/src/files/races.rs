//! Races against the sandbox: a thread swaps a folder (or file) of the
//! project for a symlink leading outside, or a file for a FIFO, as fast as
//! it can, while the agent deletes to the trash, walks and watches, and
//! searches. Each test asserts that nothing outside the project is
//! touched, read, listed or watched, and that the checks were really
//! reached: at least one attempt must have been refused, or the test
//! proves nothing.

use std::{
    os::unix::fs::symlink,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use cap_std::fs::MetadataExt;

use crate::{
    error::ErrorKind,
    files::{
        OpenProject,
        grep::{self, TextQuery},
        ignore_rules::IgnoreRules,
        ops,
        sandbox::{self, RelPath},
        watch::{
            source::{AddError, FolderWatches},
            walk::walk,
        },
    },
};

/// A project next to an outside folder, both in one temporary folder.
struct Scene {
    _base: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
}

impl Scene {
    fn new() -> Self {
        let base = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(base.path()).unwrap().join("proj");
        let outside = root.with_file_name("outside");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        Self {
            _base: base,
            root,
            outside,
        }
    }
}

/// Swaps `root/name` between the real entry and a symlink to `target` until
/// stopped; after each round `refill` may put back what the test consumed.
struct Swapper {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Swapper {
    fn start(
        root: &Path,
        name: &str,
        target: &Path,
        refill: impl Fn(&Path) + Send + 'static,
    ) -> Self {
        let here = root.join(name);
        let real = root.join(format!("{name}.real"));
        let link = root.join(format!("{name}.link"));
        symlink(target, &link).unwrap();
        Self::run(move || {
            let _ = std::fs::rename(&here, &real);
            let _ = std::fs::rename(&link, &here);
            // Each state lasts a moment, so that on a loaded machine the
            // other side still meets both.
            std::thread::sleep(Duration::from_micros(20));
            let _ = std::fs::rename(&here, &link);
            let _ = std::fs::rename(&real, &here);
            refill(&here);
            std::thread::sleep(Duration::from_micros(20));
        })
    }

    fn run(mut round: impl FnMut() + Send + 'static) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                round();
            }
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }

    fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

impl Drop for Swapper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn delete_to_trash_never_takes_a_file_from_outside() {
    let scene = Scene::new();
    let trash = scene.root.with_file_name("trash");
    crate::platform::trash::TEST_TRASH.with_borrow_mut(|t| *t = Some(trash.clone()));
    std::fs::create_dir_all(scene.outside.join("box")).unwrap();
    std::fs::write(scene.outside.join("box/victim.txt"), "CANARY").unwrap();
    std::fs::create_dir_all(scene.root.join("box")).unwrap();
    let (project, _refresh) = OpenProject::open_for_test(&scene.root).unwrap();
    let swapper = Swapper::start(&scene.root, "box", &scene.outside.join("box"), |here| {
        if std::fs::symlink_metadata(here).is_ok_and(|m| m.is_dir()) {
            let _ = std::fs::write(here.join("victim.txt"), "inside");
        }
    });
    let victim = project.check("path", "box/victim.txt").unwrap();
    let (mut trashed, mut refused) = (0, 0);
    // At least 3000 tries (a redirect, when the code allows one, needs
    // many), more until both outcomes were seen.
    for round in 0..30_000 {
        if round >= 3000 && trashed > 0 && refused > 0 {
            break;
        }
        match ops::delete_to_trash(&project, &victim) {
            Ok(()) => trashed += 1,
            Err(err) if err.kind() == ErrorKind::PermissionDenied => refused += 1,
            Err(_) => {}
        }
    }
    swapper.stop();
    assert_eq!(
        std::fs::read_to_string(scene.outside.join("box/victim.txt")).unwrap_or_default(),
        "CANARY",
        "the file outside the project was moved"
    );
    let in_trash: Vec<String> = std::fs::read_dir(trash.join("files"))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        !in_trash.iter().any(|text| text == "CANARY"),
        "{in_trash:?}"
    );
    assert!(
        refused > 0,
        "no delete met the symlink: the test proves nothing"
    );
    assert!(trashed > 0, "no delete ever succeeded");
}

/// Watches that remember which folders (by device and inode) they were
/// given.
#[derive(Debug, Default)]
struct Recorded(std::sync::Mutex<Vec<(u64, u64)>>);

impl FolderWatches for Recorded {
    fn add(&self, _dir: &RelPath, handle: &cap_std::fs::Dir) -> Result<(), AddError> {
        let meta = handle.dir_metadata().map_err(AddError::Io)?;
        crate::sync::lock(&self.0).push((meta.dev(), meta.ino()));
        Ok(())
    }
    fn remove_tree(&self, _: &RelPath) {}
    fn count(&self) -> usize {
        crate::sync::lock(&self.0).len()
    }
}

#[test]
fn a_walk_never_lists_or_watches_a_folder_swapped_for_a_symlink() {
    let scene = Scene::new();
    std::fs::create_dir_all(scene.outside.join("box/sub")).unwrap();
    std::fs::write(scene.outside.join("box/LEAKED.txt"), "x").unwrap();
    std::fs::write(scene.outside.join("box/sub/LEAKED.txt"), "x").unwrap();
    let outside_ids: Vec<(u64, u64)> = ["box", "box/sub"]
        .iter()
        .map(|p| {
            let meta = std::fs::metadata(scene.outside.join(p)).unwrap();
            (
                std::os::unix::fs::MetadataExt::dev(&meta),
                std::os::unix::fs::MetadataExt::ino(&meta),
            )
        })
        .collect();
    std::fs::create_dir_all(scene.root.join("box/sub")).unwrap();
    std::fs::write(scene.root.join("box/sub/inside.txt"), "x").unwrap();
    let root = sandbox::open_root(&scene.root).unwrap();
    let swapper = Swapper::start(&scene.root, "box", &scene.outside.join("box"), |_| {});
    let watches = Recorded::default();
    let mut refused = 0;
    let mut listed_inside = 0;
    for _ in 0..20_000 {
        let mut rules = IgnoreRules::new(&[]);
        // From inside the swapped folder too, as a rescan of it does.
        let starts = [RelPath::root(), RelPath::root().join("box")];
        let walked = walk(&root, &starts, &mut rules, Some(&watches));
        assert!(
            !walked.files.iter().any(|f| f.contains("LEAKED")),
            "listed outside the project: {:?}",
            walked.files
        );
        refused += walked.refused;
        listed_inside += usize::from(walked.files.contains("box/sub/inside.txt"));
        if refused > 20 && listed_inside > 20 {
            break;
        }
    }
    swapper.stop();
    let watched = crate::sync::lock(&watches.0).clone();
    assert!(
        !watched.iter().any(|id| outside_ids.contains(id)),
        "watched a folder outside the project"
    );
    assert!(
        refused > 0,
        "no walk met the symlink: the test proves nothing"
    );
    assert!(listed_inside > 0, "no walk ever listed the real folder");
}

#[test]
fn a_search_never_reads_through_a_swapped_symlink() {
    let scene = Scene::new();
    std::fs::create_dir_all(scene.outside.join("box")).unwrap();
    std::fs::write(scene.outside.join("box/data.txt"), "needle CANARY\n").unwrap();
    std::fs::write(scene.outside.join("box/.gitignore"), "*.txt\n").unwrap();
    std::fs::create_dir_all(scene.root.join("box")).unwrap();
    std::fs::write(scene.root.join("box/data.txt"), "needle inside\n").unwrap();
    let (project, _refresh) = OpenProject::open_for_test(&scene.root).unwrap();
    let swapper = Swapper::start(&scene.root, "box", &scene.outside.join("box"), |_| {});
    let query = TextQuery {
        pattern: "needle".into(),
        ..Default::default()
    };
    let (mut skipped, mut found_inside) = (0, 0);
    for _ in 0..20_000 {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = seen.clone();
        let summary = grep::search(&project, &query, Arc::default(), move |matches| {
            crate::sync::lock(&sink).extend(matches.into_iter().map(|m| m.text));
            true
        })
        .unwrap();
        let seen = crate::sync::lock(&seen).clone();
        assert!(
            !seen.iter().any(|t| t.contains("CANARY")),
            "read outside the project: {seen:?}"
        );
        skipped += summary.skipped;
        found_inside += u64::from(!seen.is_empty());
        if skipped > 20 && found_inside > 20 {
            break;
        }
    }
    swapper.stop();
    assert!(
        skipped > 0,
        "no search met the symlink: the test proves nothing"
    );
    assert!(found_inside > 0, "no search ever found the real file");
}

#[test]
fn a_file_swapped_for_a_fifo_never_hangs_a_search_or_a_read() {
    let scene = Scene::new();
    std::fs::write(scene.root.join("data.txt"), "needle\n").unwrap();
    let fifo = scene.root.join("data.fifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let (project, _refresh) = OpenProject::open_for_test(&scene.root).unwrap();
    let here = scene.root.join("data.txt");
    let real = scene.root.join("data.real");
    let swapper = Swapper::run(move || {
        let _ = std::fs::rename(&here, &real);
        let _ = std::fs::rename(&fifo, &here);
        std::thread::yield_now();
        let _ = std::fs::rename(&here, &fifo);
        let _ = std::fs::rename(&real, &here);
        std::thread::yield_now();
    });
    let query = TextQuery {
        pattern: "needle".into(),
        ..Default::default()
    };
    let path = project.check("path", "data.txt").unwrap();
    let (mut skipped, mut refused_reads) = (0, 0);
    for _ in 0..20_000 {
        // A hang here would hang the test: run it where it can be waited
        // for with a (generous) limit.
        let (done, finished) = std::sync::mpsc::channel();
        let searched = project.clone();
        let query = query.clone();
        std::thread::spawn(move || {
            let _ = done.send(grep::search(&searched, &query, Arc::default(), |_| true));
        });
        let summary = finished
            .recv_timeout(Duration::from_secs(60))
            .expect("a search hung on a FIFO")
            .unwrap();
        skipped += summary.skipped;
        let (done, finished) = std::sync::mpsc::channel();
        let dir = project.dir().try_clone().unwrap();
        let read_path = path.clone();
        std::thread::spawn(move || {
            let _ = done.send(sandbox::open_regular(&dir, &read_path, "read").map(|_| ()));
        });
        let opened = finished
            .recv_timeout(Duration::from_secs(60))
            .expect("a read hung on a FIFO");
        if opened.is_err_and(|err| err.message().contains("not a regular file")) {
            refused_reads += 1;
        }
        if skipped > 5 && refused_reads > 5 {
            break;
        }
    }
    swapper.stop();
    assert!(
        skipped > 0,
        "no search met the FIFO: the test proves nothing"
    );
    assert!(
        refused_reads > 0,
        "no read met the FIFO: the test proves nothing"
    );
}

/// A chain of `depth` folders named `d` under `root/name`, made through
/// handles (its paths are longer than the OS accepts).
fn deep_chain(root: &Path, name: &str, depth: usize) {
    let mut dir = cap_std::fs::Dir::open_ambient_dir(root, cap_std::ambient_authority()).unwrap();
    dir.create_dir(name).unwrap();
    dir = dir.open_dir(name).unwrap();
    for _ in 0..depth {
        dir.create_dir("d").unwrap();
        dir = dir.open_dir("d").unwrap();
    }
    std::fs::write(root.join(name).join("top.txt"), "x").unwrap();
}

/// Remove a chain made by [`deep_chain`] by lifting it one level at a time
/// (no long paths, no recursion).
fn remove_chain(root: &Path, name: &str) {
    let top = root.join(name);
    let lifted = root.join(format!("{name}.lift"));
    while std::fs::symlink_metadata(top.join("d")).is_ok() {
        std::fs::rename(top.join("d"), &lifted).unwrap();
        std::fs::remove_dir_all(&top).unwrap();
        std::fs::rename(&lifted, &top).unwrap();
    }
    let _ = std::fs::remove_dir_all(&top);
}

#[test]
fn a_very_deep_tree_is_copied_deleted_and_walked_without_overflowing_the_stack() {
    let scene = Scene::new();
    deep_chain(&scene.root, "deep", 10_000);
    let root = sandbox::open_root(&scene.root).unwrap();
    // A small stack makes any recursion per level overflow at once.
    let worker = std::thread::Builder::new()
        .stack_size(128 * 1024)
        .spawn(move || {
            let walked = walk(&root, &[RelPath::root()], &mut IgnoreRules::new(&[]), None);
            let from = RelPath::root().join("deep");
            let to = RelPath::root().join("copy");
            let copied = ops::copy_blocking(&root, &from, &to, ops::OverwritePolicy::Fail);
            let copy_deleted = ops::delete_permanently(&root, &to, true);
            let deep_deleted = ops::delete_permanently(&root, &from, true);
            (walked.files, copied, copy_deleted, deep_deleted)
        })
        .unwrap();
    let (files, copied, copy_deleted, deep_deleted) =
        worker.join().expect("the worker overflowed its stack");
    // What the walk could reach is listed; beyond the OS path limit the
    // copy stops with a clear error, the part copied is removed, and the
    // removal of the whole tree stops with the same clear error.
    assert!(files.contains("deep/top.txt"), "{files:?}");
    let err = copied.expect_err("a 10 000 level copy cannot fit the OS path limit");
    assert!(err.message().contains("too deep"), "{err}");
    copy_deleted.unwrap();
    assert!(!scene.root.join("copy").exists());
    let err = deep_deleted.expect_err("nor can a removal reach the bottom");
    assert!(err.message().contains("too deep"), "{err}");
    remove_chain(&scene.root, "copy");
    remove_chain(&scene.root, "deep");
}
