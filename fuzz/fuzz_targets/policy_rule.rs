#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| limen_policy::fuzzing::policy_rule(data));
