//! Which project and which path a command means: the agent runs in
//! another directory than the CLI, so every path the user types is made
//! absolute (or project-relative) here before it is sent, and a command
//! without `--project` works on the open project containing the current
//! directory. Shared by the project, file and git commands.

use std::path::{Component, Path, PathBuf};

use omnipanel_client::Client;
use omnipanel_proto::v1::{self as pb, GetProjectRequest, ListProjectsRequest};

use crate::Failure;

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

/// Whether a typed path is meant from the current directory rather than
/// from the project root: absolute, or starting with `./` or `../`.
fn from_current_dir(arg: &str) -> bool {
    Path::new(arg).is_absolute()
        || arg == "."
        || arg == ".."
        || arg.starts_with("./")
        || arg.starts_with("../")
}

/// `abs` relative to `root`, '/'-separated ("" for the root itself), when
/// it is inside.
fn inside(root: &Path, abs: &Path) -> Result<Option<String>, Failure> {
    let Ok(rel) = abs.strip_prefix(root) else {
        return Ok(None);
    };
    let mut parts = Vec::new();
    for component in rel.components() {
        let part = component.as_os_str().to_str().ok_or_else(|| {
            Failure::Other(format!(
                "{} is not valid UTF-8, which the agent's API cannot carry",
                abs.display()
            ))
        })?;
        parts.push(part);
    }
    Ok(Some(parts.join("/")))
}

/// `abs` with its longest existing ancestor resolved (symlinks in the
/// prefix, e.g. a symlinked home folder) and the rest appended: the
/// project's root is canonical, what the user typed may not be.
fn resolve_prefix(abs: &Path) -> Option<PathBuf> {
    for ancestor in abs.ancestors() {
        if let Ok(real) = std::fs::canonicalize(ancestor) {
            let rest = abs.strip_prefix(ancestor).ok()?;
            return Some(normalize(&real.join(rest)));
        }
    }
    None
}

/// The project-relative path for `arg`: as typed, unless it is meant from
/// the current directory, in which case it must lie inside `root`.
pub fn project_path(root: &Path, arg: &str) -> Result<String, Failure> {
    if !from_current_dir(arg) {
        return Ok(arg.to_owned());
    }
    let abs = absolute(arg)?;
    if let Some(rel) = inside(root, &abs)? {
        return Ok(rel);
    }
    // Only now resolve symlinks: one inside the project pointing out must
    // not turn a path into another one (the agent refuses that anyway).
    if let Some(real) = resolve_prefix(&abs)
        && let Some(rel) = inside(root, &real)?
    {
        return Ok(rel);
    }
    Err(Failure::Other(format!(
        "{arg} ({}) is outside the project at {}",
        abs.display(),
        root.display()
    )))
}

/// The project a files command works on: the one named by `--project`, or
/// the open project whose root contains the current directory (the
/// innermost, when projects are nested).
pub async fn choose_project(client: &Client, arg: Option<&str>) -> Result<pb::Project, Failure> {
    if let Some(arg) = arg {
        let project = project_reference(arg)?;
        let response = client
            .call(client.projects().get_project(GetProjectRequest { project }))
            .await?;
        return Ok(response.project.unwrap_or_default());
    }
    let cwd = current_dir()?;
    let cwd = std::fs::canonicalize(&cwd).unwrap_or(cwd);
    let projects = client
        .call(client.projects().list_projects(ListProjectsRequest {}))
        .await?
        .projects;
    let containing = |open: bool| {
        projects
            .iter()
            .filter(|p| p.open == open && cwd.starts_with(&p.path))
            .max_by_key(|p| p.path.len())
            .cloned()
    };
    if let Some(project) = containing(true) {
        return Ok(project);
    }
    if let Some(closed) = containing(false) {
        return Err(Failure::Other(format!(
            "the project {} ({}) containing the current directory is closed; run `omnipanel projects open {}` or pass --project",
            closed.name, closed.path, closed.path
        )));
    }
    Err(Failure::Other(format!(
        "no open project contains the current directory ({}); run `omnipanel projects open .` or pass --project",
        cwd.display()
    )))
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
    fn paths_from_the_project_root_or_the_current_directory() -> Result<(), Failure> {
        let cwd = current_dir()?;
        let root = normalize(&cwd.join(".."));
        let here = inside(&root, &cwd)?.unwrap_or_default();
        assert_eq!(project_path(&root, "src/main.rs")?, "src/main.rs");
        assert_eq!(project_path(&root, ".")?, here);
        assert_eq!(project_path(&root, "./a/../b")?, format!("{here}/b"));
        assert_eq!(project_path(&root, "..")?, "");
        assert!(project_path(&root, "../..").is_err());
        assert!(project_path(&root, "/").is_err());
        Ok(())
    }
}
