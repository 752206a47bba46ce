#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| limen_core::fuzzing::kube_rules(data));
