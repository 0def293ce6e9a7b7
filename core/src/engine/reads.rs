//! The reuse window: what the IdP said about a caller, kept in this process's memory for a few seconds so one
//! flow (the card, then the challenge, the confirmation and the action) reads each fact once.
//!
//! Every read of the caller's account, factors, groups and risk facts on the lookup, verify and act paths goes
//! through here. What the agent asks to see (the card, [`Engine::lookup`]) is read now and kept; the steps that
//! follow it (the challenge, the confirmation step of [`Engine::lookup_again`], the action's protected check)
//! reuse a fact younger than the window and read an older one again (and keep it). The approval reads nothing:
//! it judges by the class the verification began with. Nothing here is
//! written anywhere but this map: it never reaches a store, a log or another replica, and an entry is dropped at
//! most a second or so after its window ends (or when the map is full). After an action runs on a caller (or
//! fails), their entry is dropped, so the next card shows what the IdP says now. Reads that must be fresh by
//! design (the status check of the locked-out unlock, the agent's own groups at sign-in and re-check) do not come
//! here. The window is policy's `[verification] reuse_idp_reads_seconds`; zero turns reuse off.
//!
//! What it costs: the steps after the card act on facts at most one window old (the protected check of an action
//! uses groups read up to a window before it; the confirmation page shows the card as it was read).

use super::Engine;
use chrono::{DateTime, Utc};
use fctr_ports::{FactorInfo, GroupRef, PortError, RiskFacts, SubjectId, UserRecord};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Mutex, PoisonError};

/// Most callers held at once; past it, reads are simply not kept (a flood of lookups cannot grow memory).
const MAX_CALLERS: usize = 10_000;

/// How often expired entries are swept out (at most), in seconds.
const SWEEP_EVERY_SECS: i64 = 1;

/// One fact and when it was read.
type Stamped<T> = Option<(DateTime<Utc>, T)>;

/// What is known about one caller.
#[derive(Default)]
pub(crate) struct Facts {
    user: Stamped<UserRecord>,
    factors: Stamped<Vec<FactorInfo>>,
    groups: Stamped<Vec<GroupRef>>,
    risk: Stamped<RiskFacts>,
    /// When the caller's facts were last dropped (after an action): a read that started before then is not kept.
    cleared: Option<DateTime<Utc>>,
}

impl Facts {
    /// When the newest fact was read.
    fn newest(&self) -> Option<DateTime<Utc>> {
        [
            self.user.as_ref().map(|x| x.0),
            self.factors.as_ref().map(|x| x.0),
            self.groups.as_ref().map(|x| x.0),
            self.risk.as_ref().map(|x| x.0),
            self.cleared,
        ]
        .into_iter()
        .flatten()
        .max()
    }
}

/// The reuse window's map.
pub(crate) struct Reads {
    window: chrono::Duration,
    inner: Mutex<Inner>,
}

struct Inner {
    callers: HashMap<SubjectId, Facts>,
    swept: Option<DateTime<Utc>>,
}

impl Reads {
    pub(crate) fn new(window: chrono::Duration) -> Self {
        Self {
            window: window.max(chrono::Duration::zero()),
            inner: Mutex::new(Inner {
                callers: HashMap::new(),
                swept: None,
            }),
        }
    }

    fn fresh(&self, at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        at <= now && now - at < self.window
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Drops what is past its window, at most once a [`SWEEP_EVERY_SECS`].
    fn sweep(&self, inner: &mut Inner, now: DateTime<Utc>) {
        if inner
            .swept
            .is_some_and(|t| t <= now && now - t < chrono::Duration::seconds(SWEEP_EVERY_SECS))
        {
            return;
        }
        inner.swept = Some(now);
        inner
            .callers
            .retain(|_, f| f.newest().is_some_and(|t| self.fresh(t, now)));
    }

    /// Forgets everything about one caller, and refuses to keep a read of them that started before now (one
    /// still in flight when an action ran).
    pub(crate) fn forget(&self, subject: &SubjectId, now: DateTime<Utc>) {
        let mut inner = self.lock();
        if self.window.is_zero() {
            return;
        }
        inner.callers.insert(
            subject.clone(),
            Facts {
                cleared: Some(now),
                ..Facts::default()
            },
        );
    }

    /// How many callers have facts held now.
    pub(crate) fn len(&self) -> usize {
        self.lock()
            .callers
            .values()
            .filter(|f| {
                f.user.is_some() || f.factors.is_some() || f.groups.is_some() || f.risk.is_some()
            })
            .count()
    }
}

/// A fact type kept in [`Facts`].
pub(crate) trait Kept: Clone + Send + Sync {
    fn slot(f: &mut Facts) -> &mut Stamped<Self>;
}

impl Kept for UserRecord {
    fn slot(f: &mut Facts) -> &mut Stamped<Self> {
        &mut f.user
    }
}
impl Kept for Vec<FactorInfo> {
    fn slot(f: &mut Facts) -> &mut Stamped<Self> {
        &mut f.factors
    }
}
impl Kept for Vec<GroupRef> {
    fn slot(f: &mut Facts) -> &mut Stamped<Self> {
        &mut f.groups
    }
}
impl Kept for RiskFacts {
    fn slot(f: &mut Facts) -> &mut Stamped<Self> {
        &mut f.risk
    }
}

impl Reads {
    /// A fact about `subject` read less than the window before `now`.
    pub(crate) fn get<T: Kept>(&self, subject: &SubjectId, now: DateTime<Utc>) -> Option<T> {
        if self.window.is_zero() {
            return None;
        }
        let mut inner = self.lock();
        match T::slot(inner.callers.get_mut(subject)?) {
            Some((at, v)) if self.fresh(*at, now) => Some(v.clone()),
            _ => None,
        }
    }

    /// Keeps a fact whose read started at `started`; its age counts from then. Not kept when the caller's facts
    /// were dropped after the read started, or when the map is full.
    pub(crate) fn put<T: Kept>(
        &self,
        subject: &SubjectId,
        value: &T,
        started: DateTime<Utc>,
        now: DateTime<Utc>,
    ) {
        if self.window.is_zero() {
            return;
        }
        let mut inner = self.lock();
        self.sweep(&mut inner, now);
        if !inner.callers.contains_key(subject) && inner.callers.len() >= MAX_CALLERS {
            return;
        }
        let facts = inner.callers.entry(subject.clone()).or_default();
        if facts.cleared.is_some_and(|c| started <= c) {
            return;
        }
        *T::slot(facts) = Some((started, value.clone()));
    }
}

impl Engine {
    /// A fact about `subject`: from the reuse window when it holds one (and `reuse`), otherwise read by `fetch`
    /// and kept.
    pub(crate) async fn read_fact<T, F>(
        &self,
        subject: &SubjectId,
        reuse: bool,
        fetch: F,
    ) -> Result<T, PortError>
    where
        T: Kept,
        F: Future<Output = Result<T, PortError>>,
    {
        let started = self.now();
        if let Some(v) = reuse
            .then(|| self.reads.get::<T>(subject, started))
            .flatten()
        {
            return Ok(v);
        }
        let v = fetch.await?;
        self.reads.put(subject, &v, started, self.now());
        Ok(v)
    }

    /// The caller's account, factors, groups and risk facts for the card, read side by side: all read now (and
    /// kept) unless `reuse`, when what the window holds is reused.
    pub(crate) async fn caller_facts(
        &self,
        subject: &SubjectId,
        reuse: bool,
    ) -> Result<(UserRecord, Vec<FactorInfo>, Vec<GroupRef>, RiskFacts), PortError> {
        let idp = &self.ports.idp;
        futures::future::try_join4(
            self.read_fact(subject, reuse, idp.get_user(subject)),
            self.read_fact(subject, reuse, idp.list_factors(subject)),
            self.read_fact(subject, reuse, idp.groups(subject)),
            self.read_fact(subject, reuse, idp.risk_facts(subject)),
        )
        .await
    }

    /// The caller's groups (the protected check and the class), reused within the window.
    pub(crate) async fn caller_groups(
        &self,
        subject: &SubjectId,
    ) -> Result<Vec<GroupRef>, PortError> {
        self.read_fact(subject, true, self.ports.idp.groups(subject))
            .await
    }

    /// The caller's factors (choosing what to challenge), reused within the window.
    pub(crate) async fn caller_factors(
        &self,
        subject: &SubjectId,
    ) -> Result<Vec<FactorInfo>, PortError> {
        self.read_fact(subject, true, self.ports.idp.list_factors(subject))
            .await
    }

    /// How many callers the reuse window holds now.
    #[must_use]
    pub fn callers_in_reuse_window(&self) -> usize {
        self.reads.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::TimeZone as _;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::seconds(secs)
    }

    fn groups(name: &str) -> Vec<GroupRef> {
        vec![GroupRef {
            id: format!("g-{name}"),
            name: name.to_owned(),
        }]
    }

    fn bob() -> SubjectId {
        SubjectId::parse("00ubob").unwrap()
    }

    #[test]
    fn a_fact_is_reused_only_inside_its_window_counted_from_the_start_of_its_read() {
        let r = Reads::new(chrono::Duration::seconds(30));
        r.put(&bob(), &groups("staff"), t(0), t(2));
        assert_eq!(r.get::<Vec<GroupRef>>(&bob(), t(29)), Some(groups("staff")));
        assert_eq!(
            r.get::<Vec<GroupRef>>(&bob(), t(30)),
            None,
            "30 s after the read began"
        );
        assert_eq!(
            r.get::<Vec<FactorInfo>>(&bob(), t(1)),
            None,
            "another fact was never read"
        );
        assert_eq!(
            r.get::<Vec<GroupRef>>(&SubjectId::parse("00ualice").unwrap(), t(1)),
            None,
            "another caller"
        );
        // A clock that went back never makes an old read look fresh.
        assert_eq!(r.get::<Vec<GroupRef>>(&bob(), t(-1)), None);
    }

    #[test]
    fn a_zero_window_keeps_nothing() {
        let r = Reads::new(chrono::Duration::zero());
        r.put(&bob(), &groups("staff"), t(0), t(0));
        assert_eq!(r.get::<Vec<GroupRef>>(&bob(), t(0)), None);
        assert_eq!(r.len(), 0);
        let negative = Reads::new(chrono::Duration::seconds(-5));
        negative.put(&bob(), &groups("staff"), t(0), t(0));
        assert_eq!(negative.get::<Vec<GroupRef>>(&bob(), t(0)), None);
    }

    #[test]
    fn after_an_action_a_read_that_started_before_it_is_not_kept() {
        let r = Reads::new(chrono::Duration::seconds(30));
        r.put(&bob(), &groups("staff"), t(0), t(0));
        // A read starts at 5, the action runs and drops the caller at 6, the read ends at 7 with what it saw.
        r.forget(&bob(), t(6));
        assert_eq!(r.get::<Vec<GroupRef>>(&bob(), t(6)), None);
        r.put(&bob(), &groups("before-the-action"), t(5), t(7));
        assert_eq!(r.get::<Vec<GroupRef>>(&bob(), t(7)), None);
        r.put(&bob(), &groups("after"), t(8), t(8));
        assert_eq!(r.get::<Vec<GroupRef>>(&bob(), t(9)), Some(groups("after")));
    }

    #[test]
    fn memory_is_bounded_and_expired_callers_are_swept() {
        let r = Reads::new(chrono::Duration::seconds(30));
        for i in 0..MAX_CALLERS + 50 {
            let s = SubjectId::parse(format!("00u{i}")).unwrap();
            r.put(&s, &groups("staff"), t(0), t(0));
        }
        assert_eq!(r.len(), MAX_CALLERS, "past the bound, reads are not kept");
        // Once their window is over, the next write sweeps them out.
        r.put(&bob(), &groups("staff"), t(40), t(40));
        assert_eq!(r.len(), 1);
    }
}
