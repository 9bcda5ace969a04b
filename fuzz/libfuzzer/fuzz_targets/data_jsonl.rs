//! libFuzzer entry point of the `data_jsonl` target (body in fuzz/src/targets.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| temper_fuzz::run_once("data_jsonl", data));
