//! Rules of the code base that a reviewer would otherwise have to remember,
//! checked on every test run (rust-analyzer's `tidy.rs` is the model). Each
//! test names the rule, and its failure names the file and what to do:
//!
//! - every `.rs` file opens with a `//!` paragraph saying what lives there;
//! - every `#[allow(..)]` says why in a comment;
//! - gRPC stays in its layers: `tonic` only in the agent's `rpc/`, the
//!   client library, the tray's backend and the tests; the domain crate
//!   (`omnipanel-core`) names neither tonic, prost nor the generated types,
//!   and does not depend on them;
//! - a gRPC `Status` is made in one place (`rpc/status.rs`);
//! - RPC handlers (`agent/src/rpc/<service>/`) leave the blocking pool, the
//!   disk, libgit2 and SQLite to the domain's facades;
//! - a CLI command module imports no other command module;
//! - code chosen by operating system (`cfg(unix)`, `cfg(target_os = ..)`,
//!   ...) lives in the platform modules, or on a short list that says why;
//! - a source file over 800 lines of non-test code is on a short list that
//!   says why;
//! - ARCHITECTURE.md's code map names every crate and every top-level
//!   module.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

/// Non-test source files allowed over [`MAX_LINES`], each with its reason.
const LARGE_FILES: &[(&str, &str)] = &[(
    "agent/core/src/system/thresholds.rs",
    "one cohesive set of pure threshold rules and their parser",
)];

/// Most lines of non-test code in one file.
const MAX_LINES: usize = 800;

/// Where `tonic` may be named: the agent's gRPC layer, the client library,
/// the tray's connection to the agent, the generated code and the tests.
const TONIC_ALLOWED: &[&str] = &[
    "agent/src/rpc/",
    "clients/rust/",
    "tray/src/core/backend/",
    "proto/",
    "tests/",
];

/// Crates the domain crate must not depend on directly (the gRPC stack and
/// the generated types). hyper, http and tower come in below reqwest, the
/// HTTP/1 client the domain uses to talk to Ollama; that is allowed.
const CORE_FORBIDDEN_DIRECT: &[&str] = &[
    "tonic",
    "tonic-health",
    "tonic-reflection",
    "tonic-types",
    "prost",
    "prost-types",
    "tower",
    "hyper",
    "http",
    "omnipanel-proto",
    "omnipanel-client",
];

/// Crates that must not be reachable from the domain crate at all. (h2 may
/// be: reqwest speaks HTTP/2 when another workspace member turns it on.)
const CORE_FORBIDDEN_ANYWHERE: &[&str] = &["tonic", "prost", "omnipanel-proto", "omnipanel-client"];

/// The platform modules: one small module per OS-specific concern, each
/// with a portable interface, so that a port touches only these.
const PLATFORM_MODULES: &[&str] = &[
    "agent/core/src/platform/",
    "agent/src/platform/",
    "agent/paths/src/platform.rs",
    "clients/rust/src/transport.rs",
];

/// Code outside [`PLATFORM_MODULES`] allowed to choose by operating
/// system, each with its reason.
const OS_CFG_ELSEWHERE: &[(&str, &str)] = &[
    (
        "agent/core/src/files/watch/",
        "the watcher's OS backends already sit behind their own interface (source.rs: inotify on Linux in linux.rs, the notify crate elsewhere in portable.rs), with the inotify limit advice next to them",
    ),
    (
        "agent/core/src/ollama/discovery.rs",
        "where each OS's Ollama installer puts the binary: facts about Ollama's installers, not calls into the OS",
    ),
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Every `.rs` file of the workspace (not build output or dependencies),
/// as (path relative to the workspace, text).
fn rust_files() -> Vec<(String, String)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if name == "target" || name == "node_modules" || name.starts_with('.') {
                    continue;
                }
                walk(root, &path, out);
            } else if name.ends_with(".rs")
                && let Ok(text) = std::fs::read_to_string(&path)
            {
                let relative = path
                    .strip_prefix(root)
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default();
                out.push((relative, text));
            }
        }
    }
    let root = workspace();
    let mut files = Vec::new();
    walk(&root, &root, &mut files);
    files.sort();
    assert!(
        files.len() > 100,
        "the tidy test found only {} .rs files under {}",
        files.len(),
        root.display()
    );
    files
}

/// The lines of `text` that are code: comments dropped, and the unit tests
/// at the end (`#[cfg(test)] mod tests`) cut off.
fn code_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    for line in text.lines() {
        if line.starts_with("#[cfg(test)]") {
            break;
        }
        if !line.trim_start().starts_with("//") {
            lines.push(line);
        }
    }
    lines
}

fn fail_with(rule: &str, problems: &[String]) {
    assert!(problems.is_empty(), "{rule}:\n  {}", problems.join("\n  "));
}

#[test]
fn every_file_says_what_lives_there() {
    let problems: Vec<String> = rust_files()
        .iter()
        .filter(|(_, text)| {
            !text
                .lines()
                .find(|l| !l.trim().is_empty())
                .is_some_and(|l| l.starts_with("//!"))
        })
        .map(|(path, _)| {
            format!("{path}: open the file with a `//!` paragraph saying what lives there")
        })
        .collect();
    fail_with("every .rs file opens with a //! paragraph", &problems);
}

#[test]
fn every_allow_says_why() {
    let mut problems = Vec::new();
    for (path, text) in rust_files() {
        if path == "tests/tidy.rs" {
            continue;
        }
        let lines: Vec<&str> = text.lines().collect();
        for (n, line) in lines.iter().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") || !(code.contains("allow(") && code.starts_with("#")) {
                continue;
            }
            let same_line = line.contains("//");
            // The comment may stand above the attribute, past other
            // attributes.
            let above = lines[..n]
                .iter()
                .rev()
                .map(|l| l.trim_start())
                .find(|l| !l.starts_with("#["))
                .is_some_and(|l| l.starts_with("//"));
            if !same_line && !above {
                problems.push(format!("{path}:{}: say why in a comment: {}", n + 1, code));
            }
        }
    }
    fail_with("every #[allow] has a comment saying why", &problems);
}

fn names_tonic(line: &str) -> bool {
    line.contains("tonic::") || line.contains("use tonic") || line.contains("tonic_")
}

#[test]
fn grpc_stays_in_its_layers() {
    let mut problems = Vec::new();
    for (path, text) in rust_files() {
        let allowed = TONIC_ALLOWED.iter().any(|p| path.starts_with(p));
        let code = code_lines(&text);
        if !allowed && code.iter().any(|l| names_tonic(l)) {
            problems.push(format!(
                "{path}: names tonic; only the agent's rpc/, the client library and the tray backend may (use the client library's calls)"
            ));
        }
        if path.starts_with("agent/core/") || path.starts_with("agent/paths/") {
            for word in ["omnipanel_proto", "omnipanel_client", "prost::", "tonic"] {
                if text
                    .lines()
                    .filter(|l| !l.trim_start().starts_with("//"))
                    .any(|l| l.contains(word))
                {
                    problems.push(format!(
                        "{path}: the domain names `{word}`; it takes and returns plain Rust types (conversions live in agent/src/rpc/)"
                    ));
                }
            }
        }
    }
    fail_with("gRPC stays in its layers", &problems);
}

/// What only a domain may do: the blocking pool, the disk, libgit2 and
/// SQLite. A service's handler parses, calls its facade and converts.
const DOMAIN_ONLY: &[&str] = &["spawn_blocking", "std::fs", "git2::", "rusqlite"];

#[test]
fn rpc_handlers_leave_blocking_work_to_the_domain() {
    let mut problems = Vec::new();
    for (path, text) in rust_files() {
        let Some(inside) = path.strip_prefix("agent/src/rpc/") else {
            continue;
        };
        // Only the service folders (`rpc/files/mod.rs`, ...): the listener
        // setup in `rpc/mod.rs` reads its TLS files once at start, and
        // `lazy.rs` builds reflection on the blocking pool by design.
        if !inside.contains('/') {
            continue;
        }
        for (n, line) in code_lines(&text).iter().enumerate() {
            if let Some(word) = DOMAIN_ONLY.iter().find(|w| line.contains(**w)) {
                problems.push(format!(
                    "{path}: `{word}` in a handler (code line {}); give the facade a method that does it: what runs on the blocking pool is the domain's decision",
                    n + 1
                ));
            }
        }
    }
    fail_with("RPC handlers leave blocking work to the domain", &problems);
}

#[test]
fn cli_command_modules_import_no_other() {
    let mut problems = Vec::new();
    for (path, text) in rust_files() {
        let Some(inside) = path.strip_prefix("clients/cli/src/commands/") else {
            continue;
        };
        // In a group's root (`agent.rs`, `files/mod.rs`) `super` is
        // `commands` itself, so `super::x` names another group; in a file
        // below it (`files/search.rs`) `super` is its own group.
        let group_root = !inside.contains('/') || inside.ends_with("/mod.rs");
        let lines = text
            .lines()
            .enumerate()
            .take_while(|(_, l)| !l.starts_with("#[cfg(test)]"))
            .filter(|(_, l)| !l.trim_start().starts_with("//"));
        for (n, line) in lines {
            let reaches_up = line.contains("super::super")
                || (group_root && inside != "mod.rs" && line.contains("super::"));
            if line.contains("crate::commands") || reaches_up {
                problems.push(format!(
                    "{path}:{}: a command module uses another; move what both need out of commands/ (output, project_ref, ...) or into omnipanel-client: {}",
                    n + 1,
                    line.trim()
                ));
            }
        }
    }
    fail_with("CLI command modules import no other", &problems);
}

#[test]
fn statuses_are_made_in_one_place() {
    let mut problems = Vec::new();
    for (path, text) in rust_files() {
        if !path.starts_with("agent/") || path == "agent/src/rpc/status.rs" {
            continue;
        }
        for (n, line) in code_lines(&text).iter().enumerate() {
            let made = [
                "Status::new(",
                "Status::with_",
                "Status::internal(",
                "Status::unknown(",
            ]
            .iter()
            .any(|c| line.contains(c))
                || [
                    "invalid_argument",
                    "not_found",
                    "already_exists",
                    "permission_denied",
                    "resource_exhausted",
                    "failed_precondition",
                    "aborted",
                    "out_of_range",
                    "unimplemented",
                    "unavailable",
                    "data_loss",
                    "unauthenticated",
                    "cancelled",
                    "deadline_exceeded",
                ]
                .iter()
                .any(|c| line.contains(&format!("Status::{c}(")));
            if made {
                problems.push(format!(
                    "{path}:{}: make a domain Error and map it with rpc::status::to_status: {}",
                    n + 1,
                    line.trim()
                ));
            }
        }
    }
    fail_with(
        "a Status is made only in agent/src/rpc/status.rs",
        &problems,
    );
}

/// A line that chooses code by operating system.
fn chooses_by_os(line: &str) -> bool {
    line.contains("cfg")
        && ["target_os", "target_family", "unix", "windows"]
            .iter()
            .any(|word| line.contains(word))
}

#[test]
fn os_specific_code_stays_in_the_platform_modules() {
    let files = rust_files();
    let mut problems = Vec::new();
    for (path, text) in &files {
        let allowed = PLATFORM_MODULES.iter().any(|p| path.starts_with(p))
            || OS_CFG_ELSEWHERE.iter().any(|(p, _)| path.starts_with(p))
            || path.starts_with("tests/");
        if allowed {
            continue;
        }
        for line in code_lines(text) {
            if chooses_by_os(line) {
                problems.push(format!(
                    "{path}: `{}`: move what differs by OS into a platform module ({}) behind a portable function",
                    line.trim(),
                    PLATFORM_MODULES.join(", ")
                ));
            }
        }
    }
    for (exception, _) in OS_CFG_ELSEWHERE {
        let still = files.iter().any(|(path, text)| {
            path.starts_with(exception) && code_lines(text).iter().any(|l| chooses_by_os(l))
        });
        if !still {
            problems.push(format!(
                "{exception} no longer chooses by OS: take it off OS_CFG_ELSEWHERE in tests/tidy.rs"
            ));
        }
    }
    fail_with("OS-specific code stays in the platform modules", &problems);
}

#[test]
fn large_files_are_on_the_list() {
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for (path, text) in rust_files() {
        // A `tests.rs` beside a module is that module's `#[cfg(test)] mod
        // tests;`, all test code.
        if path.starts_with("tests/") || path.ends_with("/tests.rs") {
            continue;
        }
        let lines = text
            .lines()
            .take_while(|l| !l.starts_with("#[cfg(test)]"))
            .count();
        let listed = LARGE_FILES.iter().any(|(p, _)| *p == path);
        if listed {
            seen.insert(path.clone());
        }
        if lines > MAX_LINES && !listed {
            problems.push(format!(
                "{path}: {lines} lines of non-test code (most {MAX_LINES}); split it along its seams, or add it to LARGE_FILES in tests/tidy.rs with the reason"
            ));
        }
        if lines <= MAX_LINES && listed {
            problems.push(format!(
                "{path}: {lines} lines now; take it off LARGE_FILES in tests/tidy.rs"
            ));
        }
    }
    for (path, _) in LARGE_FILES {
        if !seen.contains(*path) {
            problems.push(format!("{path} is on LARGE_FILES but does not exist"));
        }
    }
    fail_with("large files say why", &problems);
}

/// The triple of the machine the tests run on, from `rustc -vV`.
fn host_triple() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let output = std::process::Command::new(rustc)
        .arg("-vV")
        .output()
        .expect("rustc -vV runs");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc -vV names the host")
        .to_owned()
}

/// `cargo metadata` of the workspace, parsed.
fn metadata() -> serde_json::Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = std::process::Command::new(cargo)
        // Resolved for this machine only: other platforms' crates (winit's
        // Android backend...) need not be downloaded to check ours.
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            "--filter-platform",
            &host_triple(),
        ])
        .current_dir(workspace())
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON")
}

#[test]
fn the_core_crate_depends_on_no_grpc() {
    let metadata = metadata();
    let packages = metadata["packages"].as_array().cloned().unwrap_or_default();
    let core = packages
        .iter()
        .find(|p| p["name"] == "omnipanel-core")
        .expect("omnipanel-core is a workspace member");
    let mut problems = Vec::new();
    for dependency in core["dependencies"].as_array().into_iter().flatten() {
        let name = dependency["name"].as_str().unwrap_or_default();
        let normal = dependency["kind"].is_null();
        if normal && CORE_FORBIDDEN_DIRECT.contains(&name) {
            problems.push(format!(
                "agent/core/Cargo.toml depends on {name}: the domain knows no gRPC (adapt in agent/src/rpc/)"
            ));
        }
    }
    // Everything reachable from omnipanel-core through normal dependencies.
    let nodes = metadata["resolve"]["nodes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let id_of = |name: &str| {
        packages
            .iter()
            .find(|p| p["name"] == name)
            .and_then(|p| p["id"].as_str())
            .map(str::to_owned)
    };
    let name_of = |id: &str| {
        packages
            .iter()
            .find(|p| p["id"] == id)
            .and_then(|p| p["name"].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let mut pending: Vec<String> = id_of("omnipanel-core").into_iter().collect();
    let mut reached = BTreeSet::new();
    while let Some(id) = pending.pop() {
        if !reached.insert(id.clone()) {
            continue;
        }
        let Some(node) = nodes.iter().find(|n| n["id"] == id.as_str()) else {
            continue;
        };
        for dep in node["deps"].as_array().into_iter().flatten() {
            let normal = dep["dep_kinds"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|k| k["kind"].is_null());
            if normal && let Some(pkg) = dep["pkg"].as_str() {
                pending.push(pkg.to_owned());
            }
        }
    }
    for id in &reached {
        let name = name_of(id);
        if CORE_FORBIDDEN_ANYWHERE.contains(&name.as_str()) {
            problems.push(format!(
                "omnipanel-core reaches {name} through its dependencies (`cargo tree -p omnipanel-core -i {name}` shows how)"
            ));
        }
    }
    fail_with("omnipanel-core depends on no gRPC", &problems);
}

#[test]
fn the_code_map_names_every_crate_and_module() {
    let map = std::fs::read_to_string(workspace().join("ARCHITECTURE.md"))
        .expect("ARCHITECTURE.md is readable");
    let metadata = metadata();
    let root = workspace();
    let mut problems = Vec::new();
    for member in metadata["workspace_members"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let Some(package) = metadata["packages"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["id"] == *member)
        else {
            continue;
        };
        let manifest = PathBuf::from(package["manifest_path"].as_str().unwrap_or_default());
        let dir = manifest.parent().unwrap_or(&root);
        let relative = dir
            .strip_prefix(&root)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = package["name"].as_str().unwrap_or_default();
        if !map.contains(&format!("`{relative}/`")) || !map.contains(&format!("`{name}`")) {
            problems.push(format!(
                "crate {name} ({relative}/): give it a row `{relative}/` naming `{name}` in ARCHITECTURE.md's code map"
            ));
        }
        // Top-level modules: the `mod` lines of each library and program
        // root (test binaries and the test doubles' programs are the
        // tests crate's own business).
        for target in package["targets"].as_array().into_iter().flatten() {
            let kinds: Vec<&str> = target["kind"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|k| k.as_str())
                .collect();
            let src = PathBuf::from(target["src_path"].as_str().unwrap_or_default());
            let is_lib = kinds.contains(&"lib");
            let is_program = kinds.contains(&"bin") && !relative.starts_with("tests");
            if !is_lib && !is_program {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&src) else {
                continue;
            };
            let folder = src.parent().unwrap_or(dir);
            let folder = folder
                .strip_prefix(&root)
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mut path_attribute: Option<String> = None;
            for line in text.lines() {
                let line = line.trim();
                if let Some(path) = line
                    .strip_prefix("#[path = \"")
                    .and_then(|rest| rest.strip_suffix("\"]"))
                {
                    path_attribute = Some(path.to_owned());
                    continue;
                }
                let declared = line
                    .strip_prefix("pub mod ")
                    .or_else(|| line.strip_prefix("mod "))
                    .and_then(|rest| rest.strip_suffix(';'));
                let given_path = path_attribute.take();
                let Some(module) = declared else {
                    continue;
                };
                let (as_file, as_dir) = match given_path {
                    Some(path) => {
                        let full = format!("{folder}/{path}");
                        let dir = full.trim_end_matches("/mod.rs").to_owned() + "/";
                        (full, dir)
                    }
                    None => (
                        format!("{folder}/{module}.rs"),
                        format!("{folder}/{module}/"),
                    ),
                };
                let named = [&as_file, &as_dir]
                    .iter()
                    .any(|p| map.contains(&format!("`{p}`")));
                if !named {
                    problems.push(format!(
                        "module {as_file} (or {as_dir}) is not in ARCHITECTURE.md's code map: add a row with its path in backticks"
                    ));
                }
            }
        }
    }
    problems.sort();
    problems.dedup();
    fail_with("ARCHITECTURE.md's code map is complete", &problems);
}
