//! Which paths a project ignores: the always-ignored folders from settings
//! (node_modules, target, .git ...) and every `.gitignore` in the tree,
//! each applying to its own folder and below with deeper files winning, as
//! git does. `.git` is special: its internals are ignored except HEAD, the
//! index and refs, whose changes mean "the repository changed".

use std::{collections::HashMap, io::Read, path::Path};

use cap_std::fs::Dir;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

use crate::files::sandbox::{self, RelPath};

/// Largest `.gitignore` read; beyond it the file is not used (ignore
/// files are a few KiB; this bounds what a planted one costs).
const MAX_RULES_BYTES: u64 = 1024 * 1024;

/// The text of the ignore file `file`, through the handle.
fn read_rules(root: &Dir, file: &RelPath) -> Option<String> {
    let (handle, meta) = sandbox::open_regular(root, file, "read").ok()?;
    if meta.len() > MAX_RULES_BYTES {
        tracing::debug!(%file, "a .gitignore over 1 MiB is not used");
        return None;
    }
    let mut bytes = Vec::new();
    handle.take(MAX_RULES_BYTES).read_to_end(&mut bytes).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// How a path is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A normal project path.
    Keep,
    /// Ignored.
    Ignore,
    /// Repository metadata whose change is reported separately.
    Repository,
}

/// The rules of one project.
#[derive(Debug, Clone, Default)]
pub struct IgnoreRules {
    always: Vec<String>,
    /// Folder ("" for the root) → its .gitignore.
    by_dir: HashMap<String, Gitignore>,
}

impl IgnoreRules {
    /// Rules with these always-ignored folder names.
    pub fn new(always: &[String]) -> Self {
        Self {
            always: always.to_vec(),
            by_dir: HashMap::new(),
        }
    }

    /// Read (or re-read) the `.gitignore` of folder `dir`, through the
    /// project's handle `root` (so a folder swapped for a symlink cannot
    /// make it read a file outside the project, and a FIFO cannot block
    /// it). A missing, unreadable or over-large file means no rules there.
    pub fn load(&mut self, root: &Dir, dir: &RelPath) {
        let file = dir.join(".gitignore");
        let text = match read_rules(root, &file) {
            Some(text) => text,
            None => {
                self.by_dir.remove(dir.as_str());
                return;
            }
        };
        // The matcher is given paths relative to `dir` (see `verdict`), so
        // its root is only a name.
        let mut builder = GitignoreBuilder::new(Path::new("/").join(dir.as_path()));
        for line in text.lines() {
            if let Err(err) = builder.add_line(None, line) {
                tracing::debug!(file = %file, error = %err, "part of a .gitignore was not understood");
            }
        }
        match builder.build() {
            Ok(gitignore) => {
                self.by_dir.insert(dir.as_str().to_owned(), gitignore);
            }
            Err(err) => {
                tracing::debug!(file = %file, error = %err, "cannot use a .gitignore");
            }
        }
    }

    /// Whether a folder name is always ignored (so it is never walked or
    /// watched).
    pub fn always_ignored(&self, name: &str) -> bool {
        self.always.iter().any(|a| a == name)
    }

    /// Classify `path`.
    pub fn verdict(&self, path: &RelPath, is_dir: bool) -> Verdict {
        let text = path.as_str();
        if text == ".git" || text.starts_with(".git/") {
            let inner = text.strip_prefix(".git/").unwrap_or("");
            let interesting = inner.is_empty()
                || inner == "HEAD"
                || inner == "index"
                || inner == "packed-refs"
                || inner == "refs"
                || inner.starts_with("refs/");
            return if interesting {
                Verdict::Repository
            } else {
                Verdict::Ignore
            };
        }
        // The agent's own temporary files and batch staging folders.
        let name = path.name();
        if name.starts_with(".omnipanel-batch-")
            || (name.contains(".omnipanel-") && name.ends_with(".tmp"))
        {
            return Verdict::Ignore;
        }
        let components: Vec<&str> = text.split('/').collect();
        if components
            .iter()
            .enumerate()
            .any(|(i, c)| self.always_ignored(c) && (i + 1 < components.len() || is_dir))
        {
            return Verdict::Ignore;
        }
        // Deeper .gitignore files win: check from the file's folder up.
        let mut prefix_len = components.len().saturating_sub(1);
        loop {
            let dir = components[..prefix_len].join("/");
            if let Some(gitignore) = self.by_dir.get(&dir) {
                let relative = components[prefix_len..].join("/");
                let matched = gitignore.matched_path_or_any_parents(&relative, is_dir);
                if matched.is_ignore() {
                    return Verdict::Ignore;
                }
                if matched.is_whitelist() {
                    return Verdict::Keep;
                }
            }
            if prefix_len == 0 {
                break;
            }
            prefix_len -= 1;
        }
        Verdict::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(path: &str) -> RelPath {
        RelPath::from_inside(Path::new(path)).unwrap_or_else(RelPath::root)
    }

    #[test]
    fn gitignore_nesting_always_ignored_and_git_internals() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join(".gitignore"), "*.log\nbuild/\n")?;
        std::fs::create_dir_all(dir.path().join("sub"))?;
        std::fs::write(dir.path().join("sub/.gitignore"), "!keep.log\nsecret.txt\n")?;
        let mut rules = IgnoreRules::new(&["node_modules".to_owned(), "target".to_owned()]);
        let handle = sandbox::open_root(dir.path())?;
        rules.load(&handle, &RelPath::root());
        rules.load(&handle, &rel("sub"));
        assert_eq!(rules.verdict(&rel("a.log"), false), Verdict::Ignore);
        assert_eq!(rules.verdict(&rel("a.txt"), false), Verdict::Keep);
        assert_eq!(rules.verdict(&rel("build/x.o"), false), Verdict::Ignore);
        assert_eq!(rules.verdict(&rel("sub/keep.log"), false), Verdict::Keep);
        assert_eq!(
            rules.verdict(&rel("sub/secret.txt"), false),
            Verdict::Ignore
        );
        assert_eq!(rules.verdict(&rel("sub/other.log"), false), Verdict::Ignore);
        assert_eq!(
            rules.verdict(&rel("node_modules/x/index.js"), false),
            Verdict::Ignore
        );
        assert_eq!(rules.verdict(&rel("node_modules"), true), Verdict::Ignore);
        assert_eq!(
            rules.verdict(&rel("src/target"), false),
            Verdict::Keep,
            "a file named like an ignored folder"
        );
        assert_eq!(rules.verdict(&rel(".git/HEAD"), false), Verdict::Repository);
        assert_eq!(
            rules.verdict(&rel(".git/refs/heads/main"), false),
            Verdict::Repository
        );
        assert_eq!(
            rules.verdict(&rel(".git/objects/ab/cdef"), false),
            Verdict::Ignore
        );
        Ok(())
    }
}
