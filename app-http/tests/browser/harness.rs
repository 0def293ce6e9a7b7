//! The browser harness: a demo stack served on a random loopback port, a `chromedriver` child process driving
//! headless Chromium, bounded waits, and numbered screenshots.
//!
//! Skipping: when `/usr/bin/chromium` or `chromedriver` is missing, a test prints why and passes, unless
//! `FCTR_REQUIRE_BROWSER` is set (CI sets it), in which case it fails. `FCTR_CHROMIUM` and `FCTR_CHROMEDRIVER`
//! override the two paths.

use chrono::Utc;
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use fctr_memory::ManualClock;
use fctr_portal::demo::{Demo, DemoOptions, start_demo};
use fctr_portal::poller::PollSettings;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// How long any wait for the page lasts before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The flags Chromium runs with (see `shared/reference/test-tools.md`), plus a fixed window size so screenshots
/// are comparable.
const FLAGS: [&str; 9] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1000",
];

fn path_from_env(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from)
}

/// Chromium and chromedriver, or why they cannot be used.
fn tools() -> Result<(PathBuf, PathBuf), String> {
    let chromium = path_from_env("FCTR_CHROMIUM", CHROMIUM);
    let driver = path_from_env("FCTR_CHROMEDRIVER", CHROMEDRIVER);
    let missing: Vec<String> = [&chromium, &driver]
        .iter()
        .filter(|p| !p.is_file())
        .map(|p| p.display().to_string())
        .collect();
    if missing.is_empty() {
        Ok((chromium, driver))
    } else {
        Err(format!("not found: {}", missing.join(", ")))
    }
}

/// Whether this test should run. Prints a clear message and returns false when the browser is missing and
/// `FCTR_REQUIRE_BROWSER` is unset; panics when it is missing and the variable is set.
pub fn browser_or_skip(test: &str) -> bool {
    match tools() {
        Ok(_) => true,
        Err(why) => {
            assert!(
                std::env::var_os("FCTR_REQUIRE_BROWSER").is_none(),
                "{test}: FCTR_REQUIRE_BROWSER is set but the browser is missing ({why}); \
                 install Debian's chromium and chromium-driver"
            );
            println!(
                "SKIPPED {test}: headless Chromium is not available ({why}). Install Debian's chromium and \
                 chromium-driver, or set FCTR_REQUIRE_BROWSER=1 to make this a failure."
            );
            false
        }
    }
}

/// Where screenshots go: `<target dir>/artifacts/browser/<test>/`. The target dir is the parent of
/// `CARGO_TARGET_TMPDIR` (`$CARGO_TARGET_DIR`, or the workspace's `target/`).
pub fn artifacts_dir(test: &str) -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let target = tmp.parent().unwrap_or(tmp);
    target.join("artifacts").join("browser").join(test)
}

// ---------------------------------------------------------------------------------------------------------------
// The demo stack

/// A demo stack (fake Okta in-process) served on a random loopback port, with a manual clock for the engine.
pub struct Stack {
    pub demo: Demo,
    pub clock: Arc<ManualClock>,
    pub base: Url,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Stack {
    /// Binds first (the portal must know its own URL: the fake registers `{url}/auth/callback`), then builds
    /// the demo stack and serves the router with connection info, as `main` does.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let base = Url::parse(&format!("http://{addr}")).expect("base URL");
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let mut opts = DemoOptions::new(base.clone());
        opts.clock = clock.clone();
        opts.poll = PollSettings {
            interval: Duration::from_millis(200),
            max_interval: Duration::from_millis(500),
            backoff_after: Duration::from_secs(30),
            idle_ticks: 3,
        };
        let demo = start_demo(opts).await.expect("demo stack starts");
        let app = fctr_portal::router(demo.state.clone())
            .into_make_service_with_connect_info::<SocketAddr>();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            demo,
            clock,
            base,
            server,
        }
    }

    /// An absolute URL on the portal.
    pub fn url(&self, path: &str) -> String {
        self.base.join(path).expect("portal URL").to_string()
    }
}

// ---------------------------------------------------------------------------------------------------------------
// chromedriver and the WebDriver session

/// A `chromedriver` child in its own process group; dropping it ends the group (chromedriver and the Chromium
/// it started), so a failed test leaves no browser behind.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The child is the leader of its own process group (process_group(0)), so its pid names the group.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Driver {
    async fn spawn(driver: &Path, log: &Path) -> Self {
        use std::os::unix::process::CommandExt as _;
        let port = free_port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver.display()));
        let me = Self { child, port };
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return me;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver did not listen on port {port} within {WAIT:?} (log: {})",
                log.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A headless Chromium driven over WebDriver, saving numbered screenshots for one test.
pub struct Browser {
    pub client: Client,
    test: String,
    dir: PathBuf,
    shots: u32,
    _profile: tempfile::TempDir,
    _driver: Driver,
}

impl Browser {
    /// Starts chromedriver and a fresh Chromium profile. Call after [`browser_or_skip`].
    pub async fn launch(test: &str) -> Self {
        let (chromium, driver_path) = tools().expect("browser tools present");
        let dir = artifacts_dir(test);
        // Fresh screenshots for every run of this test.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the artifacts directory");
        let driver = Driver::spawn(&driver_path, &dir.join("chromedriver.log")).await;
        let profile = tempfile::tempdir().expect("a temporary profile directory");
        let mut args: Vec<String> = FLAGS.iter().map(|s| (*s).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium.display().to_string(),
                "args": args,
            },
        });
        let Value::Object(caps) = caps else {
            unreachable!("a JSON object")
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let webdriver = format!("http://127.0.0.1:{}", driver.port);
        let client = tokio::time::timeout(
            Duration::from_secs(30),
            ClientBuilder::new(connector)
                .capabilities(caps)
                .connect(&webdriver),
        )
        .await
        .unwrap_or_else(|_| panic!("{test}: no WebDriver session within 30 s"))
        .unwrap_or_else(|e| panic!("{test}: cannot start Chromium through chromedriver: {e}"));
        Self {
            client,
            test: test.to_owned(),
            dir,
            shots: 0,
            _profile: profile,
            _driver: driver,
        }
    }

    /// Ends the WebDriver session (Chromium quits); the driver process goes with `self`.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }

    /// Saves `<nn>-<step>.png` in this test's artifacts directory.
    pub async fn shot(&mut self, step: &str) {
        self.shots += 1;
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("{}: screenshot {step}: {e}", self.test));
        assert!(
            png.starts_with(b"\x89PNG"),
            "{}: screenshot is not a PNG",
            self.test
        );
        let path = self.dir.join(format!("{:02}-{step}.png", self.shots));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("{}: goto {url}: {e}", self.test));
    }

    /// The current URL's path.
    pub async fn path(&self) -> String {
        self.client
            .current_url()
            .await
            .map(|u| u.path().to_owned())
            .unwrap_or_else(|e| panic!("{}: current URL: {e}", self.test))
    }

    pub async fn source(&self) -> String {
        self.client
            .source()
            .await
            .unwrap_or_else(|e| panic!("{}: page source: {e}", self.test))
    }

    /// Waits up to [`WAIT`] for an element; on timeout saves a screenshot and fails with the URL and the page.
    pub async fn wait(&mut self, what: Locator<'_>) -> Element {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Ok(e) = self.client.find(what).await {
                return e;
            }
            if tokio::time::Instant::now() >= deadline {
                self.fail(&format!("{what:?} did not appear within {WAIT:?}"))
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether an element is on the page now (no waiting).
    pub async fn has(&self, what: Locator<'_>) -> bool {
        self.client.find(what).await.is_ok()
    }

    /// Saves a `FAILED` screenshot and panics with the URL and the start of the page.
    pub async fn fail(&mut self, why: &str) -> ! {
        let url = self
            .client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default();
        let src = self.client.source().await.unwrap_or_default();
        if let Ok(png) = self.client.screenshot().await {
            let _ = std::fs::write(self.dir.join("FAILED.png"), png);
        }
        let excerpt: String = src.chars().take(4000).collect();
        panic!("{}: {why}\nat {url}\n{excerpt}", self.test);
    }

    /// Clicks an element. Retries (bounded) when the element went stale before the click landed (the live
    /// panel replaced it): a stale element was not clicked.
    pub async fn click(&mut self, what: Locator<'_>) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let e = self.wait(what).await;
            match e.click().await {
                Ok(()) => return,
                Err(err) if tokio::time::Instant::now() >= deadline => {
                    self.fail(&format!("click {what:?}: {err}")).await;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// The element's text. Retries (bounded) when the live panel replaced the element between finding and
    /// reading it.
    pub async fn text(&mut self, what: Locator<'_>) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let e = self.wait(what).await;
            match e.text().await {
                Ok(t) => return t,
                Err(err) if tokio::time::Instant::now() >= deadline => {
                    self.fail(&format!("text of {what:?}: {err}")).await;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// The element's attribute, with the same retry as [`Browser::text`].
    pub async fn attr(&mut self, what: Locator<'_>, name: &str) -> Option<String> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let e = self.wait(what).await;
            match e.attr(name).await {
                Ok(v) => return v,
                Err(err) if tokio::time::Instant::now() >= deadline => {
                    self.fail(&format!("attribute {name} of {what:?}: {err}"))
                        .await;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Runs a script in the page (WebDriver "Execute Script").
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("{}: script failed: {e}", self.test))
    }

    /// Marks the current document, to prove later that it was updated in place and not reloaded.
    pub async fn mark_document(&self, marker: &str) {
        self.js(
            "window.__fctrMarker = arguments[0]; return true;",
            vec![json!(marker)],
        )
        .await;
    }

    /// The marker set on the current document, if it is still the same document.
    pub async fn document_marker(&self) -> Option<String> {
        self.js("return window.__fctrMarker || null;", vec![])
            .await
            .as_str()
            .map(str::to_owned)
    }

    /// The session's CSRF token as the page carries it (every signed-in page has the sign-out form).
    pub async fn csrf(&mut self) -> String {
        match self.attr(Locator::Css("input[name='csrf']"), "value").await {
            Some(v) => v,
            None => self.fail("no CSRF token on the page").await,
        }
    }

    /// A same-origin `fetch()` POST of a form from inside the page (the browser adds the session cookie,
    /// `Origin` and `Sec-Fetch-Site`); returns (status, body).
    pub async fn fetch_post(&self, path: &str, form: &[(&str, &str)]) -> (u16, String) {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let script = r"
            const [path, body, done] = arguments;
            fetch(path, {
                method: 'POST',
                credentials: 'same-origin',
                headers: {'Content-Type': 'application/x-www-form-urlencoded'},
                body: body,
                redirect: 'manual',
            })
            .then(r => r.text().then(t => done({status: r.status, body: t})))
            .catch(e => done({status: -1, body: String(e)}));
        ";
        let v = self
            .client
            .execute_async(script, vec![json!(path), json!(body)])
            .await
            .unwrap_or_else(|e| panic!("{}: fetch {path}: {e}", self.test));
        let status = v["status"]
            .as_i64()
            .and_then(|s| u16::try_from(s).ok())
            .unwrap_or_else(|| panic!("{}: fetch {path} failed: {v}", self.test));
        (status, v["body"].as_str().unwrap_or_default().to_owned())
    }

    /// Builds a form in the page and submits it, as a forged or replayed click would (a top-level navigation).
    pub async fn submit_form(&self, path: &str, form: &[(&str, &str)]) {
        let fields: Vec<Value> = form.iter().map(|(k, v)| json!([k, v])).collect();
        self.js(
            r"
            const [action, fields] = arguments;
            const f = document.createElement('form');
            f.method = 'post';
            f.action = action;
            for (const [k, v] of fields) {
                const i = document.createElement('input');
                i.type = 'hidden'; i.name = k; i.value = v;
                f.appendChild(i);
            }
            document.body.appendChild(f);
            setTimeout(() => f.submit(), 0);
            return true;
            ",
            vec![json!(path), Value::Array(fields)],
        )
        .await;
    }

    // -----------------------------------------------------------------------------------------------------------
    // Portal steps

    /// Signs `agent` in through the fake Okta's own login page and lands on the search page.
    pub async fn sign_in(&mut self, stack: &Stack, agent: &str, role: &str) {
        self.goto(&stack.url("/")).await;
        self.wait(Locator::Id("sign-in")).await;
        self.shot("sign-in").await;
        self.click(Locator::Id("sign-in")).await;
        let button = format!("//button[normalize-space(.)='Sign in as {agent}@example.com']");
        self.wait(Locator::XPath(&button)).await;
        assert_ne!(
            self.client.current_url().await.ok().and_then(|u| u.port()),
            stack.base.port(),
            "the login page is the fake IdP's, not the portal's"
        );
        self.shot("idp-login").await;
        self.click(Locator::XPath(&button)).await;
        // The callback page continues (meta refresh) to the search page.
        self.wait(Locator::Id("q")).await;
        let who = self.text(Locator::Css(".role strong")).await;
        assert_eq!(who, role, "{agent} signed in with role {who}");
        self.shot("signed-in").await;
    }

    /// Searches for `query` and opens the first result's caller card; returns the card's path.
    pub async fn open_caller(&mut self, query: &str) -> String {
        let q = self.wait(Locator::Id("q")).await;
        q.send_keys(query).await.expect("type the search");
        self.click(Locator::Css("form.search button[type='submit']"))
            .await;
        self.wait(Locator::Css("table.results a, #reason-code"))
            .await;
        if self.has(Locator::Id("reason-code")).await {
            let reason = self.text(Locator::Id("reason-code")).await;
            // The first form POST of every flow: a refusal here means the browser's own form posts fail.
            self.fail(&format!(
                "the search form POST was refused ({reason}). A csrf_rejected here with a correct token usually \
                 means the browser sent `Origin: null`, which it does for form POSTs under \
                 `Referrer-Policy: no-referrer`"
            ))
            .await;
        }
        self.shot("search-results").await;
        self.click(Locator::Css("table.results a")).await;
        self.wait(Locator::Id("caller-name")).await;
        let path = self.path().await;
        assert!(path.starts_with("/callers/"), "{path}");
        self.shot("caller-card").await;
        path
    }

    /// On the caller card, presses "Send push"; returns the verification page's path and the number it shows.
    pub async fn send_push(&mut self) -> (String, u8) {
        self.click(Locator::XPath("//button[normalize-space(.)='Send push']"))
            .await;
        let number = self.text(Locator::Id("number")).await;
        let path = self.path().await;
        assert!(path.starts_with("/verifications/"), "{path}");
        let status = self.status().await;
        assert_eq!(status, "challenged");
        self.shot("push-sent").await;
        let n = number
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{}: #number is not a number: {number:?}", self.test));
        (path, n)
    }

    /// The live status panel's `data-status`.
    pub async fn status(&mut self) -> String {
        self.attr(Locator::Id("status-panel"), "data-status")
            .await
            .unwrap_or_default()
    }

    /// Waits (bounded) for the live panel to read `status`, without navigating.
    pub async fn wait_status(&mut self, status: &str) {
        let sel = format!("#status-panel[data-status='{status}']");
        self.wait(Locator::Css(&sel)).await;
    }
}
