//! cargo-fuzz's entry for the target `config_edit`: libFuzzer's inputs go to
//! `omnipanel_fuzz_targets::config_edit::run`, the function the corpus replay test
//! (`fuzz/targets/tests/corpora.rs`) runs on stable.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| omnipanel_fuzz_targets::config_edit::run(data));
