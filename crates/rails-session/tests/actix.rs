//! actix-web pieces the behaviour suite does not reach: the `RequireUser` guard, `MaybeUser`, a missing
//! middleware.

use actix_web::{test, web, App, HttpResponse};
use rails_cookie::{Profile, SecretKeyBase};
use rails_session::actix::{MaybeUser, RailsSession, RequireUser};
use rails_session::{CurrentUser, Identity, Session, SessionConfig};

use crate::common::*;

fn session() -> RailsSession {
    let config =
        SessionConfig::new(Profile::rails_6_1(), SecretKeyBase::new(SKB).unwrap(), COOKIE_NAME)
            .unwrap()
            .unauthorized_body(serde_json::json!({"error": "sign in first"}));
    RailsSession::new(config)
}

async fn me(user: CurrentUser<Identity>) -> HttpResponse {
    HttpResponse::Ok().body(user.id.to_string())
}

async fn maybe(user: MaybeUser<Identity>) -> HttpResponse {
    HttpResponse::Ok().body(format!("{:?}", user.0.map(|u| u.id.clone())))
}

#[actix_web::test]
async fn the_guard_answers_401_json_and_lets_users_through() {
    let app = test::init_service(
        App::new()
            .service(web::scope("/private").wrap(RequireUser).route("", web::get().to(me)))
            .route("/maybe", web::get().to(maybe))
            .wrap(session()),
    )
    .await;
    let r = test::call_service(&app, test::TestRequest::get().uri("/private").to_request()).await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers().get("content-type").unwrap(), "application/json; charset=utf-8");
    assert_eq!(test::read_body(r).await, r#"{"error":"sign in first"}"#);

    let cookie = cookie_pair(&codec(Profile::rails_6_1()), &devise_session(42, SALT));
    let request = || test::TestRequest::get().insert_header(("cookie", cookie.clone()));
    let r = test::call_service(&app, request().uri("/private").to_request()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(test::read_body(r).await, "42");
    let r = test::call_service(&app, request().uri("/maybe").to_request()).await;
    assert_eq!(test::read_body(r).await, "Some(Integer(42))");
    let r = test::call_service(&app, test::TestRequest::get().uri("/maybe").to_request()).await;
    assert_eq!(test::read_body(r).await, "None");
}

#[actix_web::test]
async fn extractors_without_the_middleware_are_a_500() {
    let app =
        test::init_service(App::new().route("/", web::get().to(|_: Session| async { "never" })))
            .await;
    let r = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
    assert_eq!(r.status(), 500);
    assert!(String::from_utf8(test::read_body(r).await.to_vec())
        .unwrap()
        .contains("session layer is missing"));
}
