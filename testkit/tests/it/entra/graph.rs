//! Graph users: lookup forms, `$select`, `$filter`, `$search`, `$count`, paging, memberOf, auth errors, faults.

use super::*;
use fctr_testkit::entra::Fault;

#[tokio::test]
async fn get_user_by_id_and_upn_with_select_and_404() {
    let e = start().await;
    let t = app_token(&e).await;
    let f = e.fixtures();
    let alice = f.id_of("alice");
    let resp = get(&e, &format!("/users/{alice}"), &t).await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json;odata.metadata=minimal")
    );
    assert!(resp.headers().contains_key("request-id"));
    let u: Value = resp.json().await.unwrap();
    assert_eq!(u["id"], alice);
    assert_eq!(u["userPrincipalName"], "alice@example.com");
    assert_eq!(u["businessPhones"], json!([]));
    assert!(
        u.get("accountEnabled").is_none(),
        "not a default property: {u}"
    );
    assert!(
        u["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("$metadata#users/$entity")
    );
    let u: Value = get(
        &e,
        "/users/ALICE@example.com?$select=id,accountEnabled,onPremisesSyncEnabled",
        &t,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(u["id"], alice);
    assert_eq!(u["accountEnabled"], true);
    assert_eq!(u["onPremisesSyncEnabled"], Value::Null);
    assert!(u.get("displayName").is_none());
    let u: Value = get(
        &e,
        "/users/erin@example.com?$select=onPremisesSyncEnabled",
        &t,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(u["onPremisesSyncEnabled"], true);
    graph_error(
        get(&e, &format!("/users/{}", guid()), &t).await,
        404,
        "Request_ResourceNotFound",
    )
    .await;
    graph_error(
        get(&e, "/users/alice@example.com?$select=nope", &t).await,
        400,
        "Request_BadRequest",
    )
    .await;
    // signInActivity needs AuditLog.Read.All.
    graph_error(
        get(&e, "/users/alice@example.com?$select=signInActivity", &t).await,
        403,
        "Authorization_RequestDenied",
    )
    .await;
}

#[tokio::test]
async fn upn_quirks_hash_and_dollar() {
    let e = start().await;
    let t = app_token(&e).await;
    // `#` must travel as %23; sent raw it starts a fragment and the UPN is cut.
    let resp = get(
        &e,
        "/users/kim_partner.example%23EXT%23%40fctrfake.onmicrosoft.com",
        &t,
    )
    .await;
    assert_eq!(resp.status(), 200);
    let resp = get(
        &e,
        "/users/kim_partner.example#EXT#@fctrfake.onmicrosoft.com",
        &t,
    )
    .await;
    graph_error(resp, 404, "Request_ResourceNotFound").await;
    // A leading `$` needs the key form.
    graph_error(
        get(&e, "/users/$kiosk@example.com", &t).await,
        400,
        "Request_BadRequest",
    )
    .await;
    let u: Value = get(&e, "/users('$kiosk@example.com')", &t)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(u["userPrincipalName"], "$kiosk@example.com");
    let resp = get(
        &e,
        "/users('%24kiosk%40example.com')/authentication/methods",
        &t,
    )
    .await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn auth_and_permission_errors() {
    let e = start().await;
    let alice = e.fixtures().id_of("alice");
    let resp = client()
        .get(url(&e, &format!("/v1.0/users/{alice}")))
        .send()
        .await
        .unwrap();
    assert!(resp.headers().contains_key("www-authenticate"));
    graph_error(resp, 401, "InvalidAuthenticationToken").await;
    graph_error(
        get(&e, &format!("/users/{alice}"), "garbage").await,
        401,
        "InvalidAuthenticationToken",
    )
    .await;
    // Expired after the token lifetime.
    let t = app_token(&e).await;
    e.state().advance_clock(3600);
    graph_error(
        get(&e, &format!("/users/{alice}"), &t).await,
        401,
        "InvalidAuthenticationToken",
    )
    .await;
    // An app without User.Read.All.
    let e = start().await;
    let app = e.app();
    e.state()
        .set_app_permissions(&app.client_id, &["UserAuthenticationMethod.Read.All"]);
    let t = app_token(&e).await;
    graph_error(
        get(&e, &format!("/users/{alice}"), &t).await,
        403,
        "Authorization_RequestDenied",
    )
    .await;
    assert_eq!(
        get(&e, &format!("/users/{alice}/authentication/methods"), &t)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn filter_search_count_and_consistency_level() {
    let e = start().await;
    let t = app_token(&e).await;
    let list = |path: &str, eventual: bool| {
        let mut rb = client()
            .get(url(&e, &format!("/v1.0{path}")))
            .bearer_auth(&t);
        if eventual {
            rb = rb.header("ConsistencyLevel", "eventual");
        }
        rb.send()
    };
    let body: Value = list(
        "/users?$filter=startsWith(displayName,'agent')&$select=id,displayName",
        false,
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(body["value"].as_array().unwrap().len(), 4);
    assert!(
        body["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("#users(id,displayName)")
    );
    let body: Value = list(
        "/users?$filter=userPrincipalName%20eq%20'alice@example.com'",
        false,
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(body["value"][0]["userPrincipalName"], "alice@example.com");
    // An injection attempt stays a literal.
    let body: Value = list(
        "/users?$filter=mail%20eq%20'x''%20or%20''a''%20eq%20''a'",
        false,
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(body["value"], json!([]));
    graph_error(
        list("/users?$filter=startsWith(displayName,'x", false)
            .await
            .unwrap(),
        400,
        "Request_BadRequest",
    )
    .await;
    // Advanced queries.
    graph_error(
        list("/users?$filter=endsWith(mail,'@example.com')", false)
            .await
            .unwrap(),
        400,
        "Request_UnsupportedQuery",
    )
    .await;
    graph_error(
        list("/users?$filter=endsWith(mail,'@example.com')", true)
            .await
            .unwrap(),
        400,
        "Request_UnsupportedQuery",
    )
    .await;
    let body: Value = list(
        "/users?$filter=endsWith(mail,'@example.com')&$count=true",
        true,
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(body["@odata.count"], 15);
    // $search needs ConsistencyLevel: eventual.
    graph_error(
        list("/users?$search=%22displayName:jo%22", false)
            .await
            .unwrap(),
        400,
        "Request_UnsupportedQuery",
    )
    .await;
    let body: Value = list("/users?$search=%22displayName:jo%22", true)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["displayName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Judy Jones"]);
    graph_error(
        list("/users?$count=true", false).await.unwrap(),
        400,
        "Request_UnsupportedQuery",
    )
    .await;
    let resp = list("/users/$count", true).await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "16");
    graph_error(
        list("/users/$count", false).await.unwrap(),
        400,
        "Request_UnsupportedQuery",
    )
    .await;
}

#[tokio::test]
async fn paging_follows_next_link() {
    let e = start().await;
    let t = app_token(&e).await;
    let mut seen = Vec::new();
    let mut next = Some(url(&e, "/v1.0/users?$top=5&$select=id"));
    while let Some(u) = next {
        let body: Value = client()
            .get(u)
            .bearer_auth(&t)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        seen.extend(
            body["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["id"].as_str().unwrap().to_owned()),
        );
        next = body["@odata.nextLink"].as_str().map(str::to_owned);
    }
    assert_eq!(seen.len(), 16);
    seen.dedup();
    assert_eq!(seen.len(), 16);
    graph_error(
        get(&e, "/users?$top=1000", &t).await,
        400,
        "Request_BadRequest",
    )
    .await;
    graph_error(
        get(&e, "/users?$skip=5", &t).await,
        400,
        "Request_BadRequest",
    )
    .await;
    graph_error(get(&e, "/groups", &t).await, 400, "BadRequest").await;
}

#[tokio::test]
async fn member_of_lists_groups_and_directory_roles() {
    let e = start().await;
    let t = app_token(&e).await;
    let body: Value = get(
        &e,
        "/users/dave@example.com/memberOf?$select=id,displayName",
        &t,
    )
    .await
    .json()
    .await
    .unwrap();
    let v = body["value"].as_array().unwrap();
    assert!(
        v.iter()
            .any(|g| g["@odata.type"] == "#microsoft.graph.group"
                && g["displayName"] == "fctr-privileged")
    );
    assert!(
        v.iter()
            .any(|g| g["@odata.type"] == "#microsoft.graph.directoryRole"
                && g["displayName"] == "Global Administrator")
    );
    let body: Value = get(&e, "/users/carol@example.com/memberOf", &t)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["value"][0]["displayName"], "fctr-protected");
    assert_eq!(body["value"][0]["securityEnabled"], true);
    // An app without a group permission.
    let e2 = start().await;
    e2.state()
        .set_app_permissions(&e2.app().client_id, &["User.Read.All"]);
    let t2 = app_token(&e2).await;
    graph_error(
        get(&e2, "/users/carol@example.com/memberOf", &t2).await,
        403,
        "Authorization_RequestDenied",
    )
    .await;
}

#[tokio::test]
async fn faults_on_graph_routes() {
    let e = start().await;
    let t = app_token(&e).await;
    let path = format!("/users/{}", e.fixtures().id_of("alice"));
    e.faults().set(
        "GET /v1.0/users/{id}",
        Fault::RateLimited {
            reset_after_secs: 7,
        },
        Some(1),
    );
    let resp = get(&e, &path, &t).await;
    assert_eq!(resp.headers()["retry-after"], "7");
    graph_error(resp, 429, "TooManyRequests").await;
    assert_eq!(
        get(&e, &path, &t).await.status(),
        200,
        "the fault was used up"
    );
    e.faults().set(
        "/v1.0/users/{id}",
        Fault::ServerError { status: 503 },
        Some(1),
    );
    graph_error(get(&e, &path, &t).await, 503, "serviceNotAvailable").await;
    e.faults().set("*", Fault::MalformedJson, Some(1));
    let resp = get(&e, &path, &t).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.json::<Value>().await.is_err());
    e.faults()
        .set("GET /v1.0/users/{id}", Fault::DropConnection, Some(1));
    assert!(
        client()
            .get(url(&e, &format!("/v1.0{path}")))
            .bearer_auth(&t)
            .send()
            .await
            .is_err()
    );
    e.faults()
        .set("GET /v1.0/users/{id}", Fault::Latency { ms: 300 }, Some(1));
    let t0 = std::time::Instant::now();
    assert_eq!(get(&e, &path, &t).await.status(), 200);
    assert!(t0.elapsed() >= std::time::Duration::from_millis(300));
    // Faults on other routes leave this one alone.
    e.faults().set(
        "GET /v1.0/users/{id}/memberOf",
        Fault::ServerError { status: 500 },
        None,
    );
    assert_eq!(get(&e, &path, &t).await.status(), 200);
    graph_error(
        get(&e, &format!("{path}/memberOf"), &t).await,
        500,
        "generalException",
    )
    .await;
    e.faults().clear();
    // Throttling by rate.
    e.state().set_rate_limit(1);
    assert_eq!(get(&e, &path, &t).await.status(), 200);
    let resp = get(&e, &path, &t).await;
    assert!(
        resp.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    graph_error(resp, 429, "TooManyRequests").await;
}

#[tokio::test]
async fn control_api_serves_fixtures_totp_and_effects() {
    let e = start().await;
    let fx: Value = client()
        .get(url(&e, "/_fake/fixtures"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fx["users"].as_array().unwrap().len(), 16);
    assert_eq!(fx["users"][0]["id"], e.fixtures().id_of("alice"));
    let code: Value = client()
        .get(url(&e, "/_fake/totp/bob@example.com"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        code["code"].as_str().unwrap(),
        e.state().totp_now("bob@example.com").unwrap()
    );
    assert_eq!(
        client()
            .get(url(&e, "/_fake/totp/ivan@example.com"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let fx: Value = client()
        .get(url(&e, "/_fake/users/grace@example.com/effects"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fx["accountEnabled"], false);
    let resp = client()
        .post(url(&e, "/_fake/faults"))
        .json(&json!({"route": "GET /v1.0/users/{id}", "fault": {"kind": "server_error", "status": 502}, "times": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let t = app_token(&e).await;
    graph_error(
        get(&e, "/users/alice@example.com", &t).await,
        502,
        "generalException",
    )
    .await;
}

/// The directory audit log: every change served is recorded under the calling app, console changes under their
/// admin; `$filter` on `activityDateTime`, `$top` / `$skiptoken` paging; 403 without `AuditLog.Read.All` and
/// `Directory.Read.All`; a filter of another shape is a 400.
#[tokio::test]
async fn directory_audits_record_changes_page_filter_and_need_their_permissions() {
    let e = start().await;
    let app = e.app();
    let alice = e.fixtures().id_of("alice");
    let bob = e.fixtures().id_of("bob");
    let t = app_token(&e).await;
    graph_error(
        get(&e, "/auditLogs/directoryAudits", &t).await,
        403,
        "Authorization_RequestDenied",
    )
    .await;
    let mut perms: Vec<&str> = fctr_testkit::entra::DEFAULT_APP_PERMISSIONS.to_vec();
    perms.push("AuditLog.Read.All");
    e.state().set_app_permissions(&app.client_id, &perms);
    let t = app_token(&e).await;
    graph_error(
        get(&e, "/auditLogs/directoryAudits", &t).await,
        403,
        "Authorization_RequestDenied",
    )
    .await;
    perms.push("Directory.Read.All");
    e.state().set_app_permissions(&app.client_id, &perms);
    let t = app_token(&e).await;

    let r = graph(
        &e,
        Method::POST,
        &format!("/users/{alice}/revokeSignInSessions"),
        &t,
        None,
    )
    .await;
    assert!(r.status().is_success(), "{}", r.status());
    e.state()
        .console_change("rogue.admin@example.com", &bob, "Reset user password");
    e.state()
        .console_change("rogue.admin@example.com", &bob, "Disable account");
    assert_eq!(e.state().directory_audit_len(), 3);

    let since = (chrono::Utc::now() - chrono::TimeDelta::minutes(5))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let until = (chrono::Utc::now() + chrono::TimeDelta::minutes(5))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let filter = format!("activityDateTime ge {since} and activityDateTime le {until}");
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("$filter", &filter)
        .append_pair("$top", "2")
        .finish();
    let r = get(&e, &format!("/auditLogs/directoryAudits?{q}"), &t).await;
    assert_eq!(r.status(), 200);
    let page: Value = r.json().await.unwrap();
    let first = page["value"].as_array().unwrap();
    assert_eq!(first.len(), 2, "{page}");
    assert_eq!(
        first[0]["activityDisplayName"],
        "Update StsRefreshTokenValidFrom Timestamp"
    );
    assert_eq!(
        first[0]["initiatedBy"]["app"]["appId"],
        app.client_id.as_str()
    );
    assert_eq!(first[0]["targetResources"][0]["id"], alice.as_str());
    assert_eq!(
        first[1]["initiatedBy"]["user"]["userPrincipalName"],
        "rogue.admin@example.com"
    );
    let next = page["@odata.nextLink"].as_str().unwrap();
    let r = client().get(next).bearer_auth(&t).send().await.unwrap();
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["value"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["value"][0]["activityDisplayName"], "Disable account");
    assert!(page.get("@odata.nextLink").is_none());

    // A window before the changes holds none.
    let old = (chrono::Utc::now() - chrono::TimeDelta::hours(2))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair(
            "$filter",
            &format!("activityDateTime ge {old} and activityDateTime le {since}"),
        )
        .finish();
    let page: Value = get(&e, &format!("/auditLogs/directoryAudits?{q}"), &t)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["value"].as_array().unwrap().len(), 0, "{page}");
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("$filter", "category eq 'UserManagement'")
        .finish();
    assert_eq!(
        get(&e, &format!("/auditLogs/directoryAudits?{q}"), &t)
            .await
            .status(),
        400
    );
}
