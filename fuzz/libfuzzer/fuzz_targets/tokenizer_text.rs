//! libFuzzer entry point of the `tokenizer_text` target (body in fuzz/src/targets.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| temper_fuzz::run_once("tokenizer_text", data));
