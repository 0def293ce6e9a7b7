//! Showing the audit log to an agent whose role has `view_audit`: pseudonymous events, filtered, sorted and
//! paged; and turning a caller's login or IdP id into the pseudonym to filter by, without storing it.
//!
//! Paging is over a bounded read: the store is asked for the events of the time window (pre-filtered by kind and
//! by one pseudonym where given), at most [`AuditViewQuery::READ_CAP`] of them, oldest first; the engine then
//! applies the filters the store port has no words for (outcome, agent only, caller only, ticket), sorts and
//! cuts the page. The port has no offset and no newest-first order, so this keeps every store (memory, SQLite,
//! PostgreSQL) as it is, gives an exact total, and costs one read per page; the cap bounds memory. When the
//! window holds more events than the cap, the result says so ([`AuditPage::truncated`]) and covers the oldest
//! `READ_CAP` of them: the agent narrows the time range.

use super::call::Call;
use super::{Agent, Engine, RequestContext};
use crate::denial::Denial;
use crate::policy::Permission;
use chrono::{DateTime, Utc};
use fctr_ports::{
    ActionKind, AuditQuery, EventKind, FactorKind, Outcome, PseudoId, Reason, SealedEvent,
    SubjectId, TicketRef, UserQuery,
};

/// How far back the audit view reads when no start is given and no person or ticket is filtered for.
const DEFAULT_LOOKBACK_HOURS: i64 = 24;

/// The order of an audit view.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuditSort {
    /// Newest first (the default).
    #[default]
    NewestFirst,
    /// Oldest first.
    OldestFirst,
}

/// Which events an agent asks to see, and which page of them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditViewQuery {
    /// Only this kind (every kind when `None`).
    pub kind: Option<EventKind>,
    /// Only this outcome (every outcome when `None`).
    pub outcome: Option<Outcome>,
    /// From this instant. Default: 24 hours ago; when an agent, a caller or a ticket is filtered for, the start
    /// of the retained log.
    pub since: Option<DateTime<Utc>>,
    /// Strictly before this instant (default: no end).
    pub until: Option<DateTime<Utc>>,
    /// Only events by this agent (pseudonym).
    pub agent: Option<PseudoId>,
    /// Only events about this caller (pseudonym).
    pub target: Option<PseudoId>,
    /// Only events naming this helpdesk ticket (exact match).
    pub ticket: Option<TicketRef>,
    /// The order.
    pub sort: AuditSort,
    /// How many matching events to skip (paging).
    pub offset: usize,
    /// How many events to return at most (clamped to [`AuditViewQuery::READ_CAP`]).
    pub limit: usize,
}

impl Default for AuditViewQuery {
    fn default() -> Self {
        Self {
            kind: None,
            outcome: None,
            since: None,
            until: None,
            agent: None,
            target: None,
            ticket: None,
            sort: AuditSort::NewestFirst,
            offset: 0,
            limit: Self::DEFAULT_LIMIT,
        }
    }
}

impl AuditViewQuery {
    /// The page size when none is given.
    pub const DEFAULT_LIMIT: usize = 50;
    /// Most events one view reads from the store (and so the most an export holds).
    pub const READ_CAP: usize = 10_000;

    /// Events of `kind` (every kind when `None`) between `since` and `until`, newest first, the first page.
    #[must_use]
    pub fn new(
        kind: Option<EventKind>,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> Self {
        Self {
            kind,
            since,
            until,
            ..Self::default()
        }
    }

    /// Whether an event passes the filters the store was not asked to apply.
    fn keeps(&self, e: &SealedEvent) -> bool {
        let e = &e.event;
        self.outcome.is_none_or(|o| e.outcome == o)
            && self
                .agent
                .as_ref()
                .is_none_or(|a| e.agent.as_ref() == Some(a))
            && self
                .target
                .as_ref()
                .is_none_or(|t| e.target.as_ref() == Some(t))
            && self
                .ticket
                .as_ref()
                .is_none_or(|t| e.ticket.as_ref() == Some(t))
    }
}

/// One audit event as an agent sees it: pseudonyms only, as the log holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditRow {
    /// When.
    pub at: DateTime<Utc>,
    /// What happened.
    pub kind: EventKind,
    /// How it ended.
    pub outcome: Outcome,
    /// The agent's pseudonym.
    pub agent: Option<PseudoId>,
    /// The caller's pseudonym.
    pub target: Option<PseudoId>,
    /// The factor kind involved.
    pub factor: Option<FactorKind>,
    /// The action involved.
    pub action: Option<ActionKind>,
    /// Why it was refused or failed.
    pub reason: Option<Reason>,
    /// The helpdesk ticket the agent named.
    pub ticket: Option<TicketRef>,
}

impl From<&SealedEvent> for AuditRow {
    fn from(s: &SealedEvent) -> Self {
        let e = &s.event;
        Self {
            at: e.at,
            kind: e.kind,
            outcome: e.outcome,
            agent: e.agent.clone(),
            target: e.target.clone(),
            factor: e.factor.clone(),
            action: e.action,
            reason: e.reason,
            ticket: e.ticket.clone(),
        }
    }
}

/// One page of an audit view.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditPage {
    /// The events of the page, in the order asked for.
    pub rows: Vec<AuditRow>,
    /// How many events match in all (of those read: see `truncated`).
    pub total: usize,
    /// The window holds more events than one view reads ([`AuditViewQuery::READ_CAP`]): only the oldest
    /// `READ_CAP` of them were read and filtered, so `total` may be short. Narrow the time range.
    pub truncated: bool,
    /// The start of the window that was read (the default when the query gave none).
    pub since: DateTime<Utc>,
}

impl Engine {
    /// One page of this tenant's audit events matching `query`, for an agent whose role has
    /// [`Permission::ViewAudit`] (see the module docs for how paging works). Not audited: reading the log is
    /// not an event in it.
    ///
    /// # Errors
    /// [`Reason::NotPermittedForRole`] (audited) when the agent's role, or the lack of one, does not allow it;
    /// [`Reason::AuditUnavailable`] when the log cannot be read.
    pub async fn audit_view(
        &self,
        agent: &Agent,
        ctx: &RequestContext,
        query: &AuditViewQuery,
    ) -> Result<AuditPage, Denial> {
        let c = Call::new(agent, ctx);
        self.may_view_audit(&c).await?;
        let about_someone =
            query.agent.is_some() || query.target.is_some() || query.ticket.is_some();
        let since = query.since.unwrap_or_else(|| {
            if about_someone {
                self.now() - self.retention.audit
            } else {
                self.now() - chrono::Duration::hours(DEFAULT_LOOKBACK_HOURS)
            }
        });
        let read = AuditQuery {
            tenant: Some(self.tenant.clone()),
            since: Some(since),
            until: query.until,
            kinds: query.kind.into_iter().collect(),
            // The store filters by one pseudonym as agent OR caller; the engine narrows it below.
            pseudonym: query.target.clone().or_else(|| query.agent.clone()),
            // One more than the cap tells that there are more.
            limit: Some(AuditViewQuery::READ_CAP + 1),
        };
        // Not audited: the log that would record the refusal is the one that cannot be read.
        let events = self
            .ports
            .audit
            .read(&read)
            .await
            .map_err(|_| Denial::new(Reason::AuditUnavailable))?;
        let truncated = events.len() > AuditViewQuery::READ_CAP;
        let mut kept: Vec<&SealedEvent> = events
            .iter()
            .take(AuditViewQuery::READ_CAP)
            .filter(|e| query.keeps(e))
            .collect();
        // Oldest first from the store (time, then chain order); reversed for newest first.
        if query.sort == AuditSort::NewestFirst {
            kept.reverse();
        }
        let limit = query.limit.min(AuditViewQuery::READ_CAP);
        let rows = kept
            .iter()
            .skip(query.offset)
            .take(limit)
            .map(|s| AuditRow::from(*s))
            .collect();
        Ok(AuditPage {
            rows,
            total: kept.len(),
            truncated,
            since,
        })
    }

    /// The pseudonym of the caller an auditor names by login or e-mail address (resolved through the directory:
    /// pseudonyms are keyed on the IdP's immutable user id) or by IdP user id (pseudonymized as given, so the
    /// events of a deleted user can still be found). The text is used for the one directory read and dropped: it
    /// reaches no log, event or error. A directory read is a lookup: counted against the agent's lookup quota
    /// and audited (`lookup`, about the resolved pseudonym) like a search.
    ///
    /// Only the current key's pseudonym is returned: events written under a retired key are not found this way.
    ///
    /// # Errors
    /// [`Reason::NotPermittedForRole`] (audited) without [`Permission::ViewAudit`]; [`Reason::InvalidInput`] for
    /// empty, over-long or malformed text; [`Reason::TargetNotFound`] (audited) when no user, or more than one,
    /// has that login; rate-limit, IdP and audit denials as for a search.
    pub async fn audit_caller_pseudonym(
        &self,
        agent: &Agent,
        ctx: &RequestContext,
        text: &str,
    ) -> Result<PseudoId, Denial> {
        let c = Call::new(agent, ctx);
        self.may_view_audit(&c).await?;
        let text = text.trim();
        if !text.contains('@') {
            let id = SubjectId::parse(text).map_err(|_| Denial::new(Reason::InvalidInput))?;
            return Ok(self.pseudo.subject(&id));
        }
        let query = UserQuery::login(text).map_err(|_| Denial::new(Reason::InvalidInput))?;
        self.lookup_quota(&c).await?;
        let users = self
            .idp_or_deny(&c, self.ports.idp.find_users(&query, 2).await)
            .await?;
        let [user] = users.as_slice() else {
            return Err(self.deny(&c, Reason::TargetNotFound).await);
        };
        let target = self.pseudo.subject(&user.id);
        let c = c.about(target.clone());
        self.must_append(&c, self.event(&c, EventKind::Lookup, Outcome::Success))
            .await?;
        Ok(target)
    }

    /// The agent's role allows viewing the audit log; otherwise an audited refusal. An agent without a role is
    /// refused like any other role that lacks the permission.
    pub(super) async fn may_view_audit(&self, c: &Call<'_>) -> Result<(), Denial> {
        let allowed = self
            .role_of(c.agent())
            .is_some_and(|r| self.policy.permits(r, Permission::ViewAudit));
        if allowed {
            Ok(())
        } else {
            Err(self.deny(c, Reason::NotPermittedForRole).await)
        }
    }
}
