//! nginx `auth_request` pointed at `/_railbridge/auth` (a real nginx from Debian, `nginx-light`, started by the
//! test kit on 127.0.0.1 with a temporary prefix, stopped on drop).

use super::support::*;

/// The nginx recipe of docs/gateway.md.
pub(crate) fn auth_request_server(gateway: &str, upstream: &str) -> String {
    format!(
        r#"
    location = /_railbridge_auth {{
      internal;
      proxy_pass http://{gateway}/_railbridge/auth;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI $request_uri;
    }}
    location / {{
      auth_request /_railbridge_auth;
      auth_request_set $railbridge_user $upstream_http_x_railbridge_user;
      auth_request_set $railbridge_scope $upstream_http_x_railbridge_scope;
      auth_request_set $railbridge_session $upstream_http_x_railbridge_session;
      auth_request_set $railbridge_assertion $upstream_http_x_railbridge_assertion;
      proxy_set_header X-Railbridge-User $railbridge_user;
      proxy_set_header X-Railbridge-Scope $railbridge_scope;
      proxy_set_header X-Railbridge-Session $railbridge_session;
      proxy_set_header X-Railbridge-Assertion $railbridge_assertion;
      proxy_pass http://{upstream};
    }}
"#
    )
}

#[tokio::test]
async fn nginx_auth_request_lets_signed_in_requests_through_and_blocks_the_others() {
    let echo = echo().await;
    let dir = TempDir::new("nginx-jwt");
    let key = dir.write("ed.pem", &ed25519_pem());
    let toml = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\npublic_paths = [\"/echo/public\"]\n[log]\naccess_log = false\n\
         [rails]\nsession_key = \"{COOKIE}\"\n[[jwt.key]]\nfile = \"{}\"\n\
         [[route]]\nname = \"echo\"\nprefix = \"/echo\"\nupstream = \"http://{}\"\n\
         [[route]]\nname = \"admin\"\nprefix = \"/admin\"\nupstream = \"http://{}\"\npolicy = \"scope:admin\"\n",
        key.display(),
        echo.addr,
        echo.addr
    );
    let gw = gateway(&toml, &[]).await;
    let Some(nginx) =
        testkit::Nginx::start(&auth_request_server(&gw.addr.to_string(), &echo.addr.to_string()))
    else {
        return;
    };
    let user = cookie_for(&devise_session("user", 21));

    let r = send(
        client().get(nginx.url("/echo/x")).header("cookie", &user).header("X-Railbridge-User", "1"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json()["headers"]["x-railbridge-user"],
        serde_json::json!(["21"]),
        "nginx replaced the forgery"
    );
    assert_eq!(r.received("x-railbridge-scope").as_deref(), Some("user"));
    let token = r.received("x-railbridge-assertion").unwrap();
    let jwks = get(&gw.url("/.well-known/jwks.json"), None).await.json();
    assert_eq!(verify(&token, &jwks, "echo", "railbridge")["sub"], "21");

    assert_eq!(get(&nginx.url("/echo/x"), None).await.status, 401, "no cookie");
    assert_eq!(
        get(&nginx.url("/echo/x"), Some("_app_session=tampered")).await.status,
        401,
        "bad cookie"
    );
    let forged = send(client().get(nginx.url("/echo/x")).header("X-Railbridge-User", "1")).await;
    assert_eq!(forged.status, 401, "a forged header alone gets nowhere");
    assert_eq!(
        get(&nginx.url("/admin/x"), Some(&user)).await.status,
        401,
        "route policy via X-Original-URI"
    );
    let admin = cookie_for(&devise_session("admin", 2));
    assert_eq!(get(&nginx.url("/admin/x"), Some(&admin)).await.status, 200);
    let public = get(&nginx.url("/echo/public/x"), None).await;
    assert_eq!(public.status, 200, "public path");
    assert!(public.received("x-railbridge-user").unwrap_or_default().is_empty(), "nobody");
}
