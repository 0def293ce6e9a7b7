//! Unit tests of the token module.

use super::*;

/// Regression: an `expires_in` near `u64::MAX` overflowed `Instant + Duration` when the token was cached,
/// panicking the request. Found while writing the `entra_json` fuzz target, which covers `accept`.
#[test]
fn roles_are_read_from_the_token_payload_only_when_well_formed() {
    use base64::Engine as _;
    let jwt = |payload: &str| {
        let b = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.sig", b(r#"{"alg":"RS256"}"#), b(payload))
    };
    assert_eq!(
        roles_of(&jwt(
            r#"{"roles":["User.Read.All","Directory.ReadWrite.All"]}"#
        )),
        Some(vec![
            "User.Read.All".to_owned(),
            "Directory.ReadWrite.All".to_owned()
        ])
    );
    assert_eq!(roles_of(&jwt(r#"{"aud":"x"}"#)), Some(Vec::new()));
    assert_eq!(roles_of(&jwt(r#"{"roles":"User.Read.All"}"#)), None);
    assert_eq!(roles_of(&jwt(r#"{"roles":[1]}"#)), None);
    assert_eq!(roles_of("opaque-token"), None);
    assert_eq!(roles_of("a.!!!.c"), None);
}

#[test]
fn absurd_expires_in_does_not_overflow() {
    let authority = Url::parse(crate::DEFAULT_AUTHORITY).unwrap();
    let source = TokenSource::new(
        &authority,
        "contoso.onmicrosoft.com",
        "00000000-0000-0000-0000-000000000002",
        &EntraCredential::ClientSecret(SecretString::from("s")),
        crate::GRAPH_SCOPE,
        "test",
    )
    .unwrap();
    for body in [
        &br#"{"token_type":"Bearer","access_token":"t","expires_in":18446744073709551615}"#[..],
        br#"{"token_type":"Bearer","access_token":"t","expires_in":"9223372036854775807"}"#,
    ] {
        let cached = source.accept(body).unwrap();
        assert!(cached.refresh_at <= Instant::now() + MAX_LIFETIME);
    }
    let cached = source
        .accept(br#"{"access_token":"t","expires_in":"3599"}"#)
        .unwrap();
    assert!(cached.refresh_at > Instant::now() + Duration::from_secs(3000));
}

#[test]
fn aadsts_codes_are_read_from_codes_or_prefix() {
    let body = br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided. canary","error_codes":[7000215]}"#;
    let e = classify(StatusCode::UNAUTHORIZED, None, body);
    assert_eq!(e, TokenError::InvalidClientSecret { code: 7_000_215 });
    assert!(!e.to_string().contains("canary"));
    let body = br#"{"error":"unauthorized_client","error_description":"AADSTS700016: Application with identifier 'x' was not found"}"#;
    assert_eq!(
        classify(StatusCode::BAD_REQUEST, None, body),
        TokenError::UnknownApplication
    );
    let body = br#"{"error":"invalid_request","error_codes":[90002]}"#;
    let e = classify(StatusCode::BAD_REQUEST, None, body);
    assert!(e.to_string().contains("tenant_id"));
    assert!(matches!(PortError::from(&e), PortError::Unauthorized));
}

#[test]
fn unknown_refusals_keep_only_safe_tokens() {
    let body = br#"{"error":"weird <script>","error_codes":[1]}"#;
    let e = classify(StatusCode::BAD_REQUEST, None, body);
    assert_eq!(
        e,
        TokenError::Rejected {
            status: 400,
            error: None,
            code: Some(1)
        }
    );
    assert_eq!(
        classify(StatusCode::BAD_GATEWAY, None, b"<html>"),
        TokenError::Rejected {
            status: 502,
            error: None,
            code: None
        }
    );
    assert_eq!(
        classify(StatusCode::BAD_REQUEST, None, b"<html>"),
        TokenError::Malformed
    );
    assert_eq!(
        classify(
            StatusCode::TOO_MANY_REQUESTS,
            Some(Duration::from_secs(3)),
            b""
        ),
        TokenError::RateLimited {
            retry_after: Some(Duration::from_secs(3))
        }
    );
}
