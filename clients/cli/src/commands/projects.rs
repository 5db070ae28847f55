//! `omnipanel projects ...`: list, open, create, close, forget and show the
//! folders the agent serves, through its ProjectService. The agent runs in
//! another directory than the CLI, so every path the user types is made
//! absolute here before it is sent; the helpers for that are shared with
//! the file commands.

use std::path::{Component, Path, PathBuf};

use omnipanel_client::Client;
use omnipanel_proto::v1::{
    self as pb, CloseProjectRequest, CreateProjectRequest, ForgetProjectRequest, GetProjectRequest,
    ListProjectsRequest, OpenProjectRequest, TemplateFile,
};

use crate::{
    Failure,
    cli::ProjectsCommand,
    model_commands::rpc,
    render::{outln, print_json, print_table, relative_time, timestamp},
};

/// The current directory, as the OS resolved it (no symlinks), which is how
/// the agent stores project roots.
pub fn current_dir() -> Result<PathBuf, Failure> {
    std::env::current_dir()
        .map_err(|err| Failure::Other(format!("cannot tell the current directory: {err}")))
}

/// `path` without `.` and `..` components, worked out on the text alone:
/// the path may not exist yet (`projects create`, `files write`).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                // ".." at the root stays at the root, as the OS does.
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// `path` made absolute against the current directory.
pub fn absolute(path: &str) -> Result<PathBuf, Failure> {
    let path = Path::new(path);
    if path.is_absolute() {
        return Ok(normalize(path));
    }
    Ok(normalize(&current_dir()?.join(path)))
}

/// An absolute path as the UTF-8 text the API carries.
pub fn path_text(path: &Path) -> Result<String, Failure> {
    path.to_str().map(str::to_owned).ok_or_else(|| {
        Failure::Other(format!(
            "{} is not valid UTF-8, which the agent's API cannot carry",
            path.display()
        ))
    })
}

/// What to send for a PROJECT argument (an id or a path): paths are made
/// absolute, since the agent would resolve a relative one against its own
/// directory. A bare word is a path when it names something here (`myproj`),
/// else it is taken as an id.
pub fn project_reference(arg: &str) -> Result<String, Failure> {
    let looks_like_path =
        arg.contains('/') || arg == "." || arg == ".." || Path::new(arg).symlink_metadata().is_ok();
    if looks_like_path {
        path_text(&absolute(arg)?)
    } else {
        Ok(arg.to_owned())
    }
}

/// A project's state in one word: "missing" (its folder is gone) wins over
/// "open" / "closed".
pub fn state_word(project: &pb::Project) -> &'static str {
    if !project.exists {
        "missing"
    } else if project.open {
        "open"
    } else {
        "closed"
    }
}

/// The branch column: the branch (or "(detached)") with `*` when there are
/// uncommitted changes; "-" outside git.
fn branch_cell(git: Option<&pb::GitSummary>) -> String {
    let Some(git) = git else {
        return "-".to_owned();
    };
    let mut cell = if git.detached || git.branch.is_empty() {
        "(detached)".to_owned()
    } else {
        git.branch.clone()
    };
    if git.dirty {
        cell.push('*');
    }
    cell
}

/// `omnipanel projects ...`
pub async fn projects(command: ProjectsCommand, json: bool) -> Result<(), Failure> {
    // Work out local paths (and read template files) before connecting, so
    // a typo is reported as such even when the agent is down.
    match command {
        ProjectsCommand::Ls => list(json).await,
        ProjectsCommand::Open { path, name } => {
            let path = path_text(&absolute(&path)?)?;
            let client = Client::connect_from_env().await?;
            let response = rpc(
                &client,
                client
                    .projects()
                    .open_project(OpenProjectRequest {
                        path,
                        name: name.unwrap_or_default(),
                    })
                    .await,
            )?;
            if json {
                return print_json(&response);
            }
            let project = response.project.unwrap_or_default();
            outln!(
                "opened {} ({}), id {}",
                project.name,
                project.path,
                project.id
            )?;
            Ok(())
        }
        ProjectsCommand::Create {
            path,
            name,
            git,
            files,
        } => {
            let path = path_text(&absolute(&path)?)?;
            let files = files
                .iter()
                .map(|spec| template_file(spec))
                .collect::<Result<Vec<_>, _>>()?;
            let client = Client::connect_from_env().await?;
            let response = rpc(
                &client,
                client
                    .projects()
                    .create_project(CreateProjectRequest {
                        path,
                        name: name.unwrap_or_default(),
                        git_init: git,
                        files,
                    })
                    .await,
            )?;
            if json {
                return print_json(&response);
            }
            let project = response.project.unwrap_or_default();
            outln!(
                "created {} ({}), id {}",
                project.name,
                project.path,
                project.id
            )?;
            Ok(())
        }
        ProjectsCommand::Close { project } => {
            let project = project_reference(&project)?;
            let client = Client::connect_from_env().await?;
            let response = rpc(
                &client,
                client
                    .projects()
                    .close_project(CloseProjectRequest { project })
                    .await,
            )?;
            if json {
                return print_json(&response);
            }
            let project = response.project.unwrap_or_default();
            outln!("closed {} ({})", project.name, project.path)?;
            Ok(())
        }
        ProjectsCommand::Forget { project } => {
            let project = project_reference(&project)?;
            let client = Client::connect_from_env().await?;
            let response = rpc(
                &client,
                client
                    .projects()
                    .forget_project(ForgetProjectRequest { project })
                    .await,
            )?;
            if json {
                return print_json(&response);
            }
            let project = response.project.unwrap_or_default();
            outln!(
                "forgot {} ({}); its files were not touched",
                project.name,
                project.path
            )?;
            Ok(())
        }
        ProjectsCommand::Show { project } => {
            let project = project_reference(&project)?;
            let client = Client::connect_from_env().await?;
            let response = rpc(
                &client,
                client
                    .projects()
                    .get_project(GetProjectRequest { project })
                    .await,
            )?;
            if json {
                return print_json(&response);
            }
            print_project(&response.project.unwrap_or_default())?;
            Ok(())
        }
    }
}

/// `--file REL=LOCALFILE`: the local file's bytes under the project path.
fn template_file(spec: &str) -> Result<TemplateFile, Failure> {
    let Some((path, local)) = spec.split_once('=') else {
        return Err(Failure::Other(format!(
            "--file {spec:?}: expected REL=LOCALFILE, e.g. README.md=./template.md"
        )));
    };
    if path.is_empty() || local.is_empty() {
        return Err(Failure::Other(format!(
            "--file {spec:?}: both the path in the project and the local file are needed"
        )));
    }
    let content = std::fs::read(local)
        .map_err(|err| Failure::Other(format!("--file {spec:?}: cannot read {local}: {err}")))?;
    Ok(TemplateFile {
        path: path.to_owned(),
        content,
    })
}

async fn list(json: bool) -> Result<(), Failure> {
    let client = Client::connect_from_env().await?;
    let response = rpc(
        &client,
        client
            .projects()
            .list_projects(ListProjectsRequest {})
            .await,
    )?;
    if json {
        return print_json(&response);
    }
    if response.projects.is_empty() {
        outln!("no projects; open one with `omnipanel projects open PATH`")?;
        return Ok(());
    }
    let rows: Vec<Vec<String>> = response
        .projects
        .iter()
        .map(|project| {
            vec![
                project.name.clone(),
                project.path.clone(),
                branch_cell(project.git.as_ref()),
                relative_time(project.last_opened_unix_ms),
                state_word(project).to_owned(),
                project.id.clone(),
            ]
        })
        .collect();
    print_table(&["NAME", "PATH", "BRANCH", "OPENED", "STATE", "ID"], &rows)?;
    Ok(())
}

fn print_project(project: &pb::Project) -> Result<(), Failure> {
    outln!("{}", project.name)?;
    outln!("  id           {}", project.id)?;
    outln!("  path         {}", project.path)?;
    let state = match state_word(project) {
        "missing" => "missing (the folder no longer exists)",
        "open" => "open",
        _ => "closed (`omnipanel projects open` serves its files again)",
    };
    outln!("  state        {state}")?;
    match &project.git {
        Some(git) => {
            let branch = if git.detached || git.branch.is_empty() {
                "(detached HEAD)"
            } else {
                &git.branch
            };
            outln!("  branch       {branch}")?;
            let changes = if git.dirty {
                "uncommitted changes"
            } else {
                "clean"
            };
            outln!("  working tree {changes}")?;
        }
        None => outln!("  git          not a repository")?,
    }
    if let Some(watch) = &project.watch {
        print_watch(watch)?;
    }
    outln!(
        "  opened       {} ({})",
        relative_time(project.last_opened_unix_ms),
        timestamp(project.last_opened_unix_ms)
    )?;
    outln!(
        "  added        {} ({})",
        relative_time(project.created_unix_ms),
        timestamp(project.created_unix_ms)
    )?;
    Ok(())
}

/// How the project's files are watched: the state with its counts, and
/// for a project that is not fully watched, why and what to do.
fn print_watch(watch: &pb::ProjectWatch) -> Result<(), Failure> {
    let folders = |n: u64| if n == 1 { "folder" } else { "folders" };
    let state = match watch.state() {
        pb::WatchState::Indexing => "indexing (the first walk is running)".to_owned(),
        pb::WatchState::Live => format!(
            "live ({} {} watched)",
            watch.watched_folders,
            folders(watch.watched_folders)
        ),
        pb::WatchState::Degraded => format!(
            "DEGRADED ({} {} watched, {} not)",
            watch.watched_folders,
            folders(watch.watched_folders),
            watch.unwatched_folders
        ),
        pb::WatchState::Unavailable => "UNAVAILABLE".to_owned(),
        pb::WatchState::Unspecified => "unknown".to_owned(),
    };
    outln!("  watching     {state}")?;
    outln!("  indexed      {} files", watch.indexed_files)?;
    if watch.rescans > 0 {
        outln!(
            "  rescans      {} (events were lost, e.g. too many changes at once)",
            watch.rescans
        )?;
    }
    if !watch.detail.is_empty() {
        outln!("  {}", watch.detail)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_drops_dots() {
        assert_eq!(normalize(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
        assert_eq!(normalize(Path::new("/../a")), PathBuf::from("/a"));
        assert_eq!(normalize(Path::new("/a/b/")), PathBuf::from("/a/b"));
    }

    #[test]
    fn branch_cells() {
        assert_eq!(branch_cell(None), "-");
        let git = pb::GitSummary {
            branch: "main".to_owned(),
            detached: false,
            dirty: true,
        };
        assert_eq!(branch_cell(Some(&git)), "main*");
        let detached = pb::GitSummary {
            branch: String::new(),
            detached: true,
            dirty: false,
        };
        assert_eq!(branch_cell(Some(&detached)), "(detached)");
    }
}
