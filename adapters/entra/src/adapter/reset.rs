//! `ResetFactors`: every authentication method but the password is deleted, one
//! `DELETE /users/{id}/authentication/{type}Methods/{methodId}` (204) per method, the default method last.
//!
//! Graph refuses to delete the user's default MFA method while they have other methods (400 `badRequest`). Which
//! method is the default is read from the beta `signInPreferences` when Graph answers it; otherwise (403, 404, a
//! base that is not `…/v1.0/`, anything else) the order ends with the likeliest default: the Authenticator, before
//! it the phones, before them the software OATH app. Either way a method refused with 400 is set aside and tried
//! again once the others are gone (Graph's message says why, but the adapter never reads messages), so a wrong
//! guess costs a request, not the reset. The same rule orders `mobile` after `alternateMobile`, which Graph keeps
//! while a `mobile` number exists.

use super::EntraAdapter;
use crate::errors::{METHODS_READ, METHODS_WRITE, PartialFactorReset, safe_token};
use crate::query::{segment, user_path};
use crate::wire::{GraphMethod, delete_collection, parse, short_type};
use fctr_ports::{ActionKind, ActionReceipt, PortError, SubjectId};
use reqwest::Method;
use serde::Deserialize;
use url::Url;

/// Graph's fixed ids of the three phone methods (phoneauthenticationmethod-delete, v1.0).
const PHONE_IDS: [(&str, &str); 3] = [
    ("mobile", "3179e48a-750b-4051-897c-87b9720928f7"),
    ("alternateMobile", "b6332ec1-7057-4abe-9331-3d72feddfe41"),
    ("office", "e37fc753-ff3b-4958-9484-eaa9425c82bc"),
];

/// The beta `signInPreferences` answer (only the field read).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignInPreferences {
    #[serde(default)]
    user_preferred_method_for_secondary_authentication: Option<String>,
}

/// The kind of method a `userPreferredMethodForSecondaryAuthentication` value names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DefaultKind {
    /// `push`.
    Authenticator,
    /// `oath`: a code from an OATH app (read as the software OATH method; the Authenticator's codes are ordered
    /// last anyway).
    Oath,
    /// `sms` and `voiceMobile` (`mobile`), `voiceAlternateMobile`, `voiceOffice`: the phone of that type.
    Phone(&'static str),
}

/// The default's kind, or `None` for `none`, null, `unknownFutureValue` and anything newer.
pub(super) fn default_kind(value: Option<&str>) -> Option<DefaultKind> {
    Some(match value? {
        "push" => DefaultKind::Authenticator,
        "oath" => DefaultKind::Oath,
        "sms" | "voiceMobile" => DefaultKind::Phone("mobile"),
        "voiceAlternateMobile" => DefaultKind::Phone("alternateMobile"),
        "voiceOffice" => DefaultKind::Phone("office"),
        _ => return None,
    })
}

/// One method to delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Removal {
    pub(super) collection: &'static str,
    pub(super) id: String,
    /// Lower goes first.
    rank: u8,
    /// Named by `signInPreferences`: goes after every other.
    default: bool,
}

/// A phone method's type: its `phoneType`, or the type its fixed id stands for.
fn phone_type(m: &GraphMethod) -> Option<&str> {
    m.phone_type.as_deref().or_else(|| {
        PHONE_IDS
            .iter()
            .find(|(_, id)| m.id.eq_ignore_ascii_case(id))
            .map(|(t, _)| *t)
    })
}

/// The deletion order without knowing the default: methods that can never be the default MFA method first (not in
/// `userDefaultAuthenticationMethodType`), then the likelier defaults, the Authenticator last.
fn rank(short: &str, phone: Option<&str>) -> u8 {
    match short {
        "emailAuthenticationMethod" => 0,
        "fido2AuthenticationMethod"
        | "windowsHelloForBusinessAuthenticationMethod"
        | "platformCredentialAuthenticationMethod" => 1,
        "temporaryAccessPassAuthenticationMethod" => 2,
        "softwareOathAuthenticationMethod" => 3,
        "phoneAuthenticationMethod" => match phone {
            Some("office") => 4,
            Some("alternateMobile") => 5,
            _ => 6,
        },
        _ => 7,
    }
}

fn is_default(short: &str, phone: Option<&str>, default: Option<DefaultKind>) -> bool {
    match default {
        Some(DefaultKind::Authenticator) => short == "microsoftAuthenticatorAuthenticationMethod",
        Some(DefaultKind::Oath) => short == "softwareOathAuthenticationMethod",
        Some(DefaultKind::Phone(t)) => short == "phoneAuthenticationMethod" && phone == Some(t),
        None => false,
    }
}

/// What a reset deletes, in order. The password is kept. A method of a type this adapter cannot delete refuses the
/// whole reset with `Unsupported` before anything is deleted (a reset that leaves a factor behind would be
/// reported as done).
pub(super) fn plan(
    methods: &[GraphMethod],
    default: Option<DefaultKind>,
) -> Result<Vec<Removal>, PortError> {
    let mut out = Vec::new();
    for m in methods {
        let short = short_type(m.odata_type.as_deref());
        if short == "passwordAuthenticationMethod" {
            continue;
        }
        let Some(collection) = delete_collection(short) else {
            tracing::warn!(
                method_type = %safe_token(short).unwrap_or_default(),
                "entra: refusing a factor reset: the user has a method fctr cannot delete; nothing was deleted"
            );
            return Err(PortError::Unsupported);
        };
        let phone = (short == "phoneAuthenticationMethod")
            .then(|| phone_type(m))
            .flatten();
        out.push(Removal {
            collection,
            id: m.id.clone(),
            rank: rank(short, phone),
            default: is_default(short, phone, default),
        });
    }
    out.sort_by_key(|r| (r.default, r.rank));
    Ok(out)
}

/// `…/beta/` next to a Graph base ending in `v1.0/`; `None` for any other base (no beta to ask).
fn beta_base(base: &Url) -> Option<Url> {
    let prefix = base.path().strip_suffix("v1.0/")?;
    let mut beta = base.clone();
    beta.set_path(&format!("{prefix}beta/"));
    Some(beta)
}

/// How the reset stopped: the error itself when nothing was deleted yet, otherwise a [`PartialFactorReset`].
fn stopped(removed: usize, total: usize, cause: PortError) -> PortError {
    if removed == 0 {
        return cause;
    }
    tracing::warn!(
        removed,
        total,
        error = cause.code(),
        "entra: the factor reset stopped part-way (partial: not retried)"
    );
    PortError::unexpected(PartialFactorReset::new(removed, total, cause))
}

impl EntraAdapter {
    /// Every method but the password, deleted; see the module docs.
    pub(super) async fn reset_factors(&self, id: &SubjectId) -> Result<ActionReceipt, PortError> {
        let methods = self.methods(id).await?;
        let deletable = plan(&methods, None)?;
        // The order matters only when there is more than one method to delete.
        let pending = if deletable.len() > 1 {
            let default = self.read_default_kind(id).await;
            plan(&methods, default)?
        } else {
            deletable
        };
        let total = pending.len();
        let mut removed = 0;
        let mut pending = pending;
        while !pending.is_empty() {
            let tried = pending.len();
            let mut refused = Vec::new();
            let mut last_refusal = None;
            for r in pending {
                match self.delete_method(id, &r).await {
                    Ok(()) => removed += 1,
                    // Gone already (removed meanwhile): what the reset wanted.
                    Err(PortError::NotFound) => {
                        tracing::debug!("entra: a method was already gone");
                    }
                    // The default while others remain (or `mobile` while `alternateMobile` remains): later.
                    Err(e @ PortError::Upstream { status: 400, .. }) => {
                        refused.push(r);
                        last_refusal = Some(e);
                    }
                    Err(e) => return Err(stopped(removed, total, e)),
                }
            }
            if refused.len() == tried {
                // A whole round refused: trying again would change nothing.
                let cause = last_refusal.unwrap_or(PortError::Malformed);
                return Err(stopped(removed, total, cause));
            }
            pending = refused;
        }
        tracing::info!(removed, total, "entra: authentication methods reset");
        Ok(ActionReceipt::done(ActionKind::ResetFactors))
    }

    /// The default method's kind from the beta `signInPreferences`, or `None` when Graph does not say.
    async fn read_default_kind(&self, id: &SubjectId) -> Option<DefaultKind> {
        let Some(url) = beta_base(&self.graph().base).and_then(|b| {
            b.join(&format!(
                "{}/authentication/signInPreferences",
                user_path(id.as_str())
            ))
            .ok()
        }) else {
            tracing::debug!(
                "entra: no beta endpoint next to the Graph base; guessing the default method"
            );
            return None;
        };
        match self.graph().get(url, &[], METHODS_READ).await {
            Ok(resp) => match parse::<SignInPreferences>(&resp.body) {
                Ok(p) => default_kind(
                    p.user_preferred_method_for_secondary_authentication
                        .as_deref(),
                ),
                Err(_) => None,
            },
            Err(e) => {
                tracing::info!(
                    error = e.code(),
                    "entra: signInPreferences unavailable; deleting the likeliest default method last"
                );
                None
            }
        }
    }

    async fn delete_method(&self, id: &SubjectId, r: &Removal) -> Result<(), PortError> {
        let url = self.user_url(
            id.as_str(),
            &format!("/authentication/{}/{}", r.collection, segment(&r.id)),
        )?;
        self.graph()
            .send_once(Method::DELETE, url, None, METHODS_WRITE)
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(t: &str, id: &str, phone_type: Option<&str>) -> GraphMethod {
        let mut v = serde_json::json!({"@odata.type": format!("#microsoft.graph.{t}"), "id": id});
        if let Some(p) = phone_type {
            v["phoneType"] = serde_json::json!(p);
        }
        serde_json::from_value(v).unwrap()
    }

    fn order(rs: &[Removal]) -> Vec<&str> {
        rs.iter().map(|r| r.collection).collect()
    }

    fn every_kind() -> Vec<GraphMethod> {
        vec![
            m("passwordAuthenticationMethod", "pw", None),
            m("microsoftAuthenticatorAuthenticationMethod", "a", None),
            m(
                "phoneAuthenticationMethod",
                "3179e48a-750b-4051-897c-87b9720928f7",
                Some("mobile"),
            ),
            m(
                "phoneAuthenticationMethod",
                "b6332ec1-7057-4abe-9331-3d72feddfe41",
                None,
            ),
            m("softwareOathAuthenticationMethod", "o", None),
            m("temporaryAccessPassAuthenticationMethod", "t", None),
            m("fido2AuthenticationMethod", "f", None),
            m("emailAuthenticationMethod", "e", None),
            m("windowsHelloForBusinessAuthenticationMethod", "w", None),
            m("platformCredentialAuthenticationMethod", "p", None),
        ]
    }

    #[test]
    fn without_a_default_the_likeliest_defaults_go_last_and_the_password_stays() {
        let rs = plan(&every_kind(), None).unwrap();
        assert_eq!(
            order(&rs),
            [
                "emailMethods",
                "fido2Methods",
                "windowsHelloForBusinessMethods",
                "platformCredentialMethods",
                "temporaryAccessPassMethods",
                "softwareOathMethods",
                "phoneMethods",
                "phoneMethods",
                "microsoftAuthenticatorMethods",
            ]
        );
        // alternateMobile (known by its fixed id) before mobile.
        assert_eq!(rs[6].id, "b6332ec1-7057-4abe-9331-3d72feddfe41");
        assert!(!rs.iter().any(|r| r.id == "pw"));
    }

    #[test]
    fn the_named_default_goes_last() {
        let rs = plan(&every_kind(), default_kind(Some("sms"))).unwrap();
        assert_eq!(
            rs.last().unwrap().id,
            "3179e48a-750b-4051-897c-87b9720928f7"
        );
        assert_eq!(rs[rs.len() - 2].collection, "microsoftAuthenticatorMethods");
        let rs = plan(&every_kind(), default_kind(Some("voiceAlternateMobile"))).unwrap();
        assert_eq!(
            rs.last().unwrap().id,
            "b6332ec1-7057-4abe-9331-3d72feddfe41"
        );
        let rs = plan(&every_kind(), default_kind(Some("oath"))).unwrap();
        assert_eq!(rs.last().unwrap().collection, "softwareOathMethods");
        let rs = plan(&every_kind(), default_kind(Some("push"))).unwrap();
        assert_eq!(
            rs.last().unwrap().collection,
            "microsoftAuthenticatorMethods"
        );
        // A default the user no longer has, or a value this adapter does not know: the guessed order.
        for v in [
            Some("voiceOffice"),
            Some("none"),
            Some("unknownFutureValue"),
            None,
        ] {
            assert_eq!(
                plan(&every_kind(), default_kind(v)).unwrap(),
                plan(&every_kind(), None).unwrap(),
                "{v:?}"
            );
        }
    }

    #[test]
    fn a_method_fctr_cannot_delete_refuses_the_whole_reset() {
        let mut ms = every_kind();
        ms.push(m("qrCodePinAuthenticationMethod", "q", None));
        assert!(matches!(plan(&ms, None), Err(PortError::Unsupported)));
        let only_password = [m("passwordAuthenticationMethod", "pw", None)];
        assert!(plan(&only_password, None).unwrap().is_empty());
    }

    #[test]
    fn the_beta_base_sits_next_to_v1() {
        let b = |s: &str| beta_base(&Url::parse(s).unwrap()).map(|u| u.to_string());
        assert_eq!(
            b("https://graph.microsoft.com/v1.0/").as_deref(),
            Some("https://graph.microsoft.com/beta/")
        );
        assert_eq!(
            b("http://127.0.0.1:9/proxy/v1.0/").as_deref(),
            Some("http://127.0.0.1:9/proxy/beta/")
        );
        assert_eq!(b("https://graph.example/custom/"), None);
    }

    #[test]
    fn a_partial_stop_says_so_and_an_untouched_one_is_the_error_itself() {
        let e = stopped(0, 3, PortError::Timeout);
        assert!(matches!(e, PortError::Timeout));
        let e = stopped(
            2,
            3,
            PortError::Upstream {
                status: 503,
                code: Some("generalException".into()),
            },
        );
        let PortError::Unexpected(inner) = &e else {
            panic!("{e:?}")
        };
        let partial = inner.downcast_ref::<PartialFactorReset>().unwrap();
        assert_eq!((partial.removed(), partial.total()), (2, 3));
        assert!(inner.to_string().contains("partial"), "{inner}");
        assert!(matches!(
            partial.cause(),
            PortError::Upstream { status: 503, .. }
        ));
    }
}
