use std::time::Duration;

use crm_client_auth::subjects;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{PASSWORD, spawn_app, unique};

#[tokio::test]
async fn registration_by_invitation_creates_the_user_with_the_invited_role() {
    let app = spawn_app().await;
    let (tenant, subdomain, admin_token) = app.signup().await;
    let mut created = app.platform.events(subjects::USER_CREATED).await;
    let (status, body) = app.register(&admin_token, PASSWORD).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 86400);
    assert!(body["access_token"].as_str().unwrap().len() > 20);
    assert!(body["refresh_token"].as_str().unwrap().len() > 20);
    assert_eq!(body["user"]["email"], format!("admin@{subdomain}.io"));
    assert_eq!(body["user"]["role"], "admin");
    assert_eq!(body["user"]["status"], "active");
    assert_eq!(body["user"]["email_verified"], true);
    assert_eq!(body["user"]["first_name"], "Ann");

    let access = body["access_token"].as_str().unwrap();
    let (status, me) = app.get("/api/v1/auth/me", access).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["id"], body["user"]["id"]);
    assert!(me["permissions"].as_array().unwrap().contains(&json!("users:write:all")));

    let event = created.wait_for(&tenant, subjects::USER_CREATED, Duration::from_secs(10)).await;
    assert_eq!(event.data["email"], format!("admin@{subdomain}.io"));
    assert_eq!(event.data["role"], "admin");
    assert!(event.data.get("password_hash").is_none());

    // The invitation is used up.
    let (status, invitation) = app.send(app.tenant_api.builder(reqwest::Method::GET, &format!("/api/v1/invitations/{admin_token}"), None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(invitation["status"], "accepted");
    let (status, body) = app.register(&admin_token, PASSWORD).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "INVITATION_NOT_PENDING");
}

#[tokio::test]
async fn the_role_comes_from_the_invitation() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    for role in ["manager", "sales_rep", "viewer"] {
        let user = app.user(&tenant, role).await;
        assert_eq!(user.tokens.user.role, role);
        let (_, me) = app.get("/api/v1/auth/me", user.access()).await;
        assert_eq!(me["role"], role);
    }
}

#[tokio::test]
async fn registration_input_is_validated() {
    let app = spawn_app().await;
    let (_, _, token) = app.signup().await;
    let (status, body) = app
        .post("/api/v1/auth/register", None, json!({"invitation_token": token, "password": "short", "first_name": " ", "last_name": "x".repeat(101)}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "VALIDATION_FAILED");
    let fields = &body["details"]["fields"];
    assert!(fields["password"].is_string() && fields["first_name"].is_string() && fields["last_name"].is_string(), "{body}");
    let (status, _) = app.register(&token, &"p".repeat(129)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Unknown invitation tokens, including ones that are not even URL-safe.
    for bad in ["nope", "../../tenants", "a b"] {
        let (status, body) = app.register(bad, PASSWORD).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{bad}: {body}");
        assert_eq!(body["code"], "INVITATION_NOT_FOUND");
    }
    // Missing fields and wrong types are 400, never 500.
    let (status, _) = app.post("/api/v1/auth/register", None, json!({"invitation_token": token})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = app.post("/api/v1/auth/register", None, json!({"invitation_token": 5, "password": [], "first_name": {}, "last_name": null})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Nothing was used up.
    let (status, _) = app.register(&token, PASSWORD).await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn an_email_registers_once_per_tenant_case_insensitively() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    let email = format!("{}@example.io", unique("dup"));
    let first = app.invite(&tenant, &email, "viewer").await;
    assert_eq!(app.register(&first, PASSWORD).await.0, StatusCode::CREATED);
    // A second invitation for the same address (another case) once the first was accepted:
    // refused when inviting (issue 12 item 10), not only when registering.
    let path = format!("/api/v1/tenants/{}/invitations", tenant.id);
    let r = app.tenant_api.post(&path, tenant.admin.access(), json!({"email": email.to_uppercase(), "role": "manager"})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.body["code"], "EMAIL_TAKEN");
    // A token of the first invitation again: used up.
    assert_eq!(app.register(&first, PASSWORD).await.0, StatusCode::CONFLICT);

    // The same address in another tenant is another user.
    let other = app.tenant().await;
    let third = app.invite(&other, &email, "viewer").await;
    assert_eq!(app.register(&third, PASSWORD).await.0, StatusCode::CREATED);
}

#[tokio::test]
async fn revoked_invitations_cannot_register() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    let token = app.invite(&tenant, &format!("{}@x.io", unique("r")), "viewer").await;
    let list = app.tenant_api.get(&format!("/api/v1/tenants/{}/invitations?status=pending", tenant.id), tenant.admin.access()).await.body;
    let id = list["data"][0]["id"].as_str().unwrap().to_owned();
    let resp = app.tenant_api.delete(&format!("/api/v1/tenants/{}/invitations/{id}", tenant.id), tenant.admin.access()).await;
    assert_eq!(resp.status, StatusCode::NO_CONTENT);
    let (status, body) = app.register(&token, PASSWORD).await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    assert_eq!(body["code"], "INVITATION_REVOKED");
}
