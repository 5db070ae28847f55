//! `omnipanel projects ...`: list, open, create, close, forget and show the
//! folders the agent serves, through its ProjectService. The agent runs in
//! another directory than the CLI, so every path the user types is made
//! absolute here before it is sent; the helpers for that are shared with
//! the file commands.

use clap::Subcommand;
use omnipanel_client::{Client, display};
use omnipanel_proto::v1::{
    self as pb, CloseProjectRequest, CreateProjectRequest, ForgetProjectRequest, GetProjectRequest,
    ListProjectsRequest, OpenProjectRequest, TemplateFile,
};

use crate::{
    Failure,
    output::{Output, outln},
    project_ref::{absolute, path_text, project_reference},
};

/// `omnipanel projects ...`
#[derive(Debug, Subcommand)]
pub enum ProjectsCommand {
    /// List projects, most recently opened first.
    #[command(visible_alias = "list")]
    Ls,
    /// Open an existing folder as a project (or re-open a known one).
    Open {
        /// The folder.
        #[arg(default_value = ".")]
        path: String,
        /// Display name for a new entry (default: the folder name).
        #[arg(long)]
        name: Option<String>,
    },
    /// Create a new folder (it may exist if empty) and open it as a project.
    Create {
        /// The folder to create.
        path: String,
        /// Display name (default: the folder name).
        #[arg(long)]
        name: Option<String>,
        /// Run `git init` in it.
        #[arg(long)]
        git: bool,
        /// Put a file in it, e.g. `--file README.md=./template.md`
        /// (repeatable): the path inside the project, `=`, a local file.
        #[arg(long = "file", value_name = "REL=LOCALFILE")]
        files: Vec<String>,
    },
    /// Stop serving a project's files; it stays in the list.
    Close {
        /// Project id or path.
        project: String,
    },
    /// Remove a project from the list; its files are not touched.
    Forget {
        /// Project id or path.
        project: String,
    },
    /// Show a project's details.
    Show {
        /// Project id or path.
        project: String,
    },
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
pub async fn projects(command: ProjectsCommand, out: Output) -> Result<(), Failure> {
    // Work out local paths (and read template files) before connecting, so
    // a typo is reported as such even when the agent is down.
    match command {
        ProjectsCommand::Ls => list(out).await,
        ProjectsCommand::Open { path, name } => {
            let path = path_text(&absolute(&path)?)?;
            let client = Client::connect_from_env().await?;
            let response = client
                .call(client.projects().open_project(OpenProjectRequest {
                    path,
                    name: name.unwrap_or_default(),
                }))
                .await?;
            if out.is_json() {
                return out.json(&response);
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
            let response = client
                .call(client.projects().create_project(CreateProjectRequest {
                    path,
                    name: name.unwrap_or_default(),
                    git_init: git,
                    files,
                }))
                .await?;
            if out.is_json() {
                return out.json(&response);
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
            let response = client
                .call(
                    client
                        .projects()
                        .close_project(CloseProjectRequest { project }),
                )
                .await?;
            if out.is_json() {
                return out.json(&response);
            }
            let project = response.project.unwrap_or_default();
            outln!("closed {} ({})", project.name, project.path)?;
            Ok(())
        }
        ProjectsCommand::Forget { project } => {
            let project = project_reference(&project)?;
            let client = Client::connect_from_env().await?;
            let response = client
                .call(
                    client
                        .projects()
                        .forget_project(ForgetProjectRequest { project }),
                )
                .await?;
            if out.is_json() {
                return out.json(&response);
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
            let response = client
                .call(client.projects().get_project(GetProjectRequest { project }))
                .await?;
            if out.is_json() {
                return out.json(&response);
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

async fn list(out: Output) -> Result<(), Failure> {
    let client = Client::connect_from_env().await?;
    let response = client
        .call(client.projects().list_projects(ListProjectsRequest {}))
        .await?;
    if out.is_json() {
        return out.json(&response);
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
                display::relative_time(project.last_opened_unix_ms),
                state_word(project).to_owned(),
                project.id.clone(),
            ]
        })
        .collect();
    out.table(&["NAME", "PATH", "BRANCH", "OPENED", "STATE", "ID"], &rows)?;
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
    match display::preferred_model(project) {
        Some(model) => outln!("  model        {model}")?,
        None => outln!("  model        the default model (none preferred)")?,
    }
    outln!(
        "  opened       {} ({})",
        display::relative_time(project.last_opened_unix_ms),
        display::timestamp(project.last_opened_unix_ms)
    )?;
    outln!(
        "  added        {} ({})",
        display::relative_time(project.created_unix_ms),
        display::timestamp(project.created_unix_ms)
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
