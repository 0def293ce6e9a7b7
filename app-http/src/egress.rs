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
/// A forward proxy relaying plain `http` (not a `CONNECT` tunnel) may close the client connection after each
/// response (tinyproxy does) without saying so; a request sent on that pooled connection in the moment before the
/// close is seen fails. So with a proxy and plain-http targets (only the loopback fakes: real IdPs are https),
/// idle connections are not reused. `https` targets keep their pooled `CONNECT` tunnels.
pub(crate) fn apply(
    b: reqwest::ClientBuilder,
    egress: &Egress,
    plain_http: bool,
) -> Result<reqwest::ClientBuilder, &'static str> {
    let mut b = b.no_proxy();
    if let Some(p) = egress.proxy() {
        if plain_http {
            b = b.pool_max_idle_per_host(0);
        }
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
