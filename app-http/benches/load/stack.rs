//! Load benchmark: the stack.

use super::*;

pub(crate) struct Stack {
    pub(crate) fake: Fake,
    pub(crate) base: String,
    pub(crate) addr: SocketAddr,
    pub(crate) _dir: tempfile::TempDir,
}

/// The fake Okta, served here behind a layer that counts (and on demand records) its `/api/v1/` requests: the
/// upstream requests a portal lookup really makes, which the direct baseline then replays.
pub(crate) struct Fake {
    pub(crate) state: FakeOktaState,
    pub(crate) base: url::Url,
    pub(crate) api_requests: Arc<AtomicU64>,
    pub(crate) record: Arc<std::sync::Mutex<Option<Vec<String>>>>,
}

impl Fake {
    pub(crate) fn fixtures(&self) -> &fctr_testkit::okta::Fixtures {
        self.state.fixtures()
    }
    pub(crate) fn phones(&self) -> fctr_testkit::okta::Phones {
        self.state.phones()
    }
    pub(crate) fn oidc_client(&self) -> fctr_testkit::okta::OidcClient {
        self.state.oidc_client()
    }
    pub(crate) fn api_token(&self) -> &str {
        self.state.api_token()
    }
    pub(crate) fn base_url(&self) -> url::Url {
        self.base.clone()
    }
}

pub(crate) fn extra_callers() -> Vec<FixtureUser> {
    (0..CALLERS)
        .map(|i| {
            let handle = format!("bench{i:02}");
            let id = format!("00u{handle:0<17}");
            FixtureUser::caller(
                &handle,
                &id,
                &format!("{handle}@example.com"),
                "Bench",
                &format!("Caller{i:02}"),
                None,
            )
        })
        .collect()
}

/// Thread name of the fake Okta's runtime.
pub(crate) const FAKE_THREADS: &str = "fake-okta";

/// The runtime the fake Okta is served on: two worker threads of its own, named [`FAKE_THREADS`], so that the
/// bench can tell the fake's CPU from the portal's (`/proc/self/task/*/stat`) and a profile can tell their
/// samples apart (perf's `comm`). Never dropped.
pub(crate) fn fake_runtime() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            // Parsed here, not with a bench's own `env_num`: the tap bench includes this file too.
            .worker_threads(
                std::env::var("FCTR_BENCH_FAKE_THREADS")
                    .ok()
                    .and_then(|v| v.parse::<usize>().ok())
                    .filter(|n| *n > 0)
                    .unwrap_or(2),
            )
            .thread_name(FAKE_THREADS)
            .enable_all()
            .build()
            .expect("the fake's runtime")
    })
}

pub(crate) async fn start_fake() -> Fake {
    let opts = FakeOktaOptions {
        // The fake's own per-route rate limit (600/min by default) would throttle the load, not the portal.
        rate_limit_per_minute: 100_000_000,
        extra_users: extra_callers(),
        ..FakeOktaOptions::default()
    };
    // Bound here, registered with the fake's own runtime below (a tokio listener belongs to the runtime that
    // made it).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the fake");
    listener.set_nonblocking(true).expect("non-blocking");
    let base = url::Url::parse(&format!(
        "http://{}",
        listener.local_addr().expect("address")
    ))
    .expect("fake URL");
    let state = FakeOktaState::new_async(&opts, base.clone())
        .await
        .expect("fake Okta state");
    let api_requests = Arc::new(AtomicU64::new(0));
    let record: Arc<std::sync::Mutex<Option<Vec<String>>>> = Arc::default();
    let (n, rec) = (api_requests.clone(), record.clone());
    let app = fctr_testkit::okta::router(state.clone()).layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let path = req.uri().path().to_owned();
            if path.starts_with("/api/v1/") {
                n.fetch_add(1, Ordering::Relaxed);
                if let Some(v) = rec.lock().unwrap().as_mut() {
                    v.push(format!("{} {path}", req.method()));
                }
            }
            next.run(req)
        },
    ));
    fake_runtime().spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
        // A `Router` handed to `axum::serve` as it is rebuilds its whole route table for each connection (about
        // 18 KiB here; the portal holds hundreds of connections to the fake while 1,000 pushes are polled), and
        // that memory would count as the portal's. Made into a service once, each connection shares it.
        let _ = axum::serve(listener, app.into_make_service()).await;
    });
    Fake {
        state,
        base,
        api_requests,
        record,
    }
}

pub(crate) async fn start_stack(fake: Fake) -> Stack {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let base = format!("http://{addr}");
    fake.state.add_redirect_uri(format!("{base}/auth/callback"));

    // The production wiring (`from_config`) pointed at the fake, with a bench policy: the default policy's
    // limits (5 challenges per caller, 60 per agent, 300 lookups per agent, per hour) would refuse the load.
    let dir = tempfile::tempdir().expect("temp dir");
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).expect("write");
        p.display().to_string()
    };
    let token = write("okta-token", fake.api_token());
    let client = fake.oidc_client();
    let secret = write(
        "oidc-secret",
        secrecy::ExposeSecret::expose_secret(&client.client_secret),
    );
    let key = write("pseudo-key", &"7".repeat(64));
    let policy = write(
        "policy.toml",
        "version = 1\n[limits]\nchallenges_per_target_per_hour = 100\n\
         challenges_per_agent_per_hour = 10000\nlookups_per_agent_per_hour = 100000\n",
    );
    let audit = dir.path().join("audit.sqlite").display().to_string();
    let toml = format!(
        "[server]\npublic_url = \"{base}\"\ntenant = \"bench\"\n\n\
         [limits]\napi_per_agent_per_minute = 100000000\n\n\
         [okta]\norg_url = \"{org}\"\napi_token_file = \"{token}\"\n\n\
         [sign_in]\nissuer = \"{issuer}\"\nclient_id = \"{cid}\"\nclient_secret_file = \"{secret}\"\n\n\
         [policy]\nfile = \"{policy}\"\n\n\
         [pseudonymization]\nkey_id = \"bench\"\nkey_file = \"{key}\"\n\n\
         [audit]\nsqlite_path = \"{audit}\"\ncheckpoint_key_file = \"{key}\"\n",
        org = fake.base_url(),
        issuer = client.issuer,
        cid = client.client_id,
    );
    let cfg = Config::parse(&toml, Path::new("bench.toml")).expect("bench configuration");
    let state = fctr_portal::startup::from_config(&cfg)
        .await
        .expect("portal starts");
    let app = fctr_portal::router(state).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Stack {
        fake,
        base,
        addr,
        _dir: dir,
    }
}

pub(crate) fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("HTTP client")
}

pub(crate) fn between<'a>(s: &'a str, before: &str, after: &str) -> Option<&'a str> {
    let i = s.find(before)? + before.len();
    let j = s[i..].find(after)? + i;
    Some(&s[i..j])
}

pub(crate) fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Picks `agent` on the fake's sign-in page for an authorize URL; returns the redirect (callback) URL.
pub(crate) async fn pick_agent(
    c: &reqwest::Client,
    fake: &Fake,
    authorize: &str,
    agent: &str,
) -> String {
    let page = c
        .get(authorize)
        .send()
        .await
        .expect("authorize")
        .text()
        .await
        .expect("page");
    let request_id = between(&page, "name=\"request_id\" value=\"", "\"")
        .unwrap_or_else(|| panic!("no sign-in page: {page}"));
    let mut post = url::Url::parse(authorize).expect("authorize URL");
    post.set_query(None);
    let r = c
        .post(post)
        .form(&[
            ("request_id", request_id),
            ("user", &fake.fixtures().id_of(agent)),
        ])
        .send()
        .await
        .expect("sign-in form");
    location(&r)
}

/// An ID token for `agent` from the fake issuer (code flow with PKCE, as the portal does), used as the API's
/// bearer token.
pub(crate) async fn bearer(st: &Stack, agent: &str) -> String {
    let c = http();
    let client = st.fake.oidc_client();
    let issuer = client.issuer.as_str().trim_end_matches('/').to_owned();
    let verifier = format!("bench-verifier-{agent}-{}", "x".repeat(40));
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    let redirect = format!("{}/auth/callback", st.base);
    let mut authorize = url::Url::parse(&format!("{issuer}/oauth2/v1/authorize")).expect("URL");
    authorize
        .query_pairs_mut()
        .append_pair("client_id", &client.client_id)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid profile groups")
        .append_pair("redirect_uri", &redirect)
        .append_pair("state", "bench-state")
        .append_pair("nonce", "bench-nonce")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let back = pick_agent(&c, &st.fake, authorize.as_str(), agent).await;
    let code = url::Url::parse(&back)
        .expect("callback URL")
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no code in {back}"));
    let secret = secrecy::ExposeSecret::expose_secret(&client.client_secret).to_owned();
    let tokens: serde_json::Value = c
        .post(format!("{issuer}/oauth2/v1/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect),
            ("code_verifier", &verifier),
            ("client_id", &client.client_id),
            ("client_secret", &secret),
        ])
        .send()
        .await
        .expect("token endpoint")
        .json()
        .await
        .expect("token JSON");
    tokens["id_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no id_token: {tokens}"))
        .to_owned()
}

/// A portal session cookie (`fctr=…`) for `agent`, through the portal's own sign-in.
pub(crate) async fn session_cookie(st: &Stack, agent: &str) -> String {
    let c = http();
    let r = c
        .get(format!("{}/auth/login?return_to=%2Fsearch", st.base))
        .send()
        .await
        .expect("login");
    let pre = cookie_from(&r, "fctr-login").expect("pre-login cookie");
    let authorize = location(&r);
    let back = pick_agent(&c, &st.fake, &authorize, agent).await;
    let r = c
        .get(&back)
        .header("cookie", format!("fctr-login={pre}"))
        .send()
        .await
        .expect("callback");
    let sid = cookie_from(&r, "fctr").unwrap_or_else(|| panic!("no session: {}", r.status()));
    format!("fctr={sid}")
}

pub(crate) fn cookie_from(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|c| c.split(';').next())
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, v)| *k == name && !v.is_empty())
        .map(|(_, v)| v.to_owned())
}

/// A counter from the portal's `/metrics` (sum over labels).
pub(crate) async fn metric(st: &Stack, name: &str) -> f64 {
    metric_without(st, name, None).await
}

/// A counter from the portal's `/metrics`, summed over the series whose labels do not contain `skip`.
pub(crate) async fn metric_without(st: &Stack, name: &str, skip: Option<&str>) -> f64 {
    let text = http()
        .get(format!("{}/metrics", st.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter(|l| skip.is_none_or(|s| !l.contains(s)))
        .filter_map(|l| l.rsplit(' ').next())
        .filter_map(|v| v.parse::<f64>().ok())
        .sum()
}
