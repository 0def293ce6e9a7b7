//! The egress path applied to the portal's own HTTP client to the sign-in issuer (discovery, token exchange,
//! signing keys, userinfo). The adapters apply the same [`Egress`] to theirs, so every request to the identity
//! provider leaves the one way `[network]` names.

use fctr_ports::Egress;
use openidconnect::reqwest;
use secrecy::ExposeSecret as _;

/// Sends every request of `b` the way `egress` says, and no other way: proxies from the environment
/// (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`) are dropped; the configured proxy, if any, takes every request
/// (loopback issuers too: no `NO_PROXY` exception), `https` ones through a `CONNECT` tunnel so TLS stays end to
/// end, with its credentials in a sensitive `Proxy-Authorization` header; `bind` fixes the source address.
///
/// # Errors
/// `"egress proxy"` when the proxy cannot be set up (never the credentials).
pub(crate) fn apply(
    b: reqwest::ClientBuilder,
    egress: &Egress,
) -> Result<reqwest::ClientBuilder, &'static str> {
    let mut b = b.no_proxy();
    if let Some(p) = egress.proxy() {
        let mut proxy = reqwest::Proxy::all(p.url()).map_err(|_| "egress proxy")?;
        if let Some(auth) = p.authorization() {
            let mut v = reqwest::header::HeaderValue::from_str(auth.expose_secret())
                .map_err(|_| "egress proxy")?;
            v.set_sensitive(true);
            proxy = proxy.custom_http_auth(v);
        }
        b = b.proxy(proxy);
    }
    if let Some(ip) = egress.bind() {
        b = b.local_address(ip);
    }
    Ok(b)
}
