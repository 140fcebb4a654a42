//! nginx `auth_request` pointed at `/_railbridge/auth` (a real nginx from Debian, `nginx-light`, run as a
//! non-daemon child on 127.0.0.1 with a temporary prefix, killed on drop).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::support::*;

/// An nginx child process, killed on drop.
pub(crate) struct Nginx {
    child: Child,
    pub(crate) port: u16,
    dir: TempDir,
}

impl Nginx {
    /// Starts nginx with `server` (a `server { … }` block body, `{port}` replaced) as its only server.
    pub(crate) async fn start(server_body: &str) -> Option<Nginx> {
        let Some(bin) = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
        else {
            if skip_live() {
                return None;
            }
            panic!("nginx is not installed (Debian: apt-get install nginx-light); set RAILBRIDGE_SKIP_LIVE=1 to skip");
        };
        let dir = TempDir::new("nginx");
        let port = closed_port();
        let d = dir.0.display();
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\nerror_log {d}/error.log warn;\npid {d}/nginx.pid;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
               server {{\n    listen 127.0.0.1:{port};\n{}\n  }}\n}}\n",
            server_body.replace("{port}", &port.to_string())
        );
        let conf_path = dir.write("nginx.conf", &conf);
        let child = Command::new(bin)
            .arg("-p")
            .arg(&dir.0)
            .arg("-e")
            .arg(dir.0.join("error.log"))
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nginx starts");
        let nginx = Nginx { child, port, dir };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Some(nginx);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "nginx did not listen on {port}: {}",
            std::fs::read_to_string(nginx.dir.0.join("error.log")).unwrap_or_default()
        );
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
        Nginx::start(&auth_request_server(&gw.addr.to_string(), &echo.addr.to_string())).await
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
