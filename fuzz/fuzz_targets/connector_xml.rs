//! The Entra MFA connector's XML answers (Begin/End two-way authentication) through the adapter's quick-xml
//! reader, the result mapping, the session-id check and the `AffinityUrl` handling.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    fctr_entra::fuzzing::parse_connector_answers(data);
});
