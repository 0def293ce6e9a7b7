//! Seeding the tenant's users, methods and directory objects from the fixture table.

use super::*;

/// Builds a method of `kind` for the `i`-th user.
pub(crate) fn seed_method(
    id: String,
    m: FixtureMethod,
    u: &fixtures::FixtureUser,
    created: DateTime<Utc>,
) -> Method {
    let (kind, fields, created) = match m {
        FixtureMethod::MicrosoftAuthenticator => (
            MethodKind::Authenticator,
            json!({
                "displayName": format!("{}'s iPhone", u.given_name),
                "deviceTag": "SoftwareTokenActivated",
                "phoneAppVersion": "6.8.7",
            }),
            None,
        ),
        FixtureMethod::MobilePhone => (
            MethodKind::Phone,
            json!({
                "phoneNumber": u.mobile_phone,
                "phoneType": "mobile",
                "smsSignInState": "notEnabled",
            }),
            None,
        ),
        FixtureMethod::SoftwareOath => (
            MethodKind::SoftwareOath,
            json!({"secretKey": null}),
            Some(created),
        ),
        FixtureMethod::Fido2 => (
            MethodKind::Fido2,
            json!({
                "displayName": "Security Key",
                "model": "YubiKey 5 NFC",
                "aaGuid": "2fc0579f-8113-47ea-b116-bb5a8db9202a",
                "attestationCertificates": [],
                "attestationLevel": "attested",
                "passkeyType": "deviceBound",
            }),
            Some(created),
        ),
        FixtureMethod::WindowsHelloForBusiness => (
            MethodKind::WindowsHello,
            json!({"displayName": "WORKSTATION-01", "keyStrength": "normal"}),
            Some(created),
        ),
        FixtureMethod::Email => (
            MethodKind::Email,
            json!({"emailAddress": format!("{}.personal@example.net", u.handle)}),
            None,
        ),
        FixtureMethod::PlatformCredential => (
            MethodKind::PlatformCredential,
            json!({"displayName": "MacBook-01", "keyStrength": "normal", "platform": "macOS"}),
            Some(created),
        ),
    };
    Method {
        id,
        kind,
        created,
        fields: fields.as_object().cloned().unwrap_or_default(),
        tap: None,
    }
}

/// The default MFA method a user gets at seeding: the Microsoft Authenticator (push), else the mobile phone
/// (SMS), else a software OATH app (code), else none (FIDO2, Windows Hello, platform credentials, e-mail and TAP
/// cannot be the default). The same order the connector uses when no method is named.
pub(crate) fn default_method(methods: &[Method]) -> Option<String> {
    [
        MethodKind::Authenticator,
        MethodKind::Phone,
        MethodKind::SoftwareOath,
    ]
    .into_iter()
    .find_map(|k| methods.iter().find(|m| m.kind == k))
    .map(|m| m.id.clone())
}

/// Seeds users and directory objects from the fixture table.
pub(crate) fn seed(f: &Fixtures) -> (Vec<User>, Vec<DirObject>) {
    let base = Utc
        .with_ymd_and_hms(2024, 1, 15, 9, 0, 0)
        .single()
        .unwrap_or_else(Utc::now);
    let objects: Vec<DirObject> = f
        .groups
        .iter()
        .map(|g| DirObject {
            id: g.id.clone(),
            display_name: g.display_name.clone(),
            kind: g.kind.clone(),
            role_template_id: g.role_template_id.clone(),
        })
        .collect();
    let users = f
        .users
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let created = base + chrono::Duration::minutes(i64::try_from(i).unwrap_or(0));
            let mut member_of: Vec<String> = u
                .groups
                .iter()
                .filter_map(|n| {
                    objects
                        .iter()
                        .find(|o| &o.display_name == n && o.kind == "group")
                })
                .map(|o| o.id.clone())
                .collect();
            member_of.extend(
                u.directory_roles
                    .iter()
                    .filter_map(|n| {
                        objects
                            .iter()
                            .find(|o| &o.display_name == n && o.kind == "directoryRole")
                    })
                    .map(|o| format!("{ROLE_MARK}{}", o.id)),
            );
            let mut methods = vec![Method {
                id: fixtures::PASSWORD_METHOD_ID.into(),
                kind: MethodKind::Password,
                created: Some(created),
                fields: json!({"password": null})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
                tap: None,
            }];
            methods.extend(u.methods.iter().map(|m| {
                seed_method(
                    m.id.clone(),
                    m.method,
                    u,
                    created + chrono::Duration::days(1),
                )
            }));
            let default_method = default_method(&methods);
            User {
                id: u.id.clone(),
                upn: u.upn.clone(),
                display_name: u.display_name.clone(),
                given_name: u.given_name.clone(),
                surname: u.surname.clone(),
                mail: u.mail.clone(),
                mobile_phone: u.mobile_phone.clone(),
                account_enabled: u.account_enabled,
                on_prem_sync: u.on_premises_sync_enabled,
                user_type: u.user_type.clone(),
                created,
                last_password_change: created + chrono::Duration::days(10),
                sessions_valid_from: created,
                last_sign_in: Some(created + chrono::Duration::days(30)),
                member_of,
                app_roles: u.app_roles.clone(),
                methods,
                default_method,
                tap_policy_disabled: u.tap_policy_disabled,
                totp_secret: u
                    .totp_secret
                    .as_ref()
                    .and_then(|s| crate::common::util::base32_decode(s)),
                last_otp_step: None,
                effects: Effects::default(),
                is_agent: u.role == FixtureRole::Agent,
            }
        })
        .collect();
    (users, objects)
}
