//! cargo-fuzz's entry for the target `git_index`: libFuzzer's inputs go to
//! `omnipanel_fuzz_targets::git_index::run`, the function the corpus replay test
//! (`fuzz/targets/tests/corpora.rs`) runs on stable.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| omnipanel_fuzz_targets::git_index::run(data));
