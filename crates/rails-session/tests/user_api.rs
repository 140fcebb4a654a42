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
