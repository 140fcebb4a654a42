//! A JSON API that shares the login of a Rails app (axum).
//!
//! ```sh
//! SECRET_KEY_BASE=… SESSION_KEY=_app_session RAILS_VERSION=6.1 DOMAIN=.app.test PORT=3001 \
//!   cargo run -p rails-session --example api
//! ```
//!
//! Environment: `SECRET_KEY_BASE`, `SESSION_KEY` (cookie name), `RAILS_VERSION` (default 6.1), `DOMAIN` (cookie
//! domain, optional), `PORT` (default 3001), `USER_API_URL` (optional template with `{id}`, e.g.
//! `http://127.0.0.1:9000/internal/users/{id}`), `USER_API_TOKEN` (optional bearer token), `USER_API_CACHE_TTL`
//! (seconds, default 10), `CORS_ORIGINS`
//! (optional, comma-separated; unset, every `http(s)://*.<DOMAIN>` origin on any port is allowed with
//! credentials), and the other variables of `SessionConfig::from_lookup` — among them `RAILS_AUTH` (`devise`,
//! `session-key`, or `rails-authentication` with `DATABASE_URL`; that one needs `--features database`).
//!
//! Routes: `GET /api/me`, `GET /api/csrf`, `POST /api/counter` (CSRF-protected).

use std::net::SocketAddr;
use std::time::Duration;

use axum::routing::{get, post};
use axum::{Json, Router};
use http::{header, HeaderName, HeaderValue, Method};
use rails_session::{
    ApiUser, CsrfLayer, CsrfToken, CurrentUser, HttpUserLoader, Identity, Session, SessionConfig,
    SessionError, SessionLayer,
};
use serde_json::{json, Value as Json_};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The example's settings.
#[derive(Debug)]
pub struct Settings {
    /// The session configuration (with the user loader, when there is a User API).
    pub session: SessionConfig,
    /// Whether `/api/me` reports User API data.
    pub user_api: bool,
    /// CORS: exact origins, or the subdomains of this cookie domain.
    pub cors: Option<Cors>,
    /// Listening address.
    pub addr: SocketAddr,
}

/// Which origins may call the API with credentials.
#[derive(Debug)]
pub enum Cors {
    /// Exactly these origins.
    Exact(Vec<HeaderValue>),
    /// Any `http(s)://*.<domain>[:port]` origin.
    Subdomains(String),
}

impl Settings {
    /// Reads the settings from environment-style variables.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, Box<dyn std::error::Error>> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut session = SessionConfig::from_lookup(&lookup)?;
        let user_api = get("USER_API_URL");
        if let Some(url) = &user_api {
            let url = if url.contains("{id}") {
                url.clone()
            } else {
                format!("{}/{{id}}", url.trim_end_matches('/'))
            };
            let mut builder = HttpUserLoader::builder(url)?;
            if let Some(token) = get("USER_API_TOKEN") {
                builder = builder.bearer_token(&token)?;
            }
            if let Some(ttl) = get("USER_API_CACHE_TTL") {
                let ttl = Duration::from_secs(ttl.parse()?);
                builder = builder.cache(10_000, ttl, ttl.min(Duration::from_secs(5)));
            }
            session = session.user_loader(builder.build()?);
        }
        let cors = match (get("CORS_ORIGINS"), get("DOMAIN")) {
            (Some(origins), _) => Some(Cors::Exact(
                origins
                    .split(',')
                    .map(str::trim)
                    .filter(|o| !o.is_empty())
                    .map(HeaderValue::from_str)
                    .collect::<Result<_, _>>()?,
            )),
            (None, Some(domain)) if !domain.contains(',') && domain != "all" => {
                Some(Cors::Subdomains(domain.trim_start_matches('.').to_ascii_lowercase()))
            }
            _ => None,
        };
        let port: u16 = get("PORT").map(|p| p.parse()).transpose()?.unwrap_or(3001);
        Ok(Settings {
            session,
            user_api: user_api.is_some(),
            cors,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        })
    }
}

/// The router.
pub fn app(settings: Settings) -> Router {
    let me = if settings.user_api { get(me_from_user_api) } else { get(me_from_session) };
    let api = Router::new()
        .route("/api/me", me)
        .route("/api/csrf", get(csrf))
        .route("/api/counter", post(counter))
        .layer(CsrfLayer::new())
        .layer(SessionLayer::new(settings.session));
    match settings.cors {
        Some(cors) => api.layer(cors_layer(cors)),
        None => api,
    }
}

/// CORS with credentials for the configured origins only (never `*`), preflights allowing the CSRF header.
fn cors_layer(cors: Cors) -> CorsLayer {
    let origins = match cors {
        Cors::Exact(list) => AllowOrigin::list(list),
        Cors::Subdomains(domain) => AllowOrigin::predicate(move |origin: &HeaderValue, _| {
            origin_in_domain(origin.to_str().unwrap_or(""), &domain)
        }),
    };
    CorsLayer::new()
        .allow_origin(origins)
        .allow_credentials(true)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
        .allow_headers([
            header::CONTENT_TYPE,
            header::ACCEPT,
            HeaderName::from_static("x-csrf-token"),
        ])
}

/// `http(s)://<sub>.<domain>[:port]` (or the domain itself).
pub fn origin_in_domain(origin: &str, domain: &str) -> bool {
    let Some(rest) = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"))
    else {
        return false;
    };
    let host = match rest.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => rest,
    };
    let host = host.to_ascii_lowercase();
    !host.contains('/') && (host == domain || host.ends_with(&format!(".{domain}")))
}

async fn me_from_session(user: CurrentUser<Identity>) -> Json<Json_> {
    Json(json!({ "id": user.id, "scope": user.scope() }))
}

async fn me_from_user_api(user: CurrentUser<ApiUser>) -> Json<Json_> {
    let mut body = user.fields().clone();
    body.insert("id".into(), serde_json::to_value(&user.identity().id).unwrap_or(Json_::Null));
    Json(Json_::Object(body))
}

async fn csrf(CsrfToken(token): CsrfToken) -> Json<Json_> {
    Json(json!({ "token": token }))
}

async fn counter(session: Session) -> Result<Json<Json_>, ApiError> {
    let n = session.get::<i64>("counter").await?.unwrap_or(0) + 1;
    session.insert("counter", &n).await?;
    Ok(Json(json!({ "counter": n })))
}

/// A session value that could not be read (e.g. `counter` is not an Integer).
#[derive(Debug)]
pub struct ApiError(SessionError);

impl From<SessionError> for ApiError {
    fn from(e: SessionError) -> Self {
        ApiError(e)
    }
}

impl axum::response::IntoResponse for ApiError {
    fn into_response(self) -> axum::response::Response {
        let body = Json(json!({ "error": self.0.to_string() }));
        (http::StatusCode::UNPROCESSABLE_ENTITY, body).into_response()
    }
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let settings = Settings::from_lookup(|name| std::env::var(name).ok())?;
    let listener = tokio::net::TcpListener::bind(settings.addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app(settings)).await?;
    Ok(())
}
