//! cargo-fuzz's entry for the target `path_sandbox`: libFuzzer's inputs go to
//! `omnipanel_fuzz_targets::path_sandbox::run`, the function the corpus replay test
//! (`fuzz/targets/tests/corpora.rs`) runs on stable.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| omnipanel_fuzz_targets::path_sandbox::run(data));
