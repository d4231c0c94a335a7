#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| keyval::internals::fuzzing::snapshot_file(data));
