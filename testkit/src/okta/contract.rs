//! Contract-suite drivers for the fake Okta: phone, TOTP codes, faults, clock and effects.

use super::{FakeOkta, Fault, PhoneAnswer as OktaAnswer};
use crate::contract::{CodeSource, FaultInjector, InjectedFault, Phone, PhoneAnswer, Upstream};
use async_trait::async_trait;
use fctr_ports::{FactorInfo, SubjectId};
use std::time::Duration;

#[async_trait]
impl Phone for FakeOkta {
    async fn answer(&self, subject: &SubjectId, answer: PhoneAnswer) -> Result<(), String> {
        let push = self
            .phones()
            .wait_for_push(subject.as_str(), Duration::from_secs(5))
            .await
            .ok_or_else(|| "no push arrived on the simulated phone".to_owned())?;
        let a = match answer {
            PhoneAnswer::Approve(n) => OktaAnswer::Approve {
                number: n.and_then(|n| u8::try_from(n).ok()),
            },
            PhoneAnswer::Deny => OktaAnswer::Deny,
            PhoneAnswer::Ignore => OktaAnswer::Ignore,
        };
        self.phones()
            .answer(&push.transaction_id, a)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

impl CodeSource for FakeOkta {
    fn current_code(&self, subject: &SubjectId, _factor: &FactorInfo) -> Option<String> {
        self.state().totp_now(subject.as_str())
    }
}

impl FaultInjector for FakeOkta {
    fn inject_on_get_user(&self, fault: InjectedFault, times: u32) {
        let f = match fault {
            InjectedFault::RateLimited(s) => Fault::RateLimited {
                reset_after_secs: s,
            },
            InjectedFault::Status(status) => Fault::ServerError { status },
            InjectedFault::MalformedBody => Fault::MalformedJson,
        };
        self.faults().set("GET /api/v1/users/{id}", f, Some(times));
    }

    fn clear(&self) {
        self.faults().clear();
    }
}

impl Upstream for FakeOkta {
    fn advance_clock(&self, seconds: i64) {
        self.state().advance_clock(seconds);
    }

    fn sessions_revoked(&self, subject: &SubjectId) -> Option<u64> {
        self.effects(subject.as_str())
            .map(|e| u64::from(e.sessions_revoked))
    }
}
