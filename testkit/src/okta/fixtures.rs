//! The seeded fixture org. Documented in `testkit/FIXTURES.md`; keep the two in step.

use serde::Serialize;

use super::util::base32_encode;
pub use crate::server::fixtures::{
    FixtureRole, PRIVILEGED_GROUP, PROTECTED_GROUP, totp_secret_for,
};

/// An enrolled factor of a fixture user.
#[derive(Debug, Clone, Serialize)]
pub struct FixtureFactor {
    /// Okta factor id (`opf…` push, `ost…` Okta Verify TOTP, `uft…` Google TOTP, `mbl…` SMS, …).
    pub id: String,
    /// Okta `factorType` (`push`, `token:software:totp`, `sms`, `webauthn`, `signed_nonce`).
    pub factor_type: String,
    /// Okta `provider` (`OKTA`, `GOOGLE`, `FIDO`).
    pub provider: String,
}

/// A seeded user. Ids, logins and TOTP secrets are the same on every start.
#[derive(Debug, Clone, Serialize)]
pub struct FixtureUser {
    /// Short handle used in docs and tests (`alice`, `agent1`, …).
    pub handle: String,
    /// Okta user id (20 characters, starts with `00u`).
    pub id: String,
    /// `profile.login` (also `profile.email`), always `…@example.com`.
    pub login: String,
    /// `profile.firstName`.
    pub first_name: String,
    /// `profile.lastName`.
    pub last_name: String,
    /// Okta user `status` at start.
    pub status: String,
    /// Caller or agent.
    pub role: FixtureRole,
    /// Names of the groups the user is in (besides `Everyone`).
    pub groups: Vec<String>,
    /// Enrolled factors at start.
    pub factors: Vec<FixtureFactor>,
    /// Base32 TOTP secret of the user's `token:software:totp` factor, if enrolled (HMAC-SHA1, 30 s, 6 digits).
    pub totp_secret: Option<String>,
    /// What the user is for, in a sentence.
    pub purpose: String,
    /// `profile.mobilePhone`; `None` seeds the default `+1-555-01NN`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mobile_phone: Option<String>,
}

impl FixtureUser {
    /// An extra ACTIVE caller with Okta Verify push and TOTP (factor ids derived from the handle), for tests that
    /// need users of their own, e.g. canary values. `id` must be a 20-character Okta-style id.
    #[must_use]
    pub fn caller(
        handle: &str,
        id: &str,
        login: &str,
        first: &str,
        last: &str,
        phone: Option<&str>,
    ) -> Self {
        Self {
            handle: handle.into(),
            id: id.into(),
            login: login.into(),
            first_name: first.into(),
            last_name: last.into(),
            status: "ACTIVE".into(),
            role: FixtureRole::Caller,
            groups: Vec::new(),
            factors: vec![
                FixtureFactor {
                    id: factor_id(handle, "push", "OKTA"),
                    factor_type: "push".into(),
                    provider: "OKTA".into(),
                },
                FixtureFactor {
                    id: factor_id(handle, "token:software:totp", "OKTA"),
                    factor_type: "token:software:totp".into(),
                    provider: "OKTA".into(),
                },
            ],
            totp_secret: Some(base32_encode(&totp_secret_for(login))),
            purpose: "Extra caller added by a test.".into(),
            mobile_phone: phone.map(str::to_owned),
        }
    }
}

/// A seeded group.
#[derive(Debug, Clone, Serialize)]
pub struct FixtureGroup {
    /// Okta group id (`00g…`).
    pub id: String,
    /// `profile.name`.
    pub name: String,
    /// `type`: `OKTA_GROUP` or `BUILT_IN`.
    pub group_type: String,
}

/// The fixture org: users and groups seeded at start.
#[derive(Debug, Clone, Serialize)]
pub struct Fixtures {
    /// Every seeded user, callers first, then agents.
    pub users: Vec<FixtureUser>,
    /// Every seeded group.
    pub groups: Vec<FixtureGroup>,
}

impl Fixtures {
    /// The user with this handle (`alice`, `agent1`, …) or login or id.
    pub fn user(&self, handle_login_or_id: &str) -> Option<&FixtureUser> {
        self.users.iter().find(|u| {
            u.handle == handle_login_or_id
                || u.login == handle_login_or_id
                || u.id == handle_login_or_id
        })
    }

    /// The id of the user with this handle, or an empty string (handy in tests).
    pub fn id_of(&self, handle: &str) -> String {
        self.user(handle).map(|u| u.id.clone()).unwrap_or_default()
    }

    /// The factor of `factor_type` enrolled for the user with this handle.
    pub fn factor(&self, handle: &str, factor_type: &str) -> Option<&FixtureFactor> {
        self.user(handle)?
            .factors
            .iter()
            .find(|f| f.factor_type == factor_type)
    }

    /// The group with this name.
    pub fn group(&self, name: &str) -> Option<&FixtureGroup> {
        self.groups.iter().find(|g| g.name == name)
    }
}

/// Pads an id to Okta's 20 characters.
fn okta_id(prefix: &str, handle: &str, suffix: &str) -> String {
    let mut s = format!("{prefix}{handle}");
    while s.len() + suffix.len() < 20 {
        s.push('0');
    }
    s.push_str(suffix);
    s.truncate(20);
    s
}

pub(crate) struct Seed {
    pub handle: &'static str,
    pub first: &'static str,
    pub last: &'static str,
    pub status: &'static str,
    pub role: FixtureRole,
    pub groups: &'static [&'static str],
    /// (factorType, provider)
    pub factors: &'static [(&'static str, &'static str)],
    pub purpose: &'static str,
}

const PUSH: (&str, &str) = ("push", "OKTA");
const OV_TOTP: (&str, &str) = ("token:software:totp", "OKTA");
const GOOGLE_TOTP: (&str, &str) = ("token:software:totp", "GOOGLE");
const SMS: (&str, &str) = ("sms", "OKTA");
const WEBAUTHN: (&str, &str) = ("webauthn", "FIDO");
const FASTPASS: (&str, &str) = ("signed_nonce", "OKTA");

pub(crate) const SEEDS: &[Seed] = &[
    Seed {
        handle: "alice",
        first: "Alice",
        last: "Anderson",
        status: "ACTIVE",
        role: FixtureRole::Caller,
        groups: &[],
        factors: &[PUSH, OV_TOTP],
        purpose: "Happy path: Okta Verify push (number matching) and Okta Verify TOTP.",
    },
    Seed {
        handle: "bob",
        first: "Bob",
        last: "Brown",
        status: "ACTIVE",
        role: FixtureRole::Caller,
        groups: &[],
        factors: &[PUSH, GOOGLE_TOTP],
        purpose: "Second happy-path caller: Okta Verify push and Google Authenticator TOTP.",
    },
    Seed {
        handle: "carol",
        first: "Carol",
        last: "Clark",
        status: "ACTIVE",
        role: FixtureRole::Caller,
        groups: &[PROTECTED_GROUP],
        factors: &[PUSH, OV_TOTP],
        purpose: "Member of the protected admin group fctr-protected: the portal must refuse high-risk actions.",
    },
    Seed {
        handle: "dave",
        first: "Dave",
        last: "Davis",
        status: "ACTIVE",
        role: FixtureRole::Caller,
        groups: &[PRIVILEGED_GROUP],
        factors: &[PUSH, OV_TOTP],
        purpose: "Member of the privileged group fctr-privileged: needs a higher agent tier.",
    },
    Seed {
        handle: "erin",
        first: "Erin",
        last: "Evans",
        status: "LOCKED_OUT",
        role: FixtureRole::Caller,
        groups: &[],
        factors: &[PUSH, OV_TOTP],
        purpose: "LOCKED_OUT: unlock works; verify answers E0000069.",
    },
    Seed {
        handle: "frank",
        first: "Frank",
        last: "Foster",
        status: "PASSWORD_EXPIRED",
        role: FixtureRole::Caller,
        groups: &[],
        factors: &[PUSH, OV_TOTP],
        purpose: "PASSWORD_EXPIRED: status facts and reset flows.",
    },
    Seed {
        handle: "grace",
        first: "Grace",
        last: "Green",
        status: "SUSPENDED",
        role: FixtureRole::Caller,
        groups: &[],
        factors: &[PUSH, OV_TOTP],
        purpose: "SUSPENDED: unsuspend works; suspend answers 400 E0000001.",
    },
    Seed {
        handle: "heidi",
        first: "Heidi",
        last: "Hill",
        status: "ACTIVE",
        role: FixtureRole::Caller,
        groups: &[],
        factors: &[SMS],
        purpose: "Only an SMS factor (restricted under NIST): no push or TOTP to offer.",
    },
    Seed {
        handle: "ivan",
        first: "Ivan",
        last: "Irwin",
        status: "ACTIVE",
        role: FixtureRole::Caller,
        groups: &[],
        factors: &[],
        purpose: "No factors enrolled.",
    },
    Seed {
        handle: "judy",
        first: "Judy",
        last: "Jones",
        status: "ACTIVE",
        role: FixtureRole::Caller,
        groups: &[],
        factors: &[WEBAUTHN, FASTPASS],
        purpose: "Only factors an agent cannot verify over the phone (WebAuthn, FastPass).",
    },
    Seed {
        handle: "oscar",
        first: "Oscar",
        last: "Owens",
        status: "DEPROVISIONED",
        role: FixtureRole::Caller,
        groups: &[],
        factors: &[],
        purpose: "DEPROVISIONED: found by search=, omitted by q=.",
    },
    Seed {
        handle: "agent0",
        first: "Agent",
        last: "Zero",
        status: "ACTIVE",
        role: FixtureRole::Agent,
        groups: &[],
        factors: &[PUSH, OV_TOTP],
        purpose: "Agent in no fctr group: the portal must refuse sign-in or give no role.",
    },
    Seed {
        handle: "agent1",
        first: "Agent",
        last: "One",
        status: "ACTIVE",
        role: FixtureRole::Agent,
        groups: &["fctr-tier1"],
        factors: &[PUSH, OV_TOTP],
        purpose: "Tier 1 agent (group fctr-tier1).",
    },
    Seed {
        handle: "agent2",
        first: "Agent",
        last: "Two",
        status: "ACTIVE",
        role: FixtureRole::Agent,
        groups: &["fctr-tier2"],
        factors: &[PUSH, OV_TOTP],
        purpose: "Tier 2 agent (group fctr-tier2).",
    },
    Seed {
        handle: "agent3",
        first: "Agent",
        last: "Three",
        status: "ACTIVE",
        role: FixtureRole::Agent,
        groups: &["fctr-tier3"],
        factors: &[PUSH, OV_TOTP],
        purpose: "Tier 3 agent (group fctr-tier3).",
    },
];

pub(crate) const GROUP_NAMES: &[(&str, &str, &str)] = &[
    ("everyone", "Everyone", "BUILT_IN"),
    ("protected", PROTECTED_GROUP, "OKTA_GROUP"),
    ("privileged", PRIVILEGED_GROUP, "OKTA_GROUP"),
    ("tier1", "fctr-tier1", "OKTA_GROUP"),
    ("tier2", "fctr-tier2", "OKTA_GROUP"),
    ("tier3", "fctr-tier3", "OKTA_GROUP"),
];

pub(crate) fn group_id(key: &str) -> String {
    okta_id("00g", key, "")
}

pub(crate) fn user_id(handle: &str) -> String {
    okta_id("00u", handle, "")
}

pub(crate) fn factor_id(handle: &str, factor_type: &str, provider: &str) -> String {
    let prefix = match (factor_type, provider) {
        ("push", _) => "opf",
        ("token:software:totp", "GOOGLE") => "uft",
        ("token:software:totp", _) => "ost",
        ("sms", _) => "mbl",
        ("webauthn", _) => "fwf",
        ("signed_nonce", _) => "crp",
        _ => "fac",
    };
    okta_id(prefix, handle, "")
}

/// Builds the public fixture description.
pub(crate) fn describe() -> Fixtures {
    let groups = GROUP_NAMES
        .iter()
        .map(|(key, name, t)| FixtureGroup {
            id: group_id(key),
            name: (*name).into(),
            group_type: (*t).into(),
        })
        .collect();
    let users = SEEDS
        .iter()
        .map(|s| {
            let login = format!("{}@example.com", s.handle);
            let has_totp = s.factors.iter().any(|(t, _)| *t == "token:software:totp");
            FixtureUser {
                handle: s.handle.into(),
                id: user_id(s.handle),
                login: login.clone(),
                first_name: s.first.into(),
                last_name: s.last.into(),
                status: s.status.into(),
                role: s.role,
                groups: s.groups.iter().map(|g| (*g).to_string()).collect(),
                factors: s
                    .factors
                    .iter()
                    .map(|(t, p)| FixtureFactor {
                        id: factor_id(s.handle, t, p),
                        factor_type: (*t).into(),
                        provider: (*p).into(),
                    })
                    .collect(),
                totp_secret: has_totp.then(|| base32_encode(&totp_secret_for(&login))),
                purpose: s.purpose.into(),
                mobile_phone: None,
            }
        })
        .collect();
    Fixtures { users, groups }
}
