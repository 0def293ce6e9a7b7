//! The network path traffic to the identity provider leaves by: [`Egress`]. Customers allow-list the address IdP
//! traffic comes from in their Okta or Entra network zones, so every adapter (and the portal's sign-in client)
//! sends its requests the one way the deployment names: directly, or through an HTTP forward proxy
//! ([`EgressProxy`], `CONNECT` for `https` targets, so TLS stays end to end to the IdP), and optionally from a
//! chosen source address.
//!
//! Pure data: this crate does no I/O. Each adapter applies an [`Egress`] to its own HTTP client. A configured
//! proxy is used for every request, loopback included, and the environment's `HTTP_PROXY` / `HTTPS_PROXY` never
//! apply: the path is the one configured, or direct, never a guess.

use base64::Engine as _;
use secrecy::{ExposeSecret as _, SecretString};
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

/// Why an egress setting was refused. The message names the rule, never the input (a proxy URL given with
/// credentials in it would otherwise be echoed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EgressError {
    /// The proxy URL is not `http://`.
    #[error(
        "the proxy URL must start with http:// (an HTTP forward proxy; https targets are tunnelled with CONNECT)"
    )]
    Scheme,
    /// The proxy URL carries a user name or password.
    #[error(
        "the proxy URL must not hold credentials (user:password@): give them as a secret source instead"
    )]
    Credentials,
    /// The proxy URL names no host, or a host with characters no host name has.
    #[error(
        "the proxy URL must name a host (a DNS name, an IPv4 address or a bracketed IPv6 address)"
    )]
    Host,
    /// The proxy URL names no port, or one that is not 1 to 65535.
    #[error("the proxy URL must end with the port: http://host:port")]
    Port,
    /// The proxy URL has a path, query or fragment.
    #[error("the proxy URL must be http://host:port only (no path, query or fragment)")]
    Path,
    /// The proxy user name is empty, holds a `:` or a control character, or is longer than 256 bytes.
    #[error("the proxy user name must be 1 to 256 printable characters without ':'")]
    Username,
    /// The proxy password is empty, holds a control character, or is longer than 1024 bytes.
    #[error("the proxy password must be 1 to 1024 bytes without control characters")]
    Password,
}

/// A user name and password for the proxy (`Proxy-Authorization: Basic`). The password never appears in
/// `Debug` output or errors.
#[derive(Clone)]
pub struct ProxyCredentials {
    username: String,
    password: SecretString,
}

impl fmt::Debug for ProxyCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyCredentials")
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .finish()
    }
}

impl ProxyCredentials {
    /// Credentials for the proxy.
    ///
    /// # Errors
    /// [`EgressError::Username`] or [`EgressError::Password`] naming the rule broken (never the value).
    pub fn parse(username: &str, password: SecretString) -> Result<Self, EgressError> {
        if username.is_empty()
            || username.len() > 256
            || username.contains(':')
            || username.chars().any(char::is_control)
        {
            return Err(EgressError::Username);
        }
        let p = password.expose_secret();
        if p.is_empty() || p.len() > 1024 || p.chars().any(char::is_control) {
            return Err(EgressError::Password);
        }
        Ok(Self {
            username: username.to_owned(),
            password,
        })
    }

    /// The user name.
    #[must_use]
    pub fn username(&self) -> &str {
        &self.username
    }
}

/// An HTTP forward proxy: `http://host:port`, with optional [`ProxyCredentials`]. Requests to `https` targets
/// go through a `CONNECT` tunnel (the TLS session is between fctr and the IdP); plain `http` targets (fakes on
/// loopback) are forwarded.
#[derive(Clone)]
pub struct EgressProxy {
    host: String,
    port: u16,
    credentials: Option<ProxyCredentials>,
}

impl fmt::Debug for EgressProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EgressProxy")
            .field("url", &self.url())
            .field("credentials", &self.credentials)
            .finish()
    }
}

impl EgressProxy {
    /// Parses `http://host:port` (an optional trailing `/` is accepted). The host is a DNS name, an IPv4
    /// address or a bracketed IPv6 address; the port is required.
    ///
    /// # Errors
    /// The [`EgressError`] naming the rule broken. The input is never part of the error.
    pub fn parse(url: &str) -> Result<Self, EgressError> {
        let url = url.trim();
        let rest = url
            .get(..7)
            .filter(|s| s.eq_ignore_ascii_case("http://"))
            .map(|_| &url[7..])
            .ok_or(EgressError::Scheme)?;
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains('@') {
            return Err(EgressError::Credentials);
        }
        if authority.contains(['/', '?', '#']) {
            return Err(EgressError::Path);
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (ip, after) = v6.split_once(']').ok_or(EgressError::Host)?;
            let ip: Ipv6Addr = ip.parse().map_err(|_| EgressError::Host)?;
            let port = after.strip_prefix(':').ok_or(EgressError::Port)?;
            (format!("[{ip}]"), port)
        } else {
            let (host, port) = authority.rsplit_once(':').ok_or(EgressError::Port)?;
            let ok = !host.is_empty()
                && host.len() <= 253
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_');
            if !ok {
                return Err(EgressError::Host);
            }
            (host.to_ascii_lowercase(), port)
        };
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0 && port.chars().all(|c| c.is_ascii_digit()))
            .ok_or(EgressError::Port)?;
        Ok(Self {
            host,
            port,
            credentials: None,
        })
    }

    /// The same proxy, authenticating with `credentials`.
    #[must_use]
    pub fn with_credentials(mut self, credentials: ProxyCredentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// `host:port` (IPv6 hosts bracketed): what logs and `fctr doctor` name.
    #[must_use]
    pub fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The host (IPv6 bracketed).
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://host:port`: the proxy URL for an HTTP client, never with credentials.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.authority())
    }

    /// The credentials, if any.
    #[must_use]
    pub fn credentials(&self) -> Option<&ProxyCredentials> {
        self.credentials.as_ref()
    }

    /// The `Proxy-Authorization` value (`Basic base64(user:password)`) when credentials are set. Mark the header
    /// sensitive where it is used.
    #[must_use]
    pub fn authorization(&self) -> Option<SecretString> {
        self.credentials.as_ref().map(|c| {
            let mut raw =
                zeroize::Zeroizing::new(format!("{}:{}", c.username, c.password.expose_secret()));
            let encoded = base64::engine::general_purpose::STANDARD.encode(raw.as_bytes());
            zeroize::Zeroize::zeroize(&mut *raw);
            SecretString::from(format!("Basic {encoded}"))
        })
    }
}

/// The path IdP traffic takes: direct (the default) or through an [`EgressProxy`], and from the system's
/// choice of source address or a fixed one (`bind`). `Display` says it in words (`direct`, `via proxy
/// proxy.internal:3128`, `direct, bound to 192.0.2.10`) and never shows credentials.
#[derive(Clone, Default)]
pub struct Egress {
    proxy: Option<EgressProxy>,
    bind: Option<IpAddr>,
}

impl Egress {
    /// Direct, from whatever source address the system picks.
    #[must_use]
    pub fn direct() -> Self {
        Self::default()
    }

    /// Through `proxy` (when given), from `bind` (when given).
    #[must_use]
    pub fn new(proxy: Option<EgressProxy>, bind: Option<IpAddr>) -> Self {
        Self { proxy, bind }
    }

    /// The proxy, if any.
    #[must_use]
    pub fn proxy(&self) -> Option<&EgressProxy> {
        self.proxy.as_ref()
    }

    /// The source address for outgoing connections (to the proxy when there is one), if fixed.
    #[must_use]
    pub fn bind(&self) -> Option<IpAddr> {
        self.bind
    }

    /// Neither a proxy nor a fixed source address.
    #[must_use]
    pub fn is_direct(&self) -> bool {
        self.proxy.is_none() && self.bind.is_none()
    }
}

impl fmt::Display for Egress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.proxy {
            Some(p) => write!(f, "via proxy {}", p.authority())?,
            None => f.write_str("direct")?,
        }
        if let Some(p) = self.proxy.as_ref().and_then(EgressProxy::credentials) {
            write!(f, " (as {})", p.username())?;
        }
        if let Some(ip) = self.bind {
            write!(f, ", bound to {ip}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Egress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Egress")
            .field("proxy", &self.proxy)
            .field("bind", &self.bind)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_proxy_url_is_http_host_and_port_only() {
        let p = EgressProxy::parse("http://Proxy.Internal:3128").unwrap();
        assert_eq!(p.authority(), "proxy.internal:3128");
        assert_eq!(p.url(), "http://proxy.internal:3128");
        assert_eq!(
            EgressProxy::parse("HTTP://10.0.0.5:8080/").unwrap().url(),
            "http://10.0.0.5:8080"
        );
        assert_eq!(
            EgressProxy::parse("http://[::1]:3128").unwrap().authority(),
            "[::1]:3128"
        );
        for (bad, why) in [
            ("https://proxy:3128", EgressError::Scheme),
            ("socks5://proxy:1080", EgressError::Scheme),
            ("proxy:3128", EgressError::Scheme),
            ("http://proxy", EgressError::Port),
            ("http://proxy:", EgressError::Port),
            ("http://proxy:0", EgressError::Port),
            ("http://proxy:70000", EgressError::Port),
            ("http://proxy:+80", EgressError::Port),
            ("http://:3128", EgressError::Host),
            ("http://pro xy:3128", EgressError::Host),
            ("http://[::1:3128", EgressError::Host),
            ("http://[zz]:3128", EgressError::Host),
            ("http://proxy:3128/path", EgressError::Path),
            ("http://proxy:3128?x=1", EgressError::Path),
        ] {
            assert_eq!(EgressProxy::parse(bad).unwrap_err(), why, "{bad}");
        }
    }

    #[test]
    fn credentials_in_the_url_are_refused_without_echoing_them() {
        let password = format!("pw{}", 7 * 191);
        let url = format!("http://fctr:{password}@proxy:3128");
        let e = EgressProxy::parse(&url).unwrap_err();
        assert_eq!(e, EgressError::Credentials);
        assert!(!e.to_string().contains(&password), "{e}");
        assert!(!format!("{e:?}").contains(&password));
    }

    #[test]
    fn credentials_never_show_in_debug_or_display() {
        let password = format!("canary-{}", 40 * 1009);
        let creds = ProxyCredentials::parse("fctr", SecretString::from(password.clone())).unwrap();
        let proxy = EgressProxy::parse("http://proxy:3128")
            .unwrap()
            .with_credentials(creds);
        let egress = Egress::new(Some(proxy.clone()), Some("192.0.2.10".parse().unwrap()));
        for shown in [
            format!("{egress:?}"),
            format!("{egress}"),
            format!("{proxy:?}"),
        ] {
            assert!(!shown.contains(&password), "{shown}");
        }
        assert_eq!(
            egress.to_string(),
            "via proxy proxy:3128 (as fctr), bound to 192.0.2.10"
        );
        let auth = proxy.authorization().unwrap();
        let b64 = auth.expose_secret().strip_prefix("Basic ").unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        assert_eq!(decoded, format!("fctr:{password}").as_bytes());
        assert!(!format!("{auth:?}").contains(b64));
    }

    #[test]
    fn bad_credentials_are_refused_by_rule() {
        let pw = || SecretString::from("x".repeat(12));
        assert_eq!(
            ProxyCredentials::parse("", pw()).unwrap_err(),
            EgressError::Username
        );
        assert_eq!(
            ProxyCredentials::parse("a:b", pw()).unwrap_err(),
            EgressError::Username
        );
        assert_eq!(
            ProxyCredentials::parse("a", SecretString::from(String::new())).unwrap_err(),
            EgressError::Password
        );
        assert_eq!(
            ProxyCredentials::parse("a", SecretString::from("x\ny".to_owned())).unwrap_err(),
            EgressError::Password
        );
    }

    #[test]
    fn the_path_is_said_in_words() {
        assert_eq!(Egress::direct().to_string(), "direct");
        assert!(Egress::direct().is_direct());
        let bound = Egress::new(None, Some("127.0.0.2".parse().unwrap()));
        assert_eq!(bound.to_string(), "direct, bound to 127.0.0.2");
        assert!(!bound.is_direct());
        let via = Egress::new(Some(EgressProxy::parse("http://p:1").unwrap()), None);
        assert_eq!(via.to_string(), "via proxy p:1");
    }

    proptest! {
        #[test]
        fn parsing_never_panics_and_what_parses_round_trips(s in "\\PC{0,40}") {
            if let Ok(p) = EgressProxy::parse(&s) {
                let again = EgressProxy::parse(&p.url()).unwrap();
                prop_assert_eq!(again.url(), p.url());
                prop_assert!(!p.url().contains('@'));
            }
        }

        #[test]
        fn generated_host_port_pairs_parse(host in "[a-z][a-z0-9-]{0,20}(\\.[a-z0-9-]{1,10}){0,3}", port in 1u16..) {
            let p = EgressProxy::parse(&format!("http://{host}:{port}")).unwrap();
            prop_assert_eq!(p.authority(), format!("{host}:{port}"));
        }
    }
}
