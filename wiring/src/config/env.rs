//! `FCTR_…` environment overrides of the configuration file.

use super::{AuditSection, Config, ConfigError, invalid};
use std::path::PathBuf;
use url::Url;

impl Config {
    /// Applies overrides: `FCTR_SERVER_LISTEN`, `FCTR_SERVER_PUBLIC_URL`, `FCTR_SERVER_TENANT`,
    /// `FCTR_OKTA_ORG_URL`, `FCTR_ENTRA_TENANT_ID`, `FCTR_ENTRA_CLIENT_ID`, `FCTR_ENTRA_AUTHORITY`,
    /// `FCTR_ENTRA_GRAPH_BASE`, `FCTR_SIGN_IN_ISSUER`, `FCTR_SIGN_IN_CLIENT_ID`, `FCTR_NETWORK_EGRESS_PROXY`,
    /// `FCTR_NETWORK_EGRESS_BIND` (per host, e.g. each replica's own allow-listed address), `FCTR_POLICY_FILE`,
    /// `FCTR_AUDIT_SQLITE_PATH`.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] when an override does not parse.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = get("FCTR_SERVER_LISTEN") {
            self.server.listen = Some(
                v.parse()
                    .map_err(|_| invalid("FCTR_SERVER_LISTEN", "not a socket address"))?,
            );
        }
        if let Some(v) = get("FCTR_SERVER_PUBLIC_URL") {
            self.server.public_url =
                Some(Url::parse(&v).map_err(|_| invalid("FCTR_SERVER_PUBLIC_URL", "not a URL"))?);
        }
        if let Some(v) = get("FCTR_SERVER_TENANT") {
            self.server.tenant = Some(v);
        }
        if let Some(v) = get("FCTR_OKTA_ORG_URL") {
            let url = Url::parse(&v).map_err(|_| invalid("FCTR_OKTA_ORG_URL", "not a URL"))?;
            match &mut self.okta {
                Some(o) => o.org_url = url,
                None => {
                    return Err(invalid(
                        "FCTR_OKTA_ORG_URL",
                        "no [okta] section to override",
                    ));
                }
            }
        }
        let entra_url = |var: &str, v: &str| -> Result<Url, ConfigError> {
            Url::parse(v).map_err(|_| invalid(var, "not a URL"))
        };
        for var in [
            "FCTR_ENTRA_TENANT_ID",
            "FCTR_ENTRA_CLIENT_ID",
            "FCTR_ENTRA_AUTHORITY",
            "FCTR_ENTRA_GRAPH_BASE",
        ] {
            let Some(v) = get(var) else { continue };
            let Some(e) = &mut self.entra else {
                return Err(invalid(var, "no [entra] section to override"));
            };
            match var {
                "FCTR_ENTRA_TENANT_ID" => e.tenant_id = v,
                "FCTR_ENTRA_CLIENT_ID" => e.client_id = v,
                "FCTR_ENTRA_AUTHORITY" => e.authority = Some(entra_url(var, &v)?),
                _ => e.graph_base = Some(entra_url(var, &v)?),
            }
        }
        if let Some(v) = get("FCTR_SIGN_IN_ISSUER") {
            let url = Url::parse(&v).map_err(|_| invalid("FCTR_SIGN_IN_ISSUER", "not a URL"))?;
            match &mut self.sign_in {
                Some(s) => s.issuer = url,
                None => {
                    return Err(invalid(
                        "FCTR_SIGN_IN_ISSUER",
                        "no [sign_in] section to override",
                    ));
                }
            }
        }
        if let Some(v) = get("FCTR_SIGN_IN_CLIENT_ID") {
            match &mut self.sign_in {
                Some(s) => s.client_id = v,
                None => {
                    return Err(invalid(
                        "FCTR_SIGN_IN_CLIENT_ID",
                        "no [sign_in] section to override",
                    ));
                }
            }
        }
        if let Some(v) = get("FCTR_NETWORK_EGRESS_PROXY") {
            // Checked as the file's key is; the error names the rule, never the value (it could hold
            // credentials someone put in the URL).
            self.network.egress_proxy = Some(
                fctr_ports::EgressProxy::parse(&v)
                    .map_err(|e| invalid("FCTR_NETWORK_EGRESS_PROXY", e.to_string()))?,
            );
        }
        if let Some(v) = get("FCTR_NETWORK_EGRESS_BIND") {
            self.network.egress_bind = Some(v.trim().parse().map_err(|_| {
                invalid(
                    "FCTR_NETWORK_EGRESS_BIND",
                    "must be an IP address of this host (no port)",
                )
            })?);
        }
        if let Some(v) = get("FCTR_POLICY_FILE") {
            self.policy.file = Some(PathBuf::from(v));
        }
        if let Some(v) = get("FCTR_AUDIT_SQLITE_PATH") {
            match &mut self.audit {
                Some(a) if a.postgres_url.is_some() => {
                    return Err(invalid(
                        "FCTR_AUDIT_SQLITE_PATH",
                        "[audit] names PostgreSQL (postgres_url_env / postgres_url_file): a SQLite path cannot \
                         override it; unset the variable or change the file",
                    ));
                }
                Some(a) => a.sqlite_path = Some(PathBuf::from(v)),
                None => self.audit = Some(AuditSection::at(PathBuf::from(v))),
            }
        }
        Ok(())
    }
}
