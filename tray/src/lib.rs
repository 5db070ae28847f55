//! OmniPanel's tray icon and popup panel, both plain clients of the agent,
//! in three layers whose dependencies point one way: [`core`] (the state
//! mirror, the backend that speaks gRPC on tokio, the pure view models and
//! icon, starting programs, one panel at a time) knows no toolkit; [`tray`]
//! (the GTK tray icon and its menu) and [`panel`] (the winit + glow + egui
//! window) each build on `core` and never on each other. [`program`] is
//! the executable's entry: the tray or the panel, chosen by name.

pub mod core;
pub mod panel;
pub mod program;
pub mod tray;

/// Log to stderr, at `info` unless `OMNIPANEL_LOG` says otherwise.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("OMNIPANEL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    /// Every `.rs` file under `dir`, with its text.
    fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
        let mut files = Vec::new();
        let mut pending = vec![dir.to_path_buf()];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).expect("src/ is readable").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    pending.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).expect("a source is readable");
                    files.push((path, text));
                }
            }
        }
        files
    }

    /// Whether `line` names the module `layer` of this crate: as a path
    /// (`crate::tray`) or as a member of a `use crate::{..}` group.
    fn names_layer(line: &str, layer: &str) -> bool {
        let member = format!("{layer}::");
        line.contains(&format!("crate::{layer}"))
            || line.trim_start().starts_with(&member)
            || line.contains(&format!("{{{member}"))
            || line.contains(&format!(", {member}"))
    }

    /// The layers' dependencies point one way: `core` knows neither the
    /// tray, the panel nor any toolkit; the tray and the panel use `core`
    /// and never each other (what both need belongs in `core`).
    #[test]
    fn the_layers_depend_one_way() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let toolkits = [
            "gtk::",
            "tray_icon::",
            "winit::",
            "egui",
            "glutin",
            "glow::",
            "x11rb::",
        ];
        let rules = [
            ("core", &["tray", "panel"][..], &toolkits[..]),
            ("tray", &["panel"][..], &[][..]),
            ("panel", &["tray"][..], &[][..]),
        ];
        let mut problems = Vec::new();
        for (layer, layers, words) in rules {
            let files = sources(&src.join(layer));
            assert!(!files.is_empty(), "src/{layer}/ has no sources");
            for (path, text) in files {
                for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
                    for other in layers.iter().filter(|o| names_layer(line, o)) {
                        problems.push(format!("{}: uses `{other}`", path.display()));
                    }
                    for word in words.iter().filter(|w| line.contains(*w)) {
                        problems.push(format!("{}: names `{word}`", path.display()));
                    }
                }
            }
        }
        assert!(
            problems.is_empty(),
            "a layer reaches where it must not:\n  {}",
            problems.join("\n  ")
        );
    }
}
