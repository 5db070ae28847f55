//! The project registry at its boundary: opening (adding), listing,
//! finding, closing and forgetting projects in a fresh state.db, the same
//! folder twice, paths that are not folders, workspace state versions, and
//! observers and restarts.

use std::sync::{Arc, Mutex};

use crate::{
    config::FilesSettings,
    error::ErrorKind,
    events::EventBus,
    files::OpenProject,
    projects::ProjectEvent,
    projects::{ProjectObserver, Projects, TemplateFile},
    reason::Reason,
    store::Store,
};

/// Records what it is told.
#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<String>>);

impl ProjectObserver for Recorder {
    fn opened(&self, project: &Arc<OpenProject>) {
        self.0
            .lock()
            .unwrap()
            .push(format!("opened {}", project.id()));
    }

    fn closed(&self, project_id: &str) {
        self.0.lock().unwrap().push(format!("closed {project_id}"));
    }
}

struct Fixture {
    state: tempfile::TempDir,
    folder: tempfile::TempDir,
    projects: Arc<Projects>,
    observer: Arc<Recorder>,
}

async fn start(state: &tempfile::TempDir, observer: &Arc<Recorder>) -> Arc<Projects> {
    let (store, _) = Store::open(&state.path().join("state.db")).unwrap();
    Projects::start(
        store,
        Arc::new(EventBus::<ProjectEvent>::new(1, 64)),
        FilesSettings::default(),
        crate::projects::ProjectBoundaries::from_env(&["~".into()]),
        vec![observer.clone() as Arc<dyn ProjectObserver>],
    )
    .await
    .unwrap()
}

impl Fixture {
    async fn new() -> Self {
        let state = tempfile::tempdir().unwrap();
        let observer = Arc::new(Recorder::default());
        let projects = start(&state, &observer).await;
        Self {
            state,
            folder: tempfile::tempdir().unwrap(),
            projects,
            observer,
        }
    }

    fn path(&self, name: &str) -> String {
        self.folder.path().join(name).display().to_string()
    }

    fn folder(&self, name: &str) -> String {
        std::fs::create_dir_all(self.folder.path().join(name)).unwrap();
        self.path(name)
    }
}

#[tokio::test]
async fn opened_projects_are_listed_and_found_by_id_or_path() {
    let f = Fixture::new().await;
    let alpha = f.folder("alpha");
    let beta = f.folder("beta");
    let a = f.projects.open_project(&alpha, "").await.unwrap();
    let b = f.projects.open_project(&beta, "  Beta  ").await.unwrap();
    assert_eq!(a.record.name, "alpha");
    assert_eq!(b.record.name, "Beta");
    assert!(a.record.open && a.exists);
    assert!(a.watch.is_some());
    assert!(a.git.is_none());
    assert_eq!(a.record.path, std::fs::canonicalize(&alpha).unwrap());

    let listed = f.projects.list().await.unwrap();
    let mut names: Vec<_> = listed.iter().map(|p| p.record.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["Beta", "alpha"]);

    assert_eq!(f.projects.get(&a.record.id).await.unwrap().record, a.record);
    assert_eq!(f.projects.get(&alpha).await.unwrap().record.id, a.record.id);
    // A trailing slash names the same folder.
    let slashed = format!("{alpha}/");
    assert_eq!(
        f.projects.get(&slashed).await.unwrap().record.id,
        a.record.id
    );
    assert_eq!(
        *f.observer.0.lock().unwrap(),
        [
            format!("opened {}", a.record.id),
            format!("opened {}", b.record.id)
        ]
    );
    f.projects.shutdown().await;
}

#[tokio::test]
async fn opening_a_folder_twice_keeps_one_project() {
    let f = Fixture::new().await;
    let alpha = f.folder("alpha");
    let first = f.projects.open_project(&alpha, "first").await.unwrap();
    let second = f.projects.open_project(&alpha, "second").await.unwrap();
    assert_eq!(first.record.id, second.record.id);
    // The first name stays; re-opening only marks it open and recent.
    assert_eq!(second.record.name, "first");
    assert!(second.record.last_opened_ms >= first.record.last_opened_ms);
    assert_eq!(f.projects.list().await.unwrap().len(), 1);
    // The same live handle, one watcher.
    let a = f.projects.handle(&first.record.id).await.unwrap();
    let b = f.projects.handle(&alpha).await.unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    f.projects.shutdown().await;
}

#[tokio::test]
async fn paths_that_are_not_folders_are_refused() {
    let f = Fixture::new().await;
    let err = f.projects.open_project("", "").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert_eq!(err.field(), Some("path"));

    let err = f
        .projects
        .open_project("relative/dir", "")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.message().contains("absolute"), "{err}");

    let err = f
        .projects
        .open_project(&f.path("missing"), "")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");

    std::fs::write(f.folder.path().join("file.txt"), "x").unwrap();
    let err = f
        .projects
        .open_project(&f.path("file.txt"), "")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition, "{err}");
    assert!(err.message().contains("not a folder"), "{err}");

    let err = f.projects.open_project("/tmp/a\0b", "").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);

    assert!(f.projects.list().await.unwrap().is_empty());
    f.projects.shutdown().await;
}

#[tokio::test]
async fn unknown_references_are_not_found() {
    let f = Fixture::new().await;
    let err = f.projects.get("deadbeef").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.reason().map(Reason::as_str), Some("PROJECT_NOT_FOUND"));
    let err = f.projects.get("").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert_eq!(err.field(), Some("project"));
    let err = f.projects.forget("deadbeef").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    f.projects.shutdown().await;
}

#[tokio::test]
async fn closing_keeps_the_project_and_forgetting_removes_it_but_not_its_files() {
    let f = Fixture::new().await;
    let alpha = f.folder("alpha");
    std::fs::write(f.folder.path().join("alpha/keep.txt"), "x").unwrap();
    let view = f.projects.open_project(&alpha, "").await.unwrap();
    let id = view.record.id.clone();

    let closed = f.projects.close(&id).await.unwrap();
    assert!(!closed.record.open);
    assert!(closed.watch.is_none());
    let err = f.projects.handle(&id).await.unwrap_err();
    assert_eq!(err.reason().map(Reason::as_str), Some("PROJECT_CLOSED"));
    assert_eq!(f.projects.list().await.unwrap().len(), 1);

    let reopened = f.projects.open_project(&alpha, "").await.unwrap();
    assert_eq!(reopened.record.id, id);
    assert!(reopened.record.open);

    let forgotten = f.projects.forget(&alpha).await.unwrap();
    assert_eq!(forgotten.id, id);
    assert!(f.projects.list().await.unwrap().is_empty());
    assert!(f.folder.path().join("alpha/keep.txt").exists());
    assert_eq!(
        f.projects.get(&id).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let events = f.observer.0.lock().unwrap().clone();
    assert_eq!(
        events,
        [
            format!("opened {id}"),
            format!("closed {id}"),
            format!("opened {id}"),
            format!("closed {id}"),
        ]
    );
    f.projects.shutdown().await;
}

#[tokio::test]
async fn created_projects_get_their_files_and_refuse_full_folders() {
    let f = Fixture::new().await;
    let path = f.path("new/project");
    let view = f
        .projects
        .create(
            &path,
            "New",
            true,
            vec![TemplateFile {
                path: "src/main.rs".to_owned(),
                content: b"fn main() {}\n".to_vec(),
            }],
        )
        .await
        .unwrap();
    assert_eq!(view.record.name, "New");
    assert!(view.git.is_some());
    assert_eq!(
        std::fs::read_to_string(f.folder.path().join("new/project/src/main.rs")).unwrap(),
        "fn main() {}\n"
    );
    let err = f
        .projects
        .create(&path, "", false, Vec::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    let err = f
        .projects
        .create("relative", "", false, Vec::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    f.projects.shutdown().await;
}

#[tokio::test]
async fn workspace_state_saves_refuse_a_stale_version() {
    let f = Fixture::new().await;
    let alpha = f.folder("alpha");
    let id = f.projects.open_project(&alpha, "").await.unwrap().record.id;
    assert_eq!(
        f.projects.workspace_state(&id, "vscode").await.unwrap(),
        None
    );
    let v1 = f
        .projects
        .save_workspace_state(&id, "vscode", b"one".to_vec(), Some(0))
        .await
        .unwrap();
    assert_eq!(v1, 1);
    let err = f
        .projects
        .save_workspace_state(&id, "vscode", b"two".to_vec(), Some(0))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Aborted);
    assert_eq!(err.reason().map(Reason::as_str), Some("VERSION_CONFLICT"));
    let state = f
        .projects
        .workspace_state(&id, "vscode")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((state.data.as_slice(), state.version), (&b"one"[..], 1));
    let err = f.projects.workspace_state(&id, "").await.unwrap_err();
    assert_eq!(err.field(), Some("client_key"));
    f.projects.shutdown().await;
}

#[tokio::test]
async fn open_projects_reopen_after_a_restart_and_shutdown_is_idempotent() {
    let f = Fixture::new().await;
    let alpha = f.folder("alpha");
    let beta = f.folder("beta");
    let a = f.projects.open_project(&alpha, "").await.unwrap().record.id;
    let b = f.projects.open_project(&beta, "").await.unwrap().record.id;
    f.projects.close(&b).await.unwrap();
    f.projects.shutdown().await;
    f.projects.shutdown().await;

    let observer = Arc::new(Recorder::default());
    let again = start(&f.state, &observer).await;
    assert!(again.handle(&a).await.is_ok());
    assert_eq!(
        again.handle(&b).await.unwrap_err().reason(),
        Some(Reason::ProjectClosed)
    );
    assert_eq!(*observer.0.lock().unwrap(), [format!("opened {a}")]);
    again.shutdown().await;
}

/// Answers every open project's `dirty` with its own value, as the Git
/// service does from its warm status.
#[derive(Debug)]
struct KnowsDirty(bool);

impl ProjectObserver for KnowsDirty {
    fn opened(&self, _project: &Arc<OpenProject>) {}
    fn closed(&self, _project_id: &str) {}
    fn dirty(&self, _project: &Arc<OpenProject>) -> Option<bool> {
        Some(self.0)
    }
}

#[tokio::test]
async fn an_open_projects_dirty_flag_comes_from_its_observer_not_a_full_status() {
    let state = tempfile::tempdir().unwrap();
    let folder = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(&state.path().join("state.db")).unwrap();
    let projects = Projects::start(
        store,
        Arc::new(EventBus::<ProjectEvent>::new(1, 64)),
        FilesSettings::default(),
        crate::projects::ProjectBoundaries::from_env(&["~".into()]),
        vec![Arc::new(KnowsDirty(false)) as Arc<dyn ProjectObserver>],
    )
    .await
    .unwrap();
    // A new repository with an untracked file: a full status says dirty.
    let path = folder.path().join("repo").display().to_string();
    let files = vec![TemplateFile {
        path: "untracked.txt".to_owned(),
        content: b"new\n".to_vec(),
    }];
    let view = projects.create(&path, "", true, files).await.unwrap();
    let dirty = |view: &crate::projects::ProjectView| view.git.as_ref().map(|git| git.dirty);
    assert_eq!(dirty(&view), Some(false), "open: the observer's answer");
    assert_eq!(dirty(&projects.get(&path).await.unwrap()), Some(false));
    let listed = projects.list().await.unwrap();
    assert_eq!(dirty(&listed[0]), Some(false));
    // Closed, nobody keeps its status: the listing reads it in full.
    let view = projects.close(&path).await.unwrap();
    assert_eq!(dirty(&view), Some(true), "closed: a full status");
}
