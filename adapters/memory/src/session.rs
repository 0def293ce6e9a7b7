//! The in-memory session store (one portal process).

use crate::sync::lock;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use fctr_ports::{
    Clock, PortError, PreLogin, Session, SessionStore, SubjectId, Timeouts, VerificationId,
    to_chrono,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Tables {
    sessions: HashMap<String, Session>,
    /// Removed session ids, with when their tombstone may go.
    tombstones: HashMap<String, DateTime<Utc>>,
    pre_login: HashMap<String, PreLogin>,
}

/// Sessions and pre-login state in this process's memory. One mutex over all tables makes every operation
/// atomic; it is never held across an `.await`. Single node only: a second replica sees none of it.
pub struct MemorySessionStore {
    clock: Arc<dyn Clock>,
    timeouts: Timeouts,
    inner: Mutex<Tables>,
}

impl std::fmt::Debug for MemorySessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemorySessionStore")
    }
}

impl MemorySessionStore {
    /// An empty store; `clock` and `timeouts` decide when entries are dropped.
    #[must_use]
    pub fn new(clock: Arc<dyn Clock>, timeouts: Timeouts) -> Self {
        Self {
            clock,
            timeouts,
            inner: Mutex::new(Tables::default()),
        }
    }

    /// Tombstones currently kept (tests: made-up ids must not grow the store).
    #[must_use]
    pub fn tombstones(&self) -> usize {
        lock(&self.inner).tombstones.len()
    }

    fn sweep(&self, g: &mut Tables) {
        let now = self.clock.now();
        let t = self.timeouts;
        let expired: Vec<String> = g
            .sessions
            .iter()
            .filter(|(_, s)| !s.is_live(now, t))
            .map(|(k, _)| k.clone())
            .collect();
        for id in expired {
            g.sessions.remove(&id);
            g.tombstones.insert(id, now + to_chrono(t.absolute));
        }
        g.tombstones.retain(|_, until| *until > now);
        let pre = to_chrono(t.pre_login);
        g.pre_login.retain(|_, p| now - p.created < pre);
    }

    /// Runs `f` on the live stored session `id` (bumping its version when `f` returns `Some`); a timed-out
    /// session is removed first.
    fn update<T>(&self, id: &str, f: impl FnOnce(&mut Session) -> Option<T>) -> Option<T> {
        let mut g = lock(&self.inner);
        let now = self.clock.now();
        let live = g.sessions.get(id)?.is_live(now, self.timeouts);
        if !live {
            g.sessions.remove(id);
            g.tombstones
                .insert(id.to_owned(), now + to_chrono(self.timeouts.absolute));
            return None;
        }
        let s = g.sessions.get_mut(id)?;
        let out = f(s)?;
        s.version += 1;
        Some(out)
    }
}

#[async_trait]
impl SessionStore for MemorySessionStore {
    async fn create(&self, session: &Session) -> Result<bool, PortError> {
        let mut g = lock(&self.inner);
        self.sweep(&mut g);
        if g.sessions.contains_key(&session.id) || g.tombstones.contains_key(&session.id) {
            return Ok(false);
        }
        g.sessions.insert(session.id.clone(), session.clone());
        Ok(true)
    }

    async fn get(&self, id: &str) -> Result<Option<Session>, PortError> {
        let g = lock(&self.inner);
        let now = self.clock.now();
        Ok(g.sessions
            .get(id)
            .filter(|s| s.is_live(now, self.timeouts))
            .cloned())
    }

    async fn touch(&self, id: &str) -> Result<Option<Session>, PortError> {
        let now = self.clock.now();
        Ok(self
            .update(id, |s| {
                s.last_seen = now;
                Some(())
            })
            .and_then(|()| lock(&self.inner).sessions.get(id).cloned()))
    }

    async fn add_caller(
        &self,
        id: &str,
        subject: &SubjectId,
        new_handle: &str,
    ) -> Result<Option<String>, PortError> {
        Ok(self.update(id, |s| {
            if let Some(h) = s.handle_of(subject) {
                return Some(h.to_owned());
            }
            s.callers.insert(new_handle.to_owned(), subject.clone());
            Some(new_handle.to_owned())
        }))
    }

    async fn add_verification(
        &self,
        id: &str,
        vid: VerificationId,
        handle: &str,
    ) -> Result<bool, PortError> {
        Ok(self
            .update(id, |s| {
                s.verifications.insert(vid, handle.to_owned());
                Some(())
            })
            .is_some())
    }

    async fn set_role(
        &self,
        id: &str,
        role: Option<String>,
        checked_at: DateTime<Utc>,
    ) -> Result<bool, PortError> {
        Ok(self
            .update(id, |s| {
                if checked_at < s.role_checked {
                    return None;
                }
                s.role = role;
                s.role_checked = checked_at;
                Some(())
            })
            .is_some())
    }

    async fn remove(&self, id: &str) -> Result<(), PortError> {
        let mut g = lock(&self.inner);
        if g.sessions.remove(id).is_some() {
            let until = self.clock.now() + to_chrono(self.timeouts.absolute);
            g.tombstones.insert(id.to_owned(), until);
        }
        Ok(())
    }

    async fn put_pre_login(&self, key: &str, pre: &PreLogin) -> Result<(), PortError> {
        let mut g = lock(&self.inner);
        self.sweep(&mut g);
        g.pre_login.insert(key.to_owned(), pre.clone());
        Ok(())
    }

    async fn take_pre_login(&self, key: &str) -> Result<Option<PreLogin>, PortError> {
        let now = self.clock.now();
        let pre = lock(&self.inner).pre_login.remove(key);
        let max = to_chrono(self.timeouts.pre_login);
        Ok(pre.filter(|p| now - p.created < max))
    }

    async fn len(&self) -> Result<usize, PortError> {
        let now = self.clock.now();
        let g = lock(&self.inner);
        Ok(g.sessions
            .values()
            .filter(|s| s.is_live(now, self.timeouts))
            .count())
    }
}
