#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| keyval::internals::fuzzing::ops_with_crash(data));
