//! A bounded loopback load test of the session layer: requests/s of an axum hello-world without the layer, with
//! the layer (the handler does not touch the session), and with the layer decoding a realistic Devise cookie on
//! every request (`CurrentUser<Identity>`), in the same run, printed with their ratios.
//!
//! ```sh
//! cargo run --release -p rails-session --example load -- [SECONDS_PER_SLOT] [ROUNDS] [CONNECTIONS]
//! ```
//!
//! `SECONDS_PER_SLOT` may be fractional (0.1 to 60). Only 127.0.0.1; every slot stops after its duration or 2
//! million requests, whichever comes first. Each server's client connections are opened once and kept for all its
//! slots, so a slot measures requests only. A shared machine's speed drifts by ±10% within seconds, more than the
//! differences measured here, so every variant's slot is bracketed by two slots of the baseline (B V1 B V2 B … per
//! round) and compared with their mean: drift that is linear over three slots cancels. The headline is the median
//! of these bracketed ratios over the rounds.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rails_cookie::{CookieCodec, Hash, Profile, SecretKeyBase, Value};
use rails_session::{CurrentUser, Identity, SessionConfig, SessionLayer};

const SKB: &str = "4a7f0c1e9b2d3c5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6";
const MAX_REQUESTS_PER_SLOT: u64 = 2_000_000;

/// The session a Devise app holds after sign-in, with a flash and a CSRF token (a cookie of about 730 bytes).
fn devise_cookie() -> Result<String, Box<dyn std::error::Error>> {
    let codec = CookieCodec::new(Profile::rails_6_1(), SecretKeyBase::new(SKB)?)?;
    let mut h = Hash::new();
    h.insert("session_id", "7d568a2f4d75dcadd04bcaeefddde7c3".into());
    h.insert(
        "warden.user.user.key",
        Value::Array(vec![Value::Array(vec![1.into()]), "$2a$04$9A1p0ITlEnAO1L939Hxpf.".into()]),
    );
    let mut scoped = Hash::new();
    scoped.insert("last_request_at", 1_795_703_291.into());
    h.insert("warden.user.user.session", Value::Hash(scoped));
    let mut flashes = Hash::new();
    flashes.insert("notice", "Signed in successfully.".into());
    let mut flash = Hash::new();
    flash.insert("discard", Value::Array(vec![]));
    flash.insert("flashes", Value::Hash(flashes));
    h.insert("flash", Value::Hash(flash));
    h.insert("_csrf_token", "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=".into());
    let value = codec.encode("_app_session", &Value::Hash(h), None)?;
    Ok(format!("_app_session={}", rails_cookie::escape(&value)))
}

async fn serve(app: Router) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

/// Serves `app` with the session layer around the whole router ([`SessionLayer::wrap_router`]: one wrapper for
/// the app) rather than through `Router::layer` (which wraps, and boxes, every route).
async fn serve_wrapped(app: Router, config: SessionConfig) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let service = SessionLayer::new(config).wrap_router(app);
    tokio::spawn(async move { axum::serve(listener, service).await });
    Ok(addr)
}

type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

/// `connections` keep-alive HTTP/1.1 connections to `addr`, opened once and reused by every slot of that server:
/// a slot then starts at full speed, with no connection setup in it.
async fn connect(addr: SocketAddr, connections: usize) -> Result<Vec<Sender>, String> {
    let mut senders = Vec::with_capacity(connections);
    for _ in 0..connections {
        let stream = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        senders.push(sender);
    }
    Ok(senders)
}

/// Runs every connection of `clients` as a closed-loop client for `duration`; requests/s. The connections are
/// handed back into `clients` for the next slot.
async fn slot(clients: &mut Vec<Sender>, cookie: &str, duration: Duration) -> Result<f64, String> {
    let done = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    let start = Instant::now();
    for mut sender in std::mem::take(clients) {
        let (done, count, cookie) = (done.clone(), count.clone(), cookie.to_owned());
        tasks.push(tokio::spawn(async move {
            while !done.load(Ordering::Relaxed)
                && count.load(Ordering::Relaxed) < MAX_REQUESTS_PER_SLOT
            {
                sender.ready().await.map_err(|e| e.to_string())?;
                let request = http::Request::get("/")
                    .header(http::header::HOST, "127.0.0.1")
                    .header(http::header::COOKIE, &cookie)
                    .body(Empty::<Bytes>::new())
                    .map_err(|e| e.to_string())?;
                let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
                if !response.status().is_success() {
                    return Err(format!("status {}", response.status()));
                }
                response.into_body().collect().await.map_err(|e| e.to_string())?;
                count.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<Sender, String>(sender)
        }));
    }
    tokio::time::sleep(duration).await;
    let counted = count.load(Ordering::Relaxed);
    let elapsed = start.elapsed();
    done.store(true, Ordering::Relaxed);
    for task in tasks {
        clients.push(task.await.map_err(|e| e.to_string())??);
    }
    #[allow(clippy::cast_precision_loss)]
    Ok(counted as f64 / elapsed.as_secs_f64())
}

/// Time per operation of the decode path alone, without HTTP: the codec, and the cookie store with its cache.
fn micro(config: &SessionConfig, cookie: &str) -> Result<(), Box<dyn std::error::Error>> {
    const N: u32 = 20_000;
    let escaped = cookie.trim_start_matches("_app_session=");
    let value = rails_cookie::unescape(escaped).into_owned();
    let start = Instant::now();
    for _ in 0..N {
        std::hint::black_box(config.codec().decode("_app_session", std::hint::black_box(&value))?);
    }
    let decode = start.elapsed() / N;
    let store = rails_session::CookieStore::new(
        Arc::new(CookieCodec::new(Profile::rails_6_1(), SecretKeyBase::new(SKB)?)?),
        "_app_session",
    );
    let start = Instant::now();
    for _ in 0..N {
        std::hint::black_box(store.load_escaped_now(std::hint::black_box(escaped))?);
    }
    let cached = start.elapsed() / N;
    // Two threads reading the same session at once, as two cores serving one user's requests do.
    let store = Arc::new(store);
    // Many more rounds than above: each thread's start (its first decode, its allocator arena, its cache shard)
    // must not weigh in the time per lookup.
    let shared = on_two_threads(100 * N, || {
        let (store, escaped) = (store.clone(), escaped.to_owned());
        move || {
            std::hint::black_box(store.load_escaped_now(std::hint::black_box(&escaped)))
                .map(drop)
                .map_err(|e| e.to_string())
        }
    })?;
    println!(
        "per cookie: codec decode {decode:?}; cookie store, cached {cached:?}, two threads at once {shared:?}"
    );
    layer_alone(config, cookie)?;
    Ok(())
}

/// The layer without HTTP, on two threads at once: per request, a service clone (as hyper does), the session in
/// the extensions, `CurrentUser<Identity>` extracted, the response future; against the same without the layer.
fn layer_alone(config: &SessionConfig, cookie: &str) -> Result<(), Box<dyn std::error::Error>> {
    use axum::extract::FromRequestParts as _;
    use futures_util::FutureExt as _;
    use tower::{Layer as _, Service as _};
    const N: u32 = 200_000;
    let handler = tower::service_fn(|req: http::Request<()>| async move {
        let (mut parts, ()) = req.into_parts();
        let user = CurrentUser::<Identity>::from_request_parts(&mut parts, &()).now_or_never();
        std::hint::black_box(user.is_some_and(|u| u.is_ok()));
        Ok::<_, std::convert::Infallible>(http::Response::new(()))
    });
    let plain = tower::service_fn(|req: http::Request<()>| async move {
        std::hint::black_box(req);
        Ok::<_, std::convert::Infallible>(http::Response::new(()))
    });
    let layered = SessionLayer::new(config.clone()).layer(handler);
    let run = |with_layer: bool| {
        on_two_threads(N, || {
            let (mut plain, layered, cookie) = (plain, layered.clone(), cookie.to_owned());
            move || {
                let request = http::Request::get("/")
                    .header(http::header::HOST, "127.0.0.1")
                    .header(http::header::COOKIE, &cookie)
                    .body(())
                    .map_err(|e| e.to_string())?;
                let response = if with_layer {
                    layered.clone().call(request).now_or_never()
                } else {
                    plain.call(request).now_or_never()
                };
                std::hint::black_box(response.ok_or("pending")?.map_err(|e| e.to_string())?);
                Ok(())
            }
        })
    };
    let mut with = Vec::new();
    let mut without = Vec::new();
    for _ in 0..5 {
        without.push(run(false)?.as_secs_f64() * 1e9);
        with.push(run(true)?.as_secs_f64() * 1e9);
    }
    println!(
        "layer alone, two threads at once: {:.0} ns per request more than without it (median of 5)",
        median_of(with.iter().zip(&without).map(|(a, b)| a - b).collect())
    );
    Ok(())
}

/// Runs an operation `n` times on each of two threads at once (each thread's from `make`); the wall time per
/// operation of one thread.
fn on_two_threads<F>(n: u32, make: impl Fn() -> F) -> Result<Duration, Box<dyn std::error::Error>>
where
    F: FnMut() -> Result<(), String> + Send + 'static,
{
    let start = Instant::now();
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let mut op = make();
            std::thread::spawn(move || (0..n).try_for_each(|_| op()))
        })
        .collect();
    for thread in threads {
        thread.join().map_err(|_| "a micro-benchmark thread panicked")??;
    }
    Ok(start.elapsed() / n)
}

fn median_of(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seconds: f64 = args.first().map_or(Ok(1.0), |a| a.parse())?;
    if !(0.1..=60.0).contains(&seconds) {
        return Err("SECONDS_PER_SLOT: from 0.1 to 60".into());
    }
    let rounds: usize = args.get(1).map_or(Ok(3), |a| a.parse())?;
    let rounds = rounds.clamp(1, 400);
    let connections: usize = args.get(2).map_or(Ok(32), |a| a.parse())?;
    let connections = connections.clamp(1, 512);
    let duration = Duration::from_secs_f64(seconds);
    let config =
        SessionConfig::new(Profile::rails_6_1(), SecretKeyBase::new(SKB)?, "_app_session")?;

    let plain = serve(Router::new().route("/", get(|| async { "Hello, World!" }))).await?;
    let lazy = serve(
        Router::new()
            .route("/", get(|| async { "Hello, World!" }))
            .layer(SessionLayer::new(config.clone())),
    )
    .await?;
    let reading = serve(
        Router::new()
            .route(
                "/",
                get(|session: rails_session::Session| async move {
                    std::hint::black_box(session.get_value("session_id").await);
                    "Hello, World!"
                }),
            )
            .layer(SessionLayer::new(config.clone())),
    )
    .await?;
    let decoding = serve(
        Router::new()
            .route("/", get(|_user: CurrentUser<Identity>| async { "Hello, World!" }))
            .layer(SessionLayer::new(config.clone())),
    )
    .await?;
    let wrapped = serve_wrapped(
        Router::new().route("/", get(|_user: CurrentUser<Identity>| async { "Hello, World!" })),
        config.clone(),
    )
    .await?;
    let cookie = devise_cookie()?;
    if std::env::var_os("LOAD_ONLY").is_none() {
        micro(&config, &cookie)?;
    }
    println!(
        "cookie: {} bytes; {connections} connections, {rounds} rounds of {seconds} s slots (B V1 B V2 B V3 B V4 B)",
        cookie.len()
    );

    let mut variants = Vec::new();
    for (name, addr) in [
        ("without the layer", plain),
        ("layer, session untouched", lazy),
        ("layer, session read", reading),
        ("layer, decoding the cookie", decoding),
        ("around the router, decoding", wrapped),
    ] {
        variants.push((name, connect(addr, connections).await?));
    }
    // For profiling one variant at a time: LOAD_ONLY=<index> runs only that one (0 is the baseline).
    if let Some(only) = std::env::var("LOAD_ONLY").ok().and_then(|v| v.parse::<usize>().ok()) {
        let (name, clients) = variants.get_mut(only).ok_or("LOAD_ONLY: no such variant")?;
        for r in 1..=rounds {
            let rps = slot(clients, &cookie, duration).await?;
            println!("round {r}: {name:<28} {rps:>10.0} req/s, {:.0} requests", rps * seconds);
        }
        return Ok(());
    }
    for (_, clients) in &mut variants {
        slot(clients, &cookie, Duration::from_millis(500)).await?;
    }
    // samples[0]: every baseline slot; samples[i]: variant i. ratios[i]: variant i over its two brackets.
    let mut samples: [Vec<f64>; 5] = Default::default();
    let mut ratios: [Vec<f64>; 5] = Default::default();
    let (base, others) = variants.split_at_mut(1);
    let base = &mut base[0].1;
    for r in 1..=rounds {
        let mut before = slot(base, &cookie, duration).await?;
        samples[0].push(before);
        let mut line = format!("round {r:>3}: without {before:>7.0}");
        for (i, (_, clients)) in (1..).zip(others.iter_mut()) {
            let rps = slot(clients, &cookie, duration).await?;
            let after = slot(base, &cookie, duration).await?;
            samples[i].push(rps);
            samples[0].push(after);
            ratios[i].push(rps / ((before + after) / 2.0));
            line += &format!(
                " | {i}: {rps:>7.0} ({:.3}) | without {after:>7.0}",
                ratios[i][ratios[i].len() - 1]
            );
            before = after;
        }
        println!("{line}");
    }
    let best = samples.clone().map(|s| s.into_iter().fold(0.0, f64::max));
    let median = samples.clone().map(median_of);
    println!(
        "best slot:  without {:.0}, untouched {:.0}, read {:.0}, decoding {:.0}, around the router {:.0} req/s",
        best[0], best[1], best[2], best[3], best[4]
    );
    println!(
        "median:     without {:.0}, untouched {:.0}, read {:.0}, decoding {:.0}, around the router {:.0} req/s",
        median[0], median[1], median[2], median[3], median[4]
    );
    for (i, what) in [
        (1, "layer, session untouched"),
        (2, "layer, session read"),
        (3, "layer decoding a Devise cookie into CurrentUser"),
        (4, "the same, layer around the router"),
    ] {
        let mut sorted = ratios[i].clone();
        sorted.sort_by(f64::total_cmp);
        let quartile =
            |q: usize| sorted.get(q * (sorted.len() - 1) / 4).copied().unwrap_or(f64::NAN);
        println!(
            "ratio ({what} / without): {:.3} (median of {} bracketed ratios, quartiles {:.3}–{:.3}; best slots {:.3}, \
             medians {:.3})",
            median_of(ratios[i].clone()),
            sorted.len(),
            quartile(1),
            quartile(3),
            best[i] / best[0],
            median[i] / median[0]
        );
    }
    Ok(())
}
