//! Live: the real Rails 7.2 app of `interop/app72` behind the gateway, in both of its login modes — Rails 8's
//! authentication generator (`RAILS_AUTH=rails-authentication`: the signed `session_id` cookie and the `sessions`
//! row, on SQLite and on PostgreSQL) and `session[:user_id]` (`RAILS_AUTH=session-key`). Needs the trixie root
//! (`interop/trixie/setup.sh`) and PostgreSQL; without them these tests fail with a message saying so, unless
//! `RAILBRIDGE_SKIP_LIVE=1`.

use rails_cookie::{Profile, Value};
use serde_json::json;

use super::live::Browser;
use super::support::*;

fn rails_7_2(auth: &str, database_url: Option<&str>) -> testkit::Component {
    let mut app = testkit::RailsApp::rails_7_2()
        .env("RAILS_AUTH", auth)
        .env("SECRET_KEY_BASE", SKB)
        .env("SESSION_KEY", COOKIE);
    if let Some(url) = database_url {
        app = app.env("DATABASE_URL", url);
    }
    app.start()
}

/// Signs in through the 7.2 app's form (directly at Rails; the cookies are the browser's, whatever the port).
async fn sign_in(b: &mut Browser, rails: &testkit::Component, email: &str, password: &str) {
    let fields = [("email_address", email), ("password", password)];
    b.sign_in_form(&rails.url("/session/new"), &rails.url("/session"), &fields).await;
}

/// Signs out at Rails (`POST /session/destroy` with the page's CSRF token).
async fn sign_out(b: &mut Browser, rails: &testkit::Component) {
    let token = b.get(&rails.url("/csrf.json")).await.json()["token"].as_str().unwrap().to_owned();
    let out =
        b.send(client().post(rails.url("/session/destroy")).header("x-csrf-token", token)).await;
    assert_eq!(out.status, 303, "{}", out.body);
}

async fn gateway_for(echo: &Server, rails_section: &str, dir: &TempDir) -> Gw {
    let key = dir.write("ed.pem", &ed25519_pem());
    let toml = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[rails]\nsession_key = \"{COOKIE}\"\nrails_version = \"7.2\"\n{rails_section}\n\
         [log]\naccess_log = false\n[[jwt.key]]\nfile = \"{}\"\n[[route]]\nname = \"echo\"\nprefix = \"/echo\"\n\
         upstream = \"http://{}\"\n",
        key.display(),
        echo.addr
    );
    gateway(&toml, &[]).await
}

async fn rails_authentication_through_the_gateway(database_url: &str, label: &str) {
    let rails = rails_7_2("rails-authentication", Some(database_url));
    let echo = echo().await;
    let dir = TempDir::new("live72-gw");
    let section = format!(
        "auth = \"rails-authentication\"\ndatabase_url = \"{database_url}\"\nauth_cache_ttl = 1"
    );
    let gw = gateway_for(&echo, &section, &dir).await;

    let mut alice = Browser::new();
    assert_eq!(alice.get(&gw.url("/echo/x")).await.status, 401, "{label}: not signed in yet");
    sign_in(&mut alice, &rails, "alice@example.com", "alice-password-1").await;
    // A client-sent identity header never reaches the upstream; the gateway's own does.
    let r = alice.send(client().get(gw.url("/echo/x")).header("x-railbridge-user", "2")).await;
    assert_eq!(r.status, 200, "{label}: {}", r.body);
    assert_eq!(r.json()["headers"]["x-railbridge-user"], json!(["1"]), "{label}");
    assert!(r.received("x-railbridge-scope").is_none(), "{label}: no Warden scope");
    // The signed login cookie is a bearer credential: it stays at the gateway, like the session cookie.
    let forwarded = r.received("cookie").unwrap_or_default();
    assert!(
        !forwarded.contains("session_id=") && !forwarded.contains(COOKIE),
        "{label}: {forwarded}"
    );
    let sid = r.received("x-railbridge-session").expect("X-Railbridge-Session");
    let token = r.received("x-railbridge-assertion").unwrap();
    let jwks = get(&gw.url("/.well-known/jwks.json"), None).await.json();
    let claims = verify(&token, &jwks, "echo", "railbridge");
    assert_eq!((claims["sub"].clone(), claims["sid"].clone()), (json!("1"), json!(sid)), "{label}");
    let row = alice.cookie("session_id").unwrap().to_owned();
    assert!(!sid.contains(&row) && sid.len() == 32, "{label}: sid is a keyed hash, never the id");

    let mut bob = Browser::new();
    sign_in(&mut bob, &rails, "bob@example.com", "bob-password-2").await;
    let r = bob.get(&gw.url("/echo/x")).await;
    assert_eq!(r.json()["headers"]["x-railbridge-user"], json!(["2"]), "{label}: bob is bob");
    assert_ne!(
        r.received("x-railbridge-session").unwrap(),
        sid,
        "{label}: another login, another sid"
    );

    // Tampered, and validly signed but for no row: 401.
    let (data, digest) = row.rsplit_once("--").unwrap();
    let flipped = if digest.starts_with('0') { "1" } else { "0" };
    let mut tampered = Browser::new();
    tampered.set_cookie("session_id", &format!("{data}--{flipped}{}", &digest[1..]));
    assert_eq!(tampered.get(&gw.url("/echo/x")).await.status, 401, "{label}: tampered");
    let forged = codec(Profile::rails_7_2())
        .encode_signed("session_id", &Value::Integer(999_999), None)
        .unwrap();
    let mut ghost = Browser::new();
    ghost.set_cookie("session_id", &rails_cookie::escape(&forged));
    assert_eq!(ghost.get(&gw.url("/echo/x")).await.status, 401, "{label}: no such row");

    // Sign-out at Rails deletes the row: a copy of the cookie stops working within the TTL (1 s here).
    let mut copy = Browser::new();
    copy.set_cookie("session_id", &row);
    assert_eq!(
        copy.get(&gw.url("/echo/x")).await.status,
        200,
        "{label}: the copy works while signed in"
    );
    sign_out(&mut alice, &rails).await;
    tokio::time::sleep(std::time::Duration::from_millis(1_300)).await;
    assert_eq!(copy.get(&gw.url("/echo/x")).await.status, 401, "{label}: signed out at Rails");
    assert_eq!(bob.get(&gw.url("/echo/x")).await.status, 200, "{label}: bob stays signed in");
}

#[tokio::test]
async fn rails_authentication_on_sqlite() {
    if skip_live() {
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("gw-rails-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = std::fs::canonicalize(&dir).unwrap().join("app.sqlite3");
    rails_authentication_through_the_gateway(&format!("sqlite3:{}", db.display()), "sqlite").await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn rails_authentication_on_postgresql() {
    let Some(pg) = testkit::Postgres::start() else { return };
    rails_authentication_through_the_gateway(&pg.url(), "postgresql").await;
}

#[tokio::test]
async fn session_key_logins() {
    if skip_live() {
        return;
    }
    let rails = rails_7_2("session-key", None);
    let echo = echo().await;
    let dir = TempDir::new("live72-gw-key");
    let gw =
        gateway_for(&echo, "auth = \"session-key\"\nauth_session_key = \"user_id\"", &dir).await;
    let mut b = Browser::new();
    assert_eq!(b.get(&gw.url("/echo/x")).await.status, 401);
    sign_in(&mut b, &rails, "bob@example.com", "bob-password-2").await;
    let r = b.send(client().get(gw.url("/echo/x")).header("x-railbridge-user", "1")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["headers"]["x-railbridge-user"], json!(["2"]));
    sign_out(&mut b, &rails).await;
    assert_eq!(b.get(&gw.url("/echo/x")).await.status, 401, "signed out at Rails");
}

/// Tokens from a Rails 8 authentication login: the exchange works, and once the `sessions` row is gone (a sign-out
/// at Rails that never passed through the gateway) the refresh token is refused.
#[tokio::test]
async fn tokens_end_with_the_sessions_row() {
    if skip_live() {
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("gw-rails-auth-tokens-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = std::fs::canonicalize(&dir).unwrap().join("app.sqlite3");
    let url = format!("sqlite3:{}", db.display());
    let rails = rails_7_2("rails-authentication", Some(&url));
    let echo = echo().await;
    let tmp = TempDir::new("live72-tokens");
    let section =
        format!("auth = \"rails-authentication\"\ndatabase_url = \"{url}\"\nauth_cache_ttl = 0");
    let gw = gateway_for(&echo, &section, &tmp).await;
    let mut alice = Browser::new();
    sign_in(&mut alice, &rails, "alice@example.com", "alice-password-1").await;
    let csrf =
        alice.get(&rails.url("/csrf.json")).await.json()["token"].as_str().unwrap().to_owned();
    let r = alice
        .send(
            client()
                .post(gw.url("/_railbridge/token"))
                .header("origin", gw.url(""))
                .header("x-csrf-token", &csrf),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let refresh_token = r.json()["refresh_token"].as_str().unwrap().to_owned();
    let refresh = |token: String| {
        client()
            .post(gw.url("/_railbridge/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("grant_type=refresh_token&refresh_token={token}"))
    };
    let r = send(refresh(refresh_token)).await;
    assert_eq!(r.status, 200, "the row is there: {}", r.body);
    let next = r.json()["refresh_token"].as_str().unwrap().to_owned();
    sign_out(&mut alice, &rails).await;
    let r = send(refresh(next)).await;
    assert_eq!((r.status, r.json()["error"].clone()), (400, json!("invalid_grant")), "{}", r.body);
    drop(rails);
    let _ = std::fs::remove_dir_all(&dir);
}
