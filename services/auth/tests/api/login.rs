use std::time::Duration;

use crm_client_auth::subjects;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{BASE_DOMAIN, PASSWORD, spawn_app};

#[tokio::test]
async fn login_with_the_tenant_from_the_body_the_host_or_the_header() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    let user = app.user(&tenant, "sales_rep").await;
    let mut logins = app.platform.events(subjects::USER_LOGIN).await;

    let (status, body) = app.login(&tenant, &user.email.to_uppercase(), PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 86400);
    assert_eq!(body["user"]["id"], user.id());
    assert_eq!(body["user"]["role"], "sales_rep");
    assert!(body["user"]["last_login_at"].is_string());
    let expires_at: chrono::DateTime<chrono::Utc> = body["expires_at"].as_str().unwrap().parse().unwrap();
    let in_24h = chrono::Utc::now() + chrono::Duration::hours(24);
    assert!((expires_at - in_24h).num_seconds().abs() < 60);

    let creds = json!({"email": user.email, "password": PASSWORD});
    let by_host = app
        .request(reqwest::Method::POST, "/api/v1/auth/login", None)
        .header("Host", format!("{}.{BASE_DOMAIN}:8080", tenant.subdomain))
        .json(&creds)
        .send()
        .await
        .unwrap();
    assert_eq!(by_host.status(), StatusCode::OK);
    let by_header = app
        .request(reqwest::Method::POST, "/api/v1/auth/login", None)
        .header("X-Tenant-ID", tenant.id.to_string())
        .json(&creds)
        .send()
        .await
        .unwrap();
    assert_eq!(by_header.status(), StatusCode::OK);

    let event = logins.wait_for(&tenant.id, subjects::USER_LOGIN, Duration::from_secs(10)).await;
    assert_eq!(event.data["id"], user.id());
    assert_eq!(event.actor.as_deref(), Some(user.id().to_string().as_str()));
}

#[tokio::test]
async fn wrong_password_unknown_email_and_inactive_users_look_the_same() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    let user = app.user(&tenant, "viewer").await;
    let strip = |mut v: Value| {
        v["request_id"] = Value::Null;
        v
    };
    let (s1, wrong) = app.login(&tenant, &user.email, "wrong password!").await;
    let (s2, unknown) = app.login(&tenant, "nobody@nowhere.io", PASSWORD).await;
    assert_eq!((s1, s2), (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED));
    assert_eq!(wrong["code"], "INVALID_CREDENTIALS");
    assert_eq!(strip(wrong), strip(unknown));

    let (status, _) = app.patch(&format!("/api/v1/users/{}", user.id()), tenant.admin.access(), json!({"status": "inactive"})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, inactive) = app.login(&tenant, &user.email, PASSWORD).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(inactive["code"], "INVALID_CREDENTIALS");
}

#[tokio::test]
async fn login_input_and_tenant_resolution_errors() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    let (status, body) = app.post("/api/v1/auth/login", None, json!({"email": "not-an-email", "password": "", "tenant": tenant.subdomain})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["details"]["fields"]["email"].is_string() && body["details"]["fields"]["password"].is_string(), "{body}");
    // No tenant named anywhere.
    let (status, body) = app.post("/api/v1/auth/login", None, json!({"email": tenant.admin.email, "password": PASSWORD})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["details"]["fields"]["tenant"].is_string());
    // Unknown tenant.
    let (status, _) = app.post("/api/v1/auth/login", None, json!({"email": tenant.admin.email, "password": PASSWORD, "tenant": "no-such-tenant-here"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Body and header disagree.
    let other = app.tenant().await;
    let resp = app
        .request(reqwest::Method::POST, "/api/v1/auth/login", None)
        .header("X-Tenant-ID", other.id.to_string())
        .json(&json!({"email": tenant.admin.email, "password": PASSWORD, "tenant": tenant.subdomain}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // Garbage bodies.
    let resp = app.request(reqwest::Method::POST, "/api/v1/auth/login", None).header("content-type", "application/json").body("{nope").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let (status, _) = app.post("/api/v1/auth/login", None, json!({"email": tenant.admin.email, "password": 12345678, "tenant": tenant.subdomain})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = app.post("/api/v1/auth/login", None, json!({"email": tenant.admin.email, "password": "x".repeat(129), "tenant": tenant.subdomain})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_user_of_one_tenant_cannot_log_in_to_another() {
    let app = spawn_app().await;
    let a = app.tenant().await;
    let b = app.tenant().await;
    let (status, body) = app.login(&b, &a.admin.email, PASSWORD).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _) = app.login(&a, &a.admin.email, PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn five_failures_per_ip_and_email_then_429_with_retry_after() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    let user = app.user(&tenant, "viewer").await;
    for _ in 0..5 {
        let (status, _) = app.login(&tenant, &user.email, "wrong password!").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // The 6th attempt is refused before the password is even checked, right or wrong.
    let resp = app
        .api
        .request(reqwest::Method::POST, "/api/v1/auth/login", None, Some(json!({"email": user.email, "password": PASSWORD, "tenant": tenant.subdomain})))
        .await;
    assert_eq!(resp.status, StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = resp.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry_after), "{retry_after}");
    assert_eq!(resp.body["code"], "RATE_LIMITED");

    // Another account from the same address is not affected; successes do not count.
    for _ in 0..6 {
        let (status, _) = app.login(&tenant, &tenant.admin.email, PASSWORD).await;
        assert_eq!(status, StatusCode::OK);
    }
}
