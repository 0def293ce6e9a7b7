//! The checks of [`UsageLedger`]: exact sums under concurrency, report order, purge by month.

use super::support::{Ctx, all_ok, concurrently, ensure, fail, made, pseudo, tenant};
use super::{Check, Port, Replicas, StoreCheck, StoreFixture, Verdict};
use chrono::{TimeZone, Utc};
use fctr_ports::{Month, UsageKind, UsageLedger, UsageRecord};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The usage ledger's checks, in run order.
pub const CHECKS: &[StoreCheck] = checks![Port::Usage;
    "usage_concurrent_records_sum_exactly" => concurrent_records_sum_exactly,
    "usage_purge_drops_older_months" => purge_drops_older_months,
];

async fn store(f: Arc<dyn StoreFixture>) -> Result<Replicas<dyn UsageLedger>, Verdict> {
    made(f.usage().await, Port::Usage)
}

fn month(y: i32, m: u32) -> Result<Month, Verdict> {
    Utc.with_ymd_and_hms(y, m, 15, 12, 0, 0)
        .single()
        .map(Month::of)
        .ok_or_else(|| fail("test data: month"))
}

/// 96 concurrent records over both replicas, spread over two tenants, two agents and two kinds, with counts 1 to
/// 3: the month's report has one row per (tenant, agent, kind) holding the exact sum, sorted by tenant, agent and
/// kind.
async fn concurrent_records_sum_exactly(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(f).await?;
    let m = month(2025, 6)?;
    let tenants = [tenant("acme")?, tenant("globex")?];
    let agents = [pseudo(1)?, pseudo(2)?];
    let kinds = [UsageKind::Verification, UsageKind::Action];
    let mut records = Vec::new();
    let mut want: BTreeMap<(String, String, UsageKind), u64> = BTreeMap::new();
    for i in 0..96usize {
        let (t, a, k) = (&tenants[i % 2], &agents[(i / 2) % 2], kinds[(i / 4) % 2]);
        let count = u64::try_from(1 + i % 3).unwrap_or(1);
        *want
            .entry((t.as_str().to_owned(), a.as_str().to_owned(), k))
            .or_default() += count;
        records.push(UsageRecord {
            month: m,
            tenant: t.clone(),
            agent: a.clone(),
            kind: k,
            count,
        });
    }
    let outputs = concurrently(records.len(), |i| {
        let s = r.pick(i);
        let rec = records.get(i).cloned();
        async move {
            match rec {
                Some(rec) => s.record(rec).await,
                None => Ok(()),
            }
        }
    })
    .await?;
    all_ok(outputs, "record")?;
    let rows = r.b.report(m).await.ctx("report")?;
    let got: BTreeMap<(String, String, UsageKind), u64> = rows
        .iter()
        .map(|u| {
            (
                (
                    u.tenant.as_str().to_owned(),
                    u.agent.as_str().to_owned(),
                    u.kind,
                ),
                u.count,
            )
        })
        .collect();
    ensure(got.len() == rows.len(), || {
        "the report has two rows for the same tenant, agent and kind".into()
    })?;
    ensure(got == want, || {
        let total: u64 = rows.iter().map(|u| u.count).sum();
        format!(
            "the report does not hold the exact sums: {} rows totalling {total}, expected {} rows totalling {} (a concurrent record was lost or doubled)",
            rows.len(),
            want.len(),
            want.values().sum::<u64>()
        )
    })?;
    ensure(rows.iter().all(|u| u.month == m), || {
        "the report holds rows of another month".into()
    })?;
    let order: Vec<_> = rows
        .iter()
        .map(|u| (u.tenant.clone(), u.agent.clone(), u.kind))
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    ensure(order == sorted, || {
        "the report is not sorted by tenant, agent and kind".into()
    })
}

/// `purge_before` drops the months that ended before it and keeps the month it falls in.
async fn purge_drops_older_months(f: Arc<dyn StoreFixture>) -> Check {
    let r = store(f).await?;
    let a = pseudo(1)?;
    let t = tenant("acme")?;
    let months = [month(2025, 1)?, month(2025, 2)?, month(2025, 3)?];
    for (i, m) in months.iter().enumerate() {
        r.pick(i)
            .record(UsageRecord {
                month: *m,
                tenant: t.clone(),
                agent: a.clone(),
                kind: UsageKind::Action,
                count: 2,
            })
            .await
            .ctx("record")?;
    }
    let before = Utc
        .with_ymd_and_hms(2025, 3, 2, 0, 0, 0)
        .single()
        .ok_or_else(|| fail("test data: time"))?;
    r.a.purge_before(before).await.ctx("purge_before")?;
    for (i, m) in months.iter().enumerate() {
        let rows = r.b.report(*m).await.ctx("report")?;
        let kept = i == 2;
        ensure(rows.is_empty() != kept, || {
            if kept {
                format!("the purge removed month {m}, which holds the purge time")
            } else {
                format!("the purge kept month {m}, which ended before the purge time")
            }
        })?;
    }
    Ok(())
}
