//! The built-in HTTP User API loader on its own: coalescing, negative caching, bounded retries.

use std::sync::atomic::Ordering;
use std::time::Duration;

use rails_session::{HttpUserLoader, LoadUser, UserId};

use crate::behaviour::{mock_user_api, mock_user_api_with};
use crate::common::SALT;

#[tokio::test]
async fn concurrent_lookups_of_one_user_are_coalesced() {
    let api = mock_user_api_with(SALT, 200, Duration::from_millis(200)).await;
    let loader = HttpUserLoader::builder(&api.url).unwrap().build().unwrap();
    let lookups = (0..16).map(|_| loader.load_user(&UserId::Integer(1)));
    let users = futures_util::future::join_all(lookups).await;
    for user in users {
        let user = user.unwrap().unwrap();
        assert_eq!(
            (user.get("id").unwrap(), loader.authenticatable_salt(&user)),
            (&serde_json::json!(1), Some(SALT))
        );
    }
    assert_eq!(api.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn missing_users_are_cached_briefly_and_errors_not_at_all() {
    let api = mock_user_api(SALT, 200).await;
    let loader = HttpUserLoader::builder(&api.url)
        .unwrap()
        .cache(100, Duration::from_secs(60), Duration::from_millis(300))
        .build()
        .unwrap();
    assert!(loader.load_user(&UserId::Integer(2)).await.unwrap().is_none());
    assert!(loader.load_user(&UserId::Integer(2)).await.unwrap().is_none());
    assert_eq!(api.hits.load(Ordering::SeqCst), 1, "negative cache");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(loader.load_user(&UserId::Integer(2)).await.unwrap().is_none());
    assert_eq!(api.hits.load(Ordering::SeqCst), 2, "negative entries expire sooner");

    let down = mock_user_api(SALT, 503).await;
    let loader = HttpUserLoader::builder(&down.url)
        .unwrap()
        .retries(1, Duration::from_millis(10))
        .build()
        .unwrap();
    assert!(loader.load_user(&UserId::Integer(1)).await.is_err());
    assert!(loader.load_user(&UserId::Integer(1)).await.is_err());
    assert_eq!(down.hits.load(Ordering::SeqCst), 4, "one retry each, failures not cached");
}

#[tokio::test]
async fn the_auth_header_is_never_printed() {
    let loader = HttpUserLoader::builder("http://127.0.0.1:9/users/{id}")
        .unwrap()
        .bearer_token("s3cret")
        .unwrap()
        .build()
        .unwrap();
    assert!(!format!("{loader:?}").contains("s3cret"));
}

/// Rails 8 authentication without database access: an internal API answers the `sessions` row by its id.
#[tokio::test]
async fn a_sessions_api_answers_for_rails_authentication_logins() {
    use axum::extract::{Path, State};
    use axum::routing::get;
    use rails_session::FindAuthSession;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    let hits = Arc::new(AtomicUsize::new(0));
    async fn row(
        State(hits): State<Arc<AtomicUsize>>,
        Path(id): Path<i64>,
    ) -> (http::StatusCode, String) {
        hits.fetch_add(1, Ordering::SeqCst);
        match id {
            7 => (http::StatusCode::OK, r#"{"id":7,"user_id":42,"ip_address":"127.0.0.1"}"#.into()),
            8 => (http::StatusCode::OK, r#"{"id":8}"#.into()),
            _ => (http::StatusCode::NOT_FOUND, "{}".into()),
        }
    }
    let app =
        axum::Router::new().route("/internal/sessions/{id}", get(row)).with_state(hits.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let api = HttpUserLoader::builder(format!("http://{addr}/internal/sessions/{{id}}"))
        .unwrap()
        .cache(100, Duration::from_secs(60), Duration::from_secs(60))
        .build()
        .unwrap();
    assert_eq!(api.user_of_session(&UserId::Integer(7)).await.unwrap(), Some(UserId::Integer(42)));
    assert_eq!(api.user_of_session(&UserId::Integer(7)).await.unwrap(), Some(UserId::Integer(42)));
    assert_eq!(hits.load(Ordering::SeqCst), 1, "cached");
    assert_eq!(api.user_of_session(&UserId::Integer(9)).await.unwrap(), None, "404: signed out");
    assert!(
        api.user_of_session(&UserId::Integer(8)).await.is_err(),
        "a row without user_id is an error"
    );
}
