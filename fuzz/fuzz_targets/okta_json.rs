//! Okta answers: users, factors, groups, push/poll/code results, lifecycle secrets, token and error bodies, and
//! the `Link`/rate-limit/`Retry-After`/`WWW-Authenticate` headers, decoded and converted as the adapter does.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    fctr_okta::fuzzing::parse_okta_responses(data);
});
