//! A scripted in-process identity provider: users, factors and groups you add, push outcomes you script, codes
//! you set. For embedding examples, engine tests and benchmarks; not a fake of any real IdP's wire format (the
//! testkit's fake Okta and fake Entra are). It lives in the testkit, not in a store crate, so that no production
//! build ships a test double.

use async_trait::async_trait;
use chrono::{Duration, Utc};
use fctr_ports::{
    Action, ActionKind, ActionReceipt, Capabilities, ChallengeContext, ChallengeHandle,
    ChallengeState, ChallengeTicket, Challenger, Clock, CodeVerdict, Directory, ExposeSecret,
    FactorInfo, GroupRef, IdentityProvider, Lifecycle, OneTimeSecret, PortError, RiskFacts,
    SecretKind, SecretString, SubjectId, SystemClock, UserQuery, UserRecord,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

/// One scripted user.
#[derive(Debug, Clone)]
pub struct ScriptedUser {
    /// The account.
    pub record: UserRecord,
    /// Enrolled factors.
    pub factors: Vec<FactorInfo>,
    /// Groups.
    pub groups: Vec<GroupRef>,
    /// Risk facts.
    pub risk: RiskFacts,
}

/// A method of the identity provider, for failure injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum IdpMethod {
    /// `find_users`.
    FindUsers,
    /// `get_user`.
    GetUser,
    /// `list_factors`.
    ListFactors,
    /// `groups`.
    Groups,
    /// `risk_facts`.
    RiskFacts,
    /// `start`.
    Start,
    /// `poll`.
    Poll,
    /// `verify_code`.
    VerifyCode,
    /// `execute`.
    Execute,
}

#[derive(Default)]
struct State {
    users: BTreeMap<SubjectId, ScriptedUser>,
    push_script: Vec<ChallengeState>,
    tickets: BTreeMap<String, VecDeque<ChallengeState>>,
    codes: BTreeMap<(SubjectId, String), String>,
    failing: BTreeSet<IdpMethod>,
    executed: Vec<(SubjectId, Action)>,
    next_ticket: u64,
    number: Option<u16>,
}

/// A scripted identity provider. See the module docs.
pub struct ScriptedIdp {
    state: Mutex<State>,
    caps: Capabilities,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for ScriptedIdp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedIdp")
            .field("caps", &self.caps)
            .finish_non_exhaustive()
    }
}

impl Default for ScriptedIdp {
    fn default() -> Self {
        Self::new()
    }
}

impl ScriptedIdp {
    /// An empty provider with push (number matching), code checks and every action, on the system clock.
    /// Pushes are approved on the second poll unless scripted otherwise.
    #[must_use]
    pub fn new() -> Self {
        let caps = Capabilities {
            provider: "scripted".to_owned(),
            push: true,
            push_number_matching: true,
            code_verification: true,
            name_search: true,
            actions: ActionKind::ALL.into_iter().collect(),
        };
        Self {
            state: Mutex::new(State {
                push_script: vec![ChallengeState::Waiting, ChallengeState::Approved],
                number: Some(42),
                ..State::default()
            }),
            caps,
            clock: Arc::new(SystemClock),
        }
    }

    /// Replaces the capabilities.
    #[must_use]
    pub fn with_capabilities(mut self, caps: Capabilities) -> Self {
        self.caps = caps;
        self
    }

    /// Uses `clock` for ticket expiry.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds (or replaces) a user.
    pub fn add_user(&self, user: ScriptedUser) {
        self.lock().users.insert(user.record.id.clone(), user);
    }

    /// Sets a user's account status (and the locked-out risk fact with it); an unlock sets it back to active.
    pub fn set_status(&self, subject: &SubjectId, status: fctr_ports::AccountStatus) {
        if let Some(u) = self.lock().users.get_mut(subject) {
            u.risk.locked_out = status == fctr_ports::AccountStatus::LockedOut;
            u.record.status = status;
        }
    }

    /// What the polls of every later push answer, in order (the last answer repeats).
    pub fn script_push(&self, answers: impl IntoIterator<Item = ChallengeState>) {
        self.lock().push_script = answers.into_iter().collect();
    }

    /// The number later pushes carry.
    pub fn set_number(&self, number: u16) {
        self.lock().number = Some(number);
    }

    /// Later pushes come back with no number challenge, although the capabilities may claim number matching (an
    /// Okta org whose Okta Verify does not send one).
    pub fn send_pushes_without_number(&self) {
        self.lock().number = None;
    }

    /// The code `verify_code` accepts (once) for a user's factor.
    pub fn set_code(&self, subject: &SubjectId, factor: &fctr_ports::FactorId, code: &str) {
        self.lock().codes.insert(
            (subject.clone(), factor.as_str().to_owned()),
            code.to_owned(),
        );
    }

    /// Makes a method fail with [`PortError::Unavailable`] (or stop failing).
    pub fn fail(&self, method: IdpMethod, failing: bool) {
        let mut s = self.lock();
        if failing {
            s.failing.insert(method);
        } else {
            s.failing.remove(&method);
        }
    }

    /// Action kinds run so far, per user.
    #[must_use]
    pub fn executed(&self) -> Vec<(SubjectId, ActionKind)> {
        self.lock()
            .executed
            .iter()
            .map(|(s, a)| (s.clone(), a.kind()))
            .collect()
    }

    /// Actions run so far, with their parameters.
    #[must_use]
    pub fn executed_actions(&self) -> Vec<(SubjectId, Action)> {
        self.lock().executed.clone()
    }

    fn check(&self, m: IdpMethod) -> Result<(), PortError> {
        if self.lock().failing.contains(&m) {
            Err(PortError::Unavailable)
        } else {
            Ok(())
        }
    }

    fn user(&self, id: &SubjectId) -> Result<ScriptedUser, PortError> {
        self.lock()
            .users
            .get(id)
            .cloned()
            .ok_or(PortError::NotFound)
    }
}

#[async_trait]
impl Directory for ScriptedIdp {
    async fn find_users(
        &self,
        query: &UserQuery,
        limit: usize,
    ) -> Result<Vec<UserRecord>, PortError> {
        self.check(IdpMethod::FindUsers)?;
        let text = query.text().expose_pii().to_lowercase();
        let s = self.lock();
        Ok(s.users
            .values()
            .filter(|u| match query {
                UserQuery::Login(_) => u.record.login.expose_pii().to_lowercase() == text,
                UserQuery::Email(_) => u
                    .record
                    .email
                    .as_ref()
                    .is_some_and(|e| e.expose_pii().to_lowercase() == text),
                _ => u
                    .record
                    .display_name
                    .as_ref()
                    .is_some_and(|n| n.expose_pii().to_lowercase().starts_with(&text)),
            })
            .take(limit)
            .map(|u| u.record.clone())
            .collect())
    }

    async fn get_user(&self, id: &SubjectId) -> Result<UserRecord, PortError> {
        self.check(IdpMethod::GetUser)?;
        Ok(self.user(id)?.record)
    }

    async fn list_factors(&self, id: &SubjectId) -> Result<Vec<FactorInfo>, PortError> {
        self.check(IdpMethod::ListFactors)?;
        Ok(self.user(id)?.factors)
    }

    async fn groups(&self, id: &SubjectId) -> Result<Vec<GroupRef>, PortError> {
        self.check(IdpMethod::Groups)?;
        Ok(self.user(id)?.groups)
    }

    async fn risk_facts(&self, id: &SubjectId) -> Result<RiskFacts, PortError> {
        self.check(IdpMethod::RiskFacts)?;
        Ok(self.user(id)?.risk)
    }
}

#[async_trait]
impl Challenger for ScriptedIdp {
    async fn start(
        &self,
        subject: &SubjectId,
        factor: &FactorInfo,
        _context: &ChallengeContext,
    ) -> Result<ChallengeTicket, PortError> {
        self.check(IdpMethod::Start)?;
        let user = self.user(subject)?;
        if !user.factors.iter().any(|f| f.id == factor.id) {
            return Err(PortError::NotFound);
        }
        let mut s = self.lock();
        s.next_ticket += 1;
        let handle = format!("ticket-{}", s.next_ticket);
        let script: VecDeque<ChallengeState> = s.push_script.iter().cloned().collect();
        s.tickets.insert(handle.clone(), script);
        let number = s.number.filter(|_| self.caps.push_number_matching);
        Ok(ChallengeTicket {
            factor: factor.id.clone(),
            handle: ChallengeHandle::new(handle),
            number,
            expires_at: self.clock.now() + Duration::minutes(5),
        })
    }

    async fn poll(&self, ticket: &ChallengeTicket) -> Result<ChallengeState, PortError> {
        self.check(IdpMethod::Poll)?;
        let mut s = self.lock();
        let Some(queue) = s.tickets.get_mut(ticket.handle.as_str()) else {
            return Ok(ChallengeState::TimedOut);
        };
        let answer = if queue.len() > 1 {
            queue.pop_front()
        } else {
            queue.front().cloned()
        };
        Ok(answer.unwrap_or(ChallengeState::TimedOut))
    }

    async fn verify_code(
        &self,
        subject: &SubjectId,
        factor: &FactorInfo,
        code: SecretString,
    ) -> Result<CodeVerdict, PortError> {
        self.check(IdpMethod::VerifyCode)?;
        let mut s = self.lock();
        let key = (subject.clone(), factor.id.as_str().to_owned());
        match s.codes.get(&key) {
            Some(expected) if expected.as_str() == code.expose_secret() => {
                s.codes.remove(&key);
                Ok(CodeVerdict::Accepted)
            }
            _ => Ok(CodeVerdict::Wrong),
        }
    }
}

#[async_trait]
impl Lifecycle for ScriptedIdp {
    async fn execute(
        &self,
        subject: &SubjectId,
        action: &Action,
    ) -> Result<ActionReceipt, PortError> {
        self.check(IdpMethod::Execute)?;
        self.user(subject)?;
        if !self.caps.actions.contains(&action.kind()) {
            return Err(PortError::Unsupported);
        }
        {
            let mut st = self.lock();
            st.executed.push((subject.clone(), action.clone()));
            if matches!(action, Action::Unlock) {
                if let Some(u) = st.users.get_mut(subject) {
                    u.risk.locked_out = false;
                    u.record.status = fctr_ports::AccountStatus::Active;
                }
            }
        }
        let secret = |kind, value: &str| {
            Some(OneTimeSecret {
                kind,
                value: SecretString::from(value.to_owned()),
                expires_at: Some(Utc::now()),
            })
        };
        let receipt = match action {
            Action::ResetPassword { send_email: false } => ActionReceipt {
                kind: action.kind(),
                secret: secret(
                    SecretKind::ResetLink,
                    "https://idp.invalid/reset/scripted-one-time-link",
                ),
                emailed: false,
            },
            Action::ResetPassword { send_email: true } => ActionReceipt {
                kind: action.kind(),
                secret: None,
                emailed: true,
            },
            Action::ExpirePassword => ActionReceipt {
                kind: action.kind(),
                secret: secret(SecretKind::TemporaryPassword, "Scripted-Temp-1"),
                emailed: false,
            },
            Action::IssueTemporaryAccessPass { .. } => ActionReceipt {
                kind: action.kind(),
                secret: secret(SecretKind::TemporaryAccessPass, "SCRIPTEDTAP"),
                emailed: false,
            },
            _ => ActionReceipt::done(action.kind()),
        };
        Ok(receipt)
    }
}

impl IdentityProvider for ScriptedIdp {
    fn capabilities(&self) -> Capabilities {
        self.caps.clone()
    }
}
