//! Path prefix → route, longest prefix first, matched on whole segments (`/api` matches `/api` and `/api/x`, not
//! `/apix`); the public-path list; the upstream URI of a request (prefix rewriting, the upstream's base path).

use std::sync::Arc;

use http::uri::{PathAndQuery, Uri};
use rails_session::SessionLayer;

use super::error::ProxyError;
use crate::config::{Policy, Route};

/// A route with what the gateway derived for it.
#[derive(Debug)]
pub(crate) struct RouteState {
    pub(crate) route: Route,
    /// The session layer of the route's Warden scope (`None` without `SECRET_KEY_BASE`), built with the routes and
    /// shared by all routes of that scope: a layer keeps per-thread copies of its configuration.
    pub(crate) session: Option<SessionLayer>,
    /// The route uses the default scope (and so the User API, if any).
    pub(crate) default_scope: bool,
    /// Identity headers of recently seen session cookies on this route whose session needed no refresh.
    pub(crate) identity_cache: Option<super::cache::IdentityCache>,
    /// The route's metric handles.
    pub(crate) metrics: super::telemetry::RouteMetrics,
}

/// The route table.
#[derive(Debug)]
pub(crate) struct Router {
    routes: Vec<Arc<RouteState>>,
    public: Vec<String>,
}

/// Whether `prefix` covers `path`, on segment boundaries (a prefix ending in `/` is a plain string prefix).
pub(crate) fn covers(prefix: &str, path: &str) -> bool {
    if prefix == "/" || prefix.ends_with('/') {
        return path.starts_with(prefix);
    }
    path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

impl Router {
    pub(crate) fn new(mut routes: Vec<Arc<RouteState>>, public: Vec<String>) -> Self {
        routes.sort_by_key(|r| std::cmp::Reverse(r.route.prefix.len()));
        Router { routes, public }
    }

    /// The route for `path`.
    pub(crate) fn route(&self, path: &str) -> Option<&Arc<RouteState>> {
        self.routes.iter().find(|r| covers(&r.route.prefix, path))
    }

    /// The route's policy, or public if `path` is under a public path.
    pub(crate) fn policy<'r>(&self, route: &'r Route, path: &str) -> &'r Policy {
        const PUBLIC: &Policy = &Policy::Public;
        if self.public.iter().any(|p| covers(p, path)) {
            PUBLIC
        } else {
            &route.policy
        }
    }
}

/// Refuses paths an upstream could resolve differently than the gateway matched them: dot segments (also
/// percent-encoded) and encoded slashes.
pub(crate) fn check_path(path: &str) -> Result<(), ProxyError> {
    if !path.starts_with('/') {
        return Err(ProxyError::BadRequest("the path must start with /"));
    }
    let lower = path.to_ascii_lowercase();
    if lower.contains("%2f") || lower.contains("%5c") || path.contains('\\') {
        return Err(ProxyError::BadRequest("encoded slashes are not allowed in paths"));
    }
    let decoded = lower.replace("%2e", ".");
    if decoded.split('/').any(|seg| seg == "." || seg == "..") {
        return Err(ProxyError::BadRequest("dot segments are not allowed in paths"));
    }
    Ok(())
}

/// The upstream URI of a request: the route's rewrite applied, under the upstream's base path, query kept.
pub(crate) fn upstream_path(route: &Route, uri: &Uri) -> Result<PathAndQuery, ProxyError> {
    let base = &route.upstream.base_path;
    if route.rewrite.is_none() && base.is_empty() {
        // The common case: the path goes on as it came (already checked by `check_path`).
        return Ok(uri.path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/")));
    }
    let path = uri.path();
    let rewritten: std::borrow::Cow<'_, str> = match &route.rewrite {
        None => path.into(),
        Some(to) => {
            let rest = if route.prefix == "/" {
                path
            } else {
                path.get(route.prefix.len()..).unwrap_or("")
            };
            let to = to.trim_end_matches('/');
            let joined = format!("{to}{rest}");
            if joined.is_empty() {
                "/".into()
            } else {
                joined.into()
            }
        }
    };
    let mut pq = String::with_capacity(
        base.len() + rewritten.len() + uri.query().map_or(0, |q| q.len() + 1),
    );
    pq.push_str(base);
    pq.push_str(&rewritten);
    if let Some(q) = uri.query() {
        pq.push('?');
        pq.push_str(q);
    }
    PathAndQuery::try_from(pq).map_err(|_| ProxyError::BadRequest("invalid path"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Upstream;
    use std::time::Duration;

    fn route(prefix: &str, upstream: &str, rewrite: Option<&str>) -> Route {
        let u: Uri = upstream.parse().unwrap();
        Route {
            name: prefix.into(),
            prefix: prefix.into(),
            upstream: Upstream {
                authority: u.authority().unwrap().clone(),
                host: http::HeaderValue::from_str(u.host().unwrap()).unwrap(),
                base_path: u.path().trim_end_matches('/').into(),
                transport: crate::gateway::tls::Transport::plain(),
            },
            policy: Policy::SignedIn,
            rewrite: rewrite.map(String::from),
            forward_session_cookie: false,
            preserve_host: false,
            assertion: true,
            timeout: Duration::from_secs(1),
            accept_bearer: false,
            max_body_size: None,
            upstream_limit: None,
        }
    }

    fn state(r: Route) -> Arc<RouteState> {
        let metrics = crate::gateway::telemetry::RouteMetrics::new(&r.name);
        Arc::new(RouteState {
            route: r,
            session: None,
            default_scope: true,
            identity_cache: None,
            metrics,
        })
    }

    #[test]
    fn longest_prefix_on_segments() {
        let router = Router::new(
            vec![
                state(route("/", "http://a", None)),
                state(route("/api", "http://b", None)),
                state(route("/api/admin", "http://c", None)),
            ],
            vec!["/api/public".into()],
        );
        let name = |p: &str| router.route(p).map(|r| r.route.prefix.clone());
        assert_eq!(name("/api/admin/x").as_deref(), Some("/api/admin"));
        assert_eq!(name("/api/adminx").as_deref(), Some("/api"));
        assert_eq!(name("/api").as_deref(), Some("/api"));
        assert_eq!(name("/apix").as_deref(), Some("/"));
        let api = &router.route("/api/public/x").unwrap().route;
        assert_eq!(router.policy(api, "/api/public/x"), &Policy::Public);
        assert_eq!(router.policy(api, "/api/publicx"), &Policy::SignedIn);
    }

    #[test]
    fn rewriting_and_base_paths() {
        let uri = |s: &str| s.parse::<Uri>().unwrap();
        let r = route("/api", "http://127.0.0.1:9/v1/", Some("/"));
        assert_eq!(upstream_path(&r, &uri("/api/users?x=1")).unwrap(), "/v1/users?x=1");
        assert_eq!(upstream_path(&r, &uri("/api")).unwrap(), "/v1/");
        let r = route("/api", "http://h", None);
        assert_eq!(upstream_path(&r, &uri("/api/users?q=%20")).unwrap(), "/api/users?q=%20");
        assert_eq!(upstream_path(&r, &uri("http://app.test")).unwrap(), "/");
        let r = route("/old", "http://h", Some("/new"));
        assert_eq!(upstream_path(&r, &uri("/old/a")).unwrap(), "/new/a");
        let r = route("/", "http://h/base", Some("/"));
        assert_eq!(upstream_path(&r, &uri("/x?y")).unwrap(), "/base/x?y");
    }

    #[test]
    fn paths_that_could_escape_a_prefix_are_refused() {
        for bad in ["/public/../admin", "/public/%2e%2E/admin", "/a/./b", "/a%2Fb", "/..", "/a\\b"]
        {
            assert!(check_path(bad).is_err(), "{bad}");
        }
        for good in ["/", "/a/b.c", "/a/..b", "/users/sign_in"] {
            assert!(check_path(good).is_ok(), "{good}");
        }
    }
}
