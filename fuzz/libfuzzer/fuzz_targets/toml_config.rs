//! libFuzzer entry point of the `toml_config` target (body in fuzz/src/targets.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| temper_fuzz::run_once("toml_config", data));
