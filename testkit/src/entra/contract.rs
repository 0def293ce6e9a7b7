//! Contract-suite drivers for the fake Entra: phone, TOTP codes, faults, clock and effects.

use super::{FakeEntra, Fault, PhoneAnswer as EntraAnswer};
use crate::contract::{CodeSource, FaultInjector, InjectedFault, Phone, PhoneAnswer, Upstream};
use async_trait::async_trait;
use fctr_ports::{FactorInfo, SubjectId};
use std::time::Duration;

#[async_trait]
impl Phone for FakeEntra {
    /// Answers the newest connector push (or call) to the user. Connector pushes carry a number only when they
    /// were sent asynchronously (`ValidEntropyNumber`); a sync push takes a plain approve.
    async fn answer(&self, subject: &SubjectId, answer: PhoneAnswer) -> Result<(), String> {
        let push = self
            .phones()
            .wait_for_push(subject.as_str(), Duration::from_secs(5))
            .await
            .ok_or_else(|| "no push arrived on the simulated phone".to_owned())?;
        let a = match answer {
            PhoneAnswer::Approve(n) => EntraAnswer::Approve {
                number: n.and_then(|n| u8::try_from(n).ok()),
            },
            PhoneAnswer::Deny => EntraAnswer::Deny,
            PhoneAnswer::Ignore => EntraAnswer::Ignore,
        };
        self.phones()
            .answer(&push.session_id, a)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

impl CodeSource for FakeEntra {
    fn current_code(&self, subject: &SubjectId, _factor: &FactorInfo) -> Option<String> {
        self.state().totp_now(subject.as_str())
    }
}

impl FaultInjector for FakeEntra {
    fn inject_on_get_user(&self, fault: InjectedFault, times: u32) {
        let f = match fault {
            InjectedFault::RateLimited(s) => Fault::RateLimited {
                reset_after_secs: s,
            },
            InjectedFault::Status(status) => Fault::ServerError { status },
            InjectedFault::MalformedBody => Fault::MalformedJson,
        };
        self.faults().set("GET /v1.0/users/{id}", f, Some(times));
    }

    fn clear(&self) {
        self.faults().clear();
    }
}

impl Upstream for FakeEntra {
    fn advance_clock(&self, seconds: i64) {
        self.state().advance_clock(seconds);
    }

    fn sessions_revoked(&self, subject: &SubjectId) -> Option<u64> {
        self.effects(subject.as_str())
            .map(|e| u64::from(e.sessions_revoked))
    }
}
