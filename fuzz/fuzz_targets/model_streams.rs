//! cargo-fuzz's entry for the target `model_streams`: libFuzzer's inputs go to
//! `omnipanel_fuzz_targets::model_streams::run`, the function the corpus replay test
//! (`fuzz/targets/tests/corpora.rs`) runs on stable.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| omnipanel_fuzz_targets::model_streams::run(data));
