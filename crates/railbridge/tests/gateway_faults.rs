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
