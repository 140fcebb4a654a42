//! The layers as plain tower services, driven with `oneshot`.

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::{Request, StatusCode};
use rails_cookie::{Profile, SecretKeyBase};
use rails_session::{
    CurrentUser, Identity, RequireUserLayer, Session, SessionConfig, SessionLayer,
};
use tower::{Layer as _, ServiceExt as _};

use crate::common::*;

fn config() -> SessionConfig {
    SessionConfig::new(Profile::rails_6_1(), SecretKeyBase::new(SKB).unwrap(), COOKIE_NAME).unwrap()
}

async fn body_text(response: http::Response<Body>) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn extractors_without_the_layer_are_a_500_that_says_how_to_fix_it() {
    let app: Router = Router::new().route("/", get(|_: Session| async { "never" }));
    let r = app.oneshot(Request::get("/").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body_text(r).await.contains("session layer is missing"));
}

#[tokio::test]
async fn the_guard_answers_401_with_the_configured_body() {
    let config = config().unauthorized_body(serde_json::json!({"error": "sign in first"}));
    let app: Router = Router::new()
        .route("/private", get(|u: CurrentUser<Identity>| async move { u.id.to_string() }))
        .route_layer(RequireUserLayer::new())
        .layer(SessionLayer::new(config));
    let r =
        app.clone().oneshot(Request::get("/private").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["content-type"], "application/json; charset=utf-8");
    assert_eq!(body_text(r).await, r#"{"error":"sign in first"}"#);
    let cookie = cookie_pair(&codec(Profile::rails_6_1()), &devise_session(42, SALT));
    let r = app
        .oneshot(Request::get("/private").header("cookie", cookie).body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body_text(r).await, "42");
}

#[tokio::test]
async fn optional_user_and_helpers() {
    let app: Router = Router::new()
        .route(
            "/",
            get(|user: Option<CurrentUser<Identity>>, session: Session| async move {
                format!("{:?} {}", user.map(|u| u.id.clone()), session.logged_in().await.unwrap())
            }),
        )
        .layer(SessionLayer::new(config()));
    let r = app.clone().oneshot(Request::get("/").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(body_text(r).await, "None false");
    let cookie = cookie_pair(&codec(Profile::rails_6_1()), &devise_session(1, SALT));
    let r = app
        .oneshot(Request::get("/").header("cookie", cookie).body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(body_text(r).await, "Some(Integer(1)) true");
}

#[tokio::test]
async fn sign_out_flow_renews_and_clears() {
    let app: Router = Router::new()
        .route(
            "/sign_out",
            get(|session: Session| async move {
                session.clear().await;
                "bye"
            }),
        )
        .layer(SessionLayer::new(config()));
    let cookie = cookie_pair(&codec(Profile::rails_6_1()), &devise_session(1, SALT));
    let r = app
        .oneshot(Request::get("/sign_out").header("cookie", cookie).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let set_cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    let session = decode_set_cookie(&codec(Profile::rails_6_1()), &set_cookie);
    assert_eq!(session.len(), 1);
    assert_ne!(
        session.get("session_id").unwrap().as_str(),
        Some("7d568a2f4d75dcadd04bcaeefddde7c3")
    );
}

#[tokio::test]
async fn server_errors_do_not_commit_the_session() {
    let app: Router = Router::new()
        .route(
            "/",
            get(|session: Session| async move {
                session.insert("x", &1).await.unwrap();
                StatusCode::INTERNAL_SERVER_ERROR
            }),
        )
        .layer(SessionLayer::new(config()));
    let r = app.oneshot(Request::get("/").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(r.headers().get("set-cookie").is_none());
}

/// A server-side store (the cookie carries an id) that answers only after yielding once, as a network store
/// would: the extractors must take their asynchronous path.
struct ServerSide(std::sync::Mutex<std::collections::HashMap<String, rails_cookie::Hash>>);

impl rails_session::SessionStore for ServerSide {
    async fn load(
        &self,
        cookie_value: &str,
    ) -> Result<Option<rails_session::LoadedSession>, rails_session::StoreError> {
        tokio::task::yield_now().await;
        let found = self.0.lock().unwrap().get(cookie_value).cloned();
        Ok(found.map(|h| rails_session::LoadedSession::new(h, false)))
    }

    async fn save(
        &self,
        session: &rails_cookie::Hash,
        _expires: Option<time::OffsetDateTime>,
    ) -> Result<String, rails_session::StoreError> {
        tokio::task::yield_now().await;
        let id = "sid-2".to_owned();
        self.0.lock().unwrap().insert(id.clone(), session.clone());
        Ok(id)
    }
}

#[tokio::test]
async fn the_user_extractors_wait_for_an_asynchronous_store() {
    let mut sessions = std::collections::HashMap::new();
    sessions.insert("sid-1".to_owned(), devise_session(7, SALT));
    let config = config().store(ServerSide(std::sync::Mutex::new(sessions)));
    let app: Router = Router::new()
        .route("/me", get(|u: CurrentUser<Identity>| async move { u.id.to_string() }))
        .route(
            "/maybe",
            get(|u: Option<CurrentUser<Identity>>| async move {
                u.map_or_else(|| "nobody".to_owned(), |u| u.id.to_string())
            }),
        )
        .layer(SessionLayer::new(config));
    let get_with = |path: &str, cookie: Option<&str>| {
        let mut request = Request::get(path);
        if let Some(cookie) = cookie {
            request = request.header(http::header::COOKIE, format!("{COOKIE_NAME}={cookie}"));
        }
        app.clone().oneshot(request.body(Body::empty()).unwrap())
    };
    let r = get_with("/me", Some("sid-1")).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body_text(r).await, "7");
    assert_eq!(body_text(get_with("/maybe", Some("sid-1")).await.unwrap()).await, "7");
    assert_eq!(
        get_with("/me", Some("sid-unknown")).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(get_with("/me", None).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(body_text(get_with("/maybe", None).await.unwrap()).await, "nobody");
}

#[tokio::test]
async fn wrap_router_serves_the_whole_app_behind_one_session_layer() {
    let app: Router = Router::new()
        .route("/me", get(|u: CurrentUser<Identity>| async move { u.id.to_string() }))
        .route(
            "/visit",
            get(|session: Session| async move {
                session.insert("visited", &true).await.unwrap();
                "ok"
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, SessionLayer::new(config()).wrap_router(app)).await
    });
    let client = reqwest::Client::new();
    let cookie = cookie_pair(&codec(Profile::rails_6_1()), &devise_session(7, SALT));
    let r = client.get(format!("http://{addr}/me")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "7");
    let r = client.get(format!("http://{addr}/me")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r =
        client.get(format!("http://{addr}/visit")).header("cookie", &cookie).send().await.unwrap();
    let set_cookie = r.headers().get("set-cookie").unwrap().to_str().unwrap().to_owned();
    let written = decode_set_cookie(&codec(Profile::rails_6_1()), &set_cookie);
    assert_eq!(written.get("visited"), Some(&rails_cookie::Value::Bool(true)));
    assert_eq!(
        written.get("warden.user.user.key"),
        devise_session(7, SALT).get("warden.user.user.key")
    );
    // Unknown paths go through the layer too (the router's 404), untouched.
    let r = client
        .get(format!("http://{addr}/nowhere"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.headers().get("set-cookie").is_none());
}

#[tokio::test]
async fn the_layer_keeps_the_extensions_a_request_already_has() {
    #[derive(Clone)]
    struct Marker(&'static str);
    let app =
        SessionLayer::new(config()).layer(tower::service_fn(|req: Request<Body>| async move {
            let marker = req.extensions().get::<Marker>().map_or("missing", |m| m.0);
            let session = req.extensions().get::<Session>().is_some();
            Ok::<_, std::convert::Infallible>(http::Response::new(Body::from(format!(
                "{marker} {session}"
            ))))
        }));
    let mut request = Request::get("/").body(Body::empty()).unwrap();
    request.extensions_mut().insert(Marker("kept"));
    assert_eq!(body_text(app.clone().oneshot(request).await.unwrap()).await, "kept true");
    let request = Request::get("/").body(Body::empty()).unwrap();
    assert_eq!(body_text(app.oneshot(request).await.unwrap()).await, "missing true");
}
