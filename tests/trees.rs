//! Generated project trees for the benchmarks and the end-to-end tests: a
//! committed Git repository of many files with some changes on top, a
//! tree of many folders, a source-like tree of any size laid out as large
//! projects are (and committed as a repository when asked), and the real
//! `git` run against them with a sandbox's HOME.

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use crate::TestResult;

/// Run the real `git` in `dir` with `home` as HOME and no system config;
/// how long it took (process start included, as a client pays it).
pub fn git_in(home: &Path, dir: &Path, args: &[&str]) -> TestResult<Duration> {
    let started = Instant::now();
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()?;
    let took = started.elapsed();
    if !output.status.success() {
        return Err(format!("git {args:?}: {}", String::from_utf8_lossy(&output.stderr)).into());
    }
    Ok(took)
}

/// `files` files in folders of 25 (`pkgNNN/modN`), committed; then 100
/// modified, 50 staged and 50 untracked. `home` needs a git identity.
pub fn repository_with_changes(home: &Path, root: &Path, files: usize) -> TestResult {
    std::fs::create_dir_all(root)?;
    for i in 0..files {
        let dir = root.join(format!("pkg{:03}/mod{}", i / 100, i % 4));
        if i % 100 < 4 {
            std::fs::create_dir_all(&dir)?;
        }
        std::fs::write(
            dir.join(format!("file_{i}.rs")),
            format!("// generated file {i}\npub fn f{i}() -> usize {{ {i} }}\n"),
        )?;
    }
    git_in(home, root, &["init", "-q", "-b", "main"])?;
    git_in(home, root, &["add", "-A"])?;
    git_in(home, root, &["commit", "-q", "-m", "generated"])?;
    for i in (0..files).step_by((files / 100).max(1)) {
        let path = root.join(format!("pkg{:03}/mod{}/file_{i}.rs", i / 100, i % 4));
        std::fs::write(path, format!("// changed {i}\n"))?;
    }
    for i in (1..files).step_by((files / 50).max(1)) {
        let rel = format!("pkg{:03}/mod{}/file_{i}.rs", i / 100, i % 4);
        std::fs::write(root.join(&rel), format!("// staged {i}\n"))?;
        git_in(home, root, &["add", &rel])?;
    }
    for i in 0..50.min(files.div_ceil(100)) {
        std::fs::write(root.join(format!("pkg{i:03}/untracked_{i}.txt")), "new\n")?;
    }
    Ok(())
}

/// `folders` folders in 128 groups (`tNNN/sNNNNN`), each with
/// `files_per_folder` small files.
pub fn many_folders(root: &Path, folders: usize, files_per_folder: usize) -> TestResult {
    for n in 0..folders {
        let dir = root.join(format!("t{:03}/s{n:05}", n % 128));
        std::fs::create_dir_all(&dir)?;
        for f in 0..files_per_folder {
            std::fs::write(dir.join(format!("f{f}.txt")), format!("file {n} {f}\n"))?;
        }
    }
    Ok(())
}

/// The text [`project_tree`] puts in one file in 100: a fixed string for
/// text searches to find.
pub const NEEDLE: &str = "cost_curve_marker";

/// Where [`project_tree`] puts file `i`: in folders of 100, three levels
/// deep (`areaNN/pkgNN/modNN`, 32 to a level below the top), with names
/// the benchmarks' fuzzy queries can tell apart.
pub fn tree_file(i: usize) -> String {
    let folder = i / 100;
    format!(
        "area{:02}/pkg{:02}/mod{:02}/file_{i}_{}.rs",
        folder / 1024,
        (folder / 32) % 32,
        folder % 32,
        ["alpha", "beta", "gamma", "delta"][i % 4]
    )
}

/// `files` source-like files of about 700 bytes laid out by [`tree_file`],
/// as a large project spreads them; one in 100 has a line with
/// [`NEEDLE`]. Contents repeat every 1000 files, so a Git repository of
/// the tree stores 1000 blobs rather than one per file (its work tree is
/// what a status walks). The folders made below `root`.
pub fn project_tree(root: &Path, files: usize) -> TestResult<usize> {
    let contents: Vec<String> = (0..1000).map(tree_file_contents).collect();
    let mut folders = 0;
    for i in 0..files {
        let path = root.join(tree_file(i));
        if i.is_multiple_of(100)
            && let Some(dir) = path.parent()
        {
            std::fs::create_dir_all(dir)?;
            // A new `modNN`, and with it a new `pkgNN` or `areaNN` where
            // the count below rolls over (see `tree_file`).
            let folder = i / 100;
            folders += 1
                + usize::from(folder.is_multiple_of(32))
                + usize::from(folder.is_multiple_of(1024));
        }
        std::fs::write(path, &contents[i % contents.len()])?;
    }
    Ok(folders)
}

fn tree_file_contents(variant: usize) -> String {
    let marker = if variant % 100 == 7 {
        format!("// {NEEDLE}: found by the text search benchmarks\n")
    } else {
        String::new()
    };
    format!(
        "//! Generated module {variant}.

use std::collections::HashMap;

/// Item {variant}: a name and a weight.
#[derive(Debug, Clone)]
pub struct Item{variant} {{
    pub id: usize,
    pub name: String,
}}

impl Item{variant} {{
    pub fn new(id: usize) -> Self {{
        Self {{ id, name: format!(\"item-{{id}}\") }}
    }}
{marker}
    pub fn weight(&self) -> usize {{
        self.id * {variant} + 7
    }}
}}

pub fn index(items: &[Item{variant}]) -> HashMap<usize, String> {{
    items.iter().map(|item| (item.id, item.name.clone())).collect()
}}
"
    )
}

/// Make the [`project_tree`] of `files` files at `root` a Git repository
/// (`home` needs a git identity): everything committed, then 100 files
/// modified, 20 of them staged, and 10 new files untracked, so a status has
/// something to report. Git's automatic gc is off in it: a background
/// repack would run during the measurements.
pub fn commit_tree(home: &Path, root: &Path, files: usize) -> TestResult {
    git_in(home, root, &["init", "-q", "-b", "main"])?;
    git_in(home, root, &["config", "gc.auto", "0"])?;
    git_in(home, root, &["add", "-A"])?;
    git_in(home, root, &["commit", "-q", "-m", "generated"])?;
    let mut staged = Vec::new();
    for (n, i) in (0..files).step_by((files / 100).max(1)).enumerate() {
        let rel = tree_file(i);
        std::fs::write(root.join(&rel), format!("// changed {i}\n"))?;
        if n % 5 == 0 {
            staged.push(rel);
        }
    }
    let mut add = vec!["add", "--"];
    add.extend(staged.iter().map(String::as_str));
    git_in(home, root, &add)?;
    for n in 0..10 {
        let dir = tree_file(n * files / 10);
        let dir = Path::new(&dir).parent().unwrap_or(Path::new(""));
        std::fs::write(root.join(dir).join(format!("untracked_{n}.txt")), "new\n")?;
    }
    Ok(())
}

/// FindFiles queries for the trees here, as the benchmarks type them:
/// growing prefixes, a word in a quarter of the names, abbreviated
/// folders, and no match at all.
pub const FIND_QUERIES: [&str; 12] = [
    "f",
    "fi",
    "fil",
    "file",
    "file_4",
    "file_42",
    "gamma",
    "pkg12mod3",
    "p1m1f1",
    "delta.rs",
    "zzzz",
    "m07beta",
];
