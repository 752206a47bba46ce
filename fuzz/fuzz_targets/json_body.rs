#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| limen_proto::fuzzing::json_body(data));
