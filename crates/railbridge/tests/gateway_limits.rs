//! Limits: the request body size per route (413 before or while forwarding), the number of client connections
//! served at once (the rest wait in the kernel's listen backlog), and what `serve --check` says about them.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::support::*;

/// A body of `chunks` chunks of 300 bytes, sent chunked (no length known in advance).
fn streamed(chunks: usize) -> reqwest::Body {
    let frames = (0..chunks).map(|_| {
        Ok::<_, std::io::Error>(http_body::Frame::data(bytes::Bytes::from(vec![b'b'; 300])))
    });
    reqwest::Body::wrap(http_body_util::StreamBody::new(futures_util::stream::iter(frames)))
}

#[tokio::test]
async fn request_bodies_over_the_route_limit_are_413() {
    let echo = echo().await;
    let extra = format!(
        "[[route]]\nname = \"small\"\nprefix = \"/small\"\nupstream = \"http://{}\"\npolicy = \"public\"\nmax_body_size = \"1KiB\"\n",
        echo.addr
    );
    let gw = gateway(&routes_toml(&echo, &extra), &[]).await;
    let post = |body: reqwest::Body| send(client().post(gw.url("/small/x")).body(body));
    let r = post(reqwest::Body::from(vec![b'a'; 1024])).await;
    assert_eq!(r.status, 200, "at the limit: {}", r.body);
    let r = post(reqwest::Body::from(vec![b'a'; 1025])).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (413, "413 Payload Too Large\n"),
        "a declared length over it"
    );
    // A streamed body (no Content-Length) is cut off when it passes the limit.
    let r = post(streamed(8)).await;
    assert_eq!(r.status, 413, "a streamed body over it: {}", r.body);
    let r = post(streamed(3)).await;
    assert_eq!(r.status, 200, "a streamed body under it: {}", r.body);
    // Other routes have no limit.
    let r = send(client().post(gw.url("/echo/x")).body(vec![b'a'; 100_000])).await;
    assert_eq!(r.status, 401, "the echo route asks for a user, whatever the size");

    for (size, ok) in
        [("\"10MiB\"", true), ("2048", true), ("\"1.5MB\"", false), ("\"10 parsecs\"", false)]
    {
        let toml = routes_toml(
            &echo,
            &format!("[[route]]\nname = \"x\"\nprefix = \"/x\"\nupstream = \"http://{}\"\nmax_body_size = {size}\n", echo.addr),
        );
        let parsed = railbridge::Config::from_toml(&toml, "t.toml", |_| None);
        assert_eq!(parsed.is_ok(), ok, "{size}: {:?}", parsed.err().map(|e| e.to_string()));
    }
}

/// Sends a keep-alive request on a new connection and reads its answer head; the connection stays open.
async fn open_and_ask(addr: std::net::SocketAddr) -> (tokio::net::TcpStream, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"GET /_railbridge/health HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 512];
    let n =
        tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await.unwrap().unwrap();
    (stream, String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_in_the_backlog() {
    let echo = echo().await;
    let toml = routes_toml(&echo, "")
        .replace("[server]\n", "[server]\nmax_connections = 2\nworkers = 1\n");
    let gw = gateway(&toml, &[]).await;
    let (first, head) = open_and_ask(gw.addr).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let (_second, head) = open_and_ask(gw.addr).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // The third connects (the kernel accepts it into the backlog) but is not served while two are open.
    let mut third = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    third.write_all(b"GET /_railbridge/health HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 512];
    let waited = tokio::time::timeout(Duration::from_millis(500), third.read(&mut buf)).await;
    assert!(waited.is_err(), "served beyond max_connections");
    // One closes: the third is taken from the backlog and served.
    drop(first);
    let n =
        tokio::time::timeout(Duration::from_secs(5), third.read(&mut buf)).await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn websocket_tunnels_count_against_max_connections() {
    use futures_util::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

    let echo = echo().await;
    let toml = routes_toml(&echo, "")
        .replace("[server]\n", "[server]\nmax_connections = 2\nworkers = 1\n");
    let gw = gateway(&toml, &[]).await;
    let mut sockets = Vec::new();
    for _ in 0..2 {
        let mut request = format!("ws://{}/echo/ws", gw.addr).into_client_request().unwrap();
        let cookie = cookie_for(&devise_session("user", 5));
        request.headers_mut().insert("cookie", cookie.parse().unwrap());
        let (socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
        assert_eq!(response.status(), 101);
        sockets.push(socket);
    }
    // hyper's connection task has ended for both (they are tunnels now), yet they are still connections.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(gw.gateway.stats().client_connections, 2);
    let mut third = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    third.write_all(b"GET /_railbridge/health HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 512];
    let waited = tokio::time::timeout(Duration::from_millis(500), third.read(&mut buf)).await;
    assert!(waited.is_err(), "served beyond max_connections while two tunnels are open");
    // A tunnel closes: its turn goes to the waiting client.
    let mut first = sockets.remove(0);
    first.close(None).await.unwrap();
    while let Some(Ok(_)) = first.next().await {}
    drop(first);
    let n =
        tokio::time::timeout(Duration::from_secs(5), third.read(&mut buf)).await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let _ = sockets[0].send(tokio_tungstenite::tungstenite::Message::Close(None)).await;
}

#[test]
fn serve_check_reports_the_limits() {
    let dir = TempDir::new("check-limits");
    let config = dir.write("limits.toml", "[server]\nmax_connections = 5000\n");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_railbridge"))
        .args(["serve", "--check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    assert!(text.contains("max connections: 5000"), "{text}");
    assert!(text.contains("open files: "), "{text}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_railbridge"))
        .args(["serve", "--check", "--config"])
        .arg(&config)
        .env("RAILBRIDGE_MAX_CONNECTIONS", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn an_upstream_at_its_connection_limit_answers_503_after_the_queue_timeout() {
    let echo = echo().await;
    let extra = format!(
        "[[route]]\nname = \"narrow\"\nprefix = \"/narrow\"\nrewrite = \"/\"\nupstream = \"http://{}\"\npolicy = \"public\"\nmax_connections = 1\nqueue_timeout = \"200ms\"\n",
        echo.addr
    );
    let gw = gateway(&routes_toml(&echo, &extra), &[]).await;
    let busy_url = gw.url("/narrow/slow?ms=1500");
    let first = tokio::spawn(async move { send(client().get(busy_url)).await.status });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let r = get(&gw.url("/narrow/slow?ms=10"), None).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (503, "503 Service Unavailable: the upstream service is at its connection limit\n")
    );
    assert!(started.elapsed() >= Duration::from_millis(190), "it waited for a turn first");
    assert_eq!(first.await.unwrap(), 200, "the request holding the turn finishes");
    assert_eq!(
        get(&gw.url("/narrow/slow?ms=10"), None).await.status,
        200,
        "the turn came back with its body"
    );
    let metrics = get(&gw.url("/_railbridge/metrics"), None).await.body;
    assert!(
        metrics.contains(r#"railbridge_upstream_errors_total{route="narrow",kind="busy"}"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_slow_request_head_is_cut_off_and_an_idle_connection_is_not() {
    let echo = echo().await;
    let toml = routes_toml(&echo, "")
        .replace("[server]\n", "[server]\nheader_timeout = \"300ms\"\nworkers = 1\n");
    let gw = gateway(&toml, &[]).await;
    // Slowloris: a head started and never finished is closed after header_timeout, not after idle_timeout (60 s).
    let mut slow = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    slow.write_all(b"GET /_railbridge/health HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();
    let started = std::time::Instant::now();
    let mut buf = vec![0u8; 512];
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match slow.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {} // an error answer, then the close
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the slow head was not cut off");
    assert!(started.elapsed() >= Duration::from_millis(250), "{:?}", started.elapsed());
    // A keep-alive connection that sits idle longer than header_timeout between requests stays usable.
    let (mut idle, head) = open_and_ask(gw.addr).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    tokio::time::sleep(Duration::from_millis(800)).await;
    idle.write_all(b"GET /_railbridge/health HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let n =
        tokio::time::timeout(Duration::from_secs(5), idle.read(&mut buf)).await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"), "idle is not slow");
}
