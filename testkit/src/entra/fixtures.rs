//! The seeded fixture tenant. Documented in `testkit/FIXTURES-entra.md`; keep the two in step.

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::common::util::base32_encode;
use crate::server::fixtures::totp_secret_for;
pub use crate::server::fixtures::{FixtureRole, PRIVILEGED_GROUP, PROTECTED_GROUP};

/// The verified domain of the fixture tenant (member UPNs and mail).
pub const VERIFIED_DOMAIN: &str = "example.com";

/// The privileged directory role held by `dave`.
pub const GLOBAL_ADMINISTRATOR: &str = "Global Administrator";

/// App role values on the portal app registration, one per agent tier (the ID token's `roles`).
pub const TIER_ROLES: [&str; 3] = ["fctr.tier1", "fctr.tier2", "fctr.tier3"];

/// Well-known directory roles: (display name, role template id).
pub(crate) const DIRECTORY_ROLES: &[(&str, &str)] = &[
    (GLOBAL_ADMINISTRATOR, "62e90394-69f5-4237-9190-012177145e10"),
    (
        "Privileged Authentication Administrator",
        "7be44c8a-adaf-4e2a-84d6-ab2649e08a13",
    ),
    ("User Administrator", "fe930be7-5e62-47db-91af-98c3a49a38b1"),
    (
        "Helpdesk Administrator",
        "729827e3-9c14-49f7-bb1b-9608f156bbb8",
    ),
];

/// An authentication method a fixture user has registered (besides the password every user has).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum FixtureMethod {
    /// Microsoft Authenticator (push, and TOTP codes through the connector).
    MicrosoftAuthenticator,
    /// A mobile phone (SMS and voice).
    MobilePhone,
    /// A third-party software OATH (TOTP) app.
    SoftwareOath,
    /// A FIDO2 security key.
    Fido2,
    /// Windows Hello for Business.
    WindowsHelloForBusiness,
    /// An e-mail address for SSPR.
    Email,
    /// A platform credential (Platform SSO on macOS). No fixture user has one at start;
    /// `FakeEntraState::register_method` adds one.
    PlatformCredential,
}

impl FixtureMethod {
    /// The method's `@odata.type` without `#microsoft.graph.`.
    #[must_use]
    pub fn odata_type(self) -> &'static str {
        match self {
            Self::MicrosoftAuthenticator => "microsoftAuthenticatorAuthenticationMethod",
            Self::MobilePhone => "phoneAuthenticationMethod",
            Self::SoftwareOath => "softwareOathAuthenticationMethod",
            Self::Fido2 => "fido2AuthenticationMethod",
            Self::WindowsHelloForBusiness => "windowsHelloForBusinessAuthenticationMethod",
            Self::Email => "emailAuthenticationMethod",
            Self::PlatformCredential => "platformCredentialAuthenticationMethod",
        }
    }
}

/// The fixed id of the password method.
pub const PASSWORD_METHOD_ID: &str = "28c10230-6103-485e-b985-444c60001490";
/// The fixed id of a `mobile` phone method.
pub const MOBILE_PHONE_METHOD_ID: &str = "3179e48a-750b-4051-897c-87b9720928f7";

/// A registered method of a fixture user.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FixtureMethodEntry {
    /// The method id (GUID; phone methods use Graph's fixed ids).
    pub id: String,
    /// What it is.
    pub method: FixtureMethod,
}

/// A seeded user. Ids, UPNs and TOTP secrets are the same on every start.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FixtureUser {
    /// Short handle used in docs and tests (`alice`, `agent1`, …).
    pub handle: String,
    /// Object id (GUID).
    pub id: String,
    /// `userPrincipalName`.
    pub upn: String,
    /// `mail`, if any.
    pub mail: Option<String>,
    /// `displayName`.
    pub display_name: String,
    /// `givenName`.
    pub given_name: String,
    /// `surname`.
    pub surname: String,
    /// `accountEnabled` at start.
    pub account_enabled: bool,
    /// `onPremisesSyncEnabled` (synced from on-premises AD).
    pub on_premises_sync_enabled: bool,
    /// `userType`: `Member` or `Guest`.
    pub user_type: String,
    /// The Temporary Access Pass policy excludes this user: creating a TAP fails.
    pub tap_policy_disabled: bool,
    /// Caller or agent.
    pub role: FixtureRole,
    /// Names of the groups the user is a member of.
    pub groups: Vec<String>,
    /// Names of the directory roles the user holds.
    pub directory_roles: Vec<String>,
    /// App roles on the portal app (agents), e.g. `fctr.tier1`.
    pub app_roles: Vec<String>,
    /// Registered methods at start (every user also has the password method).
    pub methods: Vec<FixtureMethodEntry>,
    /// Base32 TOTP secret behind the Authenticator / software OATH codes, if any (HMAC-SHA1, 30 s, 6 digits).
    pub totp_secret: Option<String>,
    /// `mobilePhone` (and the mobile phone method's number, when registered).
    pub mobile_phone: Option<String>,
    /// What the user is for, in a sentence.
    pub purpose: String,
}

/// A seeded group or directory role.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FixtureGroup {
    /// Object id (GUID).
    pub id: String,
    /// `displayName`.
    pub display_name: String,
    /// `group` or `directoryRole` (the `@odata.type` without `#microsoft.graph.`).
    pub kind: String,
    /// For directory roles, the `roleTemplateId`.
    pub role_template_id: Option<String>,
}

/// The fixture tenant: users, groups and directory roles seeded at start.
#[derive(Debug, Clone, Serialize)]
pub struct Fixtures {
    /// Every seeded user, callers first, then agents.
    pub users: Vec<FixtureUser>,
    /// Every seeded group and directory role.
    pub groups: Vec<FixtureGroup>,
}

impl Fixtures {
    /// The user with this handle, UPN or id.
    pub fn user(&self, handle_upn_or_id: &str) -> Option<&FixtureUser> {
        self.users.iter().find(|u| {
            u.handle == handle_upn_or_id
                || u.upn.eq_ignore_ascii_case(handle_upn_or_id)
                || u.id == handle_upn_or_id
        })
    }

    /// The id of the user with this handle, or an empty string (handy in tests).
    pub fn id_of(&self, handle: &str) -> String {
        self.user(handle).map(|u| u.id.clone()).unwrap_or_default()
    }

    /// The UPN of the user with this handle, or an empty string.
    pub fn upn_of(&self, handle: &str) -> String {
        self.user(handle).map(|u| u.upn.clone()).unwrap_or_default()
    }

    /// The group or role with this display name.
    pub fn group(&self, name: &str) -> Option<&FixtureGroup> {
        self.groups.iter().find(|g| g.display_name == name)
    }
}

/// A deterministic GUID for `kind:key` (SHA-256, formatted as a version-4 style GUID).
pub(crate) fn guid(kind: &str, key: &str) -> String {
    let d = Sha256::digest(format!("fctr-fake-entra:{kind}:{key}").as_bytes());
    let h = |r: std::ops::Range<usize>| d[r].iter().map(|b| format!("{b:02x}")).collect::<String>();
    let clock = (u16::from(d[8]) << 8 | u16::from(d[9])) & 0x3fff | 0x8000;
    format!(
        "{}-{}-4{}-{clock:04x}-{}",
        h(0..4),
        h(4..6),
        &h(6..8)[1..],
        h(10..16)
    )
}

struct Seed {
    handle: &'static str,
    upn: Option<&'static str>,
    given: &'static str,
    surname: &'static str,
    enabled: bool,
    synced: bool,
    guest: bool,
    tap_disabled: bool,
    role: FixtureRole,
    groups: &'static [&'static str],
    directory_roles: &'static [&'static str],
    app_roles: &'static [&'static str],
    methods: &'static [FixtureMethod],
    purpose: &'static str,
}

use FixtureMethod as M;

const AUTH: &[FixtureMethod] = &[M::MicrosoftAuthenticator];

const SEEDS: &[Seed] = &[
    Seed {
        handle: "alice",
        upn: None,
        given: "Alice",
        surname: "Anderson",
        enabled: true,
        synced: false,
        guest: false,
        tap_disabled: false,
        role: FixtureRole::Caller,
        groups: &[],
        directory_roles: &[],
        app_roles: &[],
        methods: &[M::MicrosoftAuthenticator, M::MobilePhone],
        purpose: "Happy path: Microsoft Authenticator (push and codes through the connector), cloud-only.",
    },
    Seed {
        handle: "bob",
        upn: None,
        given: "Bob",
        surname: "Brown",
        enabled: true,
        synced: false,
        guest: false,
        tap_disabled: false,
        role: FixtureRole::Caller,
        groups: &[],
        directory_roles: &[],
        app_roles: &[],
        methods: &[M::MicrosoftAuthenticator, M::SoftwareOath],
        purpose: "Second caller: Authenticator and a third-party software OATH (TOTP) app.",
    },
    Seed {
        handle: "carol",
        upn: None,
        given: "Carol",
        surname: "Clark",
        enabled: true,
        synced: false,
        guest: false,
        tap_disabled: false,
        role: FixtureRole::Caller,
        groups: &[PROTECTED_GROUP],
        directory_roles: &[],
        app_roles: &[],
        methods: AUTH,
        purpose: "Member of the protected group fctr-protected: the portal must refuse high-risk actions.",
    },
    Seed {
        handle: "dave",
        upn: None,
        given: "Dave",
        surname: "Davis",
        enabled: true,
        synced: false,
        guest: false,
        tap_disabled: false,
        role: FixtureRole::Caller,
        groups: &[PRIVILEGED_GROUP],
        directory_roles: &[GLOBAL_ADMINISTRATOR],
        app_roles: &[],
        methods: &[M::MicrosoftAuthenticator, M::Fido2],
        purpose: "Privileged: Global Administrator role and fctr-privileged; a password set needs Privileged Authentication Administrator.",
    },
    Seed {
        handle: "erin",
        upn: None,
        given: "Erin",
        surname: "Evans",
        enabled: true,
        synced: true,
        guest: false,
        tap_disabled: false,
        role: FixtureRole::Caller,
        groups: &[],
        directory_roles: &[],
        app_roles: &[],
        methods: AUTH,
        purpose: "Synced from on-premises AD (onPremisesSyncEnabled: true): cloud password changes are suspect.",
    },
    Seed {
        handle: "frank",
        upn: None,
        given: "Frank",
        surname: "Foster",
        enabled: true,
        synced: false,
        guest: false,
        tap_disabled: true,
        role: FixtureRole::Caller,
        groups: &[],
        directory_roles: &[],
        app_roles: &[],
        methods: AUTH,
        purpose: "Out of the Temporary Access Pass policy's scope: creating a TAP answers 400.",
    },
    Seed {
        handle: "grace",
        upn: None,
        given: "Grace",
        surname: "Green",
        enabled: false,
        synced: false,
        guest: false,
        tap_disabled: false,
        role: FixtureRole::Caller,
        groups: &[],
        directory_roles: &[],
        app_roles: &[],
        methods: AUTH,
        purpose: "Disabled (accountEnabled: false): unsuspend works.",
    },
    Seed {
        handle: "heidi",
        upn: None,
        given: "Heidi",
        surname: "Hill",
        enabled: true,
        synced: false,
        guest: false,
        tap_disabled: false,
        role: FixtureRole::Caller,
        groups: &[],
        directory_roles: &[],
        app_roles: &[],
        methods: &[M::MobilePhone],
        purpose: "Only a mobile phone (SMS, restricted under NIST): no push or TOTP to offer.",
    },
    Seed {
        handle: "ivan",
        upn: None,
        given: "Ivan",
        surname: "Irwin",
        enabled: true,
        synced: false,
        guest: false,
        tap_disabled: false,
        role: FixtureRole::Caller,
        groups: &[],
        directory_roles: &[],
        app_roles: &[],
        methods: &[],
        purpose: "Only a password: no method to verify; TAP issuance and suspend target.",
    },
    Seed {
        handle: "judy",
        upn: None,
        given: "Judy",
        surname: "Jones",
        enabled: true,
        synced: false,
        guest: false,
        tap_disabled: false,
        role: FixtureRole::Caller,
        groups: &[],
        directory_roles: &[],
        app_roles: &[],
        methods: &[M::Fido2, M::WindowsHelloForBusiness, M::Email],
        purpose: "Only methods an agent cannot verify over the phone (FIDO2, Windows Hello) and an SSPR e-mail.",
    },
    Seed {
        handle: "kim",
        upn: Some("kim_partner.example#EXT#@fctrfake.onmicrosoft.com"),
        given: "Kim",
        surname: "Kowalski",
        enabled: true,
        synced: false,
        guest: true,
        tap_disabled: false,
        role: FixtureRole::Caller,
        groups: &[],
        directory_roles: &[],
        app_roles: &[],
        methods: AUTH,
        purpose: "External guest: the UPN holds #EXT#, so `#` must be sent as %23.",
    },
    Seed {
        handle: "kiosk",
        upn: Some("$kiosk@example.com"),
        given: "Kiosk",
        surname: "Account",
        enabled: true,
        synced: false,
        guest: false,
        tap_disabled: false,
        role: FixtureRole::Caller,
        groups: &[],
        directory_roles: &[],
        app_roles: &[],
        methods: &[],
        purpose: "UPN starting with `$`: reachable only as /users('$kiosk@example.com').",
    },
    Seed {
        handle: "agent0",
        upn: None,
        given: "Agent",
        surname: "Zero",
        enabled: true,
        synced: false,
        guest: false,
        tap_disabled: false,
        role: FixtureRole::Agent,
        groups: &[],
        directory_roles: &[],
        app_roles: &[],
        methods: AUTH,
        purpose: "Agent with no app role and no fctr group: the portal must refuse sign-in or give no role.",
    },
    Seed {
        handle: "agent1",
        upn: None,
        given: "Agent",
        surname: "One",
        enabled: true,
        synced: false,
        guest: false,
        tap_disabled: false,
        role: FixtureRole::Agent,
        groups: &["fctr-tier1"],
        directory_roles: &[],
        app_roles: &["fctr.tier1"],
        methods: AUTH,
        purpose: "Tier 1 agent (app role fctr.tier1, group fctr-tier1).",
    },
    Seed {
        handle: "agent2",
        upn: None,
        given: "Agent",
        surname: "Two",
        enabled: true,
        synced: false,
        guest: false,
        tap_disabled: false,
        role: FixtureRole::Agent,
        groups: &["fctr-tier2"],
        directory_roles: &[],
        app_roles: &["fctr.tier2"],
        methods: AUTH,
        purpose: "Tier 2 agent (app role fctr.tier2, group fctr-tier2).",
    },
    Seed {
        handle: "agent3",
        upn: None,
        given: "Agent",
        surname: "Three",
        enabled: true,
        synced: false,
        guest: false,
        tap_disabled: false,
        role: FixtureRole::Agent,
        groups: &["fctr-tier3"],
        directory_roles: &[],
        app_roles: &["fctr.tier3"],
        methods: AUTH,
        purpose: "Tier 3 agent (app role fctr.tier3, group fctr-tier3).",
    },
];

const GROUPS: &[&str] = &[
    PROTECTED_GROUP,
    PRIVILEGED_GROUP,
    "fctr-tier1",
    "fctr-tier2",
    "fctr-tier3",
];

/// The mobile number of the `i`-th fixture user (`+1 5555550100` + i).
fn mobile(i: usize) -> String {
    format!("+1 55555501{i:02}")
}

/// Builds the public fixture description.
pub(crate) fn describe() -> Fixtures {
    let mut groups: Vec<FixtureGroup> = GROUPS
        .iter()
        .map(|name| FixtureGroup {
            id: guid("group", name),
            display_name: (*name).into(),
            kind: "group".into(),
            role_template_id: None,
        })
        .collect();
    groups.extend(DIRECTORY_ROLES.iter().map(|(name, template)| FixtureGroup {
        id: guid("role", name),
        display_name: (*name).into(),
        kind: "directoryRole".into(),
        role_template_id: Some((*template).into()),
    }));
    let users = SEEDS
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let upn = s
                .upn
                .map_or_else(|| format!("{}@{VERIFIED_DOMAIN}", s.handle), str::to_owned);
            let has_otp = s
                .methods
                .iter()
                .any(|m| matches!(m, M::MicrosoftAuthenticator | M::SoftwareOath));
            let phone = s.methods.contains(&M::MobilePhone).then(|| mobile(i));
            FixtureUser {
                handle: s.handle.into(),
                id: guid("user", s.handle),
                upn: upn.clone(),
                mail: (!s.upn.is_some_and(|u| u.starts_with('$')))
                    .then(|| format!("{}@{VERIFIED_DOMAIN}", s.handle)),
                display_name: format!("{} {}", s.given, s.surname),
                given_name: s.given.into(),
                surname: s.surname.into(),
                account_enabled: s.enabled,
                on_premises_sync_enabled: s.synced,
                user_type: if s.guest { "Guest" } else { "Member" }.into(),
                tap_policy_disabled: s.tap_disabled,
                role: s.role,
                groups: s.groups.iter().map(|g| (*g).to_string()).collect(),
                directory_roles: s.directory_roles.iter().map(|g| (*g).to_string()).collect(),
                app_roles: s.app_roles.iter().map(|g| (*g).to_string()).collect(),
                methods: s
                    .methods
                    .iter()
                    .map(|m| FixtureMethodEntry {
                        id: method_id(s.handle, *m),
                        method: *m,
                    })
                    .collect(),
                totp_secret: has_otp.then(|| base32_encode(&totp_secret_for(&upn))),
                mobile_phone: phone,
                purpose: s.purpose.into(),
            }
        })
        .collect();
    Fixtures { users, groups }
}

/// The id of a fixture user's method: Graph's fixed id for a mobile phone, else a deterministic GUID.
pub(crate) fn method_id(handle: &str, m: FixtureMethod) -> String {
    match m {
        M::MobilePhone => MOBILE_PHONE_METHOD_ID.into(),
        other => guid(other.odata_type(), handle),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_well_formed_and_stable() {
        let g = guid("user", "alice");
        assert_eq!(g.len(), 36);
        assert_eq!(&g[14..15], "4");
        assert_eq!(g, guid("user", "alice"));
        assert_ne!(g, guid("user", "bob"));
        assert!(g.chars().all(|c| c.is_ascii_hexdigit() || c == '-'));
    }
}
