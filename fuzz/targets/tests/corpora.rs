//! Replays every committed fuzz input through its target on stable: the
//! seed corpora and what long runs kept (`fuzz/corpus/TARGET/`) and the
//! inputs of crashes found and fixed (`fuzz/regressions/TARGET/`). A
//! failure names the file; run it alone with `cargo test -p
//! omnipanel-fuzz-targets --test corpora -- --nocapture` or under the
//! fuzzer with `cargo +nightly fuzz run TARGET FILE` (in `fuzz/`).

use std::path::{Path, PathBuf};

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| !n.starts_with('.') && n != "README.md")
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn every_committed_input_keeps_its_targets_invariants() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut failures = Vec::new();
    let mut count = 0;
    for (name, run) in omnipanel_fuzz_targets::TARGETS {
        let corpus = inputs(&fuzz.join("corpus").join(name));
        assert!(
            !corpus.is_empty(),
            "fuzz/corpus/{name}/ has no seeds: commit a few meaningful inputs"
        );
        let regressions = inputs(&fuzz.join("regressions").join(name));
        for file in corpus.iter().chain(&regressions) {
            let data = std::fs::read(file).expect("a corpus file is readable");
            count += 1;
            if std::panic::catch_unwind(|| run(&data)).is_err() {
                failures.push(file.display().to_string());
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} fuzz inputs break their target's invariants:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_target_has_a_cargo_fuzz_entry() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let manifest = std::fs::read_to_string(fuzz.join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for (name, _) in omnipanel_fuzz_targets::TARGETS {
        let entry = fuzz.join("fuzz_targets").join(format!("{name}.rs"));
        let text = std::fs::read_to_string(&entry).unwrap_or_default();
        assert!(
            text.contains(&format!("omnipanel_fuzz_targets::{name}::run")),
            "{}: call omnipanel_fuzz_targets::{name}::run",
            entry.display()
        );
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml has no [[bin]] named {name}"
        );
    }
}
