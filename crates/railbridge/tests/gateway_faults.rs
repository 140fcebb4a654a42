//! Faults of an upstream mid-response, measured: a body cut off by a reset, and a body that stalls past the route's
//! timeout. The status line has gone to the client by then, so the gateway ends the client's response (the client
//! sees a truncated body, never a complete-looking one), keeps serving, and does not reuse the broken connection.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::support::*;

/// An upstream that answers every request with a head promising 100 bytes, sends 5, then either closes the
/// connection (`stall` false) or waits 3 s (`stall` true).
async fn faulty_upstream(stall: bool) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let _ =
                    socket.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello").await;
                if stall {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                }
                // Dropping the socket closes it: the rest of the promised body never comes.
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_body_cut_off_or_stalled_mid_way_ends_the_clients_response() {
    let echo = echo().await;
    let reset = faulty_upstream(false).await;
    let stall = faulty_upstream(true).await;
    let extra = format!(
        "[[route]]\nname = \"reset\"\nprefix = \"/reset\"\nupstream = \"http://{reset}\"\npolicy = \"public\"\n\n\
         [[route]]\nname = \"stall\"\nprefix = \"/stall\"\nupstream = \"http://{stall}\"\npolicy = \"public\"\ntimeout = \"300ms\"\n"
    );
    let gw = gateway(&routes_toml(&echo, &extra), &[]).await;
    for path in ["/reset/x", "/stall/x"] {
        let started = Instant::now();
        let response = client().get(gw.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}: the head was already on its way");
        let body = response.bytes().await;
        assert!(body.is_err(), "{path}: a truncated body must not look complete: {body:?}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{path}: ended in {:?}",
            started.elapsed()
        );
        // The gateway goes on serving, on this route and the others.
        assert_eq!(get(&gw.url("/echo/public/x"), None).await.status, 200, "{path}");
    }
    // Again on the same routes: the broken upstream connections were not put back in the pool.
    for path in ["/reset/y", "/stall/y"] {
        let response = client().get(gw.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.bytes().await.is_err(), "{path}");
    }
}

/// Sends a request head promising a 100-byte body, then the body `chunk` bytes at a time every `gap`, and returns the
/// status line of the answer and how long it took.
async fn post_slowly(
    addr: std::net::SocketAddr,
    chunk: usize,
    gap: Duration,
) -> (String, Duration) {
    let started = Instant::now();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"POST /echo/public/upload HTTP/1.1\r\nHost: gw\r\nContent-Length: 100\r\n\r\n")
        .await
        .unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let sender = tokio::spawn(async move {
        let mut sent = 0;
        while sent < 100 {
            if writer.write_all(&vec![b'x'; chunk.min(100 - sent)]).await.is_err() {
                return;
            }
            sent += chunk;
            tokio::time::sleep(gap).await;
        }
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    // Until the connection closes or the head of the answer is complete.
    loop {
        match tokio::time::timeout(Duration::from_secs(10), reader.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                answer.extend_from_slice(&buf[..n]);
                if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            Err(_) => panic!("no answer within 10 s"),
        }
    }
    // The client hangs up: both halves of the socket dropped.
    sender.abort();
    let _ = sender.await;
    drop(reader);
    let text = String::from_utf8_lossy(&answer).into_owned();
    (text.lines().next().unwrap_or_default().to_owned(), started.elapsed())
}

#[tokio::test]
async fn a_client_that_pauses_its_body_past_the_body_timeout_gets_408() {
    let echo = echo().await;
    let toml = routes_toml(&echo, "").replace("[server]\n", "[server]\nbody_timeout = \"300ms\"\n");
    let gw = gateway(&toml, &[]).await;
    let baseline = gw.gateway.stats();

    // 10 bytes, then silence: 408 about 300 ms after the last byte, and the connection is closed.
    let (status, took) = post_slowly(gw.addr, 10, Duration::from_secs(30)).await;
    assert_eq!(status, "HTTP/1.1 408 Request Timeout");
    assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(2), "{took:?}");

    // Slow but steady (a chunk every 100 ms, under the timeout) is a slow upload, not a fault: it gets through.
    let (status, took) = post_slowly(gw.addr, 10, Duration::from_millis(100)).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(took >= Duration::from_millis(900), "{took:?}");

    // Many at once: every one answered 408, and afterwards no connection or task is left behind.
    let stalled = (0..50).map(|_| post_slowly(gw.addr, 10, Duration::from_secs(30)));
    for (status, _) in futures_util::future::join_all(stalled).await {
        assert_eq!(status, "HTTP/1.1 408 Request Timeout");
    }
    let metrics = get(&gw.url("/_railbridge/metrics"), None).await.body;
    assert!(metrics.contains("railbridge_tasks"), "{metrics}");
    let settled = settle(&gw, baseline).await;
    assert_eq!(settled.client_connections, baseline.client_connections, "{settled:?}");
    // What may stay: a worker's idle keep-alive connection to the upstream and its pool's sweeper.
    assert!(settled.tasks <= baseline.tasks + 4, "{baseline:?} → {settled:?}");
}

/// The gateway's stats once its connections have wound down (up to 3 s).
pub(crate) async fn settle(gw: &Gw, baseline: railbridge::Stats) -> railbridge::Stats {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let now = gw.gateway.stats();
        if (now.client_connections <= baseline.client_connections && now.tasks <= baseline.tasks)
            || Instant::now() > deadline
        {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
