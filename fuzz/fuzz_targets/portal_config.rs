//! The portal's configuration parser and the edge settings derived from it: errors, never panics.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(c) = fctr_portal::config::Config::parse(text, std::path::Path::new("fuzz.toml")) {
            let _ = c.edge_settings();
            let _ = c.check_transport();
        }
    }
});
