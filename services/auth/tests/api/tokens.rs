//! Refresh token rotation, reuse detection, logout.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    let user = app.user(&tenant, "manager").await;
    let first = user.refresh().to_owned();

    let (status, second) = app.post("/api/v1/auth/refresh", None, json!({"refresh_token": first})).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let second_refresh = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second_refresh, first);
    assert_eq!(second["user"]["role"], "manager");
    assert_eq!(app.get("/api/v1/auth/me", second["access_token"].as_str().unwrap()).await.0, StatusCode::OK);

    let (status, third) = app.post("/api/v1/auth/refresh", None, json!({"refresh_token": second_refresh})).await;
    assert_eq!(status, StatusCode::OK, "{third}");
    let third_refresh = third["refresh_token"].as_str().unwrap().to_owned();

    // The first token again: stolen or replayed. The whole family dies, the newest included.
    let (status, body) = app.post("/api/v1/auth/refresh", None, json!({"refresh_token": first})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "REFRESH_TOKEN_REUSED");
    let (status, _) = app.post("/api/v1/auth/refresh", None, json!({"refresh_token": third_refresh})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Other sessions of the same user (another login, another family) live on.
    let (status, login) = app.login(&tenant, &user.email, &user.password).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.post("/api/v1/auth/refresh", None, json!({"refresh_token": login["refresh_token"]})).await;
    assert_eq!(status, StatusCode::OK);

    // Stored hashed only.
    let mut client = app.platform.pool.get().await.unwrap();
    let tx = client.transaction().await.unwrap();
    let row = tx
        .query_one(
            &format!("SELECT count(*) FILTER (WHERE token_hash = $1), count(*) FROM {}.refresh_tokens", tenant.id.schema().as_str()),
            &[&third_refresh],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 0);
    assert!(row.get::<_, i64>(1) >= 4);
}

#[tokio::test]
async fn refresh_input_errors() {
    let app = spawn_app().await;
    for body in [json!({"refresh_token": "garbage"}), json!({"refresh_token": ""})] {
        let (status, _) = app.post("/api/v1/auth/refresh", None, body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _) = app.post("/api/v1/auth/refresh", None, json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn logout_ends_the_session() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    let user = app.user(&tenant, "viewer").await;
    let other = app.user(&tenant, "viewer").await;
    // Someone else's refresh token: refused.
    let (status, _) = app.post("/api/v1/auth/logout", Some(user.access()), json!({"refresh_token": other.refresh()})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // No access token: 401.
    let (status, _) = app.post("/api/v1/auth/logout", None, json!({"refresh_token": user.refresh()})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = app.post("/api/v1/auth/logout", Some(user.access()), json!({"refresh_token": "x"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let resp = app.request(reqwest::Method::POST, "/api/v1/auth/logout", Some(user.access())).json(&json!({"refresh_token": user.refresh()})).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let (status, _) = app.post("/api/v1/auth/refresh", None, json!({"refresh_token": user.refresh()})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Idempotent.
    let resp = app.request(reqwest::Method::POST, "/api/v1/auth/logout", Some(user.access())).json(&json!({"refresh_token": user.refresh()})).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    // The other user's session is untouched.
    let (status, _) = app.post("/api/v1/auth/refresh", None, json!({"refresh_token": other.refresh()})).await;
    assert_eq!(status, StatusCode::OK);
}
