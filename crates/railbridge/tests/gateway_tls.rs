//! TLS termination: the gateway serves HTTPS from a PEM chain and key, with ALPN (HTTP/2 for clients that ask, HTTP/1.1
//! for the rest), tells the upstream `X-Forwarded-Proto: https`, and takes a renewed certificate on reload without a
//! restart. Certificates come from a throwaway CA made in the test (rcgen).

use super::support::*;

/// A CA and a server certificate for 127.0.0.1 and localhost: (CA PEM, chain PEM, key PEM).
fn certificate(name: &str) -> (String, String, String) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, format!("{name} test CA"));
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

fn https_client(ca: &str, http2: bool) -> reqwest::Client {
    let builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap());
    let builder = if http2 { builder } else { builder.http1_only() };
    builder.build().unwrap()
}

#[tokio::test]
async fn https_with_alpn_and_a_renewed_certificate() {
    let echo = echo().await;
    let dir = TempDir::new("tls");
    let (ca, chain, key) = certificate("first");
    let cert_path = dir.write("cert.pem", &chain);
    let key_path = dir.write("key.pem", &key);
    let toml = routes_toml(&echo, "").replace(
        "[server]\n",
        &format!(
            "[server]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
            cert_path.display(),
            key_path.display()
        ),
    );
    let gw = gateway(&toml, &[]).await;
    let url = format!("https://127.0.0.1:{}/echo/public/x", gw.addr.port());

    for (http2, version) in [(true, reqwest::Version::HTTP_2), (false, reqwest::Version::HTTP_11)] {
        let r = https_client(&ca, http2).get(&url).send().await.unwrap();
        assert_eq!((r.status().as_u16(), r.version()), (200, version));
        let body: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        assert_eq!(body["headers"]["x-forwarded-proto"], serde_json::json!(["https"]), "{body}");
    }
    // Plain HTTP on the TLS port is refused, not served.
    assert!(client()
        .get(format!("http://127.0.0.1:{}/echo/public/x", gw.addr.port()))
        .send()
        .await
        .is_err());

    // A renewed certificate (another CA here) is taken on reload; a client trusting only the new CA gets in after.
    let (ca2, chain2, key2) = certificate("second");
    assert!(
        https_client(&ca2, true).get(&url).send().await.is_err(),
        "the old certificate is still served"
    );
    std::fs::write(&cert_path, chain2).unwrap();
    std::fs::write(&key_path, key2).unwrap();
    gw.gateway.reload(config(&toml, &[("SECRET_KEY_BASE", SKB)]));
    let r = https_client(&ca2, true).get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // A key that does not belong to the chain, or half the pair, is a configuration error naming the settings.
    let (_, other_chain, _) = certificate("third");
    let mismatched = dir.write("other.pem", &other_chain);
    for (cert, key) in [(Some(&mismatched), Some(&key_path)), (Some(&mismatched), None)] {
        let mut server = String::from("[server]\n");
        if let Some(c) = cert {
            server.push_str(&format!("tls_cert = \"{}\"\n", c.display()));
        }
        if let Some(k) = key {
            server.push_str(&format!("tls_key = \"{}\"\n", k.display()));
        }
        let e = railbridge::Config::from_toml(&server, "t.toml", |_| None).unwrap_err().to_string();
        assert!(
            e.contains("server.tls_cert / tls_key (RAILBRIDGE_TLS_CERT / RAILBRIDGE_TLS_KEY)"),
            "{e}"
        );
    }
}

#[tokio::test]
async fn a_plain_listener_beside_tls_answers_health_checks_and_redirects_the_rest() {
    let echo = echo().await;
    let dir = TempDir::new("tls-plain");
    let (_, chain, key) = certificate("plain");
    let plain = testkit::free_port();
    let toml = routes_toml(&echo, "").replace(
        "[server]\n",
        &format!(
            "[server]\ntls_cert = \"{}\"\ntls_key = \"{}\"\nhttp_listen = \"127.0.0.1:{plain}\"\n",
            dir.write("cert.pem", &chain).display(),
            dir.write("key.pem", &key).display()
        ),
    );
    let gw = gateway(&toml, &[]).await;
    let mut health = None;
    for _ in 0..50 {
        if let Ok(r) =
            client().get(format!("http://127.0.0.1:{plain}/_railbridge/health")).send().await
        {
            health = Some(r.status().as_u16());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(health, Some(200));
    // Anything else: a permanent redirect to the same host and path over https, on the TLS port; nothing proxied.
    let r = client()
        .post(format!("http://127.0.0.1:{plain}/echo/public/x?a=1"))
        .header("cookie", cookie_for(&devise_session("user", 5)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 308);
    assert_eq!(
        r.headers()["location"],
        format!("https://127.0.0.1:{}/echo/public/x?a=1", gw.addr.port()).as_str()
    );
    // Without TLS there is nothing to sit beside.
    let e = railbridge::Config::from_toml(
        "[server]\nhttp_listen = \"127.0.0.1:80\"\n",
        "t.toml",
        |_| None,
    )
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("server.http_listen (RAILBRIDGE_HTTP_LISTEN): "), "{e}");
}
