//! Authentication methods, Temporary Access Pass, revokeSignInSessions, PATCH passwordProfile / accountEnabled.

use super::*;
use fctr_testkit::entra::{
    FakeEntraOptions, FixtureMethod, MOBILE_PHONE_METHOD_ID, PASSWORD_METHOD_ID, SignInPreferences,
};

#[tokio::test]
async fn methods_list_with_odata_types_and_per_type_collections() {
    let e = start().await;
    let t = reader_token(&e).await;
    let body: Value = get(&e, "/users/alice@example.com/authentication/methods", &t)
        .await
        .json()
        .await
        .unwrap();
    let v = body["value"].as_array().unwrap();
    let types: Vec<&str> = v
        .iter()
        .map(|m| m["@odata.type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "#microsoft.graph.passwordAuthenticationMethod",
            "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod",
            "#microsoft.graph.phoneAuthenticationMethod"
        ]
    );
    assert_eq!(v[0]["id"], PASSWORD_METHOD_ID);
    assert_eq!(v[0]["password"], Value::Null);
    assert_eq!(v[1]["displayName"], "Alice's iPhone");
    assert_eq!(v[1]["createdDateTime"], Value::Null);
    assert_eq!(v[2]["id"], MOBILE_PHONE_METHOD_ID);
    assert_eq!(v[2]["phoneType"], "mobile");
    assert!(v[2]["phoneNumber"].as_str().unwrap().starts_with("+1 555"));
    let body: Value = get(
        &e,
        "/users/bob@example.com/authentication/softwareOathMethods",
        &t,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(body["value"].as_array().unwrap().len(), 1);
    assert_eq!(body["value"][0]["secretKey"], Value::Null);
    assert!(body["value"][0].get("@odata.type").is_none());
    let body: Value = get(&e, "/users/judy@example.com/authentication/methods", &t)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        body["value"]
            .as_array()
            .unwrap()
            .iter()
            .any(
                |m| m["@odata.type"] == "#microsoft.graph.fido2AuthenticationMethod"
                    && m["attestationLevel"] == "attested"
            )
    );
    graph_error(
        get(&e, &format!("/users/{}/authentication/methods", guid()), &t).await,
        404,
        "Request_ResourceNotFound",
    )
    .await;
    graph_error(
        get(&e, "/users/alice@example.com/authentication/fooMethods", &t).await,
        400,
        "BadRequest",
    )
    .await;
}

#[tokio::test]
async fn method_deletes() {
    let e = start().await;
    let t = app_token(&e).await;
    let r = reader_token(&e).await;
    let body: Value = get(
        &e,
        "/users/carol@example.com/authentication/microsoftAuthenticatorMethods",
        &t,
    )
    .await
    .json()
    .await
    .unwrap();
    let id = body["value"][0]["id"].as_str().unwrap().to_owned();
    let path =
        format!("/users/carol@example.com/authentication/microsoftAuthenticatorMethods/{id}");
    graph_error(
        graph(&e, Method::DELETE, &path, &r, None).await,
        403,
        "Authorization_RequestDenied",
    )
    .await;
    // The id under another type's collection is not found.
    graph_error(
        graph(
            &e,
            Method::DELETE,
            &format!("/users/carol@example.com/authentication/phoneMethods/{id}"),
            &t,
            None,
        )
        .await,
        404,
        "Request_ResourceNotFound",
    )
    .await;
    assert_eq!(
        graph(&e, Method::DELETE, &path, &t, None).await.status(),
        204
    );
    graph_error(
        graph(&e, Method::DELETE, &path, &t, None).await,
        404,
        "Request_ResourceNotFound",
    )
    .await;
    assert_eq!(e.effects("carol@example.com").unwrap().methods_deleted, 1);
    graph_error(
        graph(
            &e,
            Method::DELETE,
            &format!(
                "/users/carol@example.com/authentication/passwordMethods/{PASSWORD_METHOD_ID}"
            ),
            &t,
            None,
        )
        .await,
        400,
        "badRequest",
    )
    .await;
    // resetPassword is delegated-only.
    let resp = graph(
        &e,
        Method::POST,
        &format!(
            "/users/carol@example.com/authentication/methods/{PASSWORD_METHOD_ID}/resetPassword"
        ),
        &t,
        Some(json!({})),
    )
    .await;
    graph_error(resp, 403, "accessDenied").await;
}

/// Graph refuses to delete the default method while others remain (400 `badRequest`), and accepts it once it is the
/// last one besides the password; every removable type has its collection, platform credentials included.
#[tokio::test]
async fn the_default_method_goes_last() {
    let e = start().await;
    let t = app_token(&e).await;
    let alice = "alice@example.com";
    let authenticator = e.fixtures().user("alice").unwrap().methods[0].id.clone();
    assert_eq!(
        e.state().default_method(alice).as_deref(),
        Some(authenticator.as_str()),
        "seeded: the Authenticator"
    );
    let auth_path =
        format!("/users/{alice}/authentication/microsoftAuthenticatorMethods/{authenticator}");
    let phone_path = format!("/users/{alice}/authentication/phoneMethods/{MOBILE_PHONE_METHOD_ID}");
    graph_error(
        graph(&e, Method::DELETE, &auth_path, &t, None).await,
        400,
        "badRequest",
    )
    .await;
    assert_eq!(e.effects(alice).unwrap().methods_deleted, 0);
    assert_eq!(
        graph(&e, Method::DELETE, &phone_path, &t, None)
            .await
            .status(),
        204
    );
    assert_eq!(
        graph(&e, Method::DELETE, &auth_path, &t, None)
            .await
            .status(),
        204
    );
    assert_eq!(
        e.state().method_types(alice).unwrap(),
        ["passwordAuthenticationMethod"]
    );
    assert_eq!(e.state().default_method(alice), None);
    // Another default, chosen as the user would; a TAP counts as another method.
    let ivan = "ivan@example.com";
    let pc = e
        .state()
        .register_method(ivan, FixtureMethod::PlatformCredential)
        .unwrap();
    let oath = e
        .state()
        .register_method(ivan, FixtureMethod::SoftwareOath)
        .unwrap();
    assert!(e.state().set_default_method(ivan, Some(&oath)));
    assert!(
        !e.state()
            .set_default_method(ivan, Some("not-a-method-of-ivan"))
    );
    let oath_path = format!("/users/{ivan}/authentication/softwareOathMethods/{oath}");
    graph_error(
        graph(&e, Method::DELETE, &oath_path, &t, None).await,
        400,
        "badRequest",
    )
    .await;
    let pcs: Value = get(
        &e,
        &format!("/users/{ivan}/authentication/platformCredentialMethods"),
        &t,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(pcs["value"][0]["id"], pc.as_str());
    assert_eq!(pcs["value"][0]["platform"], "macOS");
    assert_eq!(
        graph(
            &e,
            Method::DELETE,
            &format!("/users/{ivan}/authentication/platformCredentialMethods/{pc}"),
            &t,
            None
        )
        .await
        .status(),
        204
    );
    assert_eq!(
        graph(&e, Method::DELETE, &oath_path, &t, None)
            .await
            .status(),
        204
    );
}

/// The beta `signInPreferences` names the default method's kind; a switch makes it answer 403 or 404; v1.0 has no
/// such segment.
#[tokio::test]
async fn sign_in_preferences_are_beta_only_and_can_be_withheld() {
    let e = start().await;
    let t = app_token(&e).await;
    let beta = |user: &str| {
        url(
            &e,
            &format!("/beta/users/{user}/authentication/signInPreferences"),
        )
    };
    let read = |u: String| {
        let t = t.clone();
        async move { client().get(u).bearer_auth(t).send().await.unwrap() }
    };
    let prefs = |u: String| {
        let r = read(u);
        async move {
            let resp = r.await;
            assert_eq!(resp.status(), 200);
            resp.json::<Value>().await.unwrap()
        }
    };
    let v = prefs(beta("alice@example.com")).await;
    assert_eq!(v["userPreferredMethodForSecondaryAuthentication"], "push");
    assert_eq!(v["isSystemPreferredAuthenticationMethodEnabled"], false);
    assert_eq!(
        prefs(beta("heidi@example.com")).await["userPreferredMethodForSecondaryAuthentication"],
        "sms"
    );
    assert_eq!(
        prefs(beta("judy@example.com")).await["userPreferredMethodForSecondaryAuthentication"],
        Value::Null,
        "FIDO2, Windows Hello and e-mail are never the default"
    );
    assert!(
        e.state().set_default_method(
            "bob@example.com",
            e.fixtures()
                .user("bob")
                .unwrap()
                .methods
                .get(1)
                .map(|m| m.id.as_str())
        )
    );
    assert_eq!(
        prefs(beta("bob@example.com")).await["userPreferredMethodForSecondaryAuthentication"],
        "oath"
    );
    graph_error(read(beta(&guid())).await, 404, "Request_ResourceNotFound").await;
    let r = reader_token(&e).await;
    assert_eq!(
        client()
            .get(beta("alice@example.com"))
            .bearer_auth(r)
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "a methods read permission is enough"
    );
    e.state()
        .set_sign_in_preferences(SignInPreferences::Forbidden);
    graph_error(
        read(beta("alice@example.com")).await,
        403,
        "Authorization_RequestDenied",
    )
    .await;
    e.state()
        .set_sign_in_preferences(SignInPreferences::NotFound);
    assert_eq!(read(beta("alice@example.com")).await.status(), 404);
    e.state().set_sign_in_preferences(SignInPreferences::Served);
    graph_error(
        get(
            &e,
            "/users/alice@example.com/authentication/signInPreferences",
            &t,
        )
        .await,
        400,
        "BadRequest",
    )
    .await;
    graph_error(
        read(url(
            &e,
            "/beta/users/alice@example.com/authentication/methods",
        ))
        .await,
        400,
        "BadRequest",
    )
    .await;
    assert_eq!(
        e.state()
            .take_requests()
            .get("GET /beta/users/{id}/authentication/signInPreferences")
            .copied(),
        Some(8),
        "the beta reads (and only they) are in the request log"
    );
}

#[tokio::test]
async fn temporary_access_pass_create_replace_list_delete() {
    let e = start().await;
    let t = app_token(&e).await;
    let path = "/users/ivan@example.com/authentication/temporaryAccessPassMethods";
    let resp = graph(
        &e,
        Method::POST,
        path,
        &t,
        Some(json!({"lifetimeInMinutes": 60, "isUsableOnce": true})),
    )
    .await;
    assert_eq!(resp.status(), 201);
    let tap: Value = resp.json().await.unwrap();
    let pass = tap["temporaryAccessPass"].as_str().unwrap().to_owned();
    assert_eq!(pass.len(), 8);
    assert_eq!(tap["lifetimeInMinutes"], 60);
    assert_eq!(tap["isUsableOnce"], true);
    assert_eq!(tap["isUsable"], true);
    assert_eq!(tap["methodUsabilityReason"], "EnabledByPolicy");
    assert_eq!(
        e.effects("ivan@example.com").unwrap().last_tap.as_deref(),
        Some(pass.as_str())
    );
    // Default body; replaces the first.
    let tap2: Value = graph(&e, Method::POST, path, &t, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(tap2["lifetimeInMinutes"], 60);
    let list: Value = get(&e, path, &t).await.json().await.unwrap();
    let v = list["value"].as_array().unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["id"], tap2["id"]);
    assert_eq!(
        v[0]["temporaryAccessPass"],
        Value::Null,
        "the pass is shown once"
    );
    // It expires.
    e.state().advance_clock(61 * 60);
    let t = app_token(&e).await;
    let list: Value = get(&e, path, &t).await.json().await.unwrap();
    assert_eq!(list["value"][0]["methodUsabilityReason"], "Expired");
    assert_eq!(list["value"][0]["isUsable"], false);
    let id = tap2["id"].as_str().unwrap();
    assert_eq!(
        graph(&e, Method::DELETE, &format!("{path}/{id}"), &t, None)
            .await
            .status(),
        204
    );
    let list: Value = get(&e, path, &t).await.json().await.unwrap();
    assert_eq!(list["value"], json!([]));
}

#[tokio::test]
async fn temporary_access_pass_refusals() {
    let e = start().await;
    let t = app_token(&e).await;
    let post = |user: &str, body: Value| {
        let path = format!("/users/{user}/authentication/temporaryAccessPassMethods");
        let (e, t) = (&e, &t);
        async move { graph(e, Method::POST, &path, t, Some(body)).await }
    };
    graph_error(
        post("frank@example.com", json!({})).await,
        400,
        "badRequest",
    )
    .await;
    graph_error(
        post(
            "kim_partner.example%23EXT%23@fctrfake.onmicrosoft.com",
            json!({}),
        )
        .await,
        400,
        "badRequest",
    )
    .await;
    graph_error(
        post("ivan@example.com", json!({"lifetimeInMinutes": 5})).await,
        400,
        "badRequest",
    )
    .await;
    graph_error(
        post("ivan@example.com", json!({"lifetimeInMinutes": 481})).await,
        400,
        "badRequest",
    )
    .await;
    graph_error(
        post("ivan@example.com", json!({"colour": "red"})).await,
        400,
        "Request_BadRequest",
    )
    .await;
    let r = reader_token(&e).await;
    let resp = graph(
        &e,
        Method::POST,
        "/users/ivan@example.com/authentication/temporaryAccessPassMethods",
        &r,
        Some(json!({})),
    )
    .await;
    graph_error(resp, 403, "Authorization_RequestDenied").await;
    // The per-user flag can be lifted.
    assert!(
        e.state()
            .set_tap_policy_disabled("frank@example.com", false)
    );
    assert_eq!(post("frank@example.com", json!({})).await.status(), 201);
    // A policy forcing one-time passes.
    let mut opts = FakeEntraOptions::default();
    opts.tap_policy.is_usable_once = true;
    let e = fctr_testkit::entra::FakeEntra::start(opts).await.unwrap();
    let t = app_token(&e).await;
    let resp = graph(
        &e,
        Method::POST,
        "/users/ivan@example.com/authentication/temporaryAccessPassMethods",
        &t,
        Some(json!({"isUsableOnce": false})),
    )
    .await;
    graph_error(resp, 400, "badRequest").await;
}

#[tokio::test]
async fn revoke_sign_in_sessions() {
    let e = start().await;
    let t = app_token(&e).await;
    let resp = graph(
        &e,
        Method::POST,
        "/users/alice@example.com/revokeSignInSessions",
        &t,
        None,
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["value"], true);
    assert!(
        body["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("$metadata#Edm.Boolean")
    );
    assert_eq!(e.effects("alice@example.com").unwrap().sessions_revoked, 1);
    let r = reader_token(&e).await;
    graph_error(
        graph(
            &e,
            Method::POST,
            "/users/alice@example.com/revokeSignInSessions",
            &r,
            None,
        )
        .await,
        403,
        "Authorization_RequestDenied",
    )
    .await;
    graph_error(
        graph(
            &e,
            Method::POST,
            &format!("/users/{}/revokeSignInSessions", guid()),
            &t,
            None,
        )
        .await,
        404,
        "Request_ResourceNotFound",
    )
    .await;
    graph_error(
        graph(
            &e,
            Method::GET,
            "/users/alice@example.com/revokeSignInSessions",
            &t,
            None,
        )
        .await,
        405,
        "Request_BadRequest",
    )
    .await;
}

#[tokio::test]
async fn patch_password_profile_and_account_enabled() {
    let e = start().await;
    let t = app_token(&e).await;
    let pw = |p: &str| json!({"passwordProfile": {"password": p, "forceChangePasswordNextSignIn": true}});
    graph_error(
        graph(
            &e,
            Method::PATCH,
            "/users/bob@example.com",
            &t,
            Some(pw("weakpassword")),
        )
        .await,
        400,
        "Request_BadRequest",
    )
    .await;
    assert_eq!(
        graph(
            &e,
            Method::PATCH,
            "/users/bob@example.com",
            &t,
            Some(pw("Tr0ub4dor&3-xyz"))
        )
        .await
        .status(),
        204
    );
    let fx = e.effects("bob@example.com").unwrap();
    assert_eq!(fx.password_sets, 1);
    assert_eq!(fx.force_change_password_next_sign_in, Some(true));
    assert_eq!(fx.last_password.as_deref(), Some("Tr0ub4dor&3-xyz"));
    // dave holds Global Administrator: the app's User Administrator role is not enough.
    graph_error(
        graph(
            &e,
            Method::PATCH,
            "/users/dave@example.com",
            &t,
            Some(pw("Tr0ub4dor&3-xyz")),
        )
        .await,
        403,
        "Authorization_RequestDenied",
    )
    .await;
    let r = reader_token(&e).await;
    graph_error(
        graph(
            &e,
            Method::PATCH,
            "/users/bob@example.com",
            &r,
            Some(pw("Tr0ub4dor&3-xyz")),
        )
        .await,
        403,
        "Authorization_RequestDenied",
    )
    .await;
    graph_error(
        graph(
            &e,
            Method::PATCH,
            "/users/bob@example.com",
            &r,
            Some(json!({"accountEnabled": false})),
        )
        .await,
        403,
        "Authorization_RequestDenied",
    )
    .await;
    // Disable and enable.
    assert_eq!(
        graph(
            &e,
            Method::PATCH,
            "/users/ivan@example.com",
            &t,
            Some(json!({"accountEnabled": false}))
        )
        .await
        .status(),
        204
    );
    let u: Value = get(&e, "/users/ivan@example.com?$select=accountEnabled", &t)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(u["accountEnabled"], false);
    assert_eq!(
        graph(
            &e,
            Method::PATCH,
            "/users/grace@example.com",
            &t,
            Some(json!({"accountEnabled": true}))
        )
        .await
        .status(),
        204
    );
    assert_eq!(e.state().account_enabled("grace@example.com"), Some(true));
    graph_error(
        graph(
            &e,
            Method::PATCH,
            "/users/ivan@example.com",
            &t,
            Some(json!({"accountEnabled": "no"})),
        )
        .await,
        400,
        "Request_BadRequest",
    )
    .await;
    graph_error(
        graph(
            &e,
            Method::PATCH,
            "/users/ivan@example.com",
            &t,
            Some(json!({})),
        )
        .await,
        400,
        "Request_BadRequest",
    )
    .await;
    // Without the role requirement, the password of an admin can be set.
    let e = fctr_testkit::entra::FakeEntra::start(FakeEntraOptions {
        password_needs_directory_role: false,
        app_directory_roles: vec![],
        ..FakeEntraOptions::default()
    })
    .await
    .unwrap();
    let t = app_token(&e).await;
    assert_eq!(
        graph(
            &e,
            Method::PATCH,
            "/users/dave@example.com",
            &t,
            Some(pw("Tr0ub4dor&3-xyz"))
        )
        .await
        .status(),
        204
    );
}

/// Microsoft's Graph SDKs put `"@odata.type"` in every request body (and property annotations such as
/// `name@odata.type` are legal OData); Graph takes them as annotations, not properties. Unknown properties and a
/// body typed as another entity are still refused.
#[tokio::test]
async fn graph_bodies_accept_odata_annotations_but_not_unknown_properties() {
    let e = start().await;
    let t = app_token(&e).await;
    let patch = |user: &'static str, body: Value| {
        let (e, t) = (&e, &t);
        async move { graph(e, Method::PATCH, &format!("/users/{user}"), t, Some(body)).await }
    };
    // accountEnabled, as the Python Graph SDK sends it.
    let resp = patch(
        "grace@example.com",
        json!({"@odata.type": "#microsoft.graph.user", "accountEnabled": true}),
    )
    .await;
    assert_eq!(resp.status(), 204);
    assert_eq!(e.effects("grace@example.com").unwrap().enables, 1);
    // passwordProfile with annotations at both levels, and a property annotation.
    let resp = patch(
        "bob@example.com",
        json!({
            "@odata.type": "#microsoft.graph.user",
            "passwordProfile@odata.type": "#microsoft.graph.passwordProfile",
            "passwordProfile": {
                "@odata.type": "#microsoft.graph.passwordProfile",
                "forceChangePasswordNextSignIn": true,
                "password": "Tr0ub4dor&3-xyz"
            }
        }),
    )
    .await;
    assert_eq!(resp.status(), 204);
    let fx = e.effects("bob@example.com").unwrap();
    assert_eq!(fx.password_sets, 1);
    assert_eq!(fx.last_password.as_deref(), Some("Tr0ub4dor&3-xyz"));
    // TAP creation with the SDK's annotation.
    let resp = graph(
        &e,
        Method::POST,
        "/users/ivan@example.com/authentication/temporaryAccessPassMethods",
        &t,
        Some(json!({
            "@odata.type": "#microsoft.graph.temporaryAccessPassAuthenticationMethod",
            "isUsableOnce": true,
            "lifetimeInMinutes": 60
        })),
    )
    .await;
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["temporaryAccessPass"]
            .as_str()
            .is_some_and(|p| !p.is_empty())
    );
    // Still refused: unknown properties beside annotations, at the top and nested, and a wrong type.
    for (user, body) in [
        (
            "bob@example.com",
            json!({"@odata.type": "#microsoft.graph.user", "accountEnabled": true, "favouriteColour": "blue"}),
        ),
        (
            "bob@example.com",
            json!({"passwordProfile": {"password": "Tr0ub4dor&3-xyz", "shoeSize": 9}}),
        ),
        (
            "bob@example.com",
            json!({"@odata.type": "#microsoft.graph.group", "accountEnabled": true}),
        ),
        (
            "bob@example.com",
            json!({"passwordProfile": {"@odata.type": "#microsoft.graph.user", "password": "Tr0ub4dor&3-xyz"}}),
        ),
    ] {
        graph_error(patch(user, body).await, 400, "Request_BadRequest").await;
    }
    assert_eq!(e.effects("bob@example.com").unwrap().password_sets, 1);
    for body in [
        json!({"@odata.type": "#microsoft.graph.temporaryAccessPassAuthenticationMethod", "bogus": 1}),
        json!({"@odata.type": "#microsoft.graph.user", "isUsableOnce": true}),
    ] {
        graph_error(
            graph(
                &e,
                Method::POST,
                "/users/ivan@example.com/authentication/temporaryAccessPassMethods",
                &t,
                Some(body),
            )
            .await,
            400,
            "Request_BadRequest",
        )
        .await;
    }
}
