//! The bodies of OmniPanel's fuzz targets, one module per target, each a
//! plain `run(&[u8])` that panics when an invariant breaks. cargo-fuzz's
//! crate (`fuzz/`, nightly, libFuzzer) calls them from one thin
//! `fuzz_target!` each; `tests/corpora.rs` replays every committed input
//! (`fuzz/corpus/TARGET/`, `fuzz/regressions/TARGET/`) through the same
//! functions on stable, so CI checks them without a nightly build.
//!
//! Each module's `//!` paragraph gives its input format (most are text, so
//! seeds can be read and written by hand) and the invariants it asserts
//! beyond "no panic".

pub mod config_edit;
pub mod git_index;
pub mod model_streams;
pub mod path_sandbox;
pub mod service_requests;
pub mod update_manifest;
pub mod watch_coalescing;

/// A target's body: runs one input, panics when an invariant breaks.
pub type Target = fn(&[u8]);

/// Every target by the name its corpus folder and cargo-fuzz binary have.
pub const TARGETS: &[(&str, Target)] = &[
    ("config_edit", config_edit::run),
    ("git_index", git_index::run),
    ("model_streams", model_streams::run),
    ("path_sandbox", path_sandbox::run),
    ("service_requests", service_requests::run),
    ("update_manifest", update_manifest::run),
    ("watch_coalescing", watch_coalescing::run),
];

/// The input as text: fuzzers mostly write UTF-8 when the seeds and the
/// dictionary are, and the APIs under test take `&str` (as the gRPC layer
/// hands them strings), so invalid bytes become U+FFFD rather than
/// ending the run early.
pub(crate) fn text(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(data)
}
