//! The browser harness: a demo stack served on a random loopback port, a `chromedriver` child process driving
//! headless Chromium, bounded waits, numbered screenshots at two widths, and accessibility checks with axe-core.
//!
//! Skipping: when `/usr/bin/chromium` or `chromedriver` is missing, a test prints why and passes, unless
//! `FCTR_REQUIRE_BROWSER` is set (CI sets it), in which case it fails. `FCTR_CHROMIUM` and `FCTR_CHROMEDRIVER`
//! override the two paths. Likewise when axe-core is missing (`scripts/axe.sh` installs it; `FCTR_AXE_JS` overrides
//! the path): the accessibility checks print why and pass, or fail with `FCTR_REQUIRE_BROWSER` set.
//!
//! Every page a flow reaches gets [`Browser::check_page`]: full-page screenshots at 1280 and 390 CSS pixels, no
//! horizontal scrolling at 390, and no axe-core violation of WCAG 2.0/2.1 A and AA.

use base64::Engine as _;
use chrono::Utc;
use fantoccini::elements::Element;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use fctr_memory::ManualClock;
use fctr_portal::demo::{Demo, DemoOptions, start_demo};
use fctr_portal::poller::{PollSchedule, PollSettings};
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

/// Where `scripts/axe.sh` installs axe-core's browser build (the workspace's `target/`, whatever
/// `CARGO_TARGET_DIR` says: the script does not read it). `FCTR_AXE_JS` overrides it.
const AXE_JS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../target/axe-core/node_modules/axe-core/axe.min.js"
);

/// The WCAG levels axe-core checks: WCAG 2.0 and 2.1, levels A and AA.
const AXE_TAGS: [&str; 4] = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];

/// The desktop viewport every step runs at (CSS pixels), and the phone viewport each capture also checks.
pub const WIDE: (u32, u32) = (1280, 1000);
pub const NARROW: (u32, u32) = (390, 844);

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

/// axe-core's browser build, or why it cannot be read.
fn axe_source() -> Result<String, String> {
    let path = path_from_env("FCTR_AXE_JS", AXE_JS);
    std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "cannot read {} ({e}); `bash scripts/axe.sh` installs it",
            path.display()
        )
    })
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
        Self::start_with_policy(None).await
    }

    /// The stack with a policy of the test's own (None: the built-in one).
    pub async fn start_with_policy(policy: Option<fctr_core::policy::Policy>) -> Self {
        Self::start_with_options(policy, |_| {}).await
    }

    /// The stack with a policy of the test's own and further demo options set by `f`.
    pub async fn start_with_options(
        policy: Option<fctr_core::policy::Policy>,
        f: impl FnOnce(&mut DemoOptions),
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let base = Url::parse(&format!("http://{addr}")).expect("base URL");
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let mut opts = DemoOptions::new(base.clone());
        opts.clock = clock.clone();
        opts.policy = policy;
        opts.poll = PollSettings {
            schedule: PollSchedule {
                fast: Duration::from_millis(200),
                fast_for: Duration::from_secs(30),
                interval: Duration::from_millis(200),
                backoff_after: Duration::from_secs(30),
                max: Duration::from_millis(500),
            },
            ..PollSettings::default()
        };
        f(&mut opts);
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
    /// axe-core's source, or why it is missing (then the accessibility checks skip, or fail in CI).
    axe: Result<String, String>,
    axe_skip_said: bool,
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
        let axe = axe_source();
        if let Err(why) = &axe {
            assert!(
                std::env::var_os("FCTR_REQUIRE_BROWSER").is_none(),
                "{test}: FCTR_REQUIRE_BROWSER is set but axe-core is missing: {why}"
            );
        }
        let me = Self {
            client,
            test: test.to_owned(),
            dir,
            shots: 0,
            axe,
            axe_skip_said: false,
            _profile: profile,
            _driver: driver,
        };
        me.set_viewport(WIDE).await;
        me
    }

    /// Ends the WebDriver session (Chromium quits); the driver process goes with `self`.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }

    /// Saves a plain screenshot of the viewport as it is, `<nn>-<step>.png`, with no checks: for pages that are
    /// not the portal's (the fake IdP's login page). The portal's own pages get [`Browser::check_page`].
    pub async fn shot(&mut self, step: &str) {
        self.shots += 1;
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("{}: screenshot {step}: {e}", self.test));
        self.save_png(&format!("{:02}-{step}.png", self.shots), &png);
    }

    fn save_png(&self, name: &str, png: &[u8]) {
        assert!(
            png.starts_with(b"\x89PNG"),
            "{}: screenshot {name} is not a PNG",
            self.test
        );
        let path = self.dir.join(name);
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// One Chrome DevTools command through chromedriver (`POST /session/{id}/goog/cdp/execute`), on the current
    /// tab.
    pub async fn cdp(&self, cmd: &'static str, params: Value) -> Value {
        self.client
            .issue_cmd(Cdp { cmd, params })
            .await
            .unwrap_or_else(|e| panic!("{}: DevTools {cmd}: {e}", self.test))
    }

    /// Sets the current tab's viewport to exactly `width` x `height` CSS pixels (DevTools device metrics: a
    /// headless window's inner size differs from the size asked for, and has a minimum width), with overlay-like
    /// hidden scrollbars as on a phone, so `clientWidth == innerWidth == width`. Checks `window.innerWidth`.
    pub async fn set_viewport(&self, (width, height): (u32, u32)) {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        )
        .await;
        self.cdp("Emulation.setScrollbarsHidden", json!({"hidden": true}))
            .await;
        let inner = self
            .js(
                "return [window.innerWidth, document.documentElement.clientWidth];",
                vec![],
            )
            .await;
        assert_eq!(
            inner,
            json!([width, width]),
            "{}: viewport [innerWidth, clientWidth] after asking for {width} px",
            self.test
        );
    }

    /// A full-page PNG of the current tab at its current viewport width (DevTools `Page.captureScreenshot`
    /// beyond the viewport: WebDriver's screenshot is the viewport only).
    async fn full_page_png(&self) -> Vec<u8> {
        let v = self
            .cdp(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true}),
            )
            .await;
        let data = v["data"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: Page.captureScreenshot gave no data", self.test));
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap_or_else(|e| panic!("{}: screenshot is not base64: {e}", self.test))
    }

    /// Screenshots the current page at both widths and checks that neither scrolls sideways:
    /// `<nn>-<step>-1280.png` and `<nn>-<step>-390.png` (full page) in this test's artifacts directory. Fails when
    /// `document.documentElement.scrollWidth > window.innerWidth` at either width, naming the elements that reach
    /// past the right edge (widest reach first). Leaves the viewport at 1280.
    pub async fn capture(&mut self, step: &str) {
        self.shots += 1;
        let n = self.shots;
        for size in [WIDE, NARROW] {
            self.set_viewport(size).await;
            let png = self.full_page_png().await;
            let name = format!("{n:02}-{step}-{}.png", size.0);
            self.save_png(&name, &png);
            let overflow = self.overflow().await;
            if let Some(overflow) = overflow {
                let url = self
                    .client
                    .current_url()
                    .await
                    .map(|u| u.to_string())
                    .unwrap_or_default();
                self.set_viewport(WIDE).await;
                self.finding(format!(
                    "{}: step {step} ({url}) scrolls sideways at {} px: scrollWidth {} > innerWidth {}. Elements \
                     past the right edge (CSS px), widest reach first:\n{}\nsee {}",
                    self.test,
                    size.0,
                    overflow["scrollWidth"],
                    overflow["innerWidth"],
                    offenders(&overflow["offenders"]),
                    self.dir.join(name).display()
                ));
            }
        }
        self.set_viewport(WIDE).await;
    }

    /// Whether the page scrolls sideways at the current viewport: `None` when
    /// `document.documentElement.scrollWidth <= window.innerWidth`, else `{scrollWidth, innerWidth, offenders:
    /// [{selector, right, width, text}]}` with up to 12 elements reaching past the right edge, widest reach first.
    pub async fn overflow(&self) -> Option<Value> {
        Some(self.js(OVERFLOW_JS, vec![]).await).filter(|v| !v.is_null())
    }

    /// axe-core's violations on the current page (WCAG 2.0/2.1 A and AA rules), each `{id, impact, help, helpUrl,
    /// nodes: [{target, summary}]}`; `None` when axe-core is missing (said once per test). The script goes in
    /// through WebDriver's Execute Script, which the page's CSP (`script-src 'self'`) does not apply to, once
    /// per document.
    pub async fn axe_violations(&mut self, page_name: &str) -> Option<Vec<Value>> {
        let src = match &self.axe {
            Ok(src) => src.clone(),
            Err(why) => {
                if !self.axe_skip_said {
                    println!("SKIPPED accessibility checks in {}: {why}", self.test);
                    self.axe_skip_said = true;
                }
                return None;
            }
        };
        let loaded = self
            .js("return typeof window.axe === 'object';", vec![])
            .await;
        if loaded != json!(true) {
            let script = format!("{src}\n;return typeof window.axe === 'object';");
            let ok = self.js(&script, vec![]).await;
            assert_eq!(
                ok,
                json!(true),
                "{}: axe-core did not load into the page",
                self.test
            );
        }
        let run = r"
            const [tags, done] = arguments;
            axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})
              .then(r => done({violations: r.violations.map(v => ({
                  id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
                  nodes: v.nodes.map(n => ({target: n.target, summary: n.failureSummary || ''})),
              }))}))
              .catch(e => done({error: String(e && e.stack || e)}));
        ";
        let result = self
            .client
            .execute_async(run, vec![json!(AXE_TAGS)])
            .await
            .unwrap_or_else(|e| panic!("{}: axe.run on {page_name}: {e}", self.test));
        if let Some(e) = result.get("error") {
            panic!("{}: axe.run on {page_name} failed: {e}", self.test);
        }
        Some(result["violations"].as_array().cloned().unwrap_or_default())
    }

    /// Runs axe-core on the current page (see [`Browser::axe_violations`]) and fails listing every violation:
    /// rule id, impact, help text, and each node's CSS selector with axe's summary of what to fix; the full list
    /// is saved as `<nn>-<page_name>-axe.json`. When axe-core is missing it prints why and passes (fails with
    /// `FCTR_REQUIRE_BROWSER` set: see the module doc).
    pub async fn assert_accessible(&mut self, page_name: &str) {
        let Some(violations) = self.axe_violations(page_name).await else {
            return;
        };
        if violations.is_empty() {
            return;
        }
        let report_path = self
            .dir
            .join(format!("{:02}-{page_name}-axe.json", self.shots));
        let _ = std::fs::write(
            &report_path,
            serde_json::to_string_pretty(&violations).unwrap_or_default(),
        );
        let url = self
            .client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default();
        self.finding(format!(
            "{}: {} accessibility violation(s) (axe-core, {}) on {page_name} ({url}):\n{}\nfull report: {}",
            self.test,
            violations.len(),
            AXE_TAGS.join(", "),
            violations.iter().map(violation).collect::<Vec<_>>().join("\n"),
            report_path.display()
        ));
    }

    /// A failed page check: panics, or with `FCTR_BROWSER_CHECKS=report` prints it and goes on (to see every
    /// page's findings in one run while fixing them; ignored when `CI` is set).
    fn finding(&self, what: String) {
        let report = std::env::var("FCTR_BROWSER_CHECKS").as_deref() == Ok("report")
            && std::env::var_os("CI").is_none();
        if report {
            println!("FINDING {what}\n");
        } else {
            panic!("{what}");
        }
    }

    /// The check every flow step gets: [`Browser::capture`] (screenshots at 1280 and 390 px, no sideways
    /// scrolling at 390), then [`Browser::assert_accessible`].
    pub async fn check_page(&mut self, step: &str) {
        self.capture(step).await;
        self.assert_accessible(step).await;
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

    /// Clicks something that loads a new page (a link, a form's button) and waits until the new document has
    /// replaced this one and finished loading. A WebDriver click may return before the browser has left the page,
    /// and reading an element then (a heading both pages have) reads the old page's.
    pub async fn click_to_load(&mut self, what: Locator<'_>) {
        // Its own global, so a test's `mark_document` marker is left alone.
        self.js("window.__fctrBeforeClick = true; return true;", vec![])
            .await;
        self.click(what).await;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            // An error here is the browser between documents: not loaded yet.
            let loaded = self
                .client
                .execute(
                    "return !window.__fctrBeforeClick && document.readyState === 'complete';",
                    vec![],
                )
                .await
                .ok()
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
            if loaded {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                self.fail(&format!(
                    "no new page loaded within {WAIT:?} of clicking {what:?}"
                ))
                .await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
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
        self.sign_in_at_idp(stack, agent).await;
        // The callback page continues (meta refresh) to the search page.
        self.wait(Locator::Id("q")).await;
        let who = self.text(Locator::Css(".role strong")).await;
        assert_eq!(who, role, "{agent} signed in with role {who}");
        self.check_page("signed-in").await;
    }

    /// From the portal's sign-in page (checked) through the fake Okta's login page as `agent`, up to the
    /// portal's callback; the caller waits for what the portal shows next.
    pub async fn sign_in_at_idp(&mut self, stack: &Stack, agent: &str) {
        self.goto(&stack.url("/")).await;
        self.wait(Locator::Id("sign-in")).await;
        self.check_page("sign-in").await;
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
        self.check_page("search-results").await;
        self.click(Locator::Css("table.results a")).await;
        self.wait(Locator::Id("caller-name")).await;
        let path = self.path().await;
        assert!(path.starts_with("/callers/"), "{path}");
        self.check_page("caller-card").await;
        path
    }

    /// On the caller card, verifies with the recommended factor (a push); returns the verification page's path and
    /// the number it shows.
    pub async fn send_push(&mut self) -> (String, u8) {
        self.click(Locator::Id("verify-button")).await;
        let number = self.text(Locator::Id("number")).await;
        let path = self.path().await;
        assert!(path.starts_with("/verifications/"), "{path}");
        let status = self.status().await;
        assert_eq!(status, "challenged");
        self.check_page("push-sent").await;
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

// ---------------------------------------------------------------------------------------------------------------
// DevTools, overflow and axe-core reports

/// A Chrome DevTools Protocol command sent through chromedriver's `goog/cdp/execute` extension.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(&self, base: &Url, session: Option<&str>) -> Result<Url, url::ParseError> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &Url) -> (axum::http::Method, Option<String>) {
        let body = json!({"cmd": self.cmd, "params": self.params});
        (axum::http::Method::POST, Some(body.to_string()))
    }
}

/// Null when the page does not scroll sideways; else the widths and up to 12 elements whose box reaches past
/// the right edge, widest reach first. Elements inside a box that clips or scrolls its own overflow are not
/// counted (they do not widen the page).
const OVERFLOW_JS: &str = r"
    const root = document.documentElement;
    const W = window.innerWidth;
    if (root.scrollWidth <= W) return null;
    const clipped = el => {
        for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
            if (getComputedStyle(p).overflowX !== 'visible') return true;
        }
        return false;
    };
    const name = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
        Array.from(el.classList).map(c => '.' + c).join('');
    const path = el => {
        const parts = [];
        for (let e = el; e && e !== document.body && parts.length < 4; e = e.parentElement) parts.unshift(name(e));
        return parts.join(' > ');
    };
    const out = [];
    for (const el of document.body.querySelectorAll('*')) {
        const r = el.getBoundingClientRect();
        if (r.width > 0 && r.right > W + 0.5 && !clipped(el)) {
            out.push({selector: path(el), right: Math.round(r.right), width: Math.round(r.width),
                      text: (el.textContent || '').trim().slice(0, 40)});
        }
    }
    out.sort((a, b) => b.right - a.right);
    return {scrollWidth: root.scrollWidth, innerWidth: W, offenders: out.slice(0, 12)};
";

fn offenders(list: &Value) -> String {
    list.as_array()
        .map(|a| {
            a.iter()
                .map(|o| {
                    format!(
                        "  {} right={} width={} {:?}",
                        o["selector"].as_str().unwrap_or("?"),
                        o["right"],
                        o["width"],
                        o["text"].as_str().unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

fn violation(v: &Value) -> String {
    let nodes: Vec<String> = v["nodes"]
        .as_array()
        .map(|ns| {
            ns.iter()
                .map(|n| {
                    let summary = n["summary"].as_str().unwrap_or_default().replace('\n', " ");
                    format!("      {} : {summary}", n["target"])
                })
                .collect()
        })
        .unwrap_or_default();
    format!(
        "  - {} [{}] {} ({})\n{}",
        v["id"].as_str().unwrap_or("?"),
        v["impact"].as_str().unwrap_or("?"),
        v["help"].as_str().unwrap_or_default(),
        v["helpUrl"].as_str().unwrap_or_default(),
        nodes.join("\n")
    )
}
