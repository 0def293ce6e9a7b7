//! The API keeps its OpenAPI document: every error is the JSON envelope and never repeats the input, the
//! document has the security schemes, every status each operation answers, the id patterns and the enums.

use crate::api::{call, id_token};
use crate::helpers::*;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};

/// Planted in every malformed request; must never come back.
const MARK: &str = "PlantedMarker";

/// Every API operation: method and path with `{id}` / `{action}` placeholders.
const OPERATIONS: [(&str, &str); 13] = [
    ("POST", "/api/v1/users/search"),
    ("GET", "/api/v1/users/{id}"),
    ("GET", "/api/v1/users/{id}/explain/{action}"),
    ("POST", "/api/v1/users/{id}/verifications"),
    ("GET", "/api/v1/verifications/{vid}"),
    ("POST", "/api/v1/verifications/{vid}/continue"),
    ("POST", "/api/v1/verifications/{vid}/code"),
    ("POST", "/api/v1/users/{id}/actions/{action}"),
    ("POST", "/api/v1/users/{id}/actions/remove_factor"),
    ("GET", "/api/v1/audit/out-of-band"),
    ("GET", "/api/v1/approvals"),
    ("POST", "/api/v1/approvals/{vid}/approve"),
    ("POST", "/api/v1/approvals/{vid}/refuse"),
];

struct Probe {
    method: String,
    path: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    bearer: bool,
}

fn fill(path: &str, id: &str, vid: &str, action: &str) -> String {
    path.replace("{id}", id)
        .replace("{vid}", vid)
        .replace("{action}", action)
}

/// Malformed requests for one operation, each carrying [`MARK`] somewhere.
fn probes(method: &str, path: &str, alice: &str, vid: &str) -> Vec<Probe> {
    let good = fill(path, alice, vid, "unlock");
    let json = Some("application/json");
    let mut bodies: Vec<(Option<&'static str>, Vec<u8>)> = vec![
        (
            Some("text/plain"),
            format!("{{\"query\": \"{MARK}\"}}").into_bytes(),
        ),
        (None, format!("{{\"code\": \"{MARK}\"}}").into_bytes()),
        (
            Some("application/x-www-form-urlencoded"),
            format!("query={MARK}").into_bytes(),
        ),
        (json, format!("{{\"query\": \"{MARK}").into_bytes()),
        (json, MARK.as_bytes().to_vec()),
        (json, format!("[\"{MARK}\"]").into_bytes()),
        (json, format!("\"{MARK}\"").into_bytes()),
        (json, format!("{{\"{MARK}\": \"{MARK}\"}}").into_bytes()),
        (
            json,
            format!("{{\"query\": [\"{MARK}\"], \"code\": {{\"{MARK}\": 1}}}}").into_bytes(),
        ),
        (
            json,
            format!("{{\"factor_id\": 12345, \"{MARK}\": 1}}").into_bytes(),
        ),
        (
            json,
            format!("{{\"query\": \"{MARK}\\u0001\"}}").into_bytes(),
        ),
        (
            json,
            format!("{{\"query\": \"{MARK}{}\"}}", "x".repeat(200)).into_bytes(),
        ),
        (json, format!("{{\"code\": \"{MARK}12\"}}").into_bytes()),
        (
            json,
            format!("{{\"code\": \"12 34 56 \\t{MARK}\"}}").into_bytes(),
        ),
        (json, format!("{{\"factor_id\": \"{MARK}!\"}}").into_bytes()),
        (json, format!("{{\"factor_id\": \"{MARK}\"}}").into_bytes()),
        (
            json,
            format!("{{\"query\": \"{MARK}{}\"}}", "y".repeat(70 * 1024)).into_bytes(),
        ),
        (json, b"{\"query\": \"\xff\xfePlantedMarker\"}".to_vec()),
    ];
    let mut out = Vec::new();
    for (ct, body) in bodies.drain(..) {
        for bearer in [true, false] {
            out.push(Probe {
                method: method.to_owned(),
                path: good.clone(),
                content_type: ct,
                body: body.clone(),
                bearer,
            });
        }
    }
    let long = format!("{MARK}{}", "z".repeat(200));
    for (id, v, action) in [
        (format!("{MARK}!"), MARK.to_owned(), MARK.to_owned()),
        (
            format!("{MARK}%00"),
            format!("{MARK}%20x"),
            format!("{MARK}%2F"),
        ),
        (long.clone(), long.clone(), long),
        (
            format!("{MARK}%E2%80%AE"),
            format!("{MARK}-0000-0000"),
            "Unlock".to_owned(),
        ),
    ] {
        out.push(Probe {
            method: method.to_owned(),
            path: fill(path, &id, &v, &action),
            content_type: None,
            body: Vec::new(),
            bearer: true,
        });
    }
    for m in ["PUT", "DELETE", "PATCH", "OPTIONS"] {
        out.push(Probe {
            method: m.to_owned(),
            path: good.clone(),
            content_type: json,
            body: format!("{{\"{MARK}\": 1}}").into_bytes(),
            bearer: true,
        });
    }
    out
}

fn assert_envelope(what: &str, r: &Resp) {
    assert!(
        !r.body.contains(MARK),
        "{what}: the marker came back: {}",
        r.body
    );
    if r.status.is_client_error() || r.status.is_server_error() {
        assert_eq!(
            r.header("content-type"),
            Some("application/json"),
            "{what}: {} {}",
            r.status,
            r.body
        );
        let v: Value = serde_json::from_str(&r.body)
            .unwrap_or_else(|_| panic!("{what}: {} not JSON: {}", r.status, r.body));
        let code = v["error"]["code"].as_str().unwrap_or_default();
        assert!(
            !code.is_empty() && code.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "{what}: no stable code: {v}"
        );
        assert!(v["error"]["message"].is_string(), "{what}: {v}");
        assert!(
            v["error"].as_object().unwrap().len() == 3,
            "{what}: only code, message, retry_after: {v}"
        );
    }
}

#[tokio::test]
async fn no_error_repeats_the_input_and_every_error_is_the_envelope() {
    // One agent sends hundreds of requests here: the per-agent API quota raised so they reach the handlers.
    let t = start_with(|o| o.edge.api_per_agent_per_minute = 100_000).await;
    let tok = id_token(&t, "agent3").await;
    let alice = t.demo.fake.fixtures().id_of("alice");
    // A real verification, so the verification operations get past "not found".
    let (s, v, _) = call(
        &t,
        "POST",
        &format!("/api/v1/users/{alice}/verifications"),
        Some(&tok),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let vid = v["id"].as_str().unwrap().to_owned();
    let mut statuses = std::collections::BTreeSet::new();
    let mut sent = 0;
    for (method, path) in OPERATIONS {
        for p in probes(method, path, &alice, &vid) {
            let mut req = Request::builder().method(p.method.as_str()).uri(&p.path);
            if p.bearer {
                req = req.header("authorization", format!("Bearer {tok}"));
            }
            if let Some(ct) = p.content_type {
                req = req.header("content-type", ct);
            }
            let r = t.send(req.body(Body::from(p.body)).unwrap()).await;
            let what = format!(
                "{} {} (bearer: {}, {:?})",
                p.method, p.path, p.bearer, p.content_type
            );
            assert_envelope(&what, &r);
            assert!(
                !r.status.is_server_error(),
                "{what}: {} {}",
                r.status,
                r.body
            );
            statuses.insert(r.status.as_u16());
            sent += 1;
        }
    }
    for (path, method) in [
        (format!("/api/v1/{MARK}"), "GET"),
        (format!("/api/v1/{MARK}/x"), "POST"),
        (format!("/api/{MARK}"), "GET"),
        (format!("/api/v2/users/{MARK}"), "DELETE"),
        (format!("/api/v1/users/search?{MARK}=1"), "GET"),
    ] {
        let r = t
            .send(
                Request::builder()
                    .method(method)
                    .uri(&path)
                    .header("authorization", format!("Bearer {tok}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_envelope(&format!("{method} {path}"), &r);
        statuses.insert(r.status.as_u16());
    }
    // The probes reached every kind of refusal (a change that stops one from happening shows here).
    for s in [400, 401, 404, 405, 413, 415, 422] {
        assert!(statuses.contains(&s), "no probe answered {s}: {statuses:?}");
    }
    assert!(sent > 300, "{sent}");
    // None of it started anything.
    assert!(
        t.demo.fake.phones().pending().len() <= 1,
        "only the one verification above"
    );
}

#[tokio::test]
async fn a_json_array_or_unknown_field_is_refused_and_starts_nothing() {
    let t = start().await;
    let tok = id_token(&t, "agent2").await;
    let alice = t.demo.fake.fixtures().id_of("alice");
    let path = format!("/api/v1/users/{alice}/verifications");
    let (_, card, _) = call(
        &t,
        "GET",
        &format!("/api/v1/users/{alice}"),
        Some(&tok),
        None,
    )
    .await;
    let push = card["recommended_factor"].as_str().unwrap().to_owned();
    for body in [
        json!([push]),
        json!({"factor_id": push, "factorId": push}),
        json!({"factor_id": [push]}),
        json!(push),
    ] {
        let (s, v, r) = call(&t, "POST", &path, Some(&tok), Some(body.clone())).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
        assert_eq!(v["error"]["code"], "invalid_body");
        assert!(!r.body.contains(&push), "{}", r.body);
    }
    assert!(t.demo.fake.phones().pending().is_empty());
    // The same factor in the documented shape works.
    let (s, v, _) = call(
        &t,
        "POST",
        &path,
        Some(&tok),
        Some(json!({"factor_id": push})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}

#[tokio::test]
async fn framework_errors_on_api_paths_are_the_envelope() {
    let t = start().await;
    let tok = id_token(&t, "agent2").await;
    let alice = t.demo.fake.fixtures().id_of("alice");
    let send = |method: &str, path: String, ct: Option<&str>, body: Vec<u8>| {
        let mut r = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {tok}"));
        if let Some(ct) = ct {
            r = r.header("content-type", ct);
        }
        r.body(Body::from(body)).unwrap()
    };
    // 405 keeps its Allow header.
    let r = t
        .send(send(
            "DELETE",
            format!("/api/v1/users/{alice}"),
            None,
            vec![],
        ))
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.header("allow"), Some("GET,HEAD"));
    assert!(r.body.contains("\"method_not_allowed\""), "{}", r.body);
    // 413 from the body-limit layer (declared length over the limit).
    let big = vec![b' '; 65 * 1024];
    let r = t
        .send(send(
            "POST",
            "/api/v1/users/search".into(),
            Some("application/json"),
            big,
        ))
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.body.contains("\"body_too_large\""), "{}", r.body);
    // 415, 400, 422 from the body extractor.
    for (ct, body, status, code) in [
        (Some("text/plain"), "{}", 415, "unsupported_media_type"),
        (None, "{}", 415, "unsupported_media_type"),
        (Some("application/json"), "{", 400, "malformed_json"),
        (Some("application/json"), "", 400, "malformed_json"),
        (
            Some("application/json"),
            "{\"query\": 12345}",
            422,
            "invalid_body",
        ),
        (Some("application/json"), "{}", 422, "invalid_body"),
    ] {
        let r = t
            .send(send(
                "POST",
                "/api/v1/users/search".into(),
                ct,
                body.as_bytes().to_vec(),
            ))
            .await;
        assert_eq!(r.status.as_u16(), status, "{ct:?} {body}: {}", r.body);
        assert!(r.body.contains(code), "{}", r.body);
        assert!(!r.body.contains("12345") && !r.body.contains("invalid type"));
    }
    // Pages outside /api keep their own error pages.
    let r = t
        .send(Request::get("/no-such-page").body(Body::empty()).unwrap())
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
}

/// The statuses each operation must document (beyond its success), by what it takes.
fn expected_errors(method: &str, path: &str) -> Vec<u16> {
    let mut s = vec![401, 403, 408, 429, 502, 503];
    if path.contains("/users/{id}") {
        s.extend([400, 404]);
    }
    if path.contains("/verifications/{id}") {
        s.push(404);
    }
    if method == "post" {
        s.extend([400, 413, 415, 422]);
    }
    s.sort_unstable();
    s.dedup();
    s
}

#[tokio::test]
async fn the_openapi_document_is_the_contract() {
    let t = start().await;
    let (s, doc, r) = call(&t, "GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["type"], "http");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["bearer"]["bearerFormat"], "JWT");
    assert_eq!(schemes["session"]["type"], "apiKey");
    assert_eq!(schemes["session"]["in"], "cookie");
    assert_eq!(doc["security"], json!([{"bearer": []}, {"session": []}]));

    let paths = doc["paths"].as_object().unwrap();
    let mut ops = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            ops += 1;
            let what = format!("{method} {path}");
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|k| k.starts_with('2')),
                "{what}: no success"
            );
            for status in expected_errors(method, path) {
                let r = &responses
                    .get(&status.to_string())
                    .unwrap_or_else(|| panic!("{what}: {status} not documented"));
                assert_eq!(
                    r["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{what} {status}"
                );
            }
            assert!(responses["401"]["headers"]["WWW-Authenticate"].is_object());
            assert!(responses["429"]["headers"]["Retry-After"].is_object());
            // Parameters are constrained.
            for p in op["parameters"].as_array().into_iter().flatten() {
                let schema = resolve(&doc, &p["schema"]);
                let name = p["name"].as_str().unwrap();
                assert!(
                    schema["pattern"].is_string() || schema["enum"].is_array(),
                    "{what}: parameter {name} unconstrained: {schema}"
                );
                // Path parameters are required; a query parameter may be optional (its default documented).
                if p["in"] == "path" {
                    assert_eq!(p["required"], true, "{what} {name}");
                }
            }
            // Every documented operation is served: without credentials it is refused as unauthenticated, not
            // unknown.
            let concrete = path
                .replace("/users/{id}", "/users/00ualice000000000000")
                .replace(
                    "/verifications/{id}",
                    "/verifications/00000000-0000-4000-8000-000000000000",
                )
                .replace("{action}", "unlock");
            let (s, v, _) = call(&t, &method.to_uppercase(), &concrete, None, None).await;
            assert_eq!(s, StatusCode::UNAUTHORIZED, "{what} as {concrete}: {v}");
        }
    }
    assert_eq!(ops, OPERATIONS.len(), "every operation is documented");

    // Links lead from responses to operations that exist, with parameters those operations have.
    let ids: std::collections::BTreeMap<&str, &Value> = paths
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .map(|op| (op["operationId"].as_str().unwrap(), op))
        .collect();
    let mut links = 0;
    for op in ids.values() {
        for r in op["responses"].as_object().unwrap().values() {
            for l in r["links"].as_object().into_iter().flat_map(|m| m.values()) {
                let target = ids
                    .get(l["operationId"].as_str().unwrap())
                    .unwrap_or_else(|| panic!("link to an unknown operation: {l}"));
                for p in l["parameters"].as_object().unwrap().keys() {
                    assert!(
                        target["parameters"]
                            .as_array()
                            .is_some_and(|ps| ps.iter().any(|x| x["name"] == p.as_str())),
                        "{l}: no parameter {p}"
                    );
                }
                links += 1;
            }
        }
    }
    assert!(links >= 10, "{links} links");
    assert_eq!(
        doc["paths"]["/api/v1/users/search"]["post"]["responses"]["200"]["links"]["lookup"]["parameters"]
            ["id"],
        "$response.body#/0/id"
    );

    // Request bodies refuse unknown fields, as the server does.
    let schemas = &doc["components"]["schemas"];
    for name in [
        "SearchRequest",
        "FactorRequest",
        "CodeRequest",
        "RemoveFactorRequest",
    ] {
        assert_eq!(
            schemas[name]["additionalProperties"], false,
            "{name}: {}",
            schemas[name]
        );
    }
    assert_eq!(
        schemas["SearchRequest"]["required"],
        json!(["query"]),
        "query is required"
    );
    assert!(schemas["CodeRequest"]["properties"]["code"]["pattern"].is_string());
    // Actions are the engine's, as an enum; the generic operation leaves remove_factor to its own.
    let all: Vec<&str> = fctr_ports::ActionKind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect();
    let action = doc["paths"]["/api/v1/users/{id}/actions/{action}"]["post"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "action")
        .unwrap()
        .clone();
    let action = resolve(&doc, &action["schema"]);
    let listed: Vec<&str> = action["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let want: Vec<&str> = all
        .iter()
        .copied()
        .filter(|a| *a != "remove_factor")
        .collect();
    assert_eq!(listed, want);
    let action_name = resolve(&doc, &json!({"$ref": "#/components/schemas/ActionName"}));
    assert_eq!(
        action_name["enum"].as_array().map(Vec::len),
        Some(all.len())
    );
    // The error envelope: code, message, retry_after.
    let detail = resolve(&doc, &schemas["ErrorBody"]["properties"]["error"]);
    for f in ["code", "message", "retry_after"] {
        assert!(detail["properties"][f].is_object(), "{detail}");
    }
}

/// Follows a local `$ref`.
fn resolve(doc: &Value, schema: &Value) -> Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let name = r.trim_start_matches("#/components/schemas/");
            resolve(doc, &doc["components"]["schemas"][name])
        }
        None => schema.clone(),
    }
}
