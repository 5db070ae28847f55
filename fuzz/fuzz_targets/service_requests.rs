//! cargo-fuzz's entry for the target `service_requests`: libFuzzer's inputs go to
//! `omnipanel_fuzz_targets::service_requests::run`, the function the corpus replay test
//! (`fuzz/targets/tests/corpora.rs`) runs on stable.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| omnipanel_fuzz_targets::service_requests::run(data));
