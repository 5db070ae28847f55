//! Starting other programs: the agent and the panel (found next to our own
//! executable, else on `PATH`), and the user's file manager or editor for a
//! project or a file (VS Code at the line, else `xdg-open`). Children are
//! detached into their own process group, so closing the tray does not take
//! them down, and reaped by a small thread so none is left a zombie.

use std::{
    env,
    ffi::OsString,
    os::unix::{fs::PermissionsExt, process::CommandExt},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::atomic::{AtomicBool, Ordering},
};

/// The agent's executable name.
pub const AGENT_BIN: &str = "omnipanel-agent";
/// The panel's executable name.
pub const PANEL_BIN: &str = "omnipanel-panel";
/// Environment variable naming the command that opens a project (the
/// folder is appended), e.g. `code` or `zed`; `xdg-open` when unset.
pub const EDITOR_ENV: &str = "OMNIPANEL_EDITOR";

/// Set when [`disable_gdk_gl`] set `GDK_GL` (children do not inherit it).
static GDK_GL_SET_BY_US: AtomicBool = AtomicBool::new(false);

/// Keep GDK from opening GLX at start. The tray draws nothing with GL, but
/// GDK's X11 backend probes GLX visuals in `gtk::init`, which maps the GL
/// driver (about 45 MB with Mesa's llvmpipe). A `GDK_GL` the user set wins.
/// Must run before any thread starts (it changes the environment).
pub fn disable_gdk_gl() {
    if env::var_os("GDK_GL").is_some() {
        return;
    }
    // Changing the environment is unsafe once other threads may read it;
    // callers run this first thing in `main`, while the process has one
    // thread.
    #[allow(unsafe_code)]
    // SAFETY: single-threaded at this point (see above).
    unsafe {
        env::set_var("GDK_GL", "disable");
    }
    GDK_GL_SET_BY_US.store(true, Ordering::Relaxed);
}

/// Where `name` is: beside the running executable, else on `PATH`.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let beside = env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(name)));
    beside
        .filter(|p| is_executable(p))
        .or_else(|| find_on_path(name, env::var_os("PATH")))
}

/// `name` on the given `PATH` value.
pub fn find_on_path(name: &str, path: Option<OsString>) -> Option<PathBuf> {
    env::split_paths(&path?)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Start `program` with `args`, detached; returns its pid.
pub fn spawn_detached(program: &Path, args: &[OsString]) -> Result<u32, String> {
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    if GDK_GL_SET_BY_US.load(Ordering::Relaxed) {
        command.env_remove("GDK_GL");
    }
    let mut child = command
        .spawn()
        .map_err(|err| format!("cannot start {}: {err}", program.display()))?;
    let pid = child.id();
    let label = program.display().to_string();
    // Reap it whenever it ends; the thread sleeps in waitpid meanwhile.
    let reaper = std::thread::Builder::new()
        .name("reap-child".into())
        .spawn(move || match child.wait() {
            Ok(status) => tracing::debug!("{label} (pid {pid}) ended: {status}"),
            Err(err) => tracing::debug!("waiting for {label}: {err}"),
        });
    if let Err(err) = reaper {
        tracing::warn!("cannot start a thread to reap pid {pid}: {err}");
    }
    Ok(pid)
}

/// Start the agent.
pub fn start_agent() -> Result<u32, String> {
    let program = find_program(AGENT_BIN).ok_or_else(|| {
        format!("{AGENT_BIN} was found neither next to this program nor on PATH; install OmniPanel")
    })?;
    tracing::info!("starting {}", program.display());
    spawn_detached(&program, &["--quiet".into()])
}

/// Start the panel (it focuses an already open one itself).
pub fn open_panel(extra_args: &[OsString]) -> Result<u32, String> {
    let program = find_program(PANEL_BIN).ok_or_else(|| {
        format!("{PANEL_BIN} was found neither next to this program nor on PATH; install OmniPanel")
    })?;
    spawn_detached(&program, extra_args)
}

/// The command that opens `path`: `$OMNIPANEL_EDITOR path` (split on
/// whitespace) or `xdg-open path`.
pub fn opener(editor: Option<&str>, path: &str) -> (String, Vec<String>) {
    let mut words = editor
        .map(str::split_whitespace)
        .into_iter()
        .flatten()
        .map(str::to_owned);
    match words.next() {
        Some(program) => {
            let mut args: Vec<String> = words.collect();
            args.push(path.to_owned());
            (program, args)
        }
        None => ("xdg-open".to_owned(), vec![path.to_owned()]),
    }
}

/// Open a project folder in the configured editor or the file manager.
pub fn open_path(path: &str) -> Result<u32, String> {
    let editor = env::var(EDITOR_ENV).ok();
    let (program, args) = opener(editor.as_deref(), path);
    let resolved = if program.contains('/') {
        Some(PathBuf::from(&program))
    } else {
        find_on_path(&program, env::var_os("PATH"))
    }
    .ok_or_else(|| format!("{program} is not installed (set {EDITOR_ENV} to your editor)"))?;
    let args: Vec<OsString> = args.into_iter().map(OsString::from).collect();
    spawn_detached(&resolved, &args)
}

/// The command that opens `file` at `line`: `$OMNIPANEL_EDITOR file`
/// when set, else `code --goto file:line` when VS Code is installed, else
/// `xdg-open file` (which knows no line).
pub fn editor_command(
    editor: Option<&str>,
    code: Option<PathBuf>,
    file: &Path,
    line: Option<u64>,
) -> (String, Vec<String>) {
    let shown = file.display().to_string();
    if editor.is_some_and(|e| !e.trim().is_empty()) {
        return opener(editor, &shown);
    }
    match code {
        Some(code) => {
            let at = line.map_or(shown.clone(), |l| format!("{shown}:{l}"));
            (code.display().to_string(), vec!["--goto".to_owned(), at])
        }
        None => opener(None, &shown),
    }
}

/// Open a file in the user's editor, at a line when known. Blocks for the
/// fork and exec: call it off the UI thread and off the async executor.
pub fn open_in_editor(file: &Path, line: Option<u64>) -> Result<u32, String> {
    let editor = env::var(EDITOR_ENV).ok();
    let code = find_on_path("code", env::var_os("PATH"));
    let (program, args) = editor_command(editor.as_deref(), code, file, line);
    let resolved = if program.contains('/') {
        Some(PathBuf::from(&program))
    } else {
        find_on_path(&program, env::var_os("PATH"))
    }
    .ok_or_else(|| {
        format!("{program} is not installed: install VS Code or xdg-utils, or set {EDITOR_ENV}")
    })?;
    let args: Vec<OsString> = args.into_iter().map(OsString::from).collect();
    spawn_detached(&resolved, &args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opener_uses_editor_words_or_xdg_open() {
        assert_eq!(
            opener(None, "/p"),
            ("xdg-open".to_owned(), vec!["/p".to_owned()])
        );
        assert_eq!(
            opener(Some("code --new-window"), "/p q"),
            (
                "code".to_owned(),
                vec!["--new-window".to_owned(), "/p q".to_owned()]
            )
        );
        assert_eq!(opener(Some("  "), "/p").0, "xdg-open");
    }

    #[test]
    fn files_open_in_code_at_the_line_else_xdg_open() {
        let file = Path::new("/p/src/main.rs");
        let code = Some(PathBuf::from("/usr/bin/code"));
        assert_eq!(
            editor_command(None, code.clone(), file, Some(7)),
            (
                "/usr/bin/code".to_owned(),
                vec!["--goto".to_owned(), "/p/src/main.rs:7".to_owned()]
            )
        );
        assert_eq!(
            editor_command(None, None, file, Some(7)),
            ("xdg-open".to_owned(), vec!["/p/src/main.rs".to_owned()])
        );
        assert_eq!(
            editor_command(Some("zed"), code, file, None),
            ("zed".to_owned(), vec!["/p/src/main.rs".to_owned()])
        );
    }

    #[test]
    fn finds_executables_on_a_path() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("tool");
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        assert_eq!(find_on_path("tool", Some(dir.path().into())), None);
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find_on_path("tool", Some(dir.path().into())), Some(exe));
        assert_eq!(find_on_path("tool", None), None);
    }
}
