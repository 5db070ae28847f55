//! Generated project trees for the benchmarks and the end-to-end tests: a
//! committed Git repository of many files with some changes on top, and a
//! tree of many folders, and the real `git` run against them with a
//! sandbox's HOME.

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
