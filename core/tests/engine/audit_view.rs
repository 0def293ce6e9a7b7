//! `Engine::audit_view` and `Engine::audit_caller_pseudonym`: filters narrow to the agent or the caller, pages are
//! disjoint and cover the result, a login resolves to the caller's pseudonym (an audited lookup), and a role
//! without `view_audit` is refused (audited).

use crate::common::{ctx, sid, world};
use fctr_core::{AuditSort, AuditViewQuery};
use fctr_ports::{EventKind, Outcome, Reason};

#[tokio::test]
async fn filters_pages_and_the_caller_by_login() {
    let w = world();
    let a2 = w.agent("agent2", "fctr-tier2");
    let a3 = w.agent("agent3", "fctr-tier3");
    for who in ["alice", "bob", "alice"] {
        w.engine.lookup(&a2, &ctx(), &sid(who)).await.unwrap();
    }
    let alice = w.engine.pseudonymizer().subject(&sid("alice"));

    let p = w
        .engine
        .audit_caller_pseudonym(&a3, &ctx(), " Alice@Example.com ")
        .await
        .unwrap();
    assert_eq!(p, alice);
    let last = w.events().await.pop().unwrap();
    assert_eq!(
        last.kind,
        EventKind::Lookup,
        "the directory read is audited"
    );
    assert_eq!(last.target.as_ref(), Some(&alice));
    assert_eq!(last.agent.as_ref(), Some(a3.pseudonym()));
    // An IdP id is pseudonymized as given, with no directory read.
    let by_id = w
        .engine
        .audit_caller_pseudonym(&a3, &ctx(), "alice")
        .await
        .unwrap();
    assert_eq!(by_id, alice);

    let mut q = AuditViewQuery::default();
    q.target = Some(alice.clone());
    let all = w.engine.audit_view(&a3, &ctx(), &q).await.unwrap();
    assert_eq!(all.total, 3, "agent2's two lookups and agent3's");
    assert!(all.rows.iter().all(|r| r.target.as_ref() == Some(&alice)));
    q.agent = Some(a2.pseudonym().clone());
    let by_a2 = w.engine.audit_view(&a3, &ctx(), &q).await.unwrap();
    assert_eq!(by_a2.total, 2);

    // Pages of 2 over everything, oldest first: disjoint, in order, covering.
    let mut q = AuditViewQuery::default();
    q.sort = AuditSort::OldestFirst;
    let everything = w.engine.audit_view(&a3, &ctx(), &q).await.unwrap();
    assert!(everything.total >= 4);
    assert!(!everything.truncated);
    q.limit = 2;
    let mut paged = Vec::new();
    while paged.len() < everything.total {
        q.offset = paged.len();
        let page = w.engine.audit_view(&a3, &ctx(), &q).await.unwrap();
        assert!(!page.rows.is_empty() && page.rows.len() <= 2);
        paged.extend(page.rows);
    }
    assert_eq!(paged, everything.rows);
    assert!(paged.windows(2).all(|w| w[0].at <= w[1].at));
    q.sort = AuditSort::NewestFirst;
    q.offset = 0;
    let newest = w.engine.audit_view(&a3, &ctx(), &q).await.unwrap();
    assert_eq!(newest.rows[0], *everything.rows.last().unwrap());

    // Outcome filter.
    let mut q = AuditViewQuery::default();
    q.outcome = Some(Outcome::Denied);
    assert_eq!(w.engine.audit_view(&a3, &ctx(), &q).await.unwrap().total, 0);
}

#[tokio::test]
async fn refusals() {
    let w = world();
    let a2 = w.agent("agent2", "fctr-tier2");
    let a3 = w.agent("agent3", "fctr-tier3");
    let d = w
        .engine
        .audit_view(&a2, &ctx(), &AuditViewQuery::default())
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::NotPermittedForRole);
    w.assert_audited(Reason::NotPermittedForRole).await;
    let d = w
        .engine
        .audit_caller_pseudonym(&a2, &ctx(), "alice@example.com")
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::NotPermittedForRole);
    w.assert_audited(Reason::NotPermittedForRole).await;
    for bad in ["", "Alice Anderson", &"x".repeat(200)] {
        let d = w
            .engine
            .audit_caller_pseudonym(&a3, &ctx(), bad)
            .await
            .unwrap_err();
        assert_eq!(d.reason, Reason::InvalidInput, "{bad}");
    }
    let d = w
        .engine
        .audit_caller_pseudonym(&a3, &ctx(), "nobody@example.com")
        .await
        .unwrap_err();
    assert_eq!(d.reason, Reason::TargetNotFound);
    w.assert_audited(Reason::TargetNotFound).await;
    let events = serde_json::to_string(&w.events().await).unwrap();
    assert!(!events.contains("nobody") && !events.contains("example.com"));
}
