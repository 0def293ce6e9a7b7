//! Reads: queries, the SIEM export and the usage reports. Byte for byte the SQLite store's formats.

use crate::codec::{self, RawRow};
use fctr_ports::{AuditQuery, Month, PortError, SealedEvent, TenantId, UsageKind, UsageRecord};
use futures::TryStreamExt;
use sqlx::{PgPool, Postgres, QueryBuilder, Row};
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// The header line of [`crate::PostgresStore::report_csv`]. Stable: billing systems parse it (the same as
/// `fctr_sqlite::CSV_HEADER`).
pub const CSV_HEADER: &str = "month,tenant,agent,kind,count";

/// Which order rows come in.
#[derive(Clone, Copy)]
enum Order {
    /// Oldest first (`at`, then tenant and `seq`).
    Time,
    /// Chain order (tenant, then `seq`).
    Chain,
}

/// The SQL pre-filter for a query. [`AuditQuery::matches`] is applied again on the decoded event, which is what
/// the chain covers, so a tampered query column cannot smuggle a row in.
fn select(query: &AuditQuery, order: Order) -> QueryBuilder<'static, Postgres> {
    let mut q = QueryBuilder::<Postgres>::new(format!(
        "SELECT {} FROM audit_events WHERE TRUE",
        codec::ROW_COLUMNS
    ));
    if let Some(t) = &query.tenant {
        q.push(" AND tenant = ").push_bind(t.as_str().to_owned());
    }
    if let Some(s) = &query.since {
        q.push(" AND at >= ").push_bind(codec::time_text(s));
    }
    if let Some(u) = &query.until {
        q.push(" AND at < ").push_bind(codec::time_text(u));
    }
    if !query.kinds.is_empty() {
        let kinds: Vec<String> = query.kinds.iter().map(|k| k.as_str().to_owned()).collect();
        q.push(" AND kind = ANY(").push_bind(kinds).push(")");
    }
    if let Some(p) = &query.pseudonym {
        // A pseudonym (`<key id>:<base64url>`) needs no JSON escaping, so the canonical text holds it quoted as is.
        // A coarse pre-filter that never parses the stored text (an edited row cannot make the query fail); the
        // decoded event decides.
        q.push(" AND strpos(event, ")
            .push_bind(format!("\"{}\"", p.as_str()))
            .push(") > 0");
    }
    q.push(match order {
        Order::Time => " ORDER BY at, tenant, seq",
        Order::Chain => " ORDER BY tenant, seq",
    });
    q
}

fn decode(row: &sqlx::postgres::PgRow) -> Result<SealedEvent, PortError> {
    let raw = RawRow::from_row(row).map_err(|e| codec::unavailable("read audit", &e))?;
    raw.decode().ok_or_else(|| {
        tracing::error!(
            target: "fctr::postgres",
            seq = raw.seq,
            "a stored audit row cannot be decoded; run `fctr audit verify`"
        );
        PortError::Malformed
    })
}

/// Events matching a query, oldest first.
pub(crate) async fn read(pool: &PgPool, query: &AuditQuery) -> Result<Vec<SealedEvent>, PortError> {
    let limit = query.limit.unwrap_or(usize::MAX);
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    let mut q = select(query, Order::Time);
    let mut rows = q.build().fetch(pool);
    while let Some(row) = rows
        .try_next()
        .await
        .map_err(|e| codec::unavailable("read audit", &e))?
    {
        let s = decode(&row)?;
        if query.matches(&s.event) {
            out.push(s);
            if out.len() >= limit {
                break;
            }
        }
    }
    Ok(out)
}

/// One export line: the event's fields, flattened, plus `seq`, `prev_hash` and `hash`.
pub(crate) fn export_line(s: &SealedEvent) -> Result<String, PortError> {
    let mut v = serde_json::to_value(&s.event).map_err(PortError::unexpected)?;
    let Some(obj) = v.as_object_mut() else {
        return Err(PortError::Malformed);
    };
    obj.insert("seq".into(), serde_json::Value::from(s.seq));
    obj.insert(
        "prev_hash".into(),
        serde_json::Value::from(s.prev_hash.to_hex()),
    );
    obj.insert("hash".into(), serde_json::Value::from(s.hash.to_hex()));
    let mut line = serde_json::to_string(&v).map_err(PortError::unexpected)?;
    line.push('\n');
    Ok(line)
}

/// Streams matching events as JSON lines in chain order.
pub(crate) async fn export_jsonl<W>(
    pool: &PgPool,
    query: &AuditQuery,
    out: &mut W,
) -> Result<u64, PortError>
where
    W: AsyncWrite + Unpin + Send,
{
    let limit = query.limit.map_or(u64::MAX, |l| l as u64);
    let mut n = 0u64;
    if limit == 0 {
        return Ok(0);
    }
    let mut q = select(query, Order::Chain);
    let mut rows = q.build().fetch(pool);
    while let Some(row) = rows
        .try_next()
        .await
        .map_err(|e| codec::unavailable("export audit", &e))?
    {
        let s = decode(&row)?;
        if !query.matches(&s.event) {
            continue;
        }
        out.write_all(export_line(&s)?.as_bytes())
            .await
            .map_err(PortError::unexpected)?;
        n += 1;
        if n >= limit {
            break;
        }
    }
    out.flush().await.map_err(PortError::unexpected)?;
    Ok(n)
}

/// The usage rows of one month, sorted by tenant, agent and kind.
pub(crate) async fn usage_report(
    pool: &PgPool,
    month: Month,
) -> Result<Vec<UsageRecord>, PortError> {
    let get = |e: sqlx::Error| codec::unavailable("usage report", &e);
    let rows = sqlx::query("SELECT tenant, agent, kind, count FROM usage WHERE month = $1")
        .bind(month.to_string())
        .fetch_all(pool)
        .await
        .map_err(get)?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let tenant: String = r.try_get(0).map_err(get)?;
        let agent: String = r.try_get(1).map_err(get)?;
        let kind: String = r.try_get(2).map_err(get)?;
        let count: i64 = r.try_get(3).map_err(get)?;
        let kind = match kind.as_str() {
            "verification" => Some(UsageKind::Verification),
            "action" => Some(UsageKind::Action),
            _ => None,
        };
        let (Ok(tenant), Ok(agent), Some(kind), Ok(count)) = (
            TenantId::parse(tenant),
            fctr_ports::PseudoId::parse(agent),
            kind,
            u64::try_from(count),
        ) else {
            tracing::error!(target: "fctr::postgres", "a usage row is malformed");
            return Err(PortError::Malformed);
        };
        out.push(UsageRecord {
            month,
            tenant,
            agent,
            kind,
            count,
        });
    }
    out.sort_by(|a, b| (&a.tenant, &a.agent, a.kind).cmp(&(&b.tenant, &b.agent, b.kind)));
    Ok(out)
}

/// Quotes a CSV field when it needs it (RFC 4180). Our fields never do, but a billing file must not break.
fn csv_field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s.into()
    }
}

/// Renders usage rows as CSV.
pub(crate) fn usage_csv(rows: &[UsageRecord]) -> String {
    let mut out = String::with_capacity(64 + rows.len() * 80);
    out.push_str(CSV_HEADER);
    out.push('\n');
    for r in rows {
        let month = r.month.to_string();
        let count = r.count.to_string();
        let fields = [
            month.as_str(),
            r.tenant.as_str(),
            r.agent.as_str(),
            r.kind.as_str(),
            count.as_str(),
        ];
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&csv_field(f));
        }
        out.push('\n');
    }
    out
}
