//! ASVS at the portal: role × route matrix: every declared route, for every role, answers as the matrix says.
//! The table (one row per route) is most of this file: kept whole so a new route is one row in one place.

use super::*;

/// One row of the authorization matrix: method, route template as in the router, concrete path (placeholders
/// filled per role), and the expected (status, text the body must hold) for anonymous, signed in without a
/// role (agent0: sign-in refused, so no session; its bearer token is roleless), tier1, tier2, tier3.
struct Row {
    method: &'static str,
    route: &'static str,
    path: &'static str,
    expect: [(u16, &'static str); 5],
}

const ROLES: [&str; 5] = ["anonymous", "no role", "tier1", "tier2", "tier3"];

/// The routes the router declares, read from its source (as `routes.rs` does).
fn declared_routes() -> Vec<String> {
    let src = [
        include_str!("../../../src/lib.rs"),
        include_str!("../../../src/api.rs"),
    ]
    .concat();
    src.split(".route(\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(str::to_owned)
        .collect()
}

/// What one role brings to the matrix: its browser and bearer token, and its own handles and verifications.
struct Actor {
    browser: Browser,
    bearer: Option<String>,
    vars: Vec<(&'static str, String)>,
}

const MATRIX: &[Row] = &[
    // Placeholders: {alice} {bob} {carol} {frank}: this role's own caller handles (tier3's for the roles that
    // cannot search); {alice@t3}: tier3's handle; {vid}: this role's own verification; {vid@t3}: tier3's;
    // {id:x}: IdP ids; {push:frank}: frank's push factor.
    Row {
        method: "GET",
        route: "/",
        path: "/",
        expect: [
            (200, "Sign in"),
            (200, "Sign in"),
            (303, ""),
            (303, ""),
            (303, ""),
        ],
    },
    Row {
        method: "GET",
        route: "/auth/login",
        path: "/auth/login",
        expect: [(303, ""); 5],
    },
    Row {
        method: "GET",
        route: "/auth/callback",
        path: "/auth/callback?code=x&state=y",
        expect: [(401, "Sign-in failed"); 5],
    },
    // The callers' sign-in link pages: public (a caller has no session), and without [caller_sign_in] (as here)
    // every link is refused alike, whoever asks.
    Row {
        method: "GET",
        route: "/link/callback",
        path: "/link/callback?code=x&state=y",
        expect: [(410, "This link does not work any more"); 5],
    },
    Row {
        method: "GET",
        route: "/link/{token}",
        path: "/link/00000000-0000-4000-8000-000000000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        expect: [(410, "This link does not work any more"); 5],
    },
    Row {
        method: "POST",
        route: "/link/{token}",
        path: "/link/00000000-0000-4000-8000-000000000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        expect: [(410, "This link does not work any more"); 5],
    },
    Row {
        method: "POST",
        route: "/link/{token}/decline",
        path: "/link/00000000-0000-4000-8000-000000000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/decline",
        expect: [(410, "This link does not work any more"); 5],
    },
    Row {
        method: "GET",
        route: "/search",
        path: "/search",
        expect: [
            (401, ""),
            (401, ""),
            (200, "tier1"),
            (200, "tier2"),
            (200, "tier3"),
        ],
    },
    Row {
        method: "POST",
        route: "/search",
        path: "/search",
        expect: [
            (401, ""),
            (401, ""),
            (200, "/callers/"),
            (200, "/callers/"),
            (200, "/callers/"),
        ],
    },
    Row {
        method: "GET",
        route: "/callers/{handle}",
        path: "/callers/{alice}",
        expect: [
            (401, ""),
            (401, ""),
            (200, "Alice"),
            (200, "Alice"),
            (200, "Alice"),
        ],
    },
    // Object level: a handle minted in another agent's session is unknown.
    Row {
        method: "GET",
        route: "/callers/{handle}",
        path: "/callers/{alice@t3}",
        expect: [(401, ""), (401, ""), (404, ""), (404, ""), (200, "Alice")],
    },
    Row {
        method: "POST",
        route: "/callers/{handle}/verify",
        path: "/callers/{frank}/verify",
        expect: [(401, ""), (401, ""), (303, ""), (303, ""), (303, "")],
    },
    Row {
        method: "GET",
        route: "/callers/{handle}/actions/{action}",
        path: "/callers/{alice}/actions/unlock",
        expect: [(405, ""); 5],
    },
    // Function level: a tier3-only action; tier2 and tier3 hold a live grant for alice.
    Row {
        method: "POST",
        route: "/callers/{handle}/actions/{action}",
        path: "/callers/{alice}/actions/reset_factors",
        expect: [
            (401, ""),
            (401, ""),
            (403, "not_permitted_for_role"),
            (403, "not_permitted_for_role"),
            (200, ""),
        ],
    },
    // A tier2 action; tier2 and tier3 hold a live grant for bob.
    Row {
        method: "POST",
        route: "/callers/{handle}/actions/{action}",
        path: "/callers/{bob}/actions/clear_sessions",
        expect: [
            (401, ""),
            (401, ""),
            (403, "not_permitted_for_role"),
            (200, ""),
            (200, ""),
        ],
    },
    // Object level: a caller in the protected group, whatever the role.
    Row {
        method: "POST",
        route: "/callers/{handle}/actions/{action}",
        path: "/callers/{carol}/actions/clear_sessions",
        expect: [
            (401, ""),
            (401, ""),
            (403, "not_permitted_for_role"),
            (403, "protected_target"),
            (403, "protected_target"),
        ],
    },
    Row {
        method: "GET",
        route: "/verifications/{id}",
        path: "/verifications/{vid}",
        expect: [
            (401, ""),
            (401, ""),
            (200, "data-status"),
            (200, "data-status"),
            (200, "data-status"),
        ],
    },
    // Object level: another agent's verification.
    Row {
        method: "GET",
        route: "/verifications/{id}",
        path: "/verifications/{vid@t3}",
        expect: [
            (401, ""),
            (401, ""),
            (404, ""),
            (404, ""),
            (200, "data-status"),
        ],
    },
    Row {
        method: "GET",
        route: "/verifications/{id}/events",
        path: "/verifications/{vid}/events",
        expect: [(401, ""), (401, ""), (200, ""), (200, ""), (200, "")],
    },
    Row {
        method: "GET",
        route: "/verifications/{id}/events",
        path: "/verifications/{vid@t3}/events",
        expect: [(401, ""), (401, ""), (404, ""), (404, ""), (200, "")],
    },
    Row {
        method: "POST",
        route: "/verifications/{id}/code",
        path: "/verifications/{vid}/code",
        expect: [
            (401, ""),
            (401, ""),
            (403, "invalid_state"),
            (403, "invalid_state"),
            (403, "invalid_state"),
        ],
    },
    Row {
        method: "POST",
        route: "/verifications/{id}/code",
        path: "/verifications/{vid@t3}/code",
        expect: [
            (401, ""),
            (401, ""),
            (404, ""),
            (404, ""),
            (403, "invalid_state"),
        ],
    },
    Row {
        method: "POST",
        route: "/verifications/{id}/continue",
        path: "/verifications/{vid}/continue",
        expect: [
            (401, ""),
            (401, ""),
            (403, "invalid_state"),
            (403, "invalid_state"),
            (403, "invalid_state"),
        ],
    },
    Row {
        method: "GET",
        route: "/audit",
        path: "/audit",
        expect: [
            (401, ""),
            (401, ""),
            (403, "not_permitted_for_role"),
            (403, "not_permitted_for_role"),
            (200, ""),
        ],
    },
    // Events about a caller: the login is posted (`q`), the answer a redirect to the pseudonym's view.
    Row {
        method: "POST",
        route: "/audit/find",
        path: "/audit/find",
        expect: [
            (401, ""),
            (401, ""),
            (403, "not_permitted_for_role"),
            (403, "not_permitted_for_role"),
            (303, ""),
        ],
    },
    Row {
        method: "GET",
        route: "/audit/export.csv",
        path: "/audit/export.csv",
        expect: [
            (401, ""),
            (401, ""),
            (403, "not_permitted_for_role"),
            (403, "not_permitted_for_role"),
            (200, "at,kind,kind_label"),
        ],
    },
    Row {
        method: "GET",
        route: "/audit/export.json",
        path: "/audit/export.json",
        expect: [
            (401, ""),
            (401, ""),
            (403, "not_permitted_for_role"),
            (403, "not_permitted_for_role"),
            (200, "\"events\""),
        ],
    },
    // The changes made outside fctr (the IdP's log against the audit): auditors only.
    Row {
        method: "GET",
        route: "/audit/out-of-band",
        path: "/audit/out-of-band?since=1h",
        expect: [
            (401, ""),
            (401, ""),
            (403, "not_permitted_for_role"),
            (403, "not_permitted_for_role"),
            (200, "id=\"oob-summary\""),
        ],
    },
    Row {
        method: "GET",
        route: "/static/app.js",
        path: "/static/app.js",
        expect: [(200, ""); 5],
    },
    Row {
        method: "GET",
        route: "/static/app.css",
        path: "/static/app.css",
        expect: [(200, ""); 5],
    },
    Row {
        method: "GET",
        route: "/static/favicon.svg",
        path: "/static/favicon.svg",
        expect: [(200, "<svg"); 5],
    },
    Row {
        method: "GET",
        route: "/favicon.ico",
        path: "/favicon.ico",
        expect: [(200, "<svg"); 5],
    },
    Row {
        method: "GET",
        route: "/healthz",
        path: "/healthz",
        expect: [(200, ""); 5],
    },
    Row {
        method: "GET",
        route: "/readyz",
        path: "/readyz",
        expect: [(200, ""); 5],
    },
    Row {
        method: "GET",
        route: "/metrics",
        path: "/metrics",
        expect: [(200, ""); 5],
    },
    Row {
        method: "GET",
        route: "/api/v1/openapi.json",
        path: "/api/v1/openapi.json",
        expect: [(200, "openapi"); 5],
    },
    Row {
        method: "POST",
        route: "/api/v1/users/search",
        path: "/api/v1/users/search",
        expect: [
            (401, "unauthenticated"),
            (403, "no_role"),
            (200, "alice@example.com"),
            (200, "alice@example.com"),
            (200, "alice@example.com"),
        ],
    },
    Row {
        method: "GET",
        route: "/api/v1/users/{id}",
        path: "/api/v1/users/{id:alice}",
        expect: [
            (401, "unauthenticated"),
            (403, "no_role"),
            (200, "alice@example.com"),
            (200, "alice@example.com"),
            (200, "alice@example.com"),
        ],
    },
    Row {
        method: "GET",
        route: "/api/v1/users/{id}/explain/{action}",
        path: "/api/v1/users/{id:alice}/explain/reset_factors",
        expect: [
            (401, "unauthenticated"),
            (403, "no_role"),
            (200, "not_permitted_for_role"),
            (200, "not_permitted_for_role"),
            (200, ""),
        ],
    },
    Row {
        method: "GET",
        route: "/api/v1/audit/out-of-band",
        path: "/api/v1/audit/out-of-band?since=1h",
        expect: [
            (401, "unauthenticated"),
            (403, "no_role"),
            (403, "not_permitted_for_role"),
            (403, "not_permitted_for_role"),
            (200, "\"findings\""),
        ],
    },
    Row {
        method: "POST",
        route: "/api/v1/users/{id}/verifications",
        path: "/api/v1/users/{id:bob}/verifications",
        expect: [
            (401, "unauthenticated"),
            (403, "no_role"),
            (201, ""),
            (201, ""),
            (201, ""),
        ],
    },
    Row {
        method: "POST",
        route: "/api/v1/users/{id}/actions/{action}",
        path: "/api/v1/users/{id:erin}/actions/unlock",
        // erin is locked out: policy's default locked-out procedure lets tier 2 unlock her before verification
        // (once a day); then she is active, and tier 3's unlock needs a grant like any other action.
        expect: [
            (401, "unauthenticated"),
            (403, "no_role"),
            (403, "not_permitted_for_role"),
            (200, "\"action\":\"unlock\""),
            (403, "no_live_grant"),
        ],
    },
    Row {
        method: "POST",
        route: "/api/v1/users/{id}/actions/{action}",
        path: "/api/v1/users/{id:carol}/actions/clear_sessions",
        expect: [
            (401, "unauthenticated"),
            (403, "no_role"),
            (403, "not_permitted_for_role"),
            (403, "protected_target"),
            (403, "protected_target"),
        ],
    },
    Row {
        method: "GET",
        route: "/api/v1/verifications/{id}",
        path: "/api/v1/verifications/{vid}",
        expect: [
            (401, "unauthenticated"),
            (403, "no_role"),
            (200, ""),
            (200, ""),
            (200, ""),
        ],
    },
    Row {
        method: "GET",
        route: "/api/v1/verifications/{id}",
        path: "/api/v1/verifications/{vid@t3}",
        expect: [
            (401, "unauthenticated"),
            (403, "no_role"),
            (404, ""),
            (404, ""),
            (200, ""),
        ],
    },
    Row {
        method: "POST",
        route: "/api/v1/verifications/{id}/continue",
        path: "/api/v1/verifications/{vid}/continue",
        expect: [
            (401, "unauthenticated"),
            (403, "no_role"),
            (403, "invalid_state"),
            (403, "invalid_state"),
            (403, "invalid_state"),
        ],
    },
    Row {
        method: "POST",
        route: "/api/v1/verifications/{id}/code",
        path: "/api/v1/verifications/{vid}/code",
        expect: [
            (401, "unauthenticated"),
            (403, "no_role"),
            (403, "invalid_state"),
            (403, "invalid_state"),
            (403, "invalid_state"),
        ],
    },
    Row {
        method: "GET",
        route: "/api/v1/{*rest}",
        path: "/api/v1/nope",
        expect: [(404, ""); 5],
    },
    Row {
        method: "POST",
        route: "/api/v1/{*rest}",
        path: "/api/v1/nope",
        expect: [(404, ""); 5],
    },
    // Four-eyes (the matrix's policy names tier3 the approver role; nothing is pending, so tier3's decisions find no
    // request).
    Row {
        method: "GET",
        route: "/approvals",
        path: "/approvals",
        expect: [
            (401, ""),
            (401, ""),
            (403, "not_permitted_for_role"),
            (403, "not_permitted_for_role"),
            (200, "Nothing is waiting for approval"),
        ],
    },
    Row {
        method: "POST",
        route: "/approvals/{id}/approve",
        path: "/approvals/00000000-0000-4000-8000-000000000000/approve",
        expect: [
            (401, ""),
            (401, ""),
            (403, "not_permitted_for_role"),
            (403, "not_permitted_for_role"),
            (404, "approval_not_found"),
        ],
    },
    Row {
        method: "POST",
        route: "/approvals/{id}/refuse",
        path: "/approvals/00000000-0000-4000-8000-000000000000/refuse",
        expect: [
            (401, ""),
            (401, ""),
            (403, "not_permitted_for_role"),
            (403, "not_permitted_for_role"),
            (404, "approval_not_found"),
        ],
    },
    Row {
        method: "GET",
        route: "/api/v1/approvals",
        path: "/api/v1/approvals",
        expect: [
            (401, "unauthenticated"),
            (403, "no_role"),
            (403, "not_permitted_for_role"),
            (403, "not_permitted_for_role"),
            (200, "[]"),
        ],
    },
    Row {
        method: "POST",
        route: "/api/v1/approvals/{id}/approve",
        path: "/api/v1/approvals/00000000-0000-4000-8000-000000000000/approve",
        expect: [
            (401, "unauthenticated"),
            (403, "no_role"),
            (403, "not_permitted_for_role"),
            (403, "not_permitted_for_role"),
            (404, "approval_not_found"),
        ],
    },
    Row {
        method: "POST",
        route: "/api/v1/approvals/{id}/refuse",
        path: "/api/v1/approvals/00000000-0000-4000-8000-000000000000/refuse",
        expect: [
            (401, "unauthenticated"),
            (403, "no_role"),
            (403, "not_permitted_for_role"),
            (403, "not_permitted_for_role"),
            (404, "approval_not_found"),
        ],
    },
    // Next to last (before the sessions end): recording "that was not me" blocks the caller, which would change the rows after it.
    Row {
        method: "POST",
        route: "/verifications/{id}/not-me",
        path: "/verifications/{vid@t3}/not-me",
        expect: [(401, ""), (401, ""), (404, ""), (404, ""), (200, "")],
    },
    // Last: it ends the sessions.
    Row {
        method: "POST",
        route: "/auth/logout",
        path: "/auth/logout",
        expect: [
            (401, ""),
            (401, ""),
            (200, "Sign in"),
            (200, "Sign in"),
            (200, "Sign in"),
        ],
    },
];

fn fill(path: &str, vars: &[(&'static str, String)]) -> String {
    let mut p = path.to_owned();
    for (k, v) in vars {
        p = p.replace(&format!("{{{k}}}"), v);
    }
    assert!(!p.contains('{'), "unfilled placeholder in {p}");
    p
}

/// 8.2.1, 8.2.2, 8.3.1: every route of the router × every role, against the live portal, with the expected
/// outcome of each cell written in [`MATRIX`]; object-level rows use another agent's handle or verification
/// and a caller in the protected group.
#[tokio::test]
async fn role_by_route_matrix_holds_for_every_route() {
    // Four-eyes on an action no row runs, so that the approver role has its column.
    let t = start_with(|o| {
        o.policy = Some(
            fctr_core::policy::Policy::parse(
                "[four_eyes]\nactions = [\"suspend\"]\napprover_roles = [\"tier3\"]\n",
            )
            .unwrap(),
        );
    })
    .await;
    let fx = t.demo.fake.fixtures();
    let id = |h: &str| fx.id_of(h);

    // tier2 and tier3 verify alice and bob (live grants); tier1 starts a push for alice and leaves it waiting.
    let mut actors: Vec<Actor> = Vec::new();
    let mut t3_alice = String::new();
    let mut t3_vid = String::new();
    let mut signed: Vec<(Browser, Vec<(&'static str, String)>)> = Vec::new();
    for agent in ["agent1", "agent2", "agent3"] {
        let mut b = t.sign_in(agent).await;
        let mut vars = Vec::new();
        let (alice, vid) = if agent == "agent1" {
            let card = t.find(&mut b, "alice@example.com").await;
            let push = fx.factor("alice", "push").unwrap().id.clone();
            let v = t.send_push(&mut b, &card, &push).await;
            (card, v)
        } else {
            let (card, v) = t.verified(&mut b, "alice").await;
            let _ = t.verified(&mut b, "bob").await;
            (card, v)
        };
        let h = |p: &str| p.rsplit('/').next().unwrap().to_owned();
        vars.push(("alice", h(&alice)));
        vars.push(("vid", h(&vid)));
        for c in ["bob", "carol", "frank"] {
            let card = t.find(&mut b, &format!("{c}@example.com")).await;
            vars.push((c, h(&card)));
        }
        if agent == "agent3" {
            t3_alice = h(&alice);
            t3_vid = h(&vid);
        }
        signed.push((b, vars));
    }
    let common = |vars: &mut Vec<(&'static str, String)>| {
        vars.push(("alice@t3", t3_alice.clone()));
        vars.push(("vid@t3", t3_vid.clone()));
        for c in ["alice", "bob", "carol", "erin"] {
            let k: &'static str = match c {
                "alice" => "id:alice",
                "bob" => "id:bob",
                "carol" => "id:carol",
                _ => "id:erin",
            };
            vars.push((k, id(c)));
        }
        vars.push(("push:frank", fx.factor("frank", "push").unwrap().id.clone()));
    };
    // Anonymous: no cookie, no bearer. No role: agent0's refused sign-in, and agent0's (roleless) token.
    let mut anon_vars = Vec::new();
    let mut norole = Browser::default();
    assert_eq!(
        t.sign_in_with(&mut norole, "agent0").await.status,
        StatusCode::FORBIDDEN
    );
    let norole_bearer = id_token(&t, "agent0").await;
    for who in 0..2 {
        let mut vars = vec![("alice", t3_alice.clone()), ("vid", t3_vid.clone())];
        for (k, v) in &signed[2].1 {
            if ["bob", "carol", "frank"].contains(k) {
                vars.push((k, v.clone()));
            }
        }
        common(&mut vars);
        if who == 0 {
            anon_vars = vars;
        } else {
            actors.push(Actor {
                browser: Browser::default(),
                bearer: None,
                vars: anon_vars.clone(),
            });
            actors.push(Actor {
                browser: norole.clone(),
                bearer: Some(norole_bearer.clone()),
                vars,
            });
        }
    }
    for (i, (b, mut vars)) in signed.into_iter().enumerate() {
        common(&mut vars);
        let bearer = id_token(&t, &format!("agent{}", i + 1)).await;
        actors.push(Actor {
            browser: b,
            bearer: Some(bearer),
            vars,
        });
    }

    for declared in declared_routes() {
        assert!(
            MATRIX.iter().any(|r| r.route == declared),
            "route {declared} has no row in the authorization matrix"
        );
    }
    let mut failures = Vec::new();
    for row in MATRIX {
        for (col, actor) in actors.iter_mut().enumerate() {
            let path = fill(row.path, &actor.vars);
            let mut req = Request::builder()
                .method(row.method)
                .uri(path.as_str())
                .header("cookie", actor.browser.cookie_header());
            let body = if path.starts_with("/api/") {
                if let Some(tok) = &actor.bearer {
                    req = req.header("authorization", format!("Bearer {tok}"));
                }
                if row.method == "POST" {
                    req = req.header("content-type", "application/json");
                    if row.route.ends_with("/search") {
                        Body::from(r#"{"query":"alice@example.com"}"#)
                    } else if row.route.ends_with("/code") {
                        Body::from(r#"{"code":"123456"}"#)
                    } else {
                        Body::from("{}")
                    }
                } else {
                    Body::empty()
                }
            } else if row.method == "POST" {
                req = req
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("origin", PUBLIC);
                let factor = fill("{push:frank}", &actor.vars);
                Body::from(
                    serde_urlencoded::to_string([
                        ("csrf", actor.browser.csrf.as_str()),
                        ("q", "alice@example.com"),
                        ("factor_id", factor.as_str()),
                        ("code", "123456"),
                    ])
                    .unwrap(),
                )
            } else {
                Body::empty()
            };
            let req = req.body(body).unwrap();
            let r = if row.route.ends_with("/events") {
                let resp = t.oneshot(req).await.unwrap();
                Resp {
                    status: resp.status(),
                    headers: resp.headers().clone(),
                    body: String::new(),
                }
            } else {
                t.send(req).await
            };
            let (status, needle) = row.expect[col];
            if r.status.as_u16() != status || !r.body.contains(needle) {
                failures.push(format!(
                    "{} {} as {}: expected {status} with {needle:?}, got {} {}",
                    row.method,
                    row.path,
                    ROLES[col],
                    r.status.as_u16(),
                    r.body
                        .chars()
                        .take(160)
                        .collect::<String>()
                        .replace('\n', " ")
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} cells differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
