//! `fctr-portal`: the agent portal. `fctr-portal --config FILE` serves a configured deployment;
//! `fctr-portal --check-config FILE` validates one (exit 0, or 2 with a message); no configuration at all starts
//! demo mode on loopback in a build with the `demo` feature (the default), and is refused (exit 2) in the
//! production build (`--no-default-features`), which contains no fake IdP.
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout, clippy::print_stderr)]

use clap::Parser;
use fctr_portal::config::{Config, PortalConfig as _};
use fctr_portal::startup::from_config;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// fctr agent portal.
#[derive(Parser, Debug)]
#[command(
    name = "fctr-portal",
    version,
    about = "fctr agent portal and JSON API. No --config: demo mode (in builds with the `demo` feature)."
)]
struct Args {
    /// The configuration file (TOML). Without it, demo mode (builds with the `demo` feature only).
    #[arg(long, env = "FCTR_CONFIG")]
    config: Option<PathBuf>,
    /// Validate a configuration file and exit (0 valid, 2 invalid).
    #[arg(long, value_name = "FILE")]
    check_config: Option<PathBuf>,
    /// Listen address (overrides the file; demo default 127.0.0.1:8080).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Demo mode: directory for the demo audit file (default ./.fctr-data).
    #[arg(long, default_value = ".fctr-data")]
    data_dir: PathBuf,
    /// Demo mode over TLS: the certificate chain (PEM), e.g. a throwaway one for a TLS scan.
    #[arg(long, value_name = "PEM", requires = "demo_tls_key")]
    demo_tls_cert: Option<PathBuf>,
    /// Demo mode over TLS: the private key (PEM).
    #[arg(long, value_name = "PEM", requires = "demo_tls_cert")]
    demo_tls_key: Option<PathBuf>,
}

/// JSON logs on stdout, or into hourly files under `dir` (`[logging] dir`).
fn init_logs(dir: Option<&std::path::Path>) -> Result<(), String> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FCTR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true);
    match dir {
        Some(d) => {
            let _ = builder
                .with_writer(fctr_portal::logfiles::appender(d)?)
                .try_init();
        }
        None => {
            let _ = builder.try_init();
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    tracing::info!("shutting down");
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(path) = &args.check_config {
        return match Config::load(path).and_then(|c| c.validate_portal().map(|()| c)) {
            Ok(_) => {
                println!("{}: configuration is valid", path.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("invalid configuration: {e}");
                ExitCode::from(2)
            }
        };
    }
    let log_dir = args
        .config
        .as_ref()
        .and_then(|p| Config::load(p).ok())
        .and_then(|c| c.logging.dir);
    if let Err(e) = init_logs(log_dir.as_deref()) {
        eprintln!("cannot start: {e}");
        return ExitCode::from(2);
    }
    let _ = fctr_portal::metrics::handle();
    let (state, listen, demo, tls) = match &args.config {
        Some(path) => {
            let mut cfg = match Config::load(path) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("invalid configuration: {e}");
                    return ExitCode::from(2);
                }
            };
            if let Some(l) = args.listen {
                cfg.server.listen = Some(l);
            }
            let listen = cfg.listen();
            // Before anything starts: plain HTTP off loopback without a declared proxy is refused, and a bad
            // certificate or key is named.
            if let Err(e) = cfg.check_transport() {
                eprintln!("cannot start: {e}");
                return ExitCode::from(2);
            }
            let tls = match cfg.tls_config() {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("cannot start: {e}");
                    return ExitCode::from(2);
                }
            };
            match from_config(&cfg).await {
                Ok(s) => (s, listen, None, tls),
                Err(e) => {
                    eprintln!("cannot start: {e}");
                    return ExitCode::from(2);
                }
            }
        }
        None => match demo_mode::start(&args).await {
            Ok(started) => started,
            Err(code) => return code,
        },
    };
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on {listen}: {e}");
            return ExitCode::from(1);
        }
    };
    // Retention: audit and usage purged on start and daily; runtime log files (if any) pruned hourly.
    let engine = state.engine().clone();
    tokio::spawn(async move {
        let mut hours = 0u32;
        loop {
            if hours % 24 == 0 {
                if let Err(e) = engine.purge_expired().await {
                    tracing::warn!(error = %e, "retention purge failed");
                }
            }
            if let Some(dir) = &log_dir {
                let keep = engine.retention().runtime_logs;
                match fctr_portal::logfiles::prune(dir, chrono::Utc::now(), keep) {
                    Ok(n) if n > 0 => tracing::info!(removed = n, "old runtime log files deleted"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "runtime log retention failed"),
                }
            }
            hours = hours.wrapping_add(1);
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    });
    let scheme = if tls.is_some() { "https" } else { "http" };
    if let Some(d) = &demo {
        demo_mode::banner(d, scheme, listen, &args.data_dir);
    }
    tracing::info!(%listen, demo = demo.is_some(), tls = tls.is_some(), "fctr portal listening");
    // Tamper evidence: the chain heads are checkpointed (HMAC'd with the checkpoint key) on a schedule and once
    // more at shutdown.
    let _checkpointer = state.start_checkpointer().await;
    let app = fctr_portal::router(state.clone());
    if let Err(e) = fctr_portal::tls::serve(listener, tls, app, shutdown_signal()).await {
        eprintln!("server error: {e}");
        return ExitCode::from(1);
    }
    state.checkpoint_and_close().await;
    if let Some(d) = demo {
        demo_mode::shutdown(d).await;
    }
    ExitCode::SUCCESS
}

/// Demo mode: the fake Okta in-process, when the binary is built with the `demo` feature.
#[cfg(feature = "demo")]
mod demo_mode {
    use super::Args;
    use fctr_portal::AppState;
    pub(super) use fctr_portal::demo::Demo;
    use fctr_portal::demo::{DemoOptions, start_demo};
    use std::net::SocketAddr;
    use std::path::Path;
    use std::process::ExitCode;
    use std::sync::Arc;

    /// What `main` serves: the state, the address, the demo handle, TLS.
    type Started = (
        AppState,
        SocketAddr,
        Option<Demo>,
        Option<Arc<rustls::ServerConfig>>,
    );

    /// Starts demo mode (loopback only).
    pub(super) async fn start(args: &Args) -> Result<Started, ExitCode> {
        let listen = args
            .listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
        if !listen.ip().is_loopback() {
            eprintln!("demo mode binds loopback only; use --listen 127.0.0.1:PORT");
            return Err(ExitCode::from(2));
        }
        let tls = match (&args.demo_tls_cert, &args.demo_tls_key) {
            (Some(c), Some(k)) => match fctr_portal::tls::server_config(c, k) {
                Ok(t) => Some(t),
                Err(e) => {
                    eprintln!("cannot start: {e}");
                    return Err(ExitCode::from(2));
                }
            },
            (None, None) => None,
            _ => {
                eprintln!("--demo-tls-cert and --demo-tls-key go together");
                return Err(ExitCode::from(2));
            }
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let Ok(public_url) = url::Url::parse(&format!("{scheme}://{listen}")) else {
            return Err(ExitCode::from(2));
        };
        let mut opts = DemoOptions::new(public_url);
        opts.data_dir = Some(args.data_dir.clone());
        match start_demo(opts).await {
            Ok(d) => {
                let st = d.state.clone();
                Ok((st, listen, Some(d), tls))
            }
            Err(e) => {
                eprintln!("cannot start demo mode: {e}");
                Err(ExitCode::from(1))
            }
        }
    }

    /// The banner saying what is fake and how to try it.
    pub(super) fn banner(d: &Demo, scheme: &str, listen: SocketAddr, data_dir: &Path) {
        let base = d.fake.base_url();
        println!();
        println!("  fctr portal DEMO  ->  {scheme}://{listen}/");
        println!();
        println!("  Everything is fake: a fake Okta org runs in-process at {base}");
        println!("  1. Open {scheme}://{listen}/ and sign in as agent2@example.com (Tier 2).");
        println!("  2. Search \"alice\", open her card, press \"Send push\".");
        println!(
            "  3. Open the simulated phone at {base}_fake/phone and pick the number the portal shows."
        );
        println!(
            "  4. Watch the page turn to verified, then reset her password: the link is shown once."
        );
        println!(
            "  Also try agent1 (Tier 1: verify only), agent3 (Tier 3), agent0 (no role), carol (protected)."
        );
        println!("  Audit: {}", data_dir.join("demo-audit.sqlite").display());
        println!();
    }

    /// Stops the fake Okta.
    pub(super) async fn shutdown(d: Demo) {
        d.fake.shutdown().await;
    }
}

/// Without the `demo` feature there is no demo mode: no configuration is an error, not a silent fallback.
#[cfg(not(feature = "demo"))]
mod demo_mode {
    use super::Args;
    use fctr_portal::AppState;
    use std::net::SocketAddr;
    use std::path::Path;
    use std::process::ExitCode;
    use std::sync::Arc;

    /// No demo in this build (uninhabited: `main` never holds one).
    pub(super) enum Demo {}

    type Started = (
        AppState,
        SocketAddr,
        Option<Demo>,
        Option<Arc<rustls::ServerConfig>>,
    );

    /// Refuses: this build has no demo mode.
    #[allow(clippy::unused_async)]
    pub(super) async fn start(_: &Args) -> Result<Started, ExitCode> {
        eprintln!(
            "no configuration: pass --config FILE (or set FCTR_CONFIG). This fctr-portal is a production build \
             without demo mode (the `demo` feature); see docs/portal.md"
        );
        Err(ExitCode::from(2))
    }

    pub(super) fn banner(d: &Demo, _: &str, _: SocketAddr, _: &Path) {
        match *d {}
    }

    #[allow(clippy::unused_async)]
    pub(super) async fn shutdown(d: Demo) {
        match d {}
    }
}
