#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| keyval::fuzzing::wal_segment(data));
