//! [`Lifecycle`] for Okta: the remediation actions, each one documented lifecycle or sessions call.

use super::{OktaAdapter, bool_str, parse};
use crate::errors::malformed;
use crate::http::Op;
use crate::wire::{ResetPasswordDto, TempPasswordDto};
use async_trait::async_trait;
use fctr_ports::{
    Action, ActionReceipt, Lifecycle, OneTimeSecret, PortError, SecretKind, SubjectId,
};
use secrecy::ExposeSecret;

#[async_trait]
impl Lifecycle for OktaAdapter {
    #[tracing::instrument(name = "okta.execute", skip_all, fields(action = action.kind().as_str()))]
    async fn execute(
        &self,
        subject: &SubjectId,
        action: &Action,
    ) -> Result<ActionReceipt, PortError> {
        let kind = action.kind();
        match action {
            Action::ClearSessions {
                revoke_oauth_tokens,
            } => {
                let op = Op::lifecycle("clear_sessions", "sessions");
                let mut url = self.user_url(subject.as_str(), &["sessions"])?;
                url.set_query(Some(&format!(
                    "oauthTokens={}",
                    bool_str(*revoke_oauth_tokens)
                )));
                self.delete(&op, &url).await?;
                Ok(ActionReceipt::done(kind))
            }
            Action::ResetPassword { send_email } => {
                let op = Op::lifecycle("reset_password", "lifecycle");
                let resp = self
                    .lifecycle_post(
                        &op,
                        subject,
                        "reset_password",
                        Some(format!("sendEmail={}", bool_str(*send_email))),
                    )
                    .await?;
                if *send_email {
                    return Ok(ActionReceipt {
                        kind,
                        secret: None,
                        emailed: true,
                    });
                }
                let dto: ResetPasswordDto = parse(&op, &resp)?;
                let link = dto
                    .reset_password_url
                    .filter(|l| {
                        let s = l.expose_secret();
                        s.starts_with("https://") || s.starts_with("http://")
                    })
                    .ok_or_else(|| malformed(&op, None))?;
                Ok(ActionReceipt {
                    kind,
                    secret: Some(OneTimeSecret {
                        kind: SecretKind::ResetLink,
                        value: link,
                        expires_at: None,
                    }),
                    emailed: false,
                })
            }
            Action::ExpirePassword => {
                let op = Op::lifecycle("expire_password", "lifecycle");
                let resp = self
                    .lifecycle_post(&op, subject, "expire_password_with_temp_password", None)
                    .await?;
                let dto: TempPasswordDto = parse(&op, &resp)?;
                let pw = dto
                    .temp_password
                    .filter(|p| !p.expose_secret().is_empty())
                    .ok_or_else(|| malformed(&op, None))?;
                Ok(ActionReceipt {
                    kind,
                    secret: Some(OneTimeSecret {
                        kind: SecretKind::TemporaryPassword,
                        value: pw,
                        expires_at: None,
                    }),
                    emailed: false,
                })
            }
            Action::Unlock => {
                let op = Op::lifecycle("unlock", "lifecycle");
                self.lifecycle_post(&op, subject, "unlock", None).await?;
                Ok(ActionReceipt::done(kind))
            }
            Action::ResetFactors => {
                let op = Op::lifecycle("reset_factors", "lifecycle");
                self.lifecycle_post(&op, subject, "reset_factors", None)
                    .await?;
                Ok(ActionReceipt::done(kind))
            }
            Action::Suspend => {
                let op = Op::lifecycle("suspend", "lifecycle");
                self.lifecycle_post(&op, subject, "suspend", None).await?;
                Ok(ActionReceipt::done(kind))
            }
            Action::Unsuspend => {
                let op = Op::lifecycle("unsuspend", "lifecycle");
                self.lifecycle_post(&op, subject, "unsuspend", None).await?;
                Ok(ActionReceipt::done(kind))
            }
            Action::RemoveFactor(fid) => {
                let op = Op::lifecycle("remove_factor", "factors");
                let url = self.user_url(subject.as_str(), &["factors", fid.as_str()])?;
                self.delete(&op, &url).await?;
                Ok(ActionReceipt::done(kind))
            }
            Action::IssueTemporaryAccessPass { .. } => Err(PortError::Unsupported),
            _ => Err(PortError::Unsupported),
        }
    }
}
