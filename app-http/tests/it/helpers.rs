//! Test harness: a demo stack with a manual clock, the portal router called in-process, and a scripted browser
//! that signs in through the fake Okta's own login page.

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, StatusCode, header};
use chrono::Utc;
use fctr_memory::ManualClock;
use fctr_portal::demo::{Demo, DemoOptions, start_demo};
use fctr_portal::poller::{PollSchedule, PollSettings};
use http_body_util::BodyExt as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt as _;

pub const PUBLIC: &str = "http://127.0.0.1:8080";

pub struct TestApp {
    pub demo: Demo,
    pub clock: Arc<ManualClock>,
    pub app: Router,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect()
    }
    pub fn location(&self) -> String {
        self.header("location").unwrap_or_default().to_owned()
    }
}

pub async fn to_resp(r: Response<Body>) -> Resp {
    let status = r.status();
    let headers = r.headers().clone();
    let bytes = r.into_body().collect().await.unwrap().to_bytes();
    Resp {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// Text between `before` and the next `after`.
pub fn between<'a>(s: &'a str, before: &str, after: &str) -> Option<&'a str> {
    let i = s.find(before)? + before.len();
    let j = s[i..].find(after)? + i;
    Some(&s[i..j])
}

/// Signs `user` (the fake's user id) in on a fake IdP's own login page (fake Okta or fake Entra: the same form)
/// at `authorize`; returns the login page's HTML and where the fake sends the browser back (absolute).
pub async fn fake_idp_login(authorize: &str, user: &str) -> (String, String) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = http
        .get(authorize)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let request_id = between(&page, "name=\"request_id\" value=\"", "\"")
        .unwrap_or_else(|| panic!("the fake IdP's login page at {authorize}: {page}"))
        .to_owned();
    let mut post_url = url::Url::parse(authorize).unwrap();
    post_url.set_query(None);
    let resp = http
        .post(post_url)
        .form(&[("request_id", request_id.as_str()), ("user", user)])
        .send()
        .await
        .unwrap();
    let loc = resp
        .headers()
        .get("location")
        .expect("the fake IdP redirects back")
        .to_str()
        .unwrap()
        .to_owned();
    (page, loc)
}

pub async fn start() -> TestApp {
    start_with(|_| {}).await
}

pub async fn start_with(f: impl FnOnce(&mut DemoOptions)) -> TestApp {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let mut opts = DemoOptions::new(url::Url::parse(PUBLIC).unwrap());
    opts.clock = clock.clone();
    opts.poll = PollSettings {
        schedule: PollSchedule {
            fast: Duration::from_millis(50),
            fast_for: Duration::from_secs(5),
            interval: Duration::from_millis(50),
            backoff_after: Duration::from_secs(5),
            max: Duration::from_millis(100),
        },
        ..PollSettings::default()
    };
    f(&mut opts);
    let demo = start_demo(opts).await.expect("demo stack starts");
    let app = fctr_portal::router(demo.state.clone());
    TestApp { demo, clock, app }
}

/// A browser: a cookie jar (one cookie per name) and the page's CSRF token.
#[derive(Clone, Default)]
pub struct Browser {
    pub cookies: Vec<(String, String)>,
    pub csrf: String,
}

impl Browser {
    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
    pub fn absorb(&mut self, r: &Resp) {
        for c in r.set_cookies() {
            let first = c.split(';').next().unwrap_or_default();
            if let Some((k, v)) = first.split_once('=') {
                self.cookies.retain(|(n, _)| n != k);
                if !v.is_empty() && !c.contains("Max-Age=0") {
                    self.cookies.push((k.to_owned(), v.to_owned()));
                }
            }
        }
    }
    pub fn session(&self) -> Option<String> {
        self.cookies
            .iter()
            .find(|(k, _)| k == "fctr")
            .map(|(_, v)| v.clone())
    }
}

impl TestApp {
    /// Sends a request from loopback (the connection info a real socket gives), unless the request already
    /// says where it comes from.
    pub async fn send(&self, mut req: Request<Body>) -> Resp {
        if req.extensions().get::<ConnectInfo<SocketAddr>>().is_none() {
            req.extensions_mut()
                .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
        }
        to_resp(self.app.clone().oneshot(req).await.unwrap()).await
    }

    /// The raw response (streams), from loopback.
    pub async fn oneshot(
        &self,
        mut req: Request<Body>,
    ) -> Result<Response<Body>, std::convert::Infallible> {
        if req.extensions().get::<ConnectInfo<SocketAddr>>().is_none() {
            req.extensions_mut()
                .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
        }
        self.app.clone().oneshot(req).await
    }

    /// Sends a request from `peer`.
    pub async fn send_from(&self, peer: &str, mut req: Request<Body>) -> Resp {
        req.extensions_mut()
            .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        self.send(req).await
    }

    /// The audit events so far, oldest first.
    pub async fn audit_events(&self) -> Vec<fctr_ports::AuditEvent> {
        self.demo
            .state
            .audit()
            .read(&fctr_ports::AuditQuery::default())
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.event)
            .collect()
    }

    /// Denied events with `reason`.
    pub async fn denials(&self, reason: fctr_ports::Reason) -> Vec<fctr_ports::AuditEvent> {
        self.audit_events()
            .await
            .into_iter()
            .filter(|e| e.kind == fctr_ports::EventKind::Denied && e.reason == Some(reason))
            .collect()
    }

    pub async fn get(&self, b: &mut Browser, path: &str) -> Resp {
        let req = Request::get(path)
            .header(header::COOKIE, b.cookie_header())
            .body(Body::empty())
            .unwrap();
        let r = self.send(req).await;
        b.absorb(&r);
        r
    }

    /// A same-origin form POST (the browser would send Origin and Sec-Fetch-Site).
    pub async fn post(&self, b: &mut Browser, path: &str, form: &[(&str, &str)]) -> Resp {
        self.post_with(b, path, form, Some(PUBLIC)).await
    }

    pub async fn post_with(
        &self,
        b: &mut Browser,
        path: &str,
        form: &[(&str, &str)],
        origin: Option<&str>,
    ) -> Resp {
        let body = serde_urlencoded::to_string(form).unwrap();
        let mut req = Request::post(path)
            .header(header::COOKIE, b.cookie_header())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(o) = origin {
            req = req.header(header::ORIGIN, o);
        }
        let r = self.send(req.body(Body::from(body)).unwrap()).await;
        b.absorb(&r);
        r
    }

    /// Starts a sign-in and follows the IdP's pages up to (not including) the callback; returns the callback
    /// path with its query.
    pub async fn idp_round_trip(&self, b: &mut Browser, handle: &str) -> String {
        let r = self.get(b, "/auth/login?return_to=%2Fsearch").await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "login redirects");
        let authorize = r.location();
        assert!(
            authorize.contains("code_challenge_method=S256"),
            "{authorize}"
        );
        assert!(authorize.contains("nonce="));
        let user = self.demo.fake.fixtures().id_of(handle);
        let loc = fake_idp_login(&authorize, &user).await.1;
        assert!(loc.starts_with(PUBLIC), "{loc}");
        loc[PUBLIC.len()..].to_owned()
    }

    /// Signs `handle` (agent0..agent3) in; returns the browser with its session and CSRF token.
    pub async fn sign_in(&self, handle: &str) -> Browser {
        let mut b = Browser::default();
        self.sign_in_with(&mut b, handle).await;
        b
    }

    pub async fn sign_in_with(&self, b: &mut Browser, handle: &str) -> Resp {
        let cb = self.idp_round_trip(b, handle).await;
        let r = self.get(b, &cb).await;
        if r.status == StatusCode::OK {
            let s = self.get(b, "/search").await;
            assert_eq!(s.status, StatusCode::OK, "{}", s.body);
            b.csrf = between(&s.body, "name=\"csrf\" value=\"", "\"")
                .unwrap()
                .to_owned();
        }
        r
    }

    /// Searches and returns the card path of the first result.
    pub async fn find(&self, b: &mut Browser, q: &str) -> String {
        let csrf = b.csrf.clone();
        let r = self.post(b, "/search", &[("csrf", &csrf), ("q", q)]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        format!(
            "/callers/{}",
            between(&r.body, "href=\"/callers/", "\"").expect("a result")
        )
    }

    /// The fake's id of `user`'s factor of `kind` (`push`, `totp`, …).
    pub fn factor_id(&self, user: &str, kind: &str) -> String {
        self.demo
            .fake
            .fixtures()
            .factor(user, kind)
            .unwrap()
            .id
            .clone()
    }

    /// Starts a push verification from a card path; returns the verification page path.
    pub async fn send_push(&self, b: &mut Browser, card: &str, factor: &str) -> String {
        let csrf = b.csrf.clone();
        let r = self
            .post(
                b,
                &format!("{card}/verify"),
                &[("csrf", &csrf), ("factor_id", factor)],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        r.location()
    }

    /// Reloads the verification page until `needle` shows (bounded).
    pub async fn wait_page(&self, b: &mut Browser, path: &str, needle: &str) -> Resp {
        for _ in 0..100 {
            let r = self.get(b, path).await;
            if r.body.contains(needle) {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{needle} never showed on {path}");
    }

    /// Full verification of `caller` by push (approved with the right number); returns (card, verification).
    pub async fn verified(&self, b: &mut Browser, caller: &str) -> (String, String) {
        let card = self.find(b, &format!("{caller}@example.com")).await;
        let factor = self
            .demo
            .fake
            .fixtures()
            .factor(caller, "push")
            .unwrap()
            .id
            .clone();
        let v = self.send_push(b, &card, &factor).await;
        let push = self
            .demo
            .fake
            .phones()
            .wait_for_push(&format!("{caller}@example.com"), Duration::from_secs(5))
            .await
            .expect("push arrives");
        self.demo
            .fake
            .phones()
            .approve(&push.transaction_id, push.correct_answer.unwrap())
            .unwrap();
        self.wait_page(b, &v, "data-status=\"verified\"").await;
        (card, v)
    }
}
