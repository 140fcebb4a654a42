//! `https://` upstreams: verified against the route's CA file (or the system's roots), SNI, a client certificate
//! for mutual TLS, HTTP/2 where the route asks (ALPN `h2`, or prior knowledge over plain HTTP), 502 when the
//! upstream's certificate does not verify, and pooled connections never shared between routes whose TLS settings
//! differ. The upstreams are loopback TLS servers with certificates from throwaway CAs made here (rcgen).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio_rustls::rustls;

use super::support::*;

/// A CA: its PEM, and what signs with it.
struct Ca {
    pem: String,
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

fn ca(name: &str) -> Ca {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.distinguished_name.push(rcgen::DnType::CommonName, format!("{name} test CA"));
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Ca { pem: cert.pem(), cert, key }
}

/// A certificate for `names` signed by `ca`: (chain PEM, key PEM).
fn leaf(ca: &Ca, names: &[&str]) -> (String, String) {
    let params =
        rcgen::CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
            .unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.cert, &ca.key).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// What a TLS upstream saw.
#[derive(Default)]
struct Seen {
    /// Completed TLS handshakes.
    handshakes: AtomicUsize,
    /// The SNI names clients sent.
    sni: Mutex<Vec<Option<String>>>,
}

/// A loopback HTTPS upstream for `localhost`, offering `alpn`, asking for a client certificate signed by
/// `client_ca` when given. It answers every request with `{"version", "client_cert"}`.
async fn tls_upstream(
    server_ca: &Ca,
    alpn: &[&[u8]],
    client_ca: Option<&Ca>,
) -> (SocketAddr, Arc<Seen>) {
    use rustls_pki_types::pem::PemObject as _;
    let (chain, key) = leaf(server_ca, &["localhost"]);
    let chain = rustls_pki_types::CertificateDer::pem_slice_iter(chain.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(ca.cert.der().clone()).unwrap();
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, key).unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, seen) = (acceptor.clone(), s.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                seen.handshakes.fetch_add(1, Ordering::SeqCst);
                let conn = tls.get_ref().1;
                seen.sni.lock().unwrap().push(conn.server_name().map(str::to_owned));
                let client_cert = conn.peer_certificates().is_some_and(|c| !c.is_empty());
                let service = hyper::service::service_fn(move |req: http::Request<_>| async move {
                    let body = serde_json::json!({
                        "version": format!("{:?}", req.version()),
                        "client_cert": client_cert,
                        "path": req.uri().path(),
                    });
                    Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(
                        body.to_string(),
                    ))))
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (addr, seen)
}

/// A plain-HTTP upstream speaking HTTP/1.1 and HTTP/2 with prior knowledge, answering `{"version"}`.
async fn h2c_upstream() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|req: http::Request<_>| async move {
                    let body = serde_json::json!({ "version": format!("{:?}", req.version()) });
                    Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(
                        body.to_string(),
                    ))))
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    addr
}

/// A public route `prefix` → `upstream` with extra keys.
fn route(prefix: &str, upstream: &str, extra: &str) -> String {
    format!(
        "[[route]]\nname = \"{}\"\nprefix = \"{prefix}\"\nrewrite = \"/\"\nupstream = \"{upstream}\"\npolicy = \"public\"\n{extra}\n",
        prefix.trim_start_matches('/')
    )
}

fn server_toml() -> String {
    "[rails]\nsession_key = \"_app_session\"\n[server]\nlisten = \"127.0.0.1:0\"\nrequest_timeout = \"5s\"\nconnect_timeout = \"2s\"\nworkers = 2\n"
        .to_owned()
}

async fn get(gw: &Gw, path: &str) -> (u16, serde_json::Value) {
    let r = client().get(gw.url(path)).send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
}

#[tokio::test]
async fn https_upstreams_are_verified_against_the_routes_roots_and_never_share_connections_across_them(
) {
    let dir = TempDir::new("upstream-tls");
    let (good_ca, other_ca) = (ca("upstream"), ca("other"));
    let (addr, seen) = tls_upstream(&good_ca, &[b"http/1.1"], None).await;
    let good = dir.write("ca.pem", &good_ca.pem);
    let other = dir.write("other.pem", &other_ca.pem);
    let url = format!("https://localhost:{}", addr.port());
    let toml = [
        server_toml(),
        route("/good", &url, &format!("ca_file = \"{}\"", good.display())),
        route("/other", &url, &format!("ca_file = \"{}\"", other.display())),
        route("/system", &url, ""),
    ]
    .concat();
    let gw = gateway(&toml, &[]).await;

    let (status, body) = get(&gw, "/good/a").await;
    assert_eq!((status, &body["version"], &body["path"]), (200, &"HTTP/1.1".into(), &"/a".into()));
    // The same upstream address under another route's roots: the pooled connection verified under the first
    // route's is not reused, and the new handshake fails verification.
    assert_eq!(get(&gw, "/other/a").await.0, 502);
    assert_eq!(get(&gw, "/system/a").await.0, 502);
    for _ in 0..6 {
        assert_eq!(get(&gw, "/good/b").await.0, 200);
    }
    // Each worker (2) keeps its connection verified under the good route's roots for that route's requests.
    let handshakes = seen.handshakes.load(Ordering::SeqCst);
    assert!((1..=2).contains(&handshakes), "{handshakes} handshakes for 7 requests");
    assert!(seen.sni.lock().unwrap().iter().all(|n| n.as_deref() == Some("localhost")));

    let metrics =
        client().get(gw.url("/_railbridge/metrics")).send().await.unwrap().text().await.unwrap();
    let tls_errors = metrics
        .lines()
        .filter(|l| l.starts_with("railbridge_upstream_errors_total") && l.contains("kind=\"tls\""))
        // The recorder is the process's: other tests' routes are there too.
        .filter(|l| l.contains("route=\"other\"") || l.contains("route=\"system\""))
        .count();
    assert_eq!(tls_errors, 2, "{metrics}");
}

#[tokio::test]
async fn a_client_certificate_for_mutual_tls() {
    let dir = TempDir::new("upstream-mtls");
    let (server_ca, client_ca) = (ca("upstream"), ca("clients"));
    let (addr, _) = tls_upstream(&server_ca, &[b"http/1.1"], Some(&client_ca)).await;
    let (cert, key) = leaf(&client_ca, &["railbridge"]);
    let ca_file = dir.write("ca.pem", &server_ca.pem);
    let cert = dir.write("client.pem", &cert);
    let key = dir.write("client-key.pem", &key);
    let url = format!("https://localhost:{}", addr.port());
    let ca_line = format!("ca_file = \"{}\"", ca_file.display());
    let toml = [
        server_toml(),
        route(
            "/mtls",
            &url,
            &format!(
                "{ca_line}\nclient_cert = \"{}\"\nclient_key = \"{}\"",
                cert.display(),
                key.display()
            ),
        ),
        route("/anonymous", &url, &ca_line),
    ]
    .concat();
    let gw = gateway(&toml, &[]).await;
    let (status, body) = get(&gw, "/mtls/x").await;
    assert_eq!((status, &body["client_cert"]), (200, &true.into()), "{body}");
    assert_eq!(get(&gw, "/anonymous/x").await.0, 502);
    assert_eq!(get(&gw, "/mtls/y").await.0, 200);
}

#[tokio::test]
async fn http2_to_upstreams_that_agree_and_502_from_one_that_does_not() {
    let dir = TempDir::new("upstream-h2");
    let server_ca = ca("upstream");
    let (h2, h2_seen) = tls_upstream(&server_ca, &[b"h2", b"http/1.1"], None).await;
    let (h1_only, _) = tls_upstream(&server_ca, &[b"http/1.1"], None).await;
    let h2c = h2c_upstream().await;
    let ca_line = format!("ca_file = \"{}\"", dir.write("ca.pem", &server_ca.pem).display());
    let toml = [
        server_toml(),
        route(
            "/h2",
            &format!("https://localhost:{}", h2.port()),
            &format!("{ca_line}\nhttp2 = true"),
        ),
        route("/h1", &format!("https://localhost:{}", h2.port()), &ca_line),
        route(
            "/h1only",
            &format!("https://localhost:{}", h1_only.port()),
            &format!("{ca_line}\nhttp2 = true"),
        ),
        route("/h2c", &format!("http://127.0.0.1:{}", h2c.port()), "http2 = true"),
    ]
    .concat();
    let gw = gateway(&toml, &[]).await;
    for _ in 0..3 {
        let (status, body) = get(&gw, "/h2/x").await;
        assert_eq!((status, &body["version"]), (200, &"HTTP/2.0".into()), "{body}");
    }
    // Many requests at once share the worker's one HTTP/2 connection.
    let many = (0..20).map(|_| get(&gw, "/h2/y"));
    for (status, _) in futures_util::future::join_all(many).await {
        assert_eq!(status, 200);
    }
    let (status, body) = get(&gw, "/h1/x").await;
    assert_eq!((status, &body["version"]), (200, &"HTTP/1.1".into()));
    let handshakes = h2_seen.handshakes.load(Ordering::SeqCst);
    // One per worker (2); a race between a worker's first requests may open one more.
    assert!(handshakes <= 4, "{handshakes} handshakes for 2 workers");
    assert_eq!(get(&gw, "/h1only/x").await.0, 502);
    let (status, body) = get(&gw, "/h2c/x").await;
    assert_eq!((status, &body["version"]), (200, &"HTTP/2.0".into()), "{body}");
}
