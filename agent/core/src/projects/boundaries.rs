//! Where a project may be. A project's folder is reachable, read and write,
//! by every client the agent serves, so two rules bound it. A hard
//! deny-list binds everyone, the owner included: no project may be, contain
//! or sit inside the agent's own folders (its config, tokens and state),
//! the user's credentials (`~/.ssh`, `~/.gnupg`, cloud and container
//! credentials, password stores, keyrings) or `/`. And callers that are not
//! the owner (tokens) may only open projects under `[access] project_roots`
//! (default: the home folder). Both compare canonical paths, so a symlink
//! cannot dress a protected folder up as another one.

use std::path::{Component, Path, PathBuf};

use crate::{
    error::{Error, Result},
    reason::Reason,
    tokens::Caller,
};

/// Folders under the home folder that hold credentials.
const HOME_SECRETS: &[(&str, &str)] = &[
    (".ssh", "SSH keys"),
    (".gnupg", "GnuPG keys"),
    (".aws", "AWS credentials"),
    (".kube", "Kubernetes credentials"),
    (".docker", "Docker credentials"),
    (".netrc", "netrc passwords"),
    (".git-credentials", "Git credentials"),
    (".password-store", "the password store"),
    (".local/share/keyrings", "the secret-service keyrings"),
    (".local/share/kwalletd", "the KDE wallet"),
];

/// One place no project may touch.
#[derive(Debug, Clone)]
struct Protected {
    /// As configured, and canonical when it exists (either may match).
    paths: Vec<PathBuf>,
    /// What it is, for the error.
    what: String,
}

/// The deny-list and the project roots, fixed at start-up.
#[derive(Debug, Clone)]
pub struct ProjectBoundaries {
    protected: Vec<Protected>,
    roots: Vec<PathBuf>,
}

impl ProjectBoundaries {
    /// Boundaries protecting `agent_dirs` (the agent's config, data, state
    /// and runtime folders), the credentials under `home` and the keyrings
    /// under `data_home`; `roots` are `[access] project_roots`, where `~`
    /// means `home`.
    pub fn new(agent_dirs: &[PathBuf], home: &Path, data_home: &Path, roots: &[String]) -> Self {
        let mut protected: Vec<Protected> = agent_dirs
            .iter()
            .map(|dir| Protected::new(dir.clone(), "the agent's own folders"))
            .collect();
        for (name, what) in HOME_SECRETS {
            protected.push(Protected::new(home.join(name), what));
        }
        protected.push(Protected::new(
            data_home.join("keyrings"),
            "the secret-service keyrings",
        ));
        let roots = roots
            .iter()
            .map(|root| {
                let expanded = match root.strip_prefix('~') {
                    Some(rest) => home.join(rest.trim_start_matches('/')),
                    None => PathBuf::from(root),
                };
                std::fs::canonicalize(&expanded).unwrap_or(expanded)
            })
            .collect();
        Self { protected, roots }
    }

    /// Boundaries for the agent of the current environment's user.
    pub fn from_env(roots: &[String]) -> Self {
        let paths = omnipanel_paths::AgentPaths::from_env();
        Self::new(
            &paths.agent_dirs(),
            &omnipanel_paths::home_dir(),
            &omnipanel_paths::data_home(),
            roots,
        )
    }

    /// Whether `caller` may have a project at `root`, a canonical absolute
    /// path (or, for a folder not created yet, what it will be).
    pub fn check(&self, root: &Path, caller: &Caller) -> Result<()> {
        if root.parent().is_none() {
            return Err(denied(format!(
                "{} is the whole file system; a project must be a folder that holds one project",
                root.display()
            )));
        }
        for protected in &self.protected {
            for path in &protected.paths {
                let relation = if root == path {
                    "is"
                } else if root.starts_with(path) {
                    "is inside"
                } else if path.starts_with(root) {
                    "contains"
                } else {
                    continue;
                };
                return Err(denied(format!(
                    "{} {relation} {} ({}), which no project may reach",
                    root.display(),
                    path.display(),
                    protected.what
                )));
            }
        }
        if !caller.is_owner() && !self.roots.iter().any(|allowed| root.starts_with(allowed)) {
            let roots: Vec<String> = self
                .roots
                .iter()
                .map(|root| root.display().to_string())
                .collect();
            return Err(Error::permission_denied(format!(
                "{} is outside the project roots ({}); {} may only open projects there. The owner can open it, or add a folder holding it to `access.project_roots`",
                root.display(),
                roots.join(", "),
                caller.describe()
            ))
            .with_reason(Reason::OutsideProjectRoots));
        }
        if let Some(granted) = caller.projects()
            && !granted.iter().any(|project| root.starts_with(project))
        {
            let granted: Vec<String> = granted
                .iter()
                .map(|project| project.display().to_string())
                .collect();
            return Err(Error::permission_denied(format!(
                "{} is not among the projects {} was granted ({}); ask for it with a new access request",
                root.display(),
                caller.describe(),
                granted.join(", ")
            ))
            .with_reason(Reason::ProjectNotGranted));
        }
        Ok(())
    }
}

impl Protected {
    fn new(path: PathBuf, what: &str) -> Self {
        let mut paths = vec![path.clone()];
        if let Ok(canonical) = std::fs::canonicalize(&path)
            && canonical != path
        {
            paths.push(canonical);
        }
        Self {
            paths,
            what: what.to_owned(),
        }
    }
}

fn denied(message: String) -> Error {
    Error::permission_denied(message).with_reason(Reason::ProjectDenied)
}

/// What `path` (absolute, maybe not existing yet) will canonically be: its
/// deepest existing ancestor made canonical, the rest appended. `..` is
/// refused, since it would make the lexical answer differ from the real one.
pub fn prospective_canonical(path: &Path) -> Result<PathBuf> {
    if path
        .components()
        .any(|component| matches!(component, Component::ParentDir))
    {
        return Err(Error::invalid_argument(
            "path",
            format!("{} must not contain `..`", path.display()),
        ));
    }
    let mut existing = path.to_path_buf();
    let mut missing = Vec::new();
    loop {
        match std::fs::canonicalize(&existing) {
            Ok(canonical) => {
                return Ok(missing
                    .iter()
                    .rev()
                    .fold(canonical, |path, name: &std::ffi::OsString| path.join(name)));
            }
            Err(_) => {
                let Some(name) = existing.file_name().map(ToOwned::to_owned) else {
                    return Ok(path.to_path_buf());
                };
                missing.push(name);
                if !existing.pop() {
                    return Ok(path.to_path_buf());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::{Scope, Scopes, TokenGrant};

    fn token() -> Caller {
        Caller::Token(TokenGrant::new("t", Scopes::of([Scope::Write])))
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        home: PathBuf,
        boundaries: ProjectBoundaries,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(dir.path()).unwrap();
        let home = base.join("home");
        for sub in [
            "home/.ssh",
            "home/code/app",
            "config/omnipanel",
            "srv/models",
        ] {
            std::fs::create_dir_all(base.join(sub)).unwrap();
        }
        let boundaries = ProjectBoundaries::new(
            &[base.join("config/omnipanel")],
            &home,
            &home.join(".local/share"),
            &["~".into()],
        );
        Fixture {
            _dir: dir,
            home,
            boundaries,
        }
    }

    fn reason(result: Result<()>) -> Option<Reason> {
        result.err().and_then(|err| err.reason())
    }

    #[test]
    fn the_deny_list_binds_the_owner_too() {
        let f = fixture();
        let base = f.home.parent().unwrap();
        for denied in [
            PathBuf::from("/"),
            f.home.clone(),
            f.home.join(".ssh"),
            f.home.join(".ssh/keys"),
            f.home.join(".gnupg"),
            base.join("config"),
            base.join("config/omnipanel"),
            base.join("config/omnipanel/sub"),
            base.to_path_buf(),
        ] {
            let result = f.boundaries.check(&denied, &Caller::Owner);
            assert_eq!(
                reason(result),
                Some(Reason::ProjectDenied),
                "{}",
                denied.display()
            );
        }
        assert!(
            f.boundaries
                .check(&f.home.join("code/app"), &Caller::Owner)
                .is_ok()
        );
    }

    #[test]
    fn tokens_stay_under_the_project_roots_and_the_owner_need_not() {
        let f = fixture();
        let outside = f.home.parent().unwrap().join("srv/models");
        assert_eq!(
            reason(f.boundaries.check(&outside, &token())),
            Some(Reason::OutsideProjectRoots)
        );
        assert!(f.boundaries.check(&outside, &Caller::Owner).is_ok());
        assert!(
            f.boundaries
                .check(&f.home.join("code/app"), &token())
                .is_ok()
        );
        // The home itself holds ~/.ssh: denied for everyone.
        assert_eq!(
            reason(f.boundaries.check(&f.home, &token())),
            Some(Reason::ProjectDenied)
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_to_a_protected_folder_is_seen_through() {
        let f = fixture();
        let link = f.home.join("code/innocent");
        std::os::unix::fs::symlink(f.home.join(".ssh"), &link).unwrap();
        let canonical = std::fs::canonicalize(&link).unwrap();
        assert_eq!(
            reason(f.boundaries.check(&canonical, &Caller::Owner)),
            Some(Reason::ProjectDenied)
        );
        let prospective = prospective_canonical(&link.join("new/project")).unwrap();
        assert_eq!(prospective, f.home.join(".ssh/new/project"));
        assert!(prospective_canonical(&f.home.join("code/../.ssh")).is_err());
    }

    #[test]
    fn a_client_granted_some_projects_reaches_only_those() {
        let f = fixture();
        let mut grant = TokenGrant::new("vs", Scopes::of([Scope::Write]));
        grant.projects = vec![f.home.join("code/app")];
        let client = Caller::Token(grant);
        assert!(
            f.boundaries
                .check(&f.home.join("code/app"), &client)
                .is_ok()
        );
        assert!(
            f.boundaries
                .check(&f.home.join("code/app/sub"), &client)
                .is_ok()
        );
        assert_eq!(
            reason(f.boundaries.check(&f.home.join("code/other"), &client)),
            Some(Reason::ProjectNotGranted)
        );
        // The project roots still bind a grant naming a folder outside them.
        let mut wide = TokenGrant::new("vs", Scopes::of([Scope::Write]));
        wide.projects = vec![PathBuf::from("/srv")];
        assert_eq!(
            reason(
                f.boundaries
                    .check(Path::new("/srv/app"), &Caller::Token(wide))
            ),
            Some(Reason::OutsideProjectRoots)
        );
    }
}
