//! The gateway's backends failing under load, measured on the `railbridge serve` binary (so that its memory is its
//! own): the User API erroring, slow, refusing and flapping; the Redis session store frozen and its connections
//! killed over and over; the Rails 8 `sessions` database frozen and flapping; slowloris clients and clients that
//! pause their bodies. For each: only the documented answers (200 when the backend answers, 503 fail-closed when it
//! does not, 408 for a paused body), every request answered within a bound, the gateway back to 200 when the backend
//! is, and afterwards no connection or task left behind and resident memory back near its baseline.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::support::*;

const PUBLIC_ID: &str = "5f1e0c4b9a2d4e7f8a1b3c5d7e9f0a2b";

/// How the stub User API behaves.
const UP: u8 = 0;
const ERRORS: u8 = 1;
const SLOW: u8 = 2;
const REFUSES: u8 = 3;

/// A User API on a fixed port whose behaviour the test switches: answering, 500, answering after 3 s, or closing
/// every connection at once.
async fn user_api(mode: Arc<AtomicU8>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mode = mode.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                loop {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    let (status, body) = match mode.load(Ordering::Relaxed) {
                        REFUSES => return,
                        ERRORS => ("500 Internal Server Error", "{}".to_owned()),
                        m => {
                            if m == SLOW {
                                tokio::time::sleep(Duration::from_secs(3)).await;
                            }
                            (
                                "200 OK",
                                format!(
                                    r#"{{"id":1,"email":"user@example.com","authenticatable_salt":"{SALT}"}}"#
                                ),
                            )
                        }
                    };
                    let response = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if socket.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// The gateway binary on `config`, with an `/echo` route to `echo` and no access log.
fn railbridge(dir: &TempDir, config: &str, echo: &Server) -> Component {
    let config = format!(
        "{config}\n[log]\naccess_log = false\n[[route]]\nname = \"echo\"\nprefix = \"/echo\"\nupstream = \"http://{}\"\n",
        echo.addr
    );
    let path = dir.write("railbridge.toml", &config);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_railbridge"));
    for var in ["RAILBRIDGE_LISTEN", "RAILBRIDGE_UPSTREAM", "SESSION_KEY", "RAILS_VERSION", "PORT"]
    {
        cmd.env_remove(var);
    }
    cmd.env("SECRET_KEY_BASE", SKB).env("RUST_LOG", "error");
    cmd.args(["serve", "--config"]).arg(&path).stdout(Stdio::piped());
    Component::start_listening("railbridge serve", cmd, "the binary should start")
}

/// What `/_railbridge/metrics` says of the process.
#[derive(Clone, Copy, Debug)]
struct Gauges {
    rss: f64,
    fds: f64,
    tasks: f64,
    connections: f64,
}

async fn gauges(gw: &Component) -> Gauges {
    let text = get(&gw.url("/_railbridge/metrics"), None).await.body;
    let read = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.trim().parse().ok()))
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
    };
    Gauges {
        rss: read("process_resident_memory_bytes "),
        fds: read("process_open_fds "),
        tasks: read("railbridge_tasks "),
        // The scrape's own connection is one of them.
        connections: read("railbridge_client_connections ") - 1.0,
    }
}

/// The gauges once the gateway has wound down after a phase (up to 5 s: connections closed, idle ones swept).
async fn settled(gw: &Component, baseline: Gauges) -> Gauges {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let g = gauges(gw).await;
        if (g.connections <= 0.0 && g.tasks <= baseline.tasks) || Instant::now() > deadline {
            return g;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// No connection or task left behind, no more open files, and resident memory within 10 % (+ 4 MiB) of where
/// it was.
fn assert_back_to(baseline: Gauges, after: Gauges) {
    assert!(after.connections <= 0.0, "{after:?}");
    assert!(after.tasks <= baseline.tasks, "tasks {} → {}", baseline.tasks, after.tasks);
    assert!(after.fds <= baseline.fds + 2.0, "open files {} → {}", baseline.fds, after.fds);
    let grown = after.rss - baseline.rss;
    assert!(grown < 0.1 * baseline.rss + 4.0 * 1024.0 * 1024.0, "memory {baseline:?} → {after:?}");
}

/// `n` requests to `url` with `cookie`, 16 at a time: how many got each status, and the slowest answer.
async fn burst(url: &str, cookie: &str, n: usize) -> (BTreeMap<u16, usize>, Duration) {
    let client = client();
    let mut statuses = BTreeMap::new();
    let mut slowest = Duration::ZERO;
    let mut pending = futures_util::stream::FuturesUnordered::new();
    let mut started = 0;
    let request = |client: &reqwest::Client| {
        let r = client.get(url).header("cookie", cookie).send();
        async move {
            let t = Instant::now();
            let status = match r.await {
                Ok(r) => {
                    let s = r.status().as_u16();
                    let _ = r.bytes().await;
                    s
                }
                Err(_) => 0,
            };
            (status, t.elapsed())
        }
    };
    use futures_util::StreamExt as _;
    while started < n.min(16) {
        pending.push(request(&client));
        started += 1;
    }
    while let Some((status, took)) = pending.next().await {
        *statuses.entry(status).or_insert(0) += 1;
        slowest = slowest.max(took);
        if started < n {
            pending.push(request(&client));
            started += 1;
        }
    }
    (statuses, slowest)
}

/// Requests until one is answered 200 (the backend is back): how long that took.
async fn until_ok(url: &str, cookie: &str) -> Duration {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(10) {
        if get(url, Some(cookie)).await.status == 200 {
            return t.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url}: not 200 again within 10 s");
}

fn only(statuses: &BTreeMap<u16, usize>, allowed: &[u16], what: &str) {
    assert!(
        statuses.keys().all(|s| allowed.contains(s)),
        "{what}: {statuses:?}, allowed {allowed:?}"
    );
}

/// Slowloris clients and clients that pause their bodies, 50 of each: all cut off.
async fn slow_clients(addr: &str) {
    let mut tasks = Vec::new();
    for i in 0..100 {
        let addr = addr.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
            let start = if i % 2 == 0 {
                "GET /echo/public/x HTTP/1.1\r\nHost: gw\r\nX-Slow: "
            } else {
                "POST /echo/public/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 1000\r\n\r\nsome"
            };
            s.write_all(start.as_bytes()).await.unwrap();
            let mut buf = Vec::new();
            // The gateway answers (408) or closes within its timeouts (300 ms here).
            let read = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut buf)).await;
            assert!(read.is_ok(), "slow client {i} still connected after 3 s");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test]
async fn user_api_and_session_store_failing_under_load() {
    if skip_live() {
        return;
    }
    let Some(redis) = testkit::Redis::start() else { return };
    let echo = echo().await;
    let mode = Arc::new(AtomicU8::new(UP));
    let api = user_api(mode.clone()).await;
    let private = rails_session::SessionId::from_cookie(PUBLIC_ID).unwrap();
    let key = format!("myapp:session:{}", private.private_id());
    let record = format!(r#"{{"warden.user.user.key":[[1],"{SALT}"],"_csrf_token":"x"}}"#);
    assert!(redis.command(&[b"SET", key.as_bytes(), record.as_bytes()]).starts_with(b"+OK"));

    let dir = TempDir::new("gw-backends");
    let gw = railbridge(
        &dir,
        &format!(
            r#"
[server]
listen = "127.0.0.1:0"
workers = 2
header_timeout = "300ms"
body_timeout = "300ms"
public_paths = ["/echo/public"]
[rails]
session_key = "{COOKIE}"
rails_version = "6.1"
session_store = "redis_session_store"
session_store_url = "{redis}"
session_store_namespace = "myapp:session:"
session_store_serializer = "json"
session_store_timeout = 0.3
[identity]
cache_ttl = 0
[user_api]
url = "http://127.0.0.1:{api}/users/{{id}}"
timeout = "300ms"
cache_ttl = 0
"#,
            redis = redis.url(),
        ),
        &echo,
    );
    let url = gw.url("/echo/x");
    let cookie = format!("{COOKIE}={PUBLIC_ID}");
    let (ok, _) = burst(&url, &cookie, 2000).await;
    assert_eq!(ok, BTreeMap::from([(200, 2000)]), "warm-up");
    let baseline = settled(&gw, gauges(&gw).await).await;
    let mut report = vec![format!("baseline: {baseline:?}")];

    // The User API failing in each way: 503 (fail-closed), each answer within the API's timeout and its retry.
    for (m, label) in
        [(ERRORS, "user API 500"), (SLOW, "user API slow"), (REFUSES, "user API refusing")]
    {
        mode.store(m, Ordering::Relaxed);
        let (statuses, slowest) = burst(&url, &cookie, 300).await;
        assert_eq!(statuses, BTreeMap::from([(503, 300)]), "{label}");
        assert!(slowest < Duration::from_secs(2), "{label}: slowest {slowest:?}");
        mode.store(UP, Ordering::Relaxed);
        let back = until_ok(&url, &cookie).await;
        report.push(format!("{label}: 300 × 503, slowest {slowest:?}, 200 again after {back:?}"));
    }
    // Flapping: up and refusing in turn every 100 ms.
    let flap = {
        let mode = mode.clone();
        tokio::spawn(async move {
            for i in 0..30 {
                mode.store(if i % 2 == 0 { REFUSES } else { UP }, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            mode.store(UP, Ordering::Relaxed);
        })
    };
    let (statuses, slowest) = burst(&url, &cookie, 1500).await;
    flap.await.unwrap();
    only(&statuses, &[200, 503], "user API flapping");
    assert!(slowest < Duration::from_secs(2), "user API flapping: slowest {slowest:?}");
    report.push(format!("user API flapping: {statuses:?}, slowest {slowest:?}"));

    // Redis frozen: 503 within the store's timeout; public routes still served; 200 once it is back.
    redis.component().freeze();
    let (statuses, slowest) = burst(&url, &cookie, 200).await;
    let public = get(&gw.url("/echo/public/x"), None).await.status;
    redis.component().thaw();
    assert_eq!(statuses, BTreeMap::from([(503, 200)]), "redis frozen");
    assert!(slowest < Duration::from_secs(2), "redis frozen: slowest {slowest:?}");
    assert_eq!(public, 200, "public routes need no store");
    let back = until_ok(&url, &cookie).await;
    report.push(format!("redis frozen: 200 × 503, slowest {slowest:?}, 200 again after {back:?}"));
    // Redis flapping: its clients' connections killed every 100 ms.
    let killer = {
        let port = redis.port();
        tokio::task::spawn_blocking(move || {
            for _ in 0..20 {
                let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
                use std::io::Write as _;
                let _ = s.write_all(
                    b"*4\r\n$6\r\nCLIENT\r\n$4\r\nKILL\r\n$4\r\nTYPE\r\n$6\r\nnormal\r\n",
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let (statuses, slowest) = burst(&url, &cookie, 1500).await;
    killer.await.unwrap();
    only(&statuses, &[200, 503], "redis connections killed");
    assert!(slowest < Duration::from_secs(2), "redis flapping: slowest {slowest:?}");
    let back = until_ok(&url, &cookie).await;
    report.push(format!(
        "redis connections killed: {statuses:?}, slowest {slowest:?}, 200 after {back:?}"
    ));

    // Slow clients, then everything wound down.
    let addr = gw.url("").trim_start_matches("http://").trim_end_matches('/').to_owned();
    slow_clients(&addr).await;
    let (ok, _) = burst(&url, &cookie, 2000).await;
    assert_eq!(ok, BTreeMap::from([(200, 2000)]), "after the faults");
    let after = settled(&gw, baseline).await;
    report.push(format!("after: {after:?}"));
    eprintln!("{}", report.join("\n"));
    assert_back_to(baseline, after);
}

#[tokio::test]
async fn the_sessions_database_frozen_and_flapping() {
    if skip_live() {
        return;
    }
    let Some(pg) = testkit::Postgres::start() else { return };
    pg.psql("CREATE TABLE sessions (id bigserial PRIMARY KEY, user_id bigint NOT NULL); INSERT INTO sessions (user_id) VALUES (7);");
    let echo = echo().await;
    let dir = TempDir::new("gw-backends-db");
    let gw = railbridge(
        &dir,
        &format!(
            r#"
[server]
listen = "127.0.0.1:0"
workers = 2
[rails]
session_key = "{COOKIE}"
rails_version = "7.2"
auth = "rails-authentication"
database_url = "{db}"
auth_cache_ttl = 0
"#,
            db = pg.url(),
        ),
        &echo,
    );
    let signed = codec(rails_cookie::Profile::rails_7_2())
        .encode_signed("session_id", &rails_cookie::Value::Integer(1), None)
        .unwrap();
    let cookie = format!("session_id={}", rails_cookie::escape(&signed));
    let url = gw.url("/echo/x");
    let (ok, _) = burst(&url, &cookie, 1000).await;
    assert_eq!(ok, BTreeMap::from([(200, 1000)]), "warm-up");
    let baseline = settled(&gw, gauges(&gw).await).await;

    // Frozen: every lookup times out (2 s), answered 503, never later than that bound.
    pg.component().freeze();
    let (statuses, slowest) = burst(&url, &cookie, 64).await;
    pg.component().thaw();
    assert_eq!(statuses, BTreeMap::from([(503, 64)]), "database frozen");
    assert!(slowest < Duration::from_secs(4), "database frozen: slowest {slowest:?}");
    let back = until_ok(&url, &cookie).await;
    let mut report =
        vec![format!("database frozen: 64 × 503, slowest {slowest:?}, 200 again after {back:?}")];

    // Flapping: frozen and thawed in turn every 300 ms.
    let flapping = async {
        for _ in 0..5 {
            pg.component().freeze();
            tokio::time::sleep(Duration::from_millis(300)).await;
            pg.component().thaw();
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    };
    let ((statuses, slowest), ()) = tokio::join!(burst(&url, &cookie, 400), flapping);
    only(&statuses, &[200, 503], "database flapping");
    assert!(slowest < Duration::from_secs(4), "database flapping: slowest {slowest:?}");
    let back = until_ok(&url, &cookie).await;
    report
        .push(format!("database flapping: {statuses:?}, slowest {slowest:?}, 200 after {back:?}"));

    let after = settled(&gw, baseline).await;
    report.push(format!("baseline {baseline:?}\nafter {after:?}"));
    eprintln!("{}", report.join("\n"));
    assert_back_to(baseline, after);
}
