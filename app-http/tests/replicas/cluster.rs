//! A replicated deployment on loopback, made of the real parts: N `fctr-portal` processes (the binary this package
//! builds) run from one configuration, a private `redis-server` (so a test may stop and restart it without
//! disturbing other tests), a fresh schema in the machine's PostgreSQL, `haproxy` with the shipped
//! examples/haproxy.cfg, and the testkit's fake Okta (in this test process; the portals reach it over HTTP).

use fctr_testkit::okta::{FakeOkta, FakeOktaOptions};
use secrecy::ExposeSecret as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

/// The PostgreSQL the tests use (the machine's; `bash scripts/services.sh` starts it).
pub fn pg_url() -> String {
    std::env::var("FCTR_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn random_hex(bytes: usize) -> String {
    use rand::RngCore as _;
    let mut b = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn tool(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} is not installed: `bash scripts/test` installs it (Debian package {name})");
}

/// One portal process.
pub struct Replica {
    /// Its name in the load balancer (`r1`…).
    pub name: String,
    /// Where it listens.
    pub port: u16,
    child: Option<Child>,
}

/// The private Redis.
pub struct Redis {
    /// Its port.
    pub port: u16,
    child: Option<Child>,
    dir: PathBuf,
}

impl Redis {
    async fn start(port: u16, dir: &Path) -> Self {
        let mut r = Self {
            port,
            child: None,
            dir: dir.to_path_buf(),
        };
        r.resume().await;
        r
    }

    /// Starts the server (again) on the same port, empty.
    pub async fn resume(&mut self) {
        let child = Command::new(tool("redis-server"))
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        wait_tcp(self.port).await;
    }

    /// Stops the server (SIGKILL: what an outage looks like to the portals).
    pub async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
    }

    /// Every key, its value (read by type) and its TTL, as `redis-cli` prints them: what a scan for data at rest
    /// reads.
    pub fn dump_all(&self) -> (String, Vec<i64>) {
        let cli = tool("redis-cli");
        let port = self.port.to_string();
        let keys = std::process::Command::new(&cli)
            .args(["-p", &port, "--scan"])
            .output()
            .expect("redis-cli --scan");
        let keys = String::from_utf8_lossy(&keys.stdout).into_owned();
        let mut out = keys.clone();
        let mut ttls = Vec::new();
        let run = |args: &[&str]| {
            let o = std::process::Command::new(&cli)
                .args(["-p", &port, "--no-raw"])
                .args(args)
                .output()
                .expect("redis-cli");
            String::from_utf8_lossy(&o.stdout).into_owned()
        };
        for k in keys.lines().filter(|k| !k.is_empty()) {
            // Each value read by its type (a DUMP may be compressed and hide what it holds).
            let read: &[&str] = match run(&["TYPE", k]).trim() {
                "hash" => &["HGETALL"],
                "zset" => &["ZRANGE", "0", "-1", "WITHSCORES"],
                "set" => &["SMEMBERS"],
                "list" => &["LRANGE", "0", "-1"],
                "stream" => &["XRANGE", "-", "+"],
                _ => &["GET"],
            };
            let mut args = read.to_vec();
            if args.len() > 1 {
                args.insert(1, k);
            } else {
                args.push(k);
            }
            out.push_str(&run(&args));
            let ttl = run(&["PTTL", k]);
            ttls.push(
                ttl.trim()
                    .trim_start_matches("(integer) ")
                    .parse()
                    .unwrap_or(-3),
            );
        }
        (out, ttls)
    }
}

async fn wait_tcp(port: u16) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("nothing listens on {port}");
}

/// The whole deployment.
pub struct Cluster {
    /// The fake Okta the portals talk to.
    pub fake: FakeOkta,
    /// The load balancer's base URL (the portals' public URL).
    pub lb: String,
    /// The replicas.
    pub replicas: Vec<Replica>,
    /// The private Redis.
    pub redis: Redis,
    /// The PostgreSQL schema holding this cluster's audit log and usage ledger.
    pub schema: String,
    haproxy: Option<Child>,
    config: PathBuf,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts `n` replicas (1 to 3) behind haproxy, on the default policy.
    pub async fn start(n: usize) -> Self {
        Self::start_with_policy(n, None).await
    }

    /// Starts `n` replicas (1 to 3) behind haproxy, with the policy text `policy` when given (the bench raises
    /// the per-agent lookup limit).
    pub async fn start_with_policy(n: usize, policy: Option<&str>) -> Self {
        Self::start_with(n, policy, "").await
    }

    /// Starts `n` replicas (1 to 3) behind haproxy, with the policy text `policy` when given and `extra`
    /// appended to the configuration file (whole sections: the capacity sweep raises `[limits]`).
    pub async fn start_with(n: usize, policy: Option<&str>, extra: &str) -> Self {
        assert!((1..=3).contains(&n));
        let dir = tempfile::tempdir().expect("temp dir");
        let lb_port = free_port();
        let lb = format!("http://127.0.0.1:{lb_port}");
        let fake = FakeOkta::start(FakeOktaOptions {
            extra_redirect_uris: vec![format!("{lb}/auth/callback")],
            ..FakeOktaOptions::default()
        })
        .await
        .expect("fake Okta");
        let redis = Redis::start(free_port(), dir.path()).await;
        let schema = format!("fctr_rep_{}", random_hex(6));
        let prefix = format!("rep{}", random_hex(4));
        let secret = |name: &str, value: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, value).expect("secret file");
            p
        };
        let oidc = fake.oidc_client();
        let files = [
            secret("okta-token", fake.api_token()),
            secret("oidc-secret", oidc.client_secret.expose_secret()),
            secret("pseudo-key", &random_hex(32)),
            secret("checkpoint-key", &random_hex(32)),
            secret("redis-url", &format!("redis://127.0.0.1:{}", redis.port)),
            secret("postgres-url", &pg_url()),
        ];
        let config = dir.path().join("replicated.toml");
        let text = format!(
            r#"
[server]
listen = "127.0.0.1:1"
public_url = "{lb}"
tenant = "acme"

[network]
trusted_proxies = ["127.0.0.1/32"]

[okta]
org_url = "{org}"
api_token_file = "{f0}"

[sign_in]
issuer = "{issuer}"
client_id = "{client_id}"
client_secret_file = "{f1}"

[pseudonymization]
key_id = "k1"
key_file = "{f2}"

[state]
redis_url_file = "{f4}"
key_prefix = "{prefix}"

[audit]
postgres_url_file = "{f5}"
postgres_schema = "{schema}"
checkpoint_key_file = "{f3}"
"#,
            org = fake.base_url().as_str().trim_end_matches('/'),
            issuer = oidc.issuer.as_str().trim_end_matches('/'),
            client_id = oidc.client_id,
            f0 = files[0].display(),
            f1 = files[1].display(),
            f2 = files[2].display(),
            f3 = files[3].display(),
            f4 = files[4].display(),
            f5 = files[5].display(),
        );
        let text = match policy {
            Some(p) => {
                let f = dir.path().join("policy.toml");
                std::fs::write(&f, p).expect("policy file");
                format!("{text}\n[policy]\nfile = \"{}\"\n", f.display())
            }
            None => text,
        };
        let text = format!("{text}\n{extra}\n");
        std::fs::write(&config, text).expect("config");
        let mut c = Self {
            fake,
            lb,
            replicas: Vec::new(),
            redis,
            schema,
            haproxy: None,
            config,
            dir,
        };
        // Three backends always (examples/haproxy.cfg names three); unused ones point at closed ports.
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        for (i, port) in ports.iter().enumerate().take(n) {
            let mut r = Replica {
                name: format!("r{}", i + 1),
                port: *port,
                child: None,
            };
            c.spawn(&mut r);
            c.replicas.push(r);
        }
        for r in &c.replicas {
            wait_http(&format!("http://127.0.0.1:{}/healthz", r.port)).await;
        }
        let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/haproxy.cfg");
        let log = std::fs::File::create(c.dir.path().join("haproxy.log")).expect("log");
        let haproxy = Command::new(tool("haproxy"))
            .arg("-db")
            .arg("-f")
            .arg(&cfg)
            .env("FCTR_LB_BIND", format!("127.0.0.1:{lb_port}"))
            .env("FCTR_R1", format!("127.0.0.1:{}", ports[0]))
            .env("FCTR_R2", format!("127.0.0.1:{}", ports[1]))
            .env("FCTR_R3", format!("127.0.0.1:{}", ports[2]))
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("haproxy starts");
        c.haproxy = Some(haproxy);
        wait_http(&format!("{}/healthz", c.lb)).await;
        // Until haproxy's first health checks mark the unused backends down, round robin may pick them (and
        // redispatch): wait until every answer comes from a live replica.
        let http = reqwest::Client::new();
        let live: Vec<&str> = c.replicas.iter().map(|r| r.name.as_str()).collect();
        for _ in 0..200 {
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..6 {
                if let Ok(r) = http.get(format!("{}/healthz", c.lb)).send().await {
                    if let Some(v) = r.headers().get("x-fctr-replica") {
                        seen.insert(v.to_str().unwrap_or("").to_owned());
                    }
                }
            }
            if seen.len() == live.len() && seen.iter().all(|s| live.contains(&s.as_str())) {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "the load balancer never reached every replica: {}",
            c.logs()
        );
    }

    fn spawn(&self, r: &mut Replica) {
        let log = std::fs::File::create(self.dir.path().join(format!("{}.log", r.name)))
            .expect("replica log");
        let child = Command::new(env!("CARGO_BIN_EXE_fctr-portal"))
            .arg("--config")
            .arg(&self.config)
            .env("FCTR_SERVER_LISTEN", format!("127.0.0.1:{}", r.port))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("fctr-portal starts");
        r.child = Some(child);
    }

    /// The process ids of the replicas, haproxy and Redis (the bench reads their CPU from `/proc`).
    #[allow(dead_code)]
    pub fn pids(&self) -> (Vec<u32>, Option<u32>, Option<u32>) {
        (
            self.replicas
                .iter()
                .filter_map(|r| r.child.as_ref().and_then(Child::id))
                .collect(),
            self.haproxy.as_ref().and_then(Child::id),
            self.redis.child.as_ref().and_then(Child::id),
        )
    }

    /// `kill -9` of replica `name`.
    pub async fn kill(&mut self, name: &str) {
        let r = self
            .replicas
            .iter_mut()
            .find(|r| r.name == name)
            .expect("a replica of that name");
        if let Some(mut c) = r.child.take() {
            c.kill().await.expect("SIGKILL");
        }
    }

    /// What the replicas and haproxy wrote (for failure messages).
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for name in ["r1", "r2", "r3", "haproxy"] {
            if let Ok(t) = std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))) {
                let tail: Vec<&str> = t.lines().rev().take(30).collect();
                out.push_str(&format!("\n--- {name}.log (last lines)\n"));
                for l in tail.into_iter().rev() {
                    out.push_str(l);
                    out.push('\n');
                }
            }
        }
        out
    }

    /// `pg_dump` of this cluster's schema (data and definitions).
    pub fn pg_dump(&self) -> String {
        let o = std::process::Command::new(tool("pg_dump"))
            .arg("--dbname")
            .arg(pg_url())
            .args(["--schema", &self.schema])
            .output()
            .expect("pg_dump");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Rows of one SQL query on this cluster's schema, one line each (`psql -At`).
    pub fn sql(&self, query: &str) -> String {
        let o = std::process::Command::new(tool("psql"))
            .arg(pg_url())
            .env("PGOPTIONS", format!("-c search_path={}", self.schema))
            .args(["-At", "-c", query])
            .output()
            .expect("psql");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new("psql")
            .arg(pg_url())
            .args(["-q", "-c"])
            .arg(format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema))
            .output();
    }
}

async fn wait_http(url: &str) {
    let http = reqwest::Client::new();
    for _ in 0..400 {
        if let Ok(r) = http.get(url).send().await {
            if r.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} never answered");
}
