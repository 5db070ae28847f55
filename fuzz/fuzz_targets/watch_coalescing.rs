//! cargo-fuzz's entry for the target `watch_coalescing`: libFuzzer's inputs go to
//! `omnipanel_fuzz_targets::watch_coalescing::run`, the function the corpus replay test
//! (`fuzz/targets/tests/corpora.rs`) runs on stable.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| omnipanel_fuzz_targets::watch_coalescing::run(data));
