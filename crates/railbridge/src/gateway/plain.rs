//! `[server] http_listen`: a plain-HTTP listener beside the TLS one, for what has to stay on port 80 — the health
//! checks of load balancers that do not speak TLS, and a permanent redirect of everything else to `https://`. No
//! request is proxied from it, so no session cookie ever travels over it to an upstream.

use std::convert::Infallible;
use std::time::Duration;

use http::header::{self, HeaderValue};
use http::uri::Authority;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

use super::error::text;
use super::{Body, Gateway};

/// Serves the plain listener until the task is dropped: health, readiness, and 308 to `https://` on `https_port`.
pub(crate) async fn serve_plain(gateway: Gateway, listener: TcpListener, https_port: u16) {
    let permits = gateway.shared.connections.clone();
    loop {
        let Some((stream, _peer, permit)) =
            super::server::accept_permitted(&listener, &permits).await
        else {
            continue;
        };
        let gateway = gateway.clone();
        let open = gateway.connection_opened();
        tokio::spawn(async move {
            let (_permit, _open) = (permit, open);
            let service = hyper::service::service_fn(move |req| {
                let response = answer(&gateway, &req, https_port);
                async move { Ok::<_, Infallible>(response) }
            });
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .keep_alive(false)
                .header_read_timeout(Duration::from_secs(10));
            let _ = builder.serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

fn answer(gateway: &Gateway, req: &Request<Incoming>, https_port: u16) -> Response<Body> {
    match req.uri().path() {
        "/_railbridge/health" => text(StatusCode::OK, "ok\n"),
        "/_railbridge/ready" if gateway.is_draining() => {
            text(StatusCode::SERVICE_UNAVAILABLE, "draining\n")
        }
        "/_railbridge/ready" => text(StatusCode::OK, "ready\n"),
        _ => redirect(req, https_port),
    }
}

/// 308 to the same host and path over https (a method and body are kept by 308, unlike 301).
fn redirect(req: &Request<Incoming>, https_port: u16) -> Response<Body> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| Authority::try_from(h.as_bytes()).ok())
        .or_else(|| req.uri().authority().cloned());
    let Some(host) = host else {
        return text(StatusCode::BAD_REQUEST, "400 Bad Request: no Host\n");
    };
    let port = if https_port == 443 { String::new() } else { format!(":{https_port}") };
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let location = format!("https://{}{port}{path}", host.host());
    let Ok(location) = HeaderValue::try_from(location) else {
        return text(StatusCode::BAD_REQUEST, "400 Bad Request\n");
    };
    let mut r = text(StatusCode::PERMANENT_REDIRECT, "308 Permanent Redirect: use https\n");
    r.headers_mut().insert(header::LOCATION, location);
    r
}
