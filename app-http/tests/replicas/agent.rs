//! An agent's browser, reduced to what the tests need: cookies, the CSRF token, and which replica answered each
//! request (haproxy's `X-Fctr-Replica`). Every request goes through the load balancer.

use fctr_testkit::okta::FakeOkta;
use std::collections::BTreeMap;
use std::time::Duration;

/// One answer.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub location: String,
    pub body: String,
    pub replica: String,
}

/// An agent's browser.
#[derive(Clone)]
pub struct Agent {
    http: reqwest::Client,
    lb: String,
    /// Where requests go (the load balancer unless [`Agent::set_base`] said otherwise).
    base: String,
    cookies: BTreeMap<String, String>,
    pub csrf: String,
    /// The replica that answered each request, in order.
    pub served_by: Vec<String>,
}

pub fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let i = s.find(start)? + start.len();
    let j = s[i..].find(end)? + i;
    Some(&s[i..j])
}

impl Agent {
    pub fn new(lb: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            lb: lb.to_owned(),
            base: lb.to_owned(),
            cookies: BTreeMap::new(),
            csrf: String::new(),
            served_by: Vec::new(),
        }
    }

    /// Sends the following requests to `base` instead of the load balancer (same cookies, same Origin): the
    /// replicas bench compares the two paths.
    #[allow(dead_code)]
    pub fn set_base(&mut self, base: &str) {
        self.base = base.to_owned();
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Resp {
        let resp = req
            .header("cookie", self.cookie_header())
            .send()
            .await
            .expect("the load balancer answers");
        for v in resp.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap_or("");
            let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
            if let Some((k, val)) = pair.split_once('=') {
                if attrs.contains("Max-Age=0") || val.is_empty() {
                    self.cookies.remove(k.trim());
                } else {
                    self.cookies.insert(k.trim().to_owned(), val.to_owned());
                }
            }
        }
        let replica = resp
            .headers()
            .get("x-fctr-replica")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        self.served_by.push(replica.clone());
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        Resp {
            status,
            location,
            body,
            replica,
        }
    }

    pub async fn get(&mut self, path: &str) -> Resp {
        let req = self.http.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    /// A form post from the portal's own page (the browser sends its origin).
    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Resp {
        let req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("origin", self.lb.clone())
            .form(form);
        self.send(req).await
    }

    /// Signs in as fixture `handle` through the fake Okta's login page; the callback lands on whichever replica
    /// the load balancer picks (not the one that started the sign-in).
    pub async fn sign_in(&mut self, fake: &FakeOkta, handle: &str) {
        let r = self.get("/auth/login?return_to=%2Fsearch").await;
        assert_eq!(r.status, 303, "login redirects: {}", r.body);
        let page = self
            .http
            .get(&r.location)
            .send()
            .await
            .expect("authorize")
            .text()
            .await
            .expect("login page");
        let request_id = between(&page, "name=\"request_id\" value=\"", "\"")
            .expect("the fake's login page")
            .to_owned();
        let mut post = url::Url::parse(&r.location).expect("authorize URL");
        post.set_query(None);
        let user = fake.fixtures().id_of(handle);
        let back = self
            .http
            .post(post)
            .form(&[("request_id", request_id.as_str()), ("user", user.as_str())])
            .send()
            .await
            .expect("fake login");
        let callback = back
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .expect("redirect to the callback")
            .to_owned();
        let path = callback
            .strip_prefix(&self.lb)
            .expect("the callback is on the load balancer")
            .to_owned();
        let cb = self.get(&path).await;
        assert_eq!(cb.status, 200, "callback: {}", cb.body);
        let s = self.get("/search").await;
        assert_eq!(s.status, 200, "search page: {}", s.body);
        self.csrf = between(&s.body, "name=\"csrf\" value=\"", "\"")
            .expect("a CSRF token")
            .to_owned();
    }

    /// Searches and returns the card path of the first result.
    pub async fn find(&mut self, q: &str) -> String {
        let csrf = self.csrf.clone();
        let r = self.post("/search", &[("csrf", &csrf), ("q", q)]).await;
        assert_eq!(r.status, 200, "{}", r.body);
        format!(
            "/callers/{}",
            between(&r.body, "href=\"/callers/", "\"").expect("a result")
        )
    }

    /// Starts a push from a card; the answer (303 to the verification page, or a refusal).
    pub async fn send_push(&mut self, card: &str, factor: &str) -> Resp {
        let csrf = self.csrf.clone();
        self.post(
            &format!("{card}/verify"),
            &[("csrf", &csrf), ("factor_id", factor)],
        )
        .await
    }

    /// Runs an action from a card.
    pub async fn act(&mut self, card: &str, action: &str) -> Resp {
        let csrf = self.csrf.clone();
        self.post(
            &format!("{card}/actions/{action}"),
            &[
                ("csrf", csrf.as_str()),
                ("confirmed", "yes"),
                ("factor_id", ""),
            ],
        )
        .await
    }

    /// Reloads `path` until `needle` shows (bounded by `wait`).
    pub async fn wait_for(&mut self, path: &str, needle: &str, wait: Duration) -> Resp {
        let until = tokio::time::Instant::now() + wait;
        loop {
            let r = self.get(path).await;
            if r.body.contains(needle) {
                return r;
            }
            assert!(
                tokio::time::Instant::now() < until,
                "{needle} never showed on {path}: {} {}",
                r.status,
                r.body
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Opens the live-status stream of a verification and reads it until `needle` arrives; returns the replica
    /// that served the stream.
    pub async fn watch_until(&self, verification: &str, needle: &str, wait: Duration) -> String {
        let mut resp = self
            .http
            .get(format!("{}{verification}/events", self.lb))
            .header("cookie", self.cookie_header())
            .header("accept", "text/event-stream")
            .timeout(wait + Duration::from_secs(5))
            .send()
            .await
            .expect("the stream opens");
        assert_eq!(resp.status().as_u16(), 200);
        let replica = resp
            .headers()
            .get("x-fctr-replica")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let mut seen = String::new();
        let until = tokio::time::Instant::now() + wait;
        while !seen.contains(needle) {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, resp.chunk()).await {
                Ok(Ok(Some(c))) => seen.push_str(&String::from_utf8_lossy(&c)),
                other => panic!("{needle} never arrived on the stream ({other:?}): {seen}"),
            }
        }
        replica
    }
}
