//! Password reset: request (always 202) and confirm (single use, 1 h).

use std::time::Duration;

use crm_client_auth::subjects;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{PASSWORD, spawn_app};

#[tokio::test]
async fn reset_flow_changes_the_password_once_and_ends_sessions() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    let user = app.user(&tenant, "sales_rep").await;
    let mut requested = app.platform.events(subjects::USER_PASSWORD_RESET_REQUESTED).await;
    let mut done = app.platform.events(subjects::USER_PASSWORD_RESET).await;

    let (status, body) = app.post("/api/v1/auth/password-reset", None, json!({"email": user.email, "tenant": tenant.subdomain})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert!(!body.to_string().contains("token"), "{body}");
    let event = requested.wait_for(&tenant.id, subjects::USER_PASSWORD_RESET_REQUESTED, Duration::from_secs(10)).await;
    assert_eq!(event.data["id"], user.id());
    let token = event.data["reset_token"].as_str().unwrap().to_owned();
    assert!(event.data["expires_at"].is_string());

    // Bad input first: nothing is used up.
    let (status, body) = app.post("/api/v1/auth/password-reset/confirm", None, json!({"token": token, "new_password": "short"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["details"]["fields"]["new_password"].is_string());
    let (status, body) = app.post("/api/v1/auth/password-reset/confirm", None, json!({"token": format!("{token}x"), "new_password": "a new password"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "INVALID_RESET_TOKEN");

    let resp = app.request(reqwest::Method::POST, "/api/v1/auth/password-reset/confirm", None).json(&json!({"token": token, "new_password": "a new password"})).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    done.wait_for(&tenant.id, subjects::USER_PASSWORD_RESET, Duration::from_secs(10)).await;

    // Single use.
    let (status, body) = app.post("/api/v1/auth/password-reset/confirm", None, json!({"token": token, "new_password": "another password"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "INVALID_RESET_TOKEN");
    // New password in, old out; old sessions over.
    assert_eq!(app.login(&tenant, &user.email, PASSWORD).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(app.login(&tenant, &user.email, "a new password").await.0, StatusCode::OK);
    assert_eq!(app.post("/api/v1/auth/refresh", None, json!({"refresh_token": user.refresh()})).await.0, StatusCode::UNAUTHORIZED);
    crate::helpers::until_status(&app, "/api/v1/auth/me", user.access(), StatusCode::UNAUTHORIZED, Duration::from_secs(1)).await;

    // Audited, without values.
    let (status, audit) = app.get(&format!("/api/v1/users/{}/audit", user.id()), tenant.admin.access()).await;
    assert_eq!(status, StatusCode::OK);
    let entry = audit["data"].as_array().unwrap().iter().find(|e| e["field"] == "password").expect("password audit entry").clone();
    assert!(entry["old_value"].is_null() && entry["new_value"].is_null());
}

#[tokio::test]
async fn reset_requests_never_tell_whether_an_account_exists() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    let mut requested = app.platform.events(subjects::USER_PASSWORD_RESET_REQUESTED).await;
    for body in [
        json!({"email": "nobody@nowhere.io", "tenant": tenant.subdomain}),
        json!({"email": tenant.admin.email, "tenant": "no-such-tenant-zz"}),
        json!({"email": tenant.admin.email.to_uppercase(), "tenant": tenant.subdomain}),
    ] {
        let (status, answer) = app.post("/api/v1/auth/password-reset", None, body).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(answer["message"], "if an account with this email exists, a reset link is on its way");
    }
    // Only the real account got a token.
    assert_eq!(requested.count_within(&tenant.id, subjects::USER_PASSWORD_RESET_REQUESTED, Duration::from_secs(2)).await, 1);
    let (status, _) = app.post("/api/v1/auth/password-reset", None, json!({"email": "not an email", "tenant": tenant.subdomain})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn expired_reset_tokens_are_refused() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    let mut requested = app.platform.events(subjects::USER_PASSWORD_RESET_REQUESTED).await;
    let (status, _) = app.post("/api/v1/auth/password-reset", None, json!({"email": tenant.admin.email, "tenant": tenant.subdomain})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let token = requested.wait_for(&tenant.id, subjects::USER_PASSWORD_RESET_REQUESTED, Duration::from_secs(10)).await.data["reset_token"].as_str().unwrap().to_owned();
    let client = app.platform.pool.get().await.unwrap();
    client
        .execute(&format!("UPDATE {}.password_reset_tokens SET expires_at = now() - interval '1 second'", tenant.id.schema().as_str()), &[])
        .await
        .unwrap();
    let (status, body) = app.post("/api/v1/auth/password-reset/confirm", None, json!({"token": token, "new_password": "a new password"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "INVALID_RESET_TOKEN");
    assert_eq!(app.login(&tenant, &tenant.admin.email, PASSWORD).await.0, StatusCode::OK);
}
