//! `railbridge serve`: the gateway in-process on 127.0.0.1:0 in front of an echo upstream, with Rails 6.1 session
//! cookies made by the codec (the live tests in `gateway_live.rs` use cookies from the real Rails + Devise app).
#![allow(clippy::unwrap_used, clippy::panic)]

#[path = "gateway_backends.rs"]
mod backends;
#[path = "gateway_bin.rs"]
mod bin;
#[path = "gateway_faults.rs"]
mod faults;
#[path = "gateway_limits.rs"]
mod limits;
#[path = "gateway_live.rs"]
mod live;
#[path = "gateway_live_7_2.rs"]
mod live_7_2;
#[path = "gateway_nginx.rs"]
mod nginx;
#[path = "gateway_stores.rs"]
mod stores;
#[path = "gateway_support.rs"]
mod support;
#[path = "gateway_tls.rs"]
mod tls;
#[path = "gateway_tokens.rs"]
mod tokens;
#[path = "gateway_upstream_tls.rs"]
mod upstream_tls;

use std::time::{Duration, Instant};

use rails_cookie::{Hash, Profile, Value};
use serde_json::json;

use self::support::*;

fn jwt_toml(key: &std::path::Path) -> String {
    format!(
        "[jwt]\nissuer = \"railbridge-test\"\nttl = \"2m\"\n[[jwt.key]]\nfile = \"{}\"\n",
        key.display()
    )
}

#[tokio::test]
async fn identity_headers_reach_the_upstream_and_forged_ones_never_do() {
    let echo = echo().await;
    let gw = gateway(&routes_toml(&echo, ""), &[]).await;
    let cookie = format!("theme=dark; {}; other=1", cookie_for(&devise_session("user", 42)));
    let r = send(
        client()
            .get(gw.url("/echo/hello?x=1"))
            .header("cookie", &cookie)
            .header("X-Railbridge-User", "1")
            .header("x_railbridge_user", "2")
            .header("X_RAILBRIDGE_SCOPE", "admin")
            .header("x-railbridge-assertion", "forged.jwt.here")
            .header("x-railbridge-anything", "x")
            .header("x-forwarded-for", "6.6.6.6")
            .header("connection", "keep-alive, x-hop")
            .header("x-hop", "secret"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = r.json();
    assert_eq!(seen["path"], "/echo/hello");
    assert_eq!(seen["query"], "x=1");
    assert_eq!(seen["headers"]["x-railbridge-user"], json!(["42"]), "exactly one, ours");
    assert_eq!(seen["headers"]["x-railbridge-scope"], json!(["user"]));
    let sid = r.received("x-railbridge-session").unwrap();
    assert_eq!(sid.len(), 32);
    assert!(!sid.contains(SESSION_ID), "never the raw session id");
    for name in r.received_names() {
        assert!(
            ["x-railbridge-user", "x-railbridge-scope", "x-railbridge-session"]
                .contains(&name.as_str())
                || !name.replace('_', "-").starts_with("x-railbridge"),
            "forged header {name} arrived"
        );
    }
    assert!(r.received("x-railbridge-assertion").is_none(), "assertions are off in this config");
    // The Rails session cookie stays at the gateway; the other cookies go on.
    assert_eq!(r.received("cookie").as_deref(), Some("theme=dark; other=1"));
    assert_eq!(
        r.received("x-forwarded-for").as_deref(),
        Some("127.0.0.1"),
        "untrusted peer: XFF replaced"
    );
    assert_eq!(r.received("x-forwarded-proto").as_deref(), Some("http"));
    assert_eq!(r.received("x-forwarded-host"), Some(gw.addr.to_string()));
    assert!(r.received("x-hop").is_none(), "Connection-listed headers are hop-by-hop");
    assert_eq!(r.received("host"), Some(echo.addr.to_string()), "the upstream's Host by default");

    // A route for a Rails upstream gets the cookie.
    let r = get(&gw.url("/rails/x"), Some(&cookie)).await;
    assert!(r.received("cookie").unwrap().contains("_app_session="));
    assert_eq!(
        r.received("x-railbridge-user").as_deref(),
        Some("42"),
        "public routes still say who it is"
    );
}

#[tokio::test]
async fn no_user_means_401_except_on_public_paths() {
    let echo = echo().await;
    let gw = gateway(&routes_toml(&echo, ""), &[]).await;
    let r = get(&gw.url("/echo/x"), None).await;
    assert_eq!(r.status, 401);
    assert!(r.json()["error"].is_string());
    assert_eq!(
        get(&gw.url("/echo/x"), Some("_app_session=garbage--x--y")).await.status,
        401,
        "bad cookie"
    );
    let mut signed_out = devise_session("user", 1);
    signed_out.remove("warden.user.user.key");
    assert_eq!(
        get(&gw.url("/echo/x"), Some(&cookie_for(&signed_out))).await.status,
        401,
        "signed out"
    );
    // A cookie of another app (other secret) is no better.
    let foreign = rails_cookie::CookieCodec::new(
        Profile::rails_6_1(),
        rails_cookie::SecretKeyBase::new("f".repeat(128)).unwrap(),
    )
    .unwrap();
    assert_eq!(
        get(&gw.url("/echo/x"), Some(&cookie_with(&foreign, &devise_session("user", 1))))
            .await
            .status,
        401
    );

    let r = get(&gw.url("/echo/public/page"), None).await;
    assert_eq!(r.status, 200, "public path");
    assert!(r.received("x-railbridge-user").is_none());
    let r = send(client().get(gw.url("/echo/public/page")).header("x-railbridge-user", "1")).await;
    assert!(r.received("x-railbridge-user").is_none(), "public paths strip forgeries too");
    assert_eq!(get(&gw.url("/rails/"), None).await.status, 200, "public route");
    assert_eq!(get(&gw.url("/nowhere"), None).await.status, 404, "no route");
    for escape in ["/echo/public/../x", "/echo/public/%2e%2e/x", "/echo/public%2f..%2fx"] {
        assert_eq!(
            raw_status(gw.addr, escape).await,
            400,
            "{escape}: dot segments cannot escape a prefix"
        );
    }
}

#[tokio::test]
async fn warden_scopes_and_path_rewriting() {
    let echo = echo().await;
    let gw = gateway(&routes_toml(&echo, ""), &[]).await;
    let user = cookie_for(&devise_session("user", 1));
    let admin = cookie_for(&devise_session("admin", 7));
    assert_eq!(get(&gw.url("/admin/x"), Some(&user)).await.status, 401, "a user is not an admin");
    let r = get(&gw.url("/admin/x"), Some(&admin)).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        (r.received("x-railbridge-user").as_deref(), r.received("x-railbridge-scope").as_deref()),
        (Some("7"), Some("admin"))
    );
    assert_eq!(get(&gw.url("/echo/x"), Some(&admin)).await.status, 401, "an admin is not a user");
    let r = get(&gw.url("/api/users/1?full=1"), Some(&user)).await;
    assert_eq!(r.json()["path"], "/v2/users/1", "prefix rewritten under the upstream's base path");
    assert_eq!(r.json()["query"], "full=1");
}

#[tokio::test]
async fn assertions_verify_against_the_jwks_for_each_key_type() {
    let echo = echo().await;
    let dir = TempDir::new("jwt");
    let mut keys = vec![
        ("EdDSA", dir.write("ed.pem", &ed25519_pem())),
        ("ES256", dir.write("ec.pem", &p256_pem())),
    ];
    if let Some(rsa) = rsa_pem(&dir) {
        keys.push(("RS256", dir.write("rsa.pem", &rsa)));
    } else {
        eprintln!("openssl not found: RS256 not tested");
    }
    for (alg, key) in keys {
        let fields = "[[identity.field]]\nfrom = \"session.locale\"\nheader = \"X-Railbridge-Locale\"\nclaim = \"locale\"\n";
        let gw = gateway(&routes_toml(&echo, &format!("{}{fields}", jwt_toml(&key))), &[]).await;
        let mut session = devise_session("user", 42);
        session.insert("locale", "fr".into());
        let cookie = cookie_for(&session);
        let r = get(&gw.url("/echo/x"), Some(&cookie)).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let token = r.received("x-railbridge-assertion").expect("an assertion");
        assert_eq!(r.received("x-railbridge-locale").as_deref(), Some("fr"));
        let jwks = get(&gw.url("/.well-known/jwks.json"), None).await;
        assert_eq!(jwks.status, 200);
        let jwks = jwks.json();
        let claims = verify(&token, &jwks, "echo", "railbridge-test");
        assert_eq!(
            jsonwebtoken::decode_header(&token).unwrap().alg,
            match alg {
                "EdDSA" => jsonwebtoken::Algorithm::EdDSA,
                "ES256" => jsonwebtoken::Algorithm::ES256,
                _ => jsonwebtoken::Algorithm::RS256,
            }
        );
        assert_eq!(claims["sub"], "42", "{alg}");
        assert_eq!(claims["scope"], "user");
        assert_eq!(claims["locale"], "fr");
        assert_eq!(claims["sid"], json!(r.received("x-railbridge-session").unwrap()));
        let (iat, exp) = (claims["iat"].as_u64().unwrap(), claims["exp"].as_u64().unwrap());
        assert!(exp > iat && exp - iat <= 300, "exp ≤ 5 min");
        assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));
        // Cached for the session: the same token on the next request; another route gets its own audience.
        assert_eq!(
            get(&gw.url("/echo/y"), Some(&cookie)).await.received("x-railbridge-assertion"),
            Some(token.clone())
        );
        let other = get(&gw.url("/rails/x"), Some(&cookie))
            .await
            .received("x-railbridge-assertion")
            .unwrap();
        assert_eq!(verify(&other, &jwks, "rails", "railbridge-test")["sub"], "42");
        // A forged assertion is replaced.
        let r = send(
            client()
                .get(gw.url("/echo/x"))
                .header("cookie", &cookie)
                .header("x-railbridge-assertion", "a.b.c"),
        )
        .await;
        assert_eq!(r.json()["headers"]["x-railbridge-assertion"].as_array().unwrap().len(), 1);
        assert_eq!(r.received("x-railbridge-assertion"), Some(token));
    }
}

#[tokio::test]
async fn jwks_publishes_every_key_for_rotation() {
    let dir = TempDir::new("rotation");
    let old = dir.write("old.pem", &ed25519_pem());
    let new = dir.write("new.pem", &p256_pem());
    let toml = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[log]\naccess_log = false\n[rails]\nsession_key = \"{COOKIE}\"\n\
         [[jwt.key]]\nfile = \"{}\"\nkid = \"2024-old\"\n[[jwt.key]]\nfile = \"{}\"\nkid = \"2025-new\"\nsign = true\n",
        old.display(),
        new.display()
    );
    let gw = gateway(&toml, &[]).await;
    let jwks = get(&gw.url("/.well-known/jwks.json"), None).await;
    assert!(jwks.headers["cache-control"].to_str().unwrap().contains("max-age"));
    let kids: Vec<_> = jwks.json()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kids, ["2024-old", "2025-new"]);
    let auth =
        get(&gw.url("/_railbridge/auth"), Some(&cookie_for(&devise_session("user", 3)))).await;
    let token = auth.headers["x-railbridge-assertion"].to_str().unwrap().to_owned();
    assert_eq!(jsonwebtoken::decode_header(&token).unwrap().kid.as_deref(), Some("2025-new"));
    assert_eq!(verify(&token, &jwks.json(), "forward-auth", "railbridge")["sub"], "3");
}

#[tokio::test]
async fn upstream_down_is_502_and_slow_is_504() {
    let echo = echo().await;
    let gw = gateway(&routes_toml(&echo, ""), &[]).await;
    let r = get(&gw.url("/down/x"), None).await;
    assert_eq!(r.status, 502);
    assert!(r.body.len() < 100 && r.body.contains("502"), "{}", r.body);
    let started = Instant::now();
    let r = get(&gw.url("/slow/slow?ms=3000"), None).await;
    assert_eq!(r.status, 504);
    assert!(r.body.contains("504"));
    assert!(started.elapsed() < Duration::from_secs(2), "the route's 300 ms timeout");
    assert_eq!(get(&gw.url("/slow/slow?ms=10"), None).await.status, 200);
    let metrics = get(&gw.url("/_railbridge/metrics"), None).await.body;
    assert!(
        metrics.contains(r#"railbridge_upstream_errors_total{route="down",kind="connect"}"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"railbridge_upstream_errors_total{route="slow",kind="timeout"}"#));
}

#[tokio::test]
async fn bodies_stream_both_ways() {
    let echo = echo().await;
    let gw = gateway(&routes_toml(&echo, ""), &[]).await;
    let started = Instant::now();
    let mut r = client().get(gw.url("/rails/stream")).send().await.unwrap();
    let first = r.chunk().await.unwrap().unwrap();
    assert_eq!(&first[..], b"first\n");
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "first chunk before the upstream finished: {:?}",
        started.elapsed()
    );
    let second = r.chunk().await.unwrap().unwrap();
    assert_eq!(&second[..], b"second\n");
    // A request body larger than any buffer, chunked, arrives whole.
    let body = "x".repeat(3 << 20);
    let r = send(client().post(gw.url("/rails/upload")).body(body)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["method"], "POST");
    assert_eq!(r.json()["body_len"], 3 << 20);
}

#[tokio::test]
async fn a_stalled_response_body_is_cut_after_the_route_timeout() {
    let echo = echo().await;
    let gw = gateway(&routes_toml(&echo, ""), &[]).await;
    // The upstream sends a first chunk, then nothing for 1.5 s; the route allows 300 ms between chunks.
    let started = Instant::now();
    let mut r = client().get(gw.url("/slow/stream")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(&r.chunk().await.unwrap().unwrap()[..], b"first\n");
    let rest = r.chunk().await;
    assert!(rest.is_err(), "the body ends in an error, not a clean end: {rest:?}");
    assert!(
        started.elapsed() < Duration::from_millis(1200),
        "cut at ~300 ms: {:?}",
        started.elapsed()
    );
    // The same stream with the default 30 s arrives whole (bodies_stream_both_ways); a fast body is untouched.
    assert_eq!(get(&gw.url("/slow/slow?ms=10"), None).await.status, 200);
}

#[tokio::test]
async fn websocket_upgrades_pass_through() {
    use futures_util::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    use tokio_tungstenite::tungstenite::Message;

    let echo = echo().await;
    let gw = gateway(&routes_toml(&echo, ""), &[]).await;
    let mut request = format!("ws://{}/echo/ws", gw.addr).into_client_request().unwrap();
    request.headers_mut().insert("cookie", cookie_for(&devise_session("user", 5)).parse().unwrap());
    let (mut socket, response) =
        tokio_tungstenite::connect_async(request).await.expect("upgrade through the gateway");
    assert_eq!(response.status(), 101);
    socket.send(Message::Text("hello".into())).await.unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(reply.into_text().unwrap().as_str(), "echo: hello");
    socket.send(Message::Binary(vec![1u8, 2, 3].into())).await.unwrap();
    let reply = socket.next().await.unwrap().unwrap();
    assert_eq!(reply.into_data().as_ref(), [1, 2, 3]);
    socket.close(None).await.unwrap();
    // Without a user the upgrade is refused like any request.
    let request = format!("ws://{}/echo/ws", gw.addr).into_client_request().unwrap();
    let err = tokio_tungstenite::connect_async(request).await.unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
}

#[tokio::test]
async fn http2_clients_are_served() {
    let echo = echo().await;
    let gw = gateway(&routes_toml(&echo, ""), &[]).await;
    let h2 = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    let r =
        send(h2.get(gw.url("/echo/x")).header("cookie", cookie_for(&devise_session("user", 9))))
            .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.received("x-railbridge-user").as_deref(), Some("9"));
    assert_eq!(r.json()["version"], "HTTP/1.1", "upstreams get HTTP/1.1");
    assert_eq!(r.received("x-forwarded-host"), Some(gw.addr.to_string()), "from the :authority");
}

#[tokio::test]
async fn forward_auth_endpoint() {
    let echo = echo().await;
    let gw = gateway(&routes_toml(&echo, ""), &[]).await;
    let user = cookie_for(&devise_session("user", 11));
    let r = get(&gw.url("/_railbridge/auth"), Some(&user)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["x-railbridge-user"], "11");
    assert_eq!(r.headers["x-railbridge-scope"], "user");
    assert!(r.headers.get("set-cookie").is_none());
    let r = send(client().get(gw.url("/_railbridge/auth")).header("x-railbridge-user", "1")).await;
    assert_eq!(r.status, 401, "no cookie");
    assert!(r.headers.get("x-railbridge-user").is_none());
    // The policy of the original URI's route: Traefik's X-Forwarded-Uri, nginx's X-Original-URI, Envoy's path.
    let admin_uri = |h: &'static str| {
        send(
            client()
                .get(gw.url("/_railbridge/auth"))
                .header("cookie", &user)
                .header(h, "/admin/x?y=1"),
        )
    };
    assert_eq!(admin_uri("x-forwarded-uri").await.status, 401, "a user is not an admin");
    assert_eq!(admin_uri("x-original-uri").await.status, 401);
    assert_eq!(get(&gw.url("/_railbridge/auth/admin/x"), Some(&user)).await.status, 401);
    assert_eq!(get(&gw.url("/_railbridge/auth/echo/x"), Some(&user)).await.status, 200);
    let r =
        send(client().get(gw.url("/_railbridge/auth")).header("x-forwarded-uri", "/echo/public/x"))
            .await;
    assert_eq!(r.status, 200, "public path, no user needed");
}

#[tokio::test]
async fn health_ready_and_metrics() {
    let echo = echo().await;
    let gw = gateway(&routes_toml(&echo, ""), &[]).await;
    assert_eq!(get(&gw.url("/_railbridge/health"), None).await.body, "ok\n");
    assert_eq!(get(&gw.url("/_railbridge/ready"), None).await.status, 200);
    get(&gw.url("/echo/x"), Some(&cookie_for(&devise_session("user", 1)))).await;
    get(&gw.url("/echo/x"), None).await;
    get(&gw.url("/echo/x"), Some("_app_session=bad")).await;
    let m = get(&gw.url("/_railbridge/metrics"), None).await;
    assert!(m.headers["content-type"].to_str().unwrap().starts_with("text/plain"));
    for needle in [
        r#"railbridge_requests_total{route="echo",status="200"}"#,
        r#"railbridge_requests_total{route="echo",status="401"}"#,
        r#"railbridge_auth_total{route="echo",outcome="signed_in"}"#,
        r#"railbridge_auth_total{route="echo",outcome="no_cookie"}"#,
        r#"railbridge_auth_total{route="echo",outcome="invalid_cookie"}"#,
        r#"railbridge_request_duration_seconds_bucket{route="echo",le="0.005"}"#,
    ] {
        assert!(m.body.contains(needle), "{needle} missing from\n{}", m.body);
    }
}

#[tokio::test]
async fn without_a_secret_protected_routes_are_401_and_public_ones_work() {
    let echo = echo().await;
    let config = config(&routes_toml(&echo, ""), &[]);
    assert!(config.warnings()[0].contains("SECRET_KEY_BASE"));
    let gw = start(config).await;
    assert_eq!(
        get(&gw.url("/echo/x"), Some(&cookie_for(&devise_session("user", 1)))).await.status,
        401
    );
    let r = get(&gw.url("/rails/x"), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(get(&gw.url("/_railbridge/auth"), None).await.status, 401);
}

#[tokio::test]
async fn devise_timeout_refresh_and_format_upgrade_set_the_cookie_unless_rails_does() {
    let echo = echo().await;
    let gw = gateway(&routes_toml(&echo, ""), &[("DEVISE_TIMEOUT_IN", "1800")]).await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut session = devise_session("user", 4);
    let mut scoped = Hash::new();
    scoped.insert("last_request_at", Value::Integer(now - 60));
    session.insert("warden.user.user.session", Value::Hash(scoped.clone()));
    let cookie = cookie_for(&session);
    let r = get(&gw.url("/echo/x"), Some(&cookie)).await;
    assert_eq!(r.status, 200);
    let set = r.set_cookies();
    assert_eq!(set.len(), 1, "{set:?}");
    let refreshed = decode_set_cookie(&set[0]);
    let last = refreshed
        .get("warden.user.user.session")
        .unwrap()
        .as_hash()
        .unwrap()
        .get("last_request_at")
        .unwrap()
        .as_i64()
        .unwrap();
    assert!(last >= now, "Devise's last_request_at moved on");
    // The upstream (Rails) sets its own session cookie: that one wins, the gateway's is dropped.
    let r = get(&gw.url("/rails/set-session"), Some(&cookie)).await;
    assert_eq!(r.set_cookies(), ["_app_session=from-upstream; path=/"]);
    // Timed out: 401.
    scoped.insert("last_request_at", Value::Integer(now - 3600));
    session.insert("warden.user.user.session", Value::Hash(scoped));
    assert_eq!(get(&gw.url("/echo/x"), Some(&cookie_for(&session))).await.status, 401);
    // A Rails 4.2-format (AES-CBC) cookie is read through the rotation and rewritten in 6.1's format.
    let legacy = cookie_with(&codec(Profile::rails_4_2()), &devise_session("user", 4));
    let r = get(&gw.url("/rails/x"), Some(&legacy)).await;
    assert_eq!(r.received("x-railbridge-user").as_deref(), Some("4"));
    let set = r.set_cookies();
    if let Some(c) = set.first() {
        assert_eq!(
            decode_set_cookie(c).get("session_id").and_then(Value::as_str),
            Some(SESSION_ID),
            "upgraded"
        );
    } else {
        eprintln!("the 6.1 profile did not rewrite a CBC cookie (no rotation configured)");
    }
}

#[tokio::test]
async fn reload_swaps_routes_without_dropping_connections() {
    let first = echo().await;
    let other = echo().await;
    let echo = first;
    let gw = gateway(&routes_toml(&echo, ""), &[]).await;
    let keepalive = client();
    let r = send(keepalive.get(gw.url("/rails/a"))).await;
    assert_eq!(r.received("host"), Some(echo.addr.to_string()));
    let new = routes_toml(&other, "").replace(&echo.addr.to_string(), &other.addr.to_string());
    gw.gateway.reload(config(&new, &[("SECRET_KEY_BASE", SKB)]));
    let r = send(keepalive.get(gw.url("/rails/b"))).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.received("host"),
        Some(other.addr.to_string()),
        "same client connection, new route table"
    );
}

#[tokio::test]
async fn shutdown_drains_in_flight_requests() {
    let echo = echo().await;
    // One event loop (the caller's), and several worker threads of their own.
    for workers in [1, 3] {
        let toml = routes_toml(&echo, "").replacen(
            "[server]\n",
            &format!("[server]\nworkers = {workers}\n"),
            1,
        );
        let mut gw = gateway(&toml, &[]).await;
        for _ in 0..6 {
            assert_eq!(get(&gw.url("/echo/x"), None).await.status, 401, "served by every worker");
        }
        let url = gw.url("/rails/slow?ms=800");
        let in_flight = tokio::spawn(async move { get(&url, None).await });
        tokio::time::sleep(Duration::from_millis(200)).await;
        gw.signal_shutdown();
        let r = in_flight.await.unwrap();
        assert_eq!(
            (r.status, r.body.as_str()),
            (200, "slow\n"),
            "the in-flight request finished ({workers})"
        );
        let addr = gw.addr;
        gw.stop().await;
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "no longer listening ({workers})"
        );
    }
}

#[tokio::test]
async fn identity_cache_reuses_a_decoded_session_only_for_the_same_cookie() {
    let echo = echo().await;
    let gw = gateway(&routes_toml(&echo, "[identity]\ncache_ttl = \"1s\"\n"), &[]).await;
    let one = cookie_for(&devise_session("user", 1));
    let two = cookie_for(&devise_session("user", 2));
    for _ in 0..3 {
        assert_eq!(
            get(&gw.url("/echo/x"), Some(&one)).await.received("x-railbridge-user").as_deref(),
            Some("1")
        );
        assert_eq!(
            get(&gw.url("/echo/x"), Some(&two)).await.received("x-railbridge-user").as_deref(),
            Some("2")
        );
    }
    // The cache is per route: another scope's route decodes for itself.
    assert_eq!(get(&gw.url("/admin/x"), Some(&one)).await.status, 401);
    // Rack's rule decides which cookie counts, for the cache key too.
    let both = format!("_app%5Fsession={}; {one}", two.trim_start_matches("_app_session="));
    assert_eq!(
        get(&gw.url("/echo/x"), Some(&both)).await.received("x-railbridge-user").as_deref(),
        Some("2")
    );
    assert!(get(&gw.url("/_railbridge/metrics"), None)
        .await
        .body
        .contains("railbridge_auth_total"));
}
