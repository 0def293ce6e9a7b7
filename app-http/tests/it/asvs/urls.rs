//! ASVS at the portal: sensitive data in URLs, and the request id a client chooses.

use super::*;

/// Every URL a response points to: `Location`, `href`, `src`, `action` and `data-*` attributes (also inside the
/// JSON of server-sent events, where quotes are escaped), and JSON string values that look like links.
fn urls_in(r: &Resp) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(l) = r.header("location") {
        out.push(l.to_owned());
    }
    let body = r.body.replace("\\\"", "\"").replace("&amp;", "&");
    for attr in [
        "href=\"",
        "src=\"",
        "action=\"",
        "-url=\"",
        "content=\"0; url=",
    ] {
        let mut rest = body.as_str();
        while let Some(i) = rest.find(attr) {
            rest = &rest[i + attr.len()..];
            if let Some(j) = rest.find('"') {
                out.push(rest[..j].to_owned());
            }
        }
    }
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&r.body) {
        fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
            match v {
                serde_json::Value::String(s) if s.starts_with('/') || s.starts_with("http") => {
                    out.push(s.clone());
                }
                serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
                serde_json::Value::Object(m) => m.values().for_each(|x| walk(x, out)),
                _ => {}
            }
        }
        walk(&v, &mut out);
    }
    out
}

/// 14.2.1: a full flow (sign in, search, card, push, TOTP, action, audit view, the API, sign out) records every
/// URL requested and every URL found in a response. None carries a caller's login, e-mail, name or IdP id, a
/// factor id, a TOTP code, a one-time secret, a session id, a CSRF token or a token; the only query strings
/// with one-time values are the OIDC ones (the authorize request's `state`/`nonce`/PKCE challenge and the
/// callback's `code` and `state`). The API addresses a caller by IdP id in its path (documented in `docs/api`),
/// never in a query string.
#[tokio::test]
async fn no_url_of_a_full_flow_carries_pii_a_code_or_a_token() {
    let t = start().await;
    let fx = t.demo.fake.fixtures();
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut record = |what: &str, r: &Resp, requested: &str| {
        seen.push((format!("{what} (requested)"), requested.to_owned()));
        for u in urls_in(r) {
            seen.push((format!("{what} (in response)"), u));
        }
    };

    // Sign in: the authorize redirect, the IdP's answer, the callback and the page it serves.
    let mut b = Browser::default();
    let r = t.get(&mut b, "/").await;
    record("home", &r, "/");
    let r = t.get(&mut b, "/auth/login?return_to=%2Fsearch").await;
    record("login", &r, "/auth/login?return_to=%2Fsearch");
    let cb = t.idp_round_trip(&mut b, "agent3").await;
    let r = t.get(&mut b, &cb).await;
    assert_eq!(r.status, StatusCode::OK);
    record("callback", &r, &cb);
    let r = t.get(&mut b, "/search").await;
    record("search page", &r, "/search");
    b.csrf = between(&r.body, "name=\"csrf\" value=\"", "\"")
        .unwrap()
        .to_owned();
    let csrf = b.csrf.clone();

    // Search, card, push (approved), the verification page and its event stream.
    let r = t
        .post(
            &mut b,
            "/search",
            &[("csrf", &csrf), ("q", "alice@example.com")],
        )
        .await;
    record("search", &r, "/search");
    let (card, v) = t.verified(&mut b, "alice").await;
    let r = t.get(&mut b, &card).await;
    record("card", &r, &card);
    let r = t.get(&mut b, &v).await;
    record("verification", &r, &v);
    let events = format!("{v}/events");
    let resp = t
        .oneshot(
            Request::get(events.as_str())
                .header("cookie", b.cookie_header())
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let mut body = resp.into_body();
    let chunk = tokio::time::timeout(
        Duration::from_secs(5),
        http_body_util::BodyExt::frame(&mut body),
    )
    .await
    .expect("a first event")
    .unwrap()
    .unwrap();
    let sse = Resp {
        status: StatusCode::OK,
        headers: Default::default(),
        body: String::from_utf8_lossy(chunk.data_ref().unwrap()).into_owned(),
    };
    assert!(sse.body.contains("event: status"), "{}", sse.body);
    record("events", &sse, &events);

    // The action and its one-time secret.
    let r = t
        .post(
            &mut b,
            &format!("{card}/actions/reset_password"),
            &[("csrf", csrf.as_str()), ("confirmed", "yes")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let secret = between(&r.body, "id=\"one-time-secret\" class=\"one-time\">", "<")
        .unwrap()
        .to_owned();
    record("action", &r, &format!("{card}/actions/reset_password"));

    // A TOTP verification of bob: the code goes in a form body.
    let bob_card = t.find(&mut b, "bob@example.com").await;
    let totp = fx.factor("bob", "token:software:totp").unwrap().id.clone();
    let r = t
        .post(
            &mut b,
            &format!("{bob_card}/verify"),
            &[("csrf", &csrf), ("factor_id", &totp)],
        )
        .await;
    record("verify totp", &r, &format!("{bob_card}/verify"));
    let bv = r.location();
    let code = t.demo.fake.state().totp_now("bob").unwrap();
    let r = t
        .post(
            &mut b,
            &format!("{bv}/code"),
            &[("csrf", &csrf), ("code", &code)],
        )
        .await;
    record("code", &r, &format!("{bv}/code"));
    let r = t.get(&mut b, &r.location()).await;
    record("after code", &r, &bv);

    // The audit view and its filter.
    for path in ["/audit", "/audit?kind=denied&since=&until="] {
        let r = t.get(&mut b, path).await;
        assert_eq!(r.status, StatusCode::OK);
        record("audit", &r, path);
    }
    // Events about a caller: the login is posted, the redirect and every link after it carry the pseudonym.
    let r = t
        .post(
            &mut b,
            "/audit/find",
            &[
                ("csrf", &csrf),
                ("q", "alice@example.com"),
                ("kind", "lookup"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    record("audit find", &r, "/audit/find");
    let about = r.location();
    let r = t.get(&mut b, &about).await;
    assert_eq!(r.status, StatusCode::OK);
    record("audit about a caller", &r, &about);

    // The API.
    let tok = id_token(&t, "agent3").await;
    let alice = fx.id_of("alice");
    let (_, _, r) = call(
        &t,
        "POST",
        "/api/v1/users/search",
        Some(&tok),
        Some(serde_json::json!({"query": "alice@example.com"})),
    )
    .await;
    record("api search", &r, "/api/v1/users/search");
    let (_, _, r) = call(
        &t,
        "GET",
        &format!("/api/v1/users/{alice}"),
        Some(&tok),
        None,
    )
    .await;
    record("api lookup", &r, &format!("/api/v1/users/{alice}"));
    let (s, v, r) = call(
        &t,
        "POST",
        &format!("/api/v1/users/{}/verifications", fx.id_of("bob")),
        Some(&tok),
        Some(serde_json::json!({})),
    )
    .await;
    assert!(s.is_success(), "{v}");
    record(
        "api begin",
        &r,
        &format!("/api/v1/users/{}/verifications", fx.id_of("bob")),
    );
    if let Some(id) = v["id"].as_str() {
        let (_, _, r) = call(
            &t,
            "GET",
            &format!("/api/v1/verifications/{id}"),
            Some(&tok),
            None,
        )
        .await;
        record("api poll", &r, &format!("/api/v1/verifications/{id}"));
    }
    let r = t.get(&mut b, "/api/v1/openapi.json").await;
    record("openapi", &r, "/api/v1/openapi.json");

    // Sign out.
    let session = b.session().unwrap();
    let r = t.post(&mut b, "/auth/logout", &[("csrf", &csrf)]).await;
    record("logout", &r, "/auth/logout");

    // What must never be in a URL.
    let mut secrets: Vec<(String, &str)> = vec![
        (session, "session id"),
        (csrf.clone(), "CSRF token"),
        (tok.clone(), "bearer token"),
        (secret, "one-time secret"),
        (format!("={code}"), "TOTP code"),
        (format!("/{code}"), "TOTP code"),
    ];
    for c in ["alice", "bob"] {
        let u = fx.user(c).unwrap();
        secrets.push((u.login.clone(), "caller login"));
        for f in ["push", "token:software:totp"] {
            if let Some(f) = fx.factor(c, f) {
                secrets.push((f.id.clone(), "factor id"));
            }
        }
    }
    for name in ["Alice", "Anderson", "Bob", "Brown"] {
        secrets.push((name.to_owned(), "caller name"));
    }
    let ids = [fx.id_of("alice"), fx.id_of("bob")];
    let oidc_authorize = [
        "client_id",
        "response_type",
        "scope",
        "redirect_uri",
        "state",
        "nonce",
        "code_challenge",
        "code_challenge_method",
    ];
    assert!(seen.len() > 40, "the flow met many URLs: {}", seen.len());
    let check = |what: &str, raw: &str| -> Result<(), String> {
        let decoded = percent_decode(raw);
        for (value, kind) in &secrets {
            if raw.contains(value.as_str()) || decoded.contains(value.as_str()) {
                return Err(format!("{kind} in a URL ({what}): {raw}"));
            }
        }
        let Ok(u) = url::Url::parse(PUBLIC).unwrap().join(raw) else {
            return Ok(());
        };
        let ours = u.origin() == url::Url::parse(PUBLIC).unwrap().origin();
        for id in &ids {
            let allowed = ours && u.path().starts_with("/api/v1/users/") && u.query().is_none();
            if !allowed && decoded.contains(id.as_str()) {
                return Err(format!("caller id in a URL ({what}): {raw}"));
            }
        }
        for (k, _) in u.query_pairs() {
            let ok = match k.as_ref() {
                "code" => ours && u.path() == "/auth/callback",
                "state" => u.path() == "/auth/callback" || u.path().ends_with("/authorize"),
                "return_to" | "kind" | "since" | "until" => ours,
                // The audit view's filter: pseudonyms, machine names, a ticket reference, the order and page.
                "outcome" | "agent" | "target" | "ticket" | "sort" | "page" => {
                    ours && u.path().starts_with("/audit")
                }
                other => {
                    !ours && u.path().ends_with("/authorize") && oidc_authorize.contains(&other)
                }
            };
            if !ok {
                return Err(format!("query parameter {k} in a URL ({what}): {raw}"));
            }
        }
        Ok(())
    };
    for (what, raw) in &seen {
        check(what, raw).unwrap_or_else(|e| panic!("{e}"));
    }
    // The check itself catches what it is for.
    let alice_id = fx.id_of("alice");
    for bad in [
        "/callers/x?login=alice%40example.com".to_owned(),
        "/search?q=Anderson".to_owned(),
        format!("/audit?subject={alice_id}"),
        format!("/callers/{alice_id}"),
        "/verifications/x?code=123456".to_owned(),
        format!("/search?csrf={csrf}"),
        format!("{PUBLIC}/x?token={tok}"),
    ] {
        assert!(check("planted", &bad).is_err(), "the check misses {bad}");
    }
}

/// `%XX` sequences decoded (and `+` read as a space), lossily.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() && s.is_char_boundary(i + 3) => {
                match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Finding 7 of issue 11: the request id in the audit chain and the logs is always the server's UUID. A client
/// sends `X-Request-Id: alice@example.com` (and, on other requests, a well-formed UUID of its own) to
/// unauthenticated and signed-in routes, pages and API, including requests that are audited (a failed sign-in, a
/// CSRF refusal, a lookup); no byte written (the SQLite audit file with its WAL, the TRACE log) holds either value,
/// except the UUID as the separate `client_request_id` log field; every audited request id is a UUID the client
/// did not send, and the response echoes the server's id.
#[tokio::test]
async fn a_client_chosen_request_id_reaches_no_byte_written() {
    const RID: &str = "alice@example.com";
    let (cap, guard) = capture_logs();
    let dir = tempfile::tempdir().unwrap();
    let t = start_with(|o| o.data_dir = Some(dir.path().to_owned())).await;
    let client_uuid = uuid::Uuid::new_v4().to_string();
    let mut b = t.sign_in("agent2").await;
    let tok = id_token(&t, "agent2").await;
    let bob = t.demo.fake.fixtures().id_of("bob");
    let form = |csrf: &str| Body::from(format!("csrf={csrf}&q=bob%40example.com"));
    let mut server_ids = Vec::new();
    for rid in [RID, client_uuid.as_str()] {
        let reqs = vec![
            // Unauthenticated.
            Request::get("/").body(Body::empty()).unwrap(),
            Request::get("/search").body(Body::empty()).unwrap(),
            Request::get("/auth/callback?code=x&state=y")
                .body(Body::empty())
                .unwrap(),
            Request::get(format!("/api/v1/users/{bob}"))
                .body(Body::empty())
                .unwrap(),
            // Signed in: a search, a CSRF refusal (audited), a bearer lookup (audited).
            Request::post("/search")
                .header("cookie", b.cookie_header())
                .header("content-type", "application/x-www-form-urlencoded")
                .header("origin", PUBLIC)
                .body(form(&b.csrf))
                .unwrap(),
            Request::post("/search")
                .header("cookie", b.cookie_header())
                .header("content-type", "application/x-www-form-urlencoded")
                .header("origin", PUBLIC)
                .body(form("forged"))
                .unwrap(),
            Request::get(format!("/api/v1/users/{bob}"))
                .header("authorization", format!("Bearer {tok}"))
                .body(Body::empty())
                .unwrap(),
        ];
        for mut req in reqs {
            req.headers_mut()
                .insert("x-request-id", rid.parse().unwrap());
            let r = t.send(req).await;
            let echoed = r.header("x-request-id").unwrap_or_default().to_owned();
            assert!(
                uuid::Uuid::parse_str(&echoed).is_ok() && echoed != rid,
                "the response echoes the server's id, not {rid}: {echoed}"
            );
            server_ids.push(echoed);
        }
    }
    let _ = t.get(&mut b, "/search").await;
    drop(guard);

    let events = t.audit_events().await;
    let with_ids: Vec<String> = events
        .iter()
        .filter_map(|e| e.request_id.as_ref().map(ToString::to_string))
        .collect();
    assert!(
        with_ids.len() >= 6,
        "the audited requests carry ids: {with_ids:?}"
    );
    for id in &with_ids {
        assert!(uuid::Uuid::parse_str(id).is_ok(), "not a UUID: {id}");
        assert_ne!(id, &client_uuid, "the client chose an audited request id");
    }
    assert!(
        with_ids.iter().any(|id| server_ids.contains(id)),
        "the audited ids are the ids the server answered with"
    );
    let logs = cap.0.lock().unwrap().clone();
    let mut hits = Vec::new();
    if logs.windows(RID.len()).any(|w| w == RID.as_bytes()) {
        hits.push("logs: alice@example.com".to_owned());
    }
    let text = String::from_utf8_lossy(&logs);
    let uuid_in_logs = text.matches(client_uuid.as_str()).count();
    let as_client_field = text
        .matches(&format!("\"client_request_id\":\"{client_uuid}\""))
        .count();
    assert_eq!(
        uuid_in_logs, as_client_field,
        "a client UUID appears in the logs only as client_request_id"
    );
    let mut files = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        files += 1;
        for needle in [RID, client_uuid.as_str()] {
            if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                hits.push(format!("{}: {needle}", path.display()));
            }
        }
    }
    assert!(files >= 1, "the audit file exists");
    assert!(hits.is_empty(), "client request ids written: {hits:?}");
}
