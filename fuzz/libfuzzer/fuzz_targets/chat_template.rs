//! libFuzzer entry point of the `chat_template` target (body in fuzz/src/targets.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| temper_fuzz::run_once("chat_template", data));
