//! Tokens that must not pass, and tokens used on another tenant's address.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use crm_testing::{TEST_ISSUER, TEST_JWT_SECRET};
use crm_web::{Claims, Role, TokenType};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{BASE_DOMAIN, spawn_app};

fn sign(header: Header, claims: &Claims, secret: &[u8]) -> String {
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).unwrap()
}

#[tokio::test]
async fn forged_expired_and_misused_tokens_are_401() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    let user = tenant.admin.clone();
    let good = Claims::new(TokenType::Access, user.id(), tenant.id, &user.email, Role::Admin, TEST_ISSUER, Duration::from_secs(600));
    let secret = TEST_JWT_SECRET.as_bytes();
    assert_eq!(app.get("/api/v1/auth/me", &sign(Header::new(Algorithm::HS256), &good, secret)).await.0, StatusCode::OK);

    let none = {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&good).unwrap());
        format!("{header}.{payload}.")
    };
    let other_alg = sign(Header::new(Algorithm::HS512), &good, secret);
    let bad_signature = sign(Header::new(Algorithm::HS256), &good, b"another-secret-of-sufficient-length!!");
    let mut expired = good.clone();
    expired.iat -= 7200;
    expired.exp = expired.iat + 3600;
    let expired = sign(Header::new(Algorithm::HS256), &expired, secret);
    let mut not_yet = good.clone();
    not_yet.nbf = Some(not_yet.iat + 3600);
    let not_yet = sign(Header::new(Algorithm::HS256), &not_yet, secret);
    let mut wrong_issuer = good.clone();
    wrong_issuer.iss = "someone-else".into();
    let wrong_issuer = sign(Header::new(Algorithm::HS256), &wrong_issuer, secret);
    let cases = [
        ("alg none", none),
        ("HS512", other_alg),
        ("bad signature", bad_signature),
        ("expired", expired),
        ("not yet valid", not_yet),
        ("wrong issuer", wrong_issuer),
        ("refresh token as access token", user.refresh().to_owned()),
        ("garbage", "abc.def.ghi".to_owned()),
    ];
    for (what, token) in cases {
        let (status, body) = app.get("/api/v1/auth/me", &token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
        assert!(!body.to_string().contains(&token), "{what}: the token is echoed");
    }
    // No token, or a malformed header.
    let resp = app.request(reqwest::Method::GET, "/api/v1/auth/me", None).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = app.request(reqwest::Method::GET, "/api/v1/auth/me", None).header("Authorization", "Basic abc").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // An access token is not a refresh token either.
    let (status, _) = app.post("/api/v1/auth/refresh", None, json!({"refresh_token": user.access()})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_token_of_tenant_b_is_refused_on_tenant_a_address_and_header() {
    let app = spawn_app().await;
    let a = app.tenant().await;
    let b = app.tenant().await;
    let token_b = b.admin.access();

    let on_a_host = app
        .request(reqwest::Method::GET, "/api/v1/auth/me", Some(token_b))
        .header("Host", format!("{}.{BASE_DOMAIN}", a.subdomain))
        .send()
        .await
        .unwrap();
    assert_eq!(on_a_host.status(), StatusCode::FORBIDDEN);
    let (status, body) = app.send(app.request(reqwest::Method::GET, "/api/v1/users", Some(token_b)).header("X-Tenant-ID", a.id.to_string())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "TENANT_MISMATCH");
    // Its own address and header are fine.
    let own = app
        .request(reqwest::Method::GET, "/api/v1/auth/me", Some(token_b))
        .header("Host", format!("{}.{BASE_DOMAIN}", b.subdomain))
        .header("X-Tenant-ID", b.id.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), StatusCode::OK);
    // A refresh token of B used on A: refresh has no tenant of its own but the token's.
    let resp = app
        .request(reqwest::Method::PATCH, &format!("/api/v1/users/{}", a.admin.id()), Some(token_b))
        .header("Host", format!("{}.{BASE_DOMAIN}", a.subdomain))
        .json(&json!({"first_name": "Mallory"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let (_, me) = app.get("/api/v1/auth/me", a.admin.access()).await;
    assert_eq!(me["first_name"], "Ann");
}
