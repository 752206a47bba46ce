#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| limen_crypto::fuzzing::jws_token(data));
