//! The `examples/api.rs` JSON API, on actix-web: same routes, same environment.
//!
//! ```sh
//! SECRET_KEY_BASE=… SESSION_KEY=_app_session PORT=3001 cargo run -p rails-session --features actix-web --example api_actix
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use actix_cors::Cors;
use actix_web::dev::Server;
use actix_web::http::{header, Method};
use actix_web::{web, App, HttpResponse, HttpServer};
use rails_session::actix::{RailsSession, VerifyCsrf};
use rails_session::{
    ApiUser, CsrfToken, CurrentUser, HttpUserLoader, Identity, Session, SessionConfig,
};
use serde_json::{json, Value as Json};

/// The example's settings (the same variables as `examples/api.rs`).
#[derive(Clone, Debug)]
pub struct Settings {
    /// The session configuration (with the user loader, when there is a User API).
    pub session: SessionConfig,
    /// Whether `/api/me` reports User API data.
    pub user_api: bool,
    /// CORS: exact origins, or the subdomains of this cookie domain.
    pub cors: Option<CorsOrigins>,
    /// Listening address.
    pub addr: SocketAddr,
}

/// Which origins may call the API with credentials.
#[derive(Clone, Debug)]
pub enum CorsOrigins {
    /// Exactly these origins.
    Exact(Vec<String>),
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
            (Some(origins), _) => Some(CorsOrigins::Exact(
                origins
                    .split(',')
                    .map(str::trim)
                    .filter(|o| !o.is_empty())
                    .map(str::to_owned)
                    .collect(),
            )),
            (None, Some(domain)) if !domain.contains(',') && domain != "all" => {
                Some(CorsOrigins::Subdomains(domain.trim_start_matches('.').to_ascii_lowercase()))
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

/// Binds and starts the server; returns it with the bound addresses.
pub fn server(settings: Settings, addr: &str) -> std::io::Result<(Server, Vec<SocketAddr>)> {
    let session = RailsSession::new(settings.session.clone());
    let http = HttpServer::new(move || {
        let me = if settings.user_api {
            web::get().to(me_from_user_api)
        } else {
            web::get().to(me_from_session)
        };
        App::new()
            .service(
                web::scope("/api")
                    .wrap(VerifyCsrf)
                    .route("/me", me)
                    .route("/csrf", web::get().to(csrf))
                    .route("/counter", web::post().to(counter)),
            )
            .wrap(session.clone())
            .wrap(cors(settings.cors.as_ref()))
    })
    .workers(2)
    .bind(addr)?;
    let addrs = http.addrs();
    Ok((http.run(), addrs))
}

/// CORS with credentials for the configured origins only (never `*`), preflights allowing the CSRF header.
fn cors(origins: Option<&CorsOrigins>) -> Cors {
    let cors = Cors::default()
        .supports_credentials()
        .allowed_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
        .allowed_headers([
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::HeaderName::from_static("x-csrf-token"),
        ]);
    match origins {
        None => cors,
        Some(CorsOrigins::Exact(list)) => {
            list.iter().fold(cors, |cors, origin| cors.allowed_origin(origin))
        }
        Some(CorsOrigins::Subdomains(domain)) => {
            let domain = domain.clone();
            cors.allowed_origin_fn(move |origin, _| {
                origin_in_domain(origin.to_str().unwrap_or(""), &domain)
            })
        }
    }
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

async fn me_from_session(user: CurrentUser<Identity>) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "id": user.id, "scope": user.scope() }))
}

async fn me_from_user_api(user: CurrentUser<ApiUser>) -> HttpResponse {
    let mut body = user.fields().clone();
    body.insert("id".into(), serde_json::to_value(&user.identity().id).unwrap_or(Json::Null));
    HttpResponse::Ok().json(Json::Object(body))
}

async fn csrf(CsrfToken(token): CsrfToken) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "token": token }))
}

async fn counter(session: Session) -> HttpResponse {
    let n = match session.get::<i64>("counter").await {
        Ok(n) => n.unwrap_or(0) + 1,
        Err(e) => {
            return HttpResponse::UnprocessableEntity().json(json!({ "error": e.to_string() }))
        }
    };
    match session.insert("counter", &n).await {
        Ok(()) => HttpResponse::Ok().json(json!({ "counter": n })),
        Err(e) => HttpResponse::UnprocessableEntity().json(json!({ "error": e.to_string() })),
    }
}

#[allow(dead_code)]
#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let settings = Settings::from_lookup(|name| std::env::var(name).ok())?;
    let addr = settings.addr.to_string();
    let (server, addrs) = server(settings, &addr)?;
    println!("listening on http://{}", addrs[0]);
    server.await?;
    Ok(())
}
