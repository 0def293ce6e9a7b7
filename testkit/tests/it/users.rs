use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn get_user_by_id_login_and_shortname() {
    let okta = start().await;
    let alice = okta.fixtures().user("alice").unwrap().clone();
    for key in [alice.id.as_str(), "alice%40example.com", "alice"] {
        let resp = get(&okta, &format!("/api/v1/users/{key}")).await;
        assert_eq!(resp.status(), 200, "{key}");
        assert!(resp.headers().contains_key("etag"));
        let u: Value = resp.json().await.unwrap();
        assert_eq!(u["id"], alice.id);
        assert_eq!(u["status"], "ACTIVE");
        assert_eq!(u["profile"]["login"], "alice@example.com");
        assert_eq!(u["profile"]["email"], "alice@example.com");
        assert_eq!(u["profile"]["firstName"], "Alice");
        assert_eq!(u["credentials"]["provider"]["type"], "OKTA");
        for f in [
            "created",
            "activated",
            "statusChanged",
            "lastLogin",
            "lastUpdated",
            "passwordChanged",
        ] {
            assert!(u[f].as_str().unwrap().ends_with(".000Z"), "{f}");
        }
        assert!(
            u["_links"]["suspend"]["href"]
                .as_str()
                .unwrap()
                .ends_with("/lifecycle/suspend")
        );
        assert!(u["_links"]["unlock"].is_null());
    }
}

#[tokio::test]
async fn links_follow_state() {
    let okta = start().await;
    let u: Value = get(&okta, "/api/v1/users/erin").await.json().await.unwrap();
    assert_eq!(u["status"], "LOCKED_OUT");
    assert!(u["_links"]["unlock"].is_object());
    let u: Value = get(&okta, "/api/v1/users/grace")
        .await
        .json()
        .await
        .unwrap();
    assert!(u["_links"]["unsuspend"].is_object());
    assert!(u["_links"]["suspend"].is_null());
    let u: Value = get(&okta, "/api/v1/users/ivan").await.json().await.unwrap();
    assert!(u["_links"]["resetFactors"].is_null());
}

#[tokio::test]
async fn unknown_user_is_404_e0000007() {
    let okta = start().await;
    okta_error(
        get(&okta, "/api/v1/users/00unobody0000000000").await,
        StatusCode::NOT_FOUND,
        "E0000007",
    )
    .await;
    okta_error(
        get(&okta, "/api/v1/users/nobody%40example.com").await,
        StatusCode::NOT_FOUND,
        "E0000007",
    )
    .await;
}

#[tokio::test]
async fn missing_or_bad_auth_is_401_e0000011() {
    let okta = start().await;
    let id = okta.fixtures().id_of("alice");
    let path = format!("/api/v1/users/{id}");
    let resp = client().get(url(&okta, &path)).send().await.unwrap();
    okta_error(resp, StatusCode::UNAUTHORIZED, "E0000011").await;
    let resp = client()
        .get(url(&okta, &path))
        .header("Authorization", "SSWS wrong")
        .send()
        .await
        .unwrap();
    okta_error(resp, StatusCode::UNAUTHORIZED, "E0000011").await;
    let resp = client()
        .get(url(&okta, &path))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    okta_error(resp, StatusCode::UNAUTHORIZED, "E0000011").await;
}

async fn search(okta: &fctr_testkit::okta::FakeOkta, query: &[(&str, &str)]) -> Vec<String> {
    let resp = client()
        .get(url(okta, "/api/v1/users"))
        .query(query)
        .header("Authorization", format!("SSWS {}", okta.api_token()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let list: Vec<Value> = resp.json().await.unwrap();
    for u in &list {
        assert!(
            u["_links"]["suspend"].is_null(),
            "collections carry only self"
        );
        assert!(u["_links"]["self"].is_object());
    }
    list.iter()
        .map(|u| {
            u["profile"]["login"]
                .as_str()
                .unwrap()
                .split('@')
                .next()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[tokio::test]
async fn search_expressions() {
    let okta = start().await;
    assert_eq!(
        search(
            &okta,
            &[("search", r#"profile.login eq "alice@example.com""#)]
        )
        .await,
        ["alice"]
    );
    assert_eq!(
        search(
            &okta,
            &[("search", r#"profile.email eq "BOB@example.com""#)]
        )
        .await,
        ["bob"]
    );
    assert_eq!(
        search(&okta, &[("search", r#"profile.firstName sw "Ca""#)]).await,
        ["carol"]
    );
    assert_eq!(
        search(&okta, &[("search", r#"profile.lastName sw "Ow""#)]).await,
        ["oscar"],
        "search includes DEPROVISIONED"
    );
    assert_eq!(
        search(
            &okta,
            &[(
                "search",
                r#"profile.login eq "alice@example.com" or profile.login eq "bob@example.com""#
            )]
        )
        .await,
        ["alice", "bob"]
    );
    assert_eq!(
        search(&okta, &[("search", r#"profile.firstName sw "Agent" and (profile.lastName eq "One" or profile.lastName eq "Two")"#)])
            .await,
        ["agent1", "agent2"]
    );
    assert!(
        search(
            &okta,
            &[("search", r#"profile.login eq "a\"b@example.com""#)]
        )
        .await
        .is_empty()
    );
    assert_eq!(
        search(&okta, &[("search", r#"status eq "LOCKED_OUT""#)]).await,
        ["erin"]
    );
}

#[tokio::test]
async fn malformed_search_is_400_e0000031() {
    let okta = start().await;
    for bad in [
        r#"profile.login eq "x"#,
        "profile.login eq",
        r#"profile.login ne "x""#,
        r#"(status eq "ACTIVE""#,
    ] {
        let resp = client()
            .get(url(&okta, "/api/v1/users"))
            .query(&[("search", bad)])
            .header("Authorization", format!("SSWS {}", okta.api_token()))
            .send()
            .await
            .unwrap();
        okta_error(resp, StatusCode::BAD_REQUEST, "E0000031").await;
    }
}

#[tokio::test]
async fn q_filter_and_pagination() {
    let okta = start().await;
    assert_eq!(search(&okta, &[("q", "ali")]).await, ["alice"]);
    assert!(
        search(&okta, &[("q", "oscar")]).await.is_empty(),
        "q omits DEPROVISIONED"
    );
    assert_eq!(
        search(&okta, &[("filter", r#"status eq "SUSPENDED""#)]).await,
        ["grace"]
    );
    assert_eq!(
        search(&okta, &[("filter", r#"status eq "DEPROVISIONED""#)]).await,
        ["oscar"]
    );
    let all = search(&okta, &[]).await;
    assert!(!all.contains(&"oscar".to_string()));
    assert_eq!(all.len(), okta.fixtures().users.len() - 1);

    // Pages of 5, following rel="next".
    let mut next = Some(url(&okta, "/api/v1/users?limit=5"));
    let mut seen = Vec::new();
    while let Some(u) = next.take() {
        let resp = client()
            .get(&u)
            .header("Authorization", format!("SSWS {}", okta.api_token()))
            .send()
            .await
            .unwrap();
        let links: Vec<String> = resp
            .headers()
            .get_all("link")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        assert!(links.iter().any(|l| l.ends_with("rel=\"self\"")));
        next = links.iter().find(|l| l.ends_with("rel=\"next\"")).map(|l| {
            l.trim_start_matches('<')
                .split('>')
                .next()
                .unwrap()
                .to_string()
        });
        let page: Vec<Value> = resp.json().await.unwrap();
        assert!(page.len() <= 5);
        seen.extend(page.iter().map(|u| u["id"].as_str().unwrap().to_string()));
    }
    assert_eq!(seen.len(), all.len());
}

#[tokio::test]
async fn user_groups() {
    let okta = start().await;
    let id = okta.fixtures().id_of("carol");
    let resp = get(&okta, &format!("/api/v1/users/{id}/groups")).await;
    assert_eq!(resp.status(), 200);
    let groups: Vec<Value> = resp.json().await.unwrap();
    let names: Vec<&str> = groups
        .iter()
        .map(|g| g["profile"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Everyone", "fctr-protected"]);
    assert_eq!(groups[0]["type"], "BUILT_IN");
    assert_eq!(groups[1]["type"], "OKTA_GROUP");
    assert!(groups[1]["id"].as_str().unwrap().starts_with("00g"));
    let id = okta.fixtures().id_of("agent2");
    let groups: Vec<Value> = get(&okta, &format!("/api/v1/users/{id}/groups"))
        .await
        .json()
        .await
        .unwrap();
    assert!(groups.iter().any(|g| g["profile"]["name"] == "fctr-tier2"));
}

#[tokio::test]
async fn every_response_has_okta_headers_and_rate_limit_429() {
    let okta = start_with(fctr_testkit::okta::FakeOktaOptions {
        rate_limit_per_minute: 3,
        ..Default::default()
    })
    .await;
    let id = okta.fixtures().id_of("alice");
    let path = format!("/api/v1/users/{id}");
    for remaining in [2, 1, 0] {
        let resp = get(&okta, &path).await;
        assert_eq!(resp.status(), 200);
        let h = resp.headers();
        assert_eq!(h["x-rate-limit-limit"], "3");
        assert_eq!(
            h["x-rate-limit-remaining"].to_str().unwrap(),
            remaining.to_string()
        );
        let reset: i64 = h["x-rate-limit-reset"].to_str().unwrap().parse().unwrap();
        assert!(reset > now() && reset <= now() + 61);
        assert!(h.contains_key("date"));
        assert!(h.contains_key("x-okta-request-id"));
    }
    let resp = get(&okta, &path).await;
    assert_eq!(resp.headers()["x-rate-limit-remaining"], "0");
    okta_error(resp, StatusCode::TOO_MANY_REQUESTS, "E0000047").await;
    // Another bucket is not affected.
    assert_eq!(get(&okta, &format!("{path}/factors")).await.status(), 200);
    // The window resets.
    okta.state().advance_clock(61);
    assert_eq!(get(&okta, &path).await.status(), 200);
}
