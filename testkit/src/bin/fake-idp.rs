//! `fake-idp`: run a fake identity provider on loopback for demos and manual testing.
//!
//! ```text
//! cargo run -p fctr-testkit --bin fake-idp -- okta --listen 127.0.0.1:8081
//! cargo run -p fctr-testkit --bin fake-idp -- entra --listen 127.0.0.1:8082
//! ```
#![forbid(unsafe_code)]

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use fctr_testkit::entra::{FakeEntra, FakeEntraOptions};
use fctr_testkit::okta::{FakeOkta, FakeOktaOptions};
use secrecy::ExposeSecret as _;

#[derive(Parser)]
#[command(
    name = "fake-idp",
    about = "Run a fake identity provider (test double) on loopback"
)]
struct Cli {
    #[command(subcommand)]
    idp: Idp,
}

#[derive(Subcommand)]
enum Idp {
    /// A fake Okta org: management API, org authorization server, OIDC sign-in, simulated phone page.
    Okta {
        /// Address to listen on (loopback only is recommended: the control API is unauthenticated).
        #[arg(long, default_value = "127.0.0.1:8081")]
        listen: SocketAddr,
        /// Issuer / link base override (default http://LISTEN).
        #[arg(long)]
        issuer: Option<url::Url>,
        /// Seconds a push waits before TIMEOUT.
        #[arg(long, default_value_t = 60)]
        push_timeout_secs: u64,
        /// Extra OIDC redirect URI to register (repeatable).
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// Requests per minute per route bucket.
        #[arg(long, default_value_t = 600)]
        rate_limit: u32,
        /// Where to write the service app's private key PEM (default: a file in the temp dir).
        #[arg(long)]
        key_out: Option<PathBuf>,
    },
    /// A fake Microsoft Entra ID tenant: token endpoint, Graph subset, MFA connector, OIDC sign-in, phone page.
    Entra {
        /// Address to listen on (loopback only is recommended: the control API is unauthenticated).
        #[arg(long, default_value = "127.0.0.1:8082")]
        listen: SocketAddr,
        /// Base URL override for issuers and links (default http://LISTEN).
        #[arg(long)]
        base_url: Option<url::Url>,
        /// Seconds a connector push waits before PhoneAppNoResponse.
        #[arg(long, default_value_t = 60)]
        push_timeout_secs: u64,
        /// Extra portal redirect URI to register (repeatable).
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// Graph requests per minute per route.
        #[arg(long, default_value_t = 600)]
        rate_limit: u32,
        /// Where to write the certificate's private key PEM (default: a file in the temp dir).
        #[arg(long)]
        key_out: Option<PathBuf>,
    },
}

fn write_key(path: &PathBuf, pem: &str) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    opts.open(path)?.write_all(pem.as_bytes())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.idp {
        Idp::Entra {
            listen,
            base_url,
            push_timeout_secs,
            redirect_uris,
            rate_limit,
            key_out,
        } => {
            let options = FakeEntraOptions {
                listen,
                base_url,
                push_timeout: Duration::from_secs(push_timeout_secs),
                extra_redirect_uris: redirect_uris,
                rate_limit_per_minute: rate_limit,
                ..FakeEntraOptions::default()
            };
            let entra = match FakeEntra::start(options).await {
                Ok(e) => e,
                Err(e) => {
                    eprintln!("fake-idp entra: {e}");
                    return ExitCode::FAILURE;
                }
            };
            run_entra(entra, key_out).await
        }
        Idp::Okta {
            listen,
            issuer,
            push_timeout_secs,
            redirect_uris,
            rate_limit,
            key_out,
        } => {
            let options = FakeOktaOptions {
                listen,
                issuer,
                push_timeout: Duration::from_secs(push_timeout_secs),
                extra_redirect_uris: redirect_uris,
                rate_limit_per_minute: rate_limit,
                ..FakeOktaOptions::default()
            };
            let okta = match FakeOkta::start(options).await {
                Ok(o) => o,
                Err(e) => {
                    eprintln!("fake-idp okta: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let app = okta.service_app();
            let pem = app.private_key_pem.expose_secret();
            let key_path = key_out.unwrap_or_else(|| {
                std::env::temp_dir().join(format!(
                    "fctr-fake-okta-{}-service-key.pem",
                    okta.local_addr().port()
                ))
            });
            let key_note = match write_key(&key_path, pem) {
                Ok(()) => key_path.display().to_string(),
                Err(e) => format!("(could not write {}: {e})", key_path.display()),
            };
            let oidc = okta.oidc_client();
            let base = okta.base_url();
            let base = base.as_str().trim_end_matches('/');
            println!("FAKE OKTA (fctr testkit) - test double, not a real IdP");
            println!("base_url:            {base}");
            println!(
                "issuer:              {}",
                okta.issuer().as_str().trim_end_matches('/')
            );
            println!("ssws_token:          {}", okta.api_token());
            println!("service_client_id:   {}", app.client_id);
            println!("service_key_id:      {} ({})", app.key_id, app.alg);
            println!("service_scopes:      {}", app.scopes.join(" "));
            println!("service_key_pem:     {key_note}");
            println!("oidc_client_id:      {}", oidc.client_id);
            println!(
                "oidc_client_secret:  {}",
                oidc.client_secret.expose_secret()
            );
            println!("oidc_redirect_uris:  {}", oidc.redirect_uris.join(" "));
            println!("phone_page:          {base}/_fake/phone");
            println!("peer_log:            {base}/_fake/peers");
            println!("users:");
            for u in &okta.fixtures().users {
                let factors: Vec<&str> = u.factors.iter().map(|f| f.factor_type.as_str()).collect();
                println!(
                    "  {:<7} {} {:<22} {:<16} groups=[{}] factors=[{}] totp_secret={}",
                    u.handle,
                    u.id,
                    u.login,
                    u.status,
                    u.groups.join(","),
                    factors.join(","),
                    u.totp_secret.as_deref().unwrap_or("-"),
                );
            }
            println!("{pem}");
            let _ = std::io::stdout().flush();
            let _ = tokio::signal::ctrl_c().await;
            okta.shutdown().await;
            ExitCode::SUCCESS
        }
    }
}

async fn run_entra(entra: FakeEntra, key_out: Option<PathBuf>) -> ExitCode {
    let cert = entra.certificate();
    let pem = cert.private_key_pem.expose_secret();
    let key_path = key_out.unwrap_or_else(|| {
        std::env::temp_dir().join(format!(
            "fctr-fake-entra-{}-cert-key.pem",
            entra.local_addr().port()
        ))
    });
    let key_note = match write_key(&key_path, pem) {
        Ok(()) => key_path.display().to_string(),
        Err(e) => format!("(could not write {}: {e})", key_path.display()),
    };
    let app = entra.app();
    let reader = entra.reader_app();
    let mfa = entra.mfa_client();
    let oidc = entra.oidc_client();
    let base = entra.base_url();
    let base = base.as_str().trim_end_matches('/');
    println!("FAKE ENTRA (fctr testkit) - test double, not a real IdP");
    println!("base_url:            {base}");
    println!("tenant_id:           {}", entra.tenant_id());
    println!("authority:           {}", entra.authority());
    println!("graph_base:          {}", entra.graph_base());
    println!("connector_endpoint:  {}", entra.connector_endpoint());
    println!("token_url:           {}", app.token_url);
    println!("client_id:           {}", app.client_id);
    println!("client_secret:       {}", app.client_secret.expose_secret());
    println!("permissions:         {}", app.permissions.join(" "));
    println!("cert_key_pem:        {key_note}");
    println!("cert_x5t:            {} (sha1 {})", cert.x5t, cert.sha1_hex);
    println!(
        "cert_x5t#S256:       {} (sha256 {})",
        cert.x5t_s256, cert.sha256_hex
    );
    println!(
        "reader_app:          {} / {} ({})",
        reader.client_id,
        reader.client_secret.expose_secret(),
        reader.permissions.join(" ")
    );
    println!(
        "mfa_client:          {} / {}",
        mfa.client_id,
        mfa.client_secret.expose_secret()
    );
    println!("oidc_issuer:         {}", oidc.issuer);
    println!("oidc_client_id:      {}", oidc.client_id);
    println!(
        "oidc_client_secret:  {}",
        oidc.client_secret.expose_secret()
    );
    println!("oidc_redirect_uris:  {}", oidc.redirect_uris.join(" "));
    println!("phone_page:          {base}/_fake/phone");
    println!("peer_log:            {base}/_fake/peers");
    println!("users:");
    for u in &entra.fixtures().users {
        let methods: Vec<&str> = u.methods.iter().map(|m| m.method.odata_type()).collect();
        println!(
            "  {:<7} {} {:<52} enabled={} synced={} groups=[{}] roles=[{}] app_roles=[{}] methods=[{}] totp_secret={}",
            u.handle,
            u.id,
            u.upn,
            u.account_enabled,
            u.on_premises_sync_enabled,
            u.groups.join(","),
            u.directory_roles.join(","),
            u.app_roles.join(","),
            methods.join(","),
            u.totp_secret.as_deref().unwrap_or("-"),
        );
    }
    let _ = std::io::stdout().flush();
    let _ = tokio::signal::ctrl_c().await;
    entra.shutdown().await;
    ExitCode::SUCCESS
}
