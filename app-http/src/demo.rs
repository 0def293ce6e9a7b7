//! Demo mode (feature `demo`): a complete [`AppState`] with no configuration at all: the testkit's fake Okta
//! in-process on loopback, fake people, a random pseudonymization key. The engine and stores come from the same
//! [`fctr_wiring::Stack`] as in production ([`crate::startup`]); only the parts differ.

use crate::metrics::{CountingAudit, CountingIdp};
use crate::oidc::{JwksRefresh, OidcSettings};
use crate::poller::PollSettings;
use crate::session::Timeouts;
use crate::startup::{assemble, callback, start};
use crate::state::{AppState, DemoInfo, Settings};
use fctr_core::policy::Policy;
use fctr_core::{Pseudonymizer, Retention};
use fctr_okta::{OktaAdapter, OktaAuth, OktaConfig};
use fctr_ports::{Clock, Egress, IdentityProvider, KeyId, SecretString, SystemClock, TenantId};
use fctr_testkit::okta::{FakeOkta, FakeOktaOptions};
use fctr_wiring::{Stack, StackParts, Stores};

pub use crate::startup::BuildError;
use rand::RngCore as _;
use std::path::PathBuf;
use std::sync::Arc;
use url::Url;

/// Demo options.
pub struct DemoOptions {
    /// Where agents will reach the portal (its `/auth/callback` is registered with the fake).
    pub public_url: Url,
    /// Directory for the SQLite audit file; `None` keeps audit in memory (tests).
    pub data_dir: Option<PathBuf>,
    /// The clock (tests pass a manual clock).
    pub clock: Arc<dyn Clock>,
    /// Poller timing.
    pub poll: PollSettings,
    /// Session timeouts.
    pub timeouts: Timeouts,
    /// Options for the fake Okta.
    pub fake: FakeOktaOptions,
    /// Refuse agent ID tokens without MFA in `amr`.
    pub require_mfa: bool,
    /// The network edge (default: loopback and private ranges allowed, default limits).
    pub edge: crate::edge::EdgeSettings,
    /// Wraps the IdP adapter before the engine gets it (tests: a wrapper that pauses or fails a chosen call).
    pub wrap_idp: Option<IdpWrapper>,
    /// Adjusts the fake's OIDC app and the portal's sign-in settings before the portal discovers the issuer
    /// (tests of the sign-in variants: groups at userinfo, EdDSA, client authentication methods).
    pub sign_in: Option<SignInHook>,
    /// The path to the fake IdP (Okta adapter and agent sign-in alike); default direct.
    pub egress: Egress,
    /// Where alerts are delivered (tests: a webhook to a local receiver); `None`: audited only.
    pub alerts: Option<Arc<dyn fctr_ports::AlertSink>>,
    /// The policy (default: the built-in one).
    pub policy: Option<Policy>,
    /// Ticket write-back (tests: an adapter against a fake ticket system); none by default.
    pub tickets: Option<(Arc<dyn fctr_ports::TicketSink>, fctr_wiring::NoteRetry)>,
    /// Read the fake's System Log for the auditors' out-of-band page (default); `false` runs the portal as for
    /// an IdP without a change log (tests of that page).
    pub change_feed: bool,
    /// Wraps the change log reader (tests: one that pauses the read).
    pub wrap_feed: Option<FeedWrapper>,
    /// Look for out-of-band changes on this schedule (tests: every few hundred milliseconds); none by default.
    pub out_of_band: Option<fctr_wiring::OutOfBandSchedule>,
    /// Offer verification by IdP sign-in through the fake's own sign-in page (`redirect_uri` is filled in from
    /// the public URL and registered on the fake); `None` by default. Policy must accept `idp_sign_in` too.
    pub caller_sign_in: Option<(crate::oidc::CallerAuth, fctr_core::SignInLinks)>,
}

/// A function that wraps the change log reader ([`DemoOptions::wrap_feed`]).
pub type FeedWrapper =
    Box<dyn FnOnce(Arc<dyn fctr_ports::ChangeFeed>) -> Arc<dyn fctr_ports::ChangeFeed> + Send>;

/// A function that adjusts the sign-in ([`DemoOptions::sign_in`]).
pub type SignInHook = Box<dyn FnOnce(&FakeOkta, &mut OidcSettings) + Send>;

/// A function that wraps the IdP adapter ([`DemoOptions::wrap_idp`]).
pub type IdpWrapper =
    Box<dyn FnOnce(Arc<dyn IdentityProvider>) -> Arc<dyn IdentityProvider> + Send>;

impl std::fmt::Debug for DemoOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoOptions")
            .field("public_url", &self.public_url.as_str())
            .finish_non_exhaustive()
    }
}

impl DemoOptions {
    /// Defaults for a portal at `public_url`: memory audit, system clock, default timings.
    #[must_use]
    pub fn new(public_url: Url) -> Self {
        Self {
            public_url,
            data_dir: None,
            clock: Arc::new(SystemClock),
            poll: PollSettings::default(),
            timeouts: Timeouts::default(),
            fake: FakeOktaOptions::default(),
            require_mfa: false,
            edge: crate::edge::EdgeSettings::default(),
            wrap_idp: None,
            sign_in: None,
            egress: Egress::direct(),
            alerts: None,
            policy: None,
            tickets: None,
            change_feed: true,
            wrap_feed: None,
            out_of_band: None,
            caller_sign_in: None,
        }
    }
}

/// A running demo stack.
pub struct Demo {
    /// The portal state.
    pub state: AppState,
    /// The fake Okta (phones, fixtures, OIDC hooks).
    pub fake: FakeOkta,
    /// The counting wrapper around the IdP (upstream polls).
    pub idp: Arc<CountingIdp>,
    /// The counting wrapper around the audit log (how verifications ended).
    pub outcomes: Arc<CountingAudit>,
}

impl std::fmt::Debug for Demo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Demo")
            .field("fake", &self.fake)
            .finish_non_exhaustive()
    }
}

/// A random 32-byte key, hex (demo only: pseudonyms change every start).
fn random_key() -> SecretString {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    SecretString::from(b.iter().map(|x| format!("{x:02x}")).collect::<String>())
}

/// Starts the demo stack: fake Okta on a random loopback port, an Okta adapter against it, the default policy,
/// a random pseudonymization key, audit in SQLite (or memory), agent sign-in through the fake's own pages.
///
/// # Errors
/// [`BuildError::Start`] naming what failed.
pub async fn start_demo(opts: DemoOptions) -> Result<Demo, BuildError> {
    let fake = FakeOkta::start(opts.fake.clone())
        .await
        .map_err(|e| start("fake Okta", e))?;
    let redirect = callback(&opts.public_url)?;
    fake.state().add_redirect_uri(redirect.as_str());
    let mut opts = opts;
    let (caller_sign_in, sign_in_links) = match opts.caller_sign_in.take() {
        Some((mut auth, links)) => {
            let back = opts
                .public_url
                .join("/link/callback")
                .map_err(|e| start("public URL", e))?;
            fake.state().add_redirect_uri(back.as_str());
            auth.redirect_uri = Some(back);
            (Some(auth), Some(links))
        }
        None => (None, None),
    };
    let mut okta_config = OktaConfig::new(
        fake.base_url(),
        OktaAuth::ApiToken(SecretString::from(fake.api_token().to_owned())),
    );
    okta_config.egress = opts.egress.clone();
    let okta = Arc::new(OktaAdapter::new(okta_config).map_err(|e| start("Okta adapter", e))?);
    // The same adapter reads the fake's System Log (the auditors' out-of-band page).
    let mut change_feed: Arc<dyn fctr_ports::ChangeFeed> = okta.clone();
    let mut adapter: Arc<dyn IdentityProvider> = okta;
    if let Some(wrap) = opts.wrap_feed.take() {
        change_feed = wrap(change_feed);
    }
    if let Some(wrap) = opts.wrap_idp.take() {
        adapter = wrap(adapter);
    }
    let idp = Arc::new(CountingIdp::new(adapter));
    let stores = match &opts.data_dir {
        // Demo: a random checkpoint key per run (the file's checkpoints verify only during that run).
        Some(dir) => Stores::Sqlite(
            fctr_wiring::open_sqlite(&dir.join("demo-audit.sqlite"), random_key()).await?,
        ),
        None => Stores::Memory,
    };
    let key_id = KeyId::parse("demo").map_err(|e| start("key id", e))?;
    let pseudo =
        Pseudonymizer::new(key_id, &random_key()).map_err(|e| start("pseudonymizer", e))?;
    let client = fake.oidc_client();
    let mut oidc = OidcSettings {
        issuer: client.issuer.clone(),
        client_id: client.client_id.clone(),
        client_auth: crate::oidc::ClientAuth::SecretBasic(client.client_secret.clone()),
        redirect_uri: redirect,
        groups_claim: "groups".into(),
        require_mfa: opts.require_mfa,
        egress: opts.egress.clone(),
    };
    if let Some(hook) = opts.sign_in.take() {
        hook(&fake, &mut oidc);
    }
    let mut phone_url = fake.base_url();
    phone_url.set_path("/_fake/phone");
    let settings = Settings {
        public_url: opts.public_url.clone(),
        timeouts: opts.timeouts,
        demo: Some(DemoInfo { phone_url }),
        poll: opts.poll,
        edge: opts.edge,
        caller_sign_in,
    };
    let tenant = TenantId::parse("demo").map_err(|e| start("tenant", e))?;
    let shared = fctr_wiring::SharedState::memory(&opts.clock, opts.timeouts);
    let mut outcomes: Option<Arc<CountingAudit>> = None;
    let stack = Stack::assemble_wrapping_audit(
        StackParts {
            idp: Arc::clone(&idp) as Arc<dyn IdentityProvider>,
            stores,
            clock: opts.clock,
            policy: opts.policy.unwrap_or_default(),
            pseudonymizer: pseudo,
            tenant,
            retention: Retention::default(),
            shared,
            alerts: opts.alerts,
            change_feed: opts.change_feed.then_some(change_feed),
            sign_in_links,
        },
        |audit| {
            let counting = Arc::new(CountingAudit::new(audit));
            outcomes = Some(Arc::clone(&counting));
            counting
        },
    )?;
    let outcomes = outcomes.ok_or_else(|| start("audit log", "not wrapped"))?;
    let interval =
        std::time::Duration::from_secs(fctr_wiring::config::DEFAULT_CHECKPOINT_INTERVAL_SECS);
    let state = assemble(
        stack,
        oidc,
        JwksRefresh::default(),
        settings,
        interval,
        opts.tickets.take(),
        opts.out_of_band,
    )
    .await?;
    Ok(Demo {
        state,
        fake,
        idp,
        outcomes,
    })
}
