//! The data rules: every key has a TTL, and no identifier, role, handle or bearer credential appears anywhere in
//! Redis (key names, values, hash fields, sorted-set members, serialized dumps, published messages).

use crate::support::{Fixture, agent, grant, pseudo, random_hex, subject};
use chrono::{TimeDelta, Utc};
use fctr_ports::{
    ActionKind, ChallengeHandle, ChallengeTicket, FactorId, FactorKind, OutstandingChallenge,
    PreLogin, RateKey, RateRule, Session, SystemClock, TenantId, Timeouts, VerificationId,
    VerificationRecord, VerificationStatus,
};
use futures::StreamExt;
use redis::Value;
use std::sync::Arc;
use std::time::Duration;

/// Every byte Redis holds for `key`: its type-specific content and its `DUMP`.
async fn contents(fx: &Fixture, key: &str) -> Vec<u8> {
    let mut c = fx.raw.clone();
    let kind: String = redis::cmd("TYPE")
        .arg(key)
        .query_async(&mut c)
        .await
        .unwrap();
    let content: Value = match kind.as_str() {
        "string" => redis::cmd("GET")
            .arg(key)
            .query_async(&mut c)
            .await
            .unwrap(),
        "hash" => redis::cmd("HGETALL")
            .arg(key)
            .query_async(&mut c)
            .await
            .unwrap(),
        "zset" => redis::cmd("ZRANGE")
            .arg(key)
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .query_async(&mut c)
            .await
            .unwrap(),
        other => panic!("unexpected key type {other} at {key}"),
    };
    let dump: Vec<u8> = redis::cmd("DUMP")
        .arg(key)
        .query_async(&mut c)
        .await
        .unwrap();
    let mut out = Vec::new();
    flatten(&content, &mut out);
    out.extend_from_slice(&dump);
    out
}

fn flatten(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::BulkString(b) => {
            out.extend_from_slice(b);
            out.push(0);
        }
        Value::SimpleString(s) => out.extend_from_slice(s.as_bytes()),
        Value::Array(items) | Value::Set(items) => items.iter().for_each(|i| flatten(i, out)),
        Value::Map(pairs) => pairs.iter().for_each(|(k, v)| {
            flatten(k, out);
            flatten(v, out);
        }),
        Value::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Value::Double(d) => out.extend_from_slice(d.to_string().as_bytes()),
        _ => {}
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_flow_leaves_no_canary_and_no_key_without_a_ttl() {
    let fx = Fixture::new().await;
    let state = fx.replica().await;
    // One distinctive token inside every canary: searching for it finds any of them, whole or in part.
    let token = format!("cnry{}", random_hex(6));
    let canary = |what: &str| format!("CANARY{what}{token}");
    let (subject_id, agent_id) = (subject(&canary("subject")), agent(&canary("agent")));
    let (role, handle, session_id) = (canary("role"), canary("handle"), canary("session"));
    let pre_key = canary("prelogin");

    // Sessions and sign-in.
    let sessions = state.session_store(Arc::new(SystemClock), Timeouts::default());
    let mut s = Session::new(
        session_id.clone(),
        canary("csrf"),
        agent_id,
        Some(role.clone()),
        Utc::now(),
    );
    s.callers.insert(canary("handle0"), subject_id.clone());
    assert!(sessions.create(&s).await.unwrap());
    sessions.touch(&session_id).await.unwrap().unwrap();
    sessions
        .add_caller(&session_id, &subject(&canary("subject2")), &handle)
        .await
        .unwrap();
    sessions
        .add_verification(&session_id, VerificationId::random(), &handle)
        .await
        .unwrap();
    sessions
        .set_role(&session_id, Some(canary("role2")), Utc::now())
        .await
        .unwrap();
    let removed = canary("removed");
    assert!(
        sessions
            .create(&Session::new(
                removed.clone(),
                canary("csrf2"),
                agent(&canary("agent2")),
                None,
                Utc::now()
            ))
            .await
            .unwrap()
    );
    sessions.remove(&removed).await.unwrap();
    let pre = PreLogin {
        state: canary("state"),
        nonce: canary("nonce"),
        pkce_verifier: canary("pkce"),
        return_to: format!("/callers/{}", canary("return")),
        created: Utc::now(),
    };
    sessions.put_pre_login(&pre_key, &pre).await.unwrap();
    sessions
        .put_pre_login(&canary("prelogin2"), &pre)
        .await
        .unwrap();
    assert_eq!(sessions.take_pre_login(&pre_key).await.unwrap(), Some(pre));

    // A verification with a challenge ticket, and its grant.
    let grants = state.grant_store();
    let now = Utc::now();
    let (ag, su) = (pseudo("agent"), pseudo("caller"));
    let v = VerificationRecord {
        id: VerificationId::random(),
        tenant: TenantId::parse("acme".to_owned()).unwrap(),
        agent: ag.clone(),
        subject: subject_id.clone(),
        subject_pseudo: su.clone(),
        status: VerificationStatus::Challenged,
        challenge: Some(OutstandingChallenge {
            factor: FactorId::parse(canary("factor")).unwrap(),
            kind: FactorKind::Push,
            ticket: Some(ChallengeTicket {
                factor: FactorId::parse(canary("factor")).unwrap(),
                handle: ChallengeHandle::new(format!(
                    "https://idp.invalid/users/{}/poll",
                    canary("ticket")
                )),
                number: Some(42),
                expires_at: now + TimeDelta::minutes(5),
            }),
            started_at: now,
            link: None,
        }),
        approved: vec![],
        required_factors: 1,
        privileged: Some(false),
        created_at: now,
        expires_at: now + TimeDelta::minutes(5),
        grant: None,
        ended_by: None,
        version: 0,
    };
    assert!(
        grants
            .put_verification(&v, None, Duration::from_secs(300))
            .await
            .unwrap()
    );
    let g = grant(&ag, &su, true, now);
    grants
        .put_grant(&g, Duration::from_secs(300))
        .await
        .unwrap();
    grants
        .consume(&ag, &su, ActionKind::Unlock, now)
        .await
        .unwrap();

    // Rate limits keyed by something distinctive.
    let limiter = state.rate_limiter();
    let rk = RateKey::parse(format!("code:{}", canary("ratekey"))).unwrap();
    let rule = RateRule {
        limit: 5,
        window: Duration::from_secs(60),
    };
    limiter.hit(&rk, rule).await.unwrap();
    limiter.hit(&rk, rule).await.unwrap();

    // Coordinator: lease, value, and a message seen on the wire by a raw subscriber.
    let coord = state.coordinator();
    assert!(
        coord
            .acquire(&canary("lease"), &canary("holder"), Duration::from_secs(60))
            .await
            .unwrap()
    );
    coord
        .put(
            &canary("valuekey"),
            canary("value").into_bytes(),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let raw_client = redis::Client::open(crate::support::redis_url()).unwrap();
    let mut raw_sub = raw_client.get_async_pubsub().await.unwrap();
    raw_sub
        .psubscribe(format!("{}:*", fx.prefix))
        .await
        .unwrap();
    let mut sub = coord.subscribe(&canary("topic")).await.unwrap();
    coord
        .publish(&canary("topic"), canary("message").into_bytes())
        .await
        .unwrap();
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), sub.next())
            .await
            .unwrap(),
        Some(canary("message").into_bytes()),
        "the subscriber gets the message opened"
    );
    let wire = tokio::time::timeout(Duration::from_secs(5), raw_sub.on_message().next())
        .await
        .unwrap()
        .unwrap();
    assert!(
        !contains(wire.get_channel_name().as_bytes(), &token),
        "channel name"
    );
    assert!(
        !contains(wire.get_payload_bytes(), &token),
        "the message is sealed on the wire"
    );

    // Every key: a TTL, and no canary in its name or anywhere in its content.
    let keys = fx.keys().await;
    for kind in [
        ":s:", ":sx:", ":sidx", ":pl:", ":v:", ":g:", ":r:", ":l:", ":c:",
    ] {
        assert!(
            keys.iter().any(|k| k.contains(kind)),
            "the flow wrote a {kind} key: {keys:?}"
        );
    }
    for key in &keys {
        let ttl = fx.pttl(key).await;
        assert!(ttl > 0, "{key} has no TTL ({ttl})");
        assert!(
            !contains(key.as_bytes(), &token),
            "a canary in the key name {key}"
        );
        let bytes = contents(&fx, key).await;
        assert!(!contains(&bytes, &token), "a canary in the value of {key}");
        assert!(
            !contains(&bytes, "CANARY"),
            "a canary in the value of {key}"
        );
    }
    fx.cleanup().await;
}

#[tokio::test]
async fn grants_and_verifications_expire_with_their_ttl() {
    let fx = Fixture::new().await;
    let grants = fx.replica().await.grant_store();
    let (ag, su) = (pseudo("agent"), pseudo("caller"));
    let g = grant(&ag, &su, true, Utc::now());
    grants
        .put_grant(&g, Duration::from_millis(400))
        .await
        .unwrap();
    assert!(grants.find_grant(&ag, &su).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(grants.find_grant(&ag, &su).await.unwrap(), None);
    assert_eq!(
        grants
            .consume(&ag, &su, ActionKind::Unlock, Utc::now())
            .await
            .unwrap(),
        fctr_ports::GrantConsumption::Missing
    );
    assert!(fx.keys().await.is_empty(), "nothing left behind");
    fx.cleanup().await;
}
