//! mockall mocks of every port (feature `mock`). Single-trait mocks come from `#[automock]`; the composite
//! [`MockIdentityProvider`] is built here.

pub use crate::alert::MockAlertSink;
pub use crate::approval::MockApprovalStore;
pub use crate::changes::MockChangeFeed;
pub use crate::ports::{
    MockAuditLog, MockChallenger, MockClock, MockDirectory, MockGrantStore, MockLifecycle,
    MockRateLimiter, MockUsageLedger,
};

use crate::action::{Action, ActionReceipt};
use crate::challenge::{ChallengeContext, ChallengeState, ChallengeTicket, CodeVerdict};
use crate::directory::{FactorInfo, RiskFacts, UserQuery, UserRecord};
use crate::error::PortError;
use crate::ids::{GroupRef, SubjectId};
use crate::ports::{Capabilities, Challenger, Directory, IdentityProvider, Lifecycle};
use async_trait::async_trait;
use secrecy::SecretString;

mockall::mock! {
    /// A mock of a whole identity provider.
    pub IdentityProvider {}

    #[async_trait]
    impl Directory for IdentityProvider {
        async fn find_users(&self, query: &UserQuery, limit: usize) -> Result<Vec<UserRecord>, PortError>;
        async fn get_user(&self, id: &SubjectId) -> Result<UserRecord, PortError>;
        async fn list_factors(&self, id: &SubjectId) -> Result<Vec<FactorInfo>, PortError>;
        async fn groups(&self, id: &SubjectId) -> Result<Vec<GroupRef>, PortError>;
        async fn risk_facts(&self, id: &SubjectId) -> Result<RiskFacts, PortError>;
    }

    #[async_trait]
    impl Challenger for IdentityProvider {
        async fn start(
            &self,
            subject: &SubjectId,
            factor: &FactorInfo,
            context: &ChallengeContext,
        ) -> Result<ChallengeTicket, PortError>;
        async fn poll(&self, ticket: &ChallengeTicket) -> Result<ChallengeState, PortError>;
        async fn verify_code(
            &self,
            subject: &SubjectId,
            factor: &FactorInfo,
            code: SecretString,
        ) -> Result<CodeVerdict, PortError>;
    }

    #[async_trait]
    impl Lifecycle for IdentityProvider {
        async fn execute(&self, subject: &SubjectId, action: &Action) -> Result<ActionReceipt, PortError>;
    }

    #[async_trait]
    impl IdentityProvider for IdentityProvider {
        fn capabilities(&self) -> Capabilities;
    }
}
