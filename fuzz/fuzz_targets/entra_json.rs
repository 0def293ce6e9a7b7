//! Microsoft Graph answers: users and user pages, authentication methods, memberOf pages, `@odata.nextLink`,
//! Temporary Access Passes, token endpoint and error bodies, `Retry-After`, decoded and converted as the adapter
//! does.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    fctr_entra::fuzzing::parse_graph_responses(data);
});
