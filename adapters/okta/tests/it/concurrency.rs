//! At most `max_in_flight` requests are at the org at once; the rest wait their turn and then succeed.

use crate::support::*;
use fctr_okta::{ConfigError, OktaAdapter, OktaAuth, OktaConfig};
use fctr_ports::Directory;
use secrecy::SecretString;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// A plain HTTP/1.1 org that holds every request until `release` turns true, counting the requests that
/// arrived and the most that were waiting at once.
struct HeldOrg {
    url: String,
    arrived: Arc<AtomicUsize>,
    most_at_once: Arc<AtomicUsize>,
    release: watch::Sender<bool>,
}

async fn held_org() -> HeldOrg {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let arrived = Arc::new(AtomicUsize::new(0));
    let waiting = Arc::new(AtomicUsize::new(0));
    let most_at_once = Arc::new(AtomicUsize::new(0));
    let (release, released) = watch::channel(false);
    let (a, w, m) = (arrived.clone(), waiting.clone(), most_at_once.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let (a, w, m, mut released) = (a.clone(), w.clone(), m.clone(), released.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    // One GET (no body) per turn of the loop; the connection is kept alive.
                    while !head.windows(4).any(|x| x == b"\r\n\r\n") {
                        match sock.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let line = String::from_utf8_lossy(&head).into_owned();
                    head.clear();
                    let id = line
                        .split_whitespace()
                        .nth(1)
                        .and_then(|p| p.rsplit('/').next())
                        .unwrap_or("00u0")
                        .to_owned();
                    a.fetch_add(1, Ordering::SeqCst);
                    let now = w.fetch_add(1, Ordering::SeqCst) + 1;
                    m.fetch_max(now, Ordering::SeqCst);
                    let _ = released.wait_for(|r| *r).await;
                    w.fetch_sub(1, Ordering::SeqCst);
                    let body = user_json(&id).to_string();
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if sock.write_all(resp.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    HeldOrg {
        url,
        arrived,
        most_at_once,
        release,
    }
}

fn adapter(url: &str, max_in_flight: usize) -> Result<OktaAdapter, ConfigError> {
    let mut c = OktaConfig::new(
        url.parse().unwrap(),
        OktaAuth::ApiToken(SecretString::from(SSWS)),
    );
    c.request_timeout = Duration::from_secs(10);
    c.max_slow_down = Duration::ZERO;
    c.max_in_flight = max_in_flight;
    OktaAdapter::new(c)
}

#[tokio::test]
async fn no_more_than_max_in_flight_requests_reach_the_org_at_once() {
    let org = held_org().await;
    let okta = adapter(&org.url, 2).unwrap();
    // Five different users, so no two reads share one request.
    let ids: Vec<_> = (1..=5).map(|i| sid(&format!("00u{i}"))).collect();
    let reads = async {
        let tasks: Vec<_> = ids
            .iter()
            .map(|id| {
                let (okta, id) = (okta.clone(), id.clone());
                tokio::spawn(async move { okta.get_user(&id).await })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.expect("read task"));
        }
        out
    };
    let check = async {
        // The first two reach the org and are held there...
        tokio::time::timeout(Duration::from_secs(5), async {
            while org.arrived.load(Ordering::SeqCst) < 2 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("two requests reach the org");
        // ...and while they are, the other three wait for a permit instead of opening connections of their own.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let arrived = org.arrived.load(Ordering::SeqCst);
        org.release.send_replace(true);
        arrived
    };
    let (results, arrived_while_held) = tokio::join!(reads, check);
    assert_eq!(
        arrived_while_held, 2,
        "requests past the limit reached the org"
    );
    for (r, id) in results.iter().zip(&ids) {
        let user = r.as_ref().expect("each read succeeds in its turn");
        assert_eq!(user.id, *id);
    }
    assert_eq!(org.arrived.load(Ordering::SeqCst), 5);
    assert_eq!(org.most_at_once.load(Ordering::SeqCst), 2);
}

#[test]
fn max_in_flight_is_refused_outside_1_to_75() {
    for n in [0, 76] {
        let e = adapter("http://127.0.0.1:9", n).err();
        assert!(
            matches!(e, Some(ConfigError::Limits(m)) if m.contains("max_in_flight")),
            "{n}: {e:?}"
        );
    }
    assert!(adapter("http://127.0.0.1:9", 75).is_ok());
    assert!(adapter("http://127.0.0.1:9", 1).is_ok());
}
