//! The policy file parser: any text gives a policy or an error, never a panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(p) = fctr_core::policy::Policy::parse(text) {
            // A parsed policy answers questions without panicking.
            let _ = p.limits();
        }
    }
});
