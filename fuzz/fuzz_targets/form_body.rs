#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| limen_server::fuzzing::form_body(data));
