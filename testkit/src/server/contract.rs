//! The contract-suite drivers for any running fake: its simulated phone, its TOTP codes, fault injection on
//! "get user", its clock and the sessions-revoked counter.

use std::time::Duration;

use async_trait::async_trait;
use fctr_ports::{FactorInfo, SubjectId};

use super::control::{Pending as _, Tenant};
use super::fault::Fault;
use super::phones::{self, PhoneAnswer as Answer};
use super::serve::FakeServer;
use crate::contract::{CodeSource, FaultInjector, InjectedFault, Phone, PhoneAnswer, Upstream};

/// Answers the newest push (or call) to the user. The fake Entra's connector pushes carry a number only when
/// they were sent asynchronously (`ValidEntropyNumber`); a sync push takes a plain approve.
#[async_trait]
impl<S: Tenant> Phone for FakeServer<S> {
    async fn answer(&self, subject: &SubjectId, answer: PhoneAnswer) -> Result<(), String> {
        let st = self.state();
        let push = phones::wait_for(
            || st.pending_pushes(),
            |p| S::push_to(p, subject.as_str()),
            Duration::from_secs(5),
        )
        .await
        .ok_or_else(|| "no push arrived on the simulated phone".to_owned())?;
        let a = match answer {
            PhoneAnswer::Approve(n) => Answer::Approve {
                number: n.and_then(|n| u8::try_from(n).ok()),
            },
            PhoneAnswer::Deny => Answer::Deny,
            PhoneAnswer::Ignore => Answer::Ignore,
        };
        st.answer_push(push.id(), a)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

impl<S: Tenant> CodeSource for FakeServer<S> {
    fn current_code(&self, subject: &SubjectId, _factor: &FactorInfo) -> Option<String> {
        self.state().totp_code(subject.as_str())
    }
}

impl<S: Tenant> FaultInjector for FakeServer<S> {
    fn inject_on_get_user(&self, fault: InjectedFault, times: u32) {
        let f = match fault {
            InjectedFault::RateLimited(s) => Fault::RateLimited {
                reset_after_secs: s,
            },
            InjectedFault::Status(status) => Fault::ServerError { status },
            InjectedFault::MalformedBody => Fault::MalformedJson,
        };
        Tenant::faults(self.state()).set(S::GET_USER_ROUTE, f, Some(times));
    }

    fn clear(&self) {
        Tenant::faults(self.state()).clear();
    }
}

impl<S: Tenant> Upstream for FakeServer<S> {
    fn advance_clock(&self, seconds: i64) {
        self.state().core().clock.advance(seconds);
    }

    fn sessions_revoked(&self, subject: &SubjectId) -> Option<u64> {
        Tenant::sessions_revoked(self.state(), subject.as_str())
    }
}
