//! The adapter's own cost per call: `get_user` through [`OktaAdapter`] against the same GET with a bare reqwest
//! client, both against a local wiremock server answering a canned user.
//!
//! Run with `cargo bench -p fctr-okta --bench overhead`.

// Bench setup panics on purpose; criterion_group! generates an undocumented fn.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use fctr_okta::{OktaAdapter, OktaAuth, OktaConfig};
use fctr_ports::{Directory, SecretString, SubjectId};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn canned_user() -> serde_json::Value {
    json!({
        "id": "00u1bench",
        "status": "ACTIVE",
        "created": "2024-01-02T03:04:05.000Z",
        "statusChanged": "2024-02-01T00:00:00.000Z",
        "lastLogin": "2026-05-01T08:30:00.000Z",
        "passwordChanged": "2025-12-24T10:00:00.000Z",
        "profile": {
            "login": "bench.user@example.com", "email": "bench.user@example.com",
            "firstName": "Bench", "lastName": "User", "mobilePhone": "+1-555-000-0000"
        },
        "credentials": { "provider": { "type": "OKTA", "name": "OKTA" } },
        "_links": { "self": { "href": "https://example.invalid/api/v1/users/00u1bench" } }
    })
}

fn overhead(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(async {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/api/v1/users/00u1bench"))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("x-rate-limit-limit", "600")
                    .insert_header("x-rate-limit-remaining", "599")
                    .insert_header("x-rate-limit-reset", "9999999999")
                    .set_body_json(canned_user()),
            )
            .mount(&server)
            .await;
        server
    });
    let config = OktaConfig::new(
        server.uri().parse().unwrap(),
        OktaAuth::ApiToken(SecretString::from("bench-token")),
    );
    let okta = OktaAdapter::new(config).unwrap();
    let id = SubjectId::parse("00u1bench").unwrap();
    let raw = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!("{}/api/v1/users/00u1bench", server.uri());

    let mut g = c.benchmark_group("get_user");
    g.bench_function("raw_reqwest", |b| {
        b.iter(|| {
            rt.block_on(async {
                let v: serde_json::Value = raw
                    .get(&url)
                    .header("authorization", "SSWS bench-token")
                    .header("accept", "application/json")
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                v
            })
        });
    });
    g.bench_function("okta_adapter", |b| {
        b.iter(|| rt.block_on(okta.get_user(&id)).unwrap());
    });
    g.finish();
}

criterion_group!(benches, overhead);
criterion_main!(benches);
