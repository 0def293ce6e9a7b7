//! Unit tests of the connector module.

use super::*;

#[test]
fn begin_xml_escapes_untrusted_text() {
    let xml = begin_xml(&Begin {
        upn: "a<b>&\"'@x.com",
        lcid: "en-us",
        method: MethodId::PhoneAppNotification,
        override_number_matching_with_otp: false,
        context_id: "c",
        sync_call: true,
        caller_name: "fctr",
    })
    .unwrap();
    let s = String::from_utf8(xml.to_vec()).unwrap();
    assert!(
        s.contains("<UserPrincipalName>a&lt;b&gt;&amp;&quot;&apos;@x.com</UserPrincipalName>"),
        "{s}"
    );
}

#[test]
fn answers_parse_with_namespaces_nil_and_entities() {
    let body = br#"<?xml version="1.0"?><BeginTwoWayAuthenticationResponse xmlns="http://schemas.microsoft.com/x" xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><Version>1</Version><Result><Value>Success</Value><Message i:nil="true"/><Retry>false</Retry></Result><SessionId>270867b8-6bac</SessionId><AuthenticationResult>true</AuthenticationResult><UserPrincipalName>x&amp;y@z</UserPrincipalName><AffinityUrl>https://h/Connector/EndTwoWayAuthentication?dc=KRS&amp;x=1</AffinityUrl></BeginTwoWayAuthenticationResponse>"#;
    let a = parse_answer(body, "BeginTwoWayAuthenticationResponse").unwrap();
    assert_eq!(a.value.as_deref(), Some("Success"));
    assert_eq!(a.authentication_result.as_deref(), Some("true"));
    assert_eq!(
        a.affinity_url.as_deref(),
        Some("https://h/Connector/EndTwoWayAuthentication?dc=KRS&x=1")
    );
    assert_eq!(push_state(&a), ChallengeState::Approved);
    let nil = br#"<BeginTwoWayAuthenticationResponse xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><Result><Value>Success</Value></Result><AuthenticationResult i:nil="true"/></BeginTwoWayAuthenticationResponse>"#;
    let a = parse_answer(nil, "BeginTwoWayAuthenticationResponse").unwrap();
    assert_eq!(a.authentication_result, None);
    assert_eq!(
        push_state(&a),
        ChallengeState::Failed(FailureReason::UnknownResult)
    );
}

#[test]
fn wrong_root_doctype_and_garbage_are_malformed() {
    for body in [
        &b"<EndTwoWayAuthenticationResponse/>"[..],
        b"<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><BeginTwoWayAuthenticationResponse>&e;</BeginTwoWayAuthenticationResponse>",
        b"not xml",
        b"<BeginTwoWayAuthenticationResponse><Result>",
        b"",
    ] {
        assert!(
            parse_answer(body, "BeginTwoWayAuthenticationResponse").is_err(),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn push_results_map() {
    let a = |v: &str, r: Option<&str>| Answer {
        value: Some(v.to_owned()),
        authentication_result: r.map(str::to_owned),
        ..Answer::default()
    };
    assert_eq!(
        push_state(&a("Success", Some("true"))),
        ChallengeState::Approved
    );
    assert_eq!(
        push_state(&a("Success", Some("false"))),
        ChallengeState::Failed(FailureReason::UnknownResult)
    );
    assert_eq!(
        push_state(&a("PhoneAppDenied", Some("false"))),
        ChallengeState::Rejected
    );
    assert_eq!(
        push_state(&a("PhoneAppNoResponse", Some("false"))),
        ChallengeState::TimedOut
    );
    assert_eq!(
        push_state(&a("SomethingNew", Some("false"))),
        ChallengeState::Failed(FailureReason::UnknownResult)
    );
    assert_eq!(
        end_verdict(&a("OathCodeIncorrect", Some("false"))).unwrap(),
        CodeVerdict::Wrong
    );
    assert_eq!(
        end_verdict(&a("OathCodeDuplicate", Some("false"))).unwrap(),
        CodeVerdict::Replayed
    );
    assert_eq!(
        end_verdict(&a("OathCodeOld", Some("false"))).unwrap(),
        CodeVerdict::OutsideWindow
    );
    assert!(end_verdict(&a("AuthenticationPending", None)).is_err());
}
