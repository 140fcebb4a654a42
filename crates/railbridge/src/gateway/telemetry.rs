//! A route's Prometheus series, registered once per route (and status or outcome, on first use): recording a
//! request is then an atomic add on a handle, with no label strings built and no registry lookup on the hot path.

use std::sync::OnceLock;
use std::time::Duration;

use http::StatusCode;
use metrics::{Counter, Histogram};

use super::identity::Outcome;

/// HTTP status codes are 100..=999; each gets a lazily registered counter.
const STATUSES: usize = 900;

/// The metric handles of one route label (a route's name, `_railbridge` or `_none`).
pub(crate) struct RouteMetrics {
    route: String,
    duration: OnceLock<Histogram>,
    requests: Box<[OnceLock<Counter>]>,
    auth: [OnceLock<Counter>; Outcome::ALL.len()],
}

impl RouteMetrics {
    pub(crate) fn new(route: &str) -> Self {
        RouteMetrics {
            route: route.to_owned(),
            duration: OnceLock::new(),
            requests: (0..STATUSES).map(|_| OnceLock::new()).collect(),
            auth: Default::default(),
        }
    }

    /// The label value.
    pub(crate) fn route(&self) -> &str {
        &self.route
    }

    /// `railbridge_requests_total{route, status}` and `railbridge_request_duration_seconds{route}`.
    pub(crate) fn request(&self, status: StatusCode, elapsed: Duration) {
        let code = status.as_u16();
        let register = || metrics::counter!("railbridge_requests_total", "route" => self.route.clone(), "status" => code.to_string());
        match usize::from(code).checked_sub(100).and_then(|i| self.requests.get(i)) {
            Some(slot) => slot.get_or_init(register).increment(1),
            None => register().increment(1),
        }
        self.duration
            .get_or_init(|| {
                metrics::histogram!("railbridge_request_duration_seconds", "route" => self.route.clone())
            })
            .record(elapsed);
    }

    /// `railbridge_auth_total{route, outcome}`.
    pub(crate) fn auth(&self, outcome: Outcome) {
        self.auth[outcome.index()]
            .get_or_init(|| {
                metrics::counter!("railbridge_auth_total", "route" => self.route.clone(), "outcome" => outcome.label())
            })
            .increment(1);
    }
}

impl std::fmt::Debug for RouteMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteMetrics").field("route", &self.route).finish_non_exhaustive()
    }
}
