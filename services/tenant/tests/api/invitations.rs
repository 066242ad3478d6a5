use crm_client_tenant::subjects::{TENANT_USER_INVITED, TENANT_USER_JOINED};
use crm_web::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{EVENT_TIMEOUT, error_code, spawn_app};

#[tokio::test]
async fn admins_and_managers_invite_with_the_rules_of_the_matrix() {
    let app = spawn_app().await;
    let a = app.signup().await;
    let b = app.signup().await;
    let path = format!("/api/v1/tenants/{}/invitations", a.id);
    let admin = app.token(&a.id, Role::Admin);
    let manager = app.token(&a.id, Role::Manager);
    let mut invited = app.platform.events(TENANT_USER_INVITED).await;

    let r = app.post(&path, Some(&manager), json!({"email": "Rep@Acme.example", "role": "sales_rep"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["email"], "rep@acme.example");
    assert_eq!(r.body["role"], "sales_rep");
    assert_eq!(r.body["tenant_id"], a.id.to_string());
    let token = r.body["token"].as_str().unwrap().to_owned();
    let event = invited.wait_for(&a.id, TENANT_USER_INVITED, EVENT_TIMEOUT).await;
    assert!(event.data["token"].is_string());

    let r = app.post(&path, Some(&admin), json!({"email": "rep@acme.example", "role": "viewer"})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "pending invitation exists");
    assert_eq!(error_code(&r), "INVITATION_PENDING");
    assert_eq!(app.post(&path, Some(&manager), json!({"email": "boss2@acme.example", "role": "admin"})).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.post(&path, Some(&admin), json!({"email": "boss2@acme.example", "role": "admin"})).await.status, StatusCode::CREATED);
    for role in [Role::SalesRep, Role::Viewer] {
        let r = app.post(&path, Some(&app.token(&a.id, role)), json!({"email": "x@acme.example", "role": "viewer"})).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{role}");
    }
    let r = app.post(&path, Some(&admin), json!({"email": "not-an-email", "role": "emperor"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["details"]["fields"]["email"].is_string() && r.body["details"]["fields"]["role"].is_string());
    let r = app.post(&path, Some(&admin), json!({"email": "svc@acme.example", "role": "service"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "service accounts are not invited");

    let r = app.post(&path, Some(&app.token(&b.id, Role::Admin)), json!({"email": "x@y.example", "role": "viewer"})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "cross-tenant");

    // The public lookup never shows the token.
    let r = app.get(&format!("/api/v1/invitations/{token}"), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["status"], "pending");
    assert!(r.body.get("token").is_none(), "{}", r.body);
    assert_eq!(app.get("/api/v1/invitations/not-a-real-token", None).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn invitations_are_listed_with_filters_and_cursors() {
    let app = spawn_app().await;
    let a = app.signup().await;
    let b = app.signup().await;
    let admin = app.token(&a.id, Role::Admin);
    let path = format!("/api/v1/tenants/{}/invitations", a.id);
    for i in 0..3 {
        let r = app.post(&path, Some(&admin), json!({"email": format!("u{i}@acme.example"), "role": "viewer"})).await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    // 3 + the signup's admin invitation.
    let first = app.get(&format!("{path}?limit=3"), Some(&admin)).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.body["data"].as_array().unwrap().len(), 3);
    assert_eq!(first.body["pagination"]["total_count"], 4);
    assert_eq!(first.body["pagination"]["has_next"], true);
    let cursor = first.body["pagination"]["next_cursor"].as_str().unwrap();
    let second = app.get(&format!("{path}?limit=3&cursor={cursor}"), Some(&admin)).await;
    assert_eq!(second.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(second.body["pagination"]["has_next"], false);
    assert_eq!(second.body["data"][0]["role"], "admin", "oldest last");

    let first_id = first.body["data"][0]["id"].as_str().unwrap();
    assert_eq!(app.delete(&format!("{path}/{first_id}"), Some(&admin)).await.status, StatusCode::NO_CONTENT);
    let revoked = app.get(&format!("{path}?status=revoked"), Some(&admin)).await;
    assert_eq!(revoked.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(revoked.body["data"][0]["status"], "revoked");
    let pending = app.get(&format!("{path}?status=pending&count=false"), Some(&admin)).await;
    assert_eq!(pending.body["data"].as_array().unwrap().len(), 3);
    assert!(pending.body["pagination"].get("total_count").is_none());

    for bad in ["?limit=0", "?limit=-5", "?limit=1000", "?cursor=garbage", "?status=weird", "?limit=abc"] {
        let r = app.get(&format!("{path}{bad}"), Some(&admin)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
        error_code(&r);
    }
    assert_eq!(app.get(&path, Some(&app.token(&a.id, Role::SalesRep))).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.get(&path, Some(&app.token(&b.id, Role::Admin))).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.delete(&format!("{path}/{first_id}"), Some(&app.token(&a.id, Role::Manager))).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.delete(&format!("{path}/01ARZ3NDEKTSV4RRFFQ69G5FAV"), Some(&admin)).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn acceptance_is_for_services_exactly_once_and_not_after_expiry() {
    let app = spawn_app().await;
    let a = app.signup().await;
    let b = app.signup().await;
    let accept = format!("/api/v1/invitations/{}/accept", a.invitation_token);
    let service = app.token(&a.id, Role::Service);
    let mut joined = app.platform.events(TENANT_USER_JOINED).await;

    assert_eq!(app.post(&accept, Some(&app.token(&a.id, Role::Admin)), json!({})).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.post(&accept, Some(&app.token(&b.id, Role::Service)), json!({})).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.post(&accept, None, json!({})).await.status, StatusCode::UNAUTHORIZED);

    let (first, second) = tokio::join!(
        app.post(&accept, Some(&service), json!({"user_id": 7})),
        app.post(&accept, Some(&service), json!({"user_id": 7})),
    );
    let mut statuses = [first.status, second.status];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::CONFLICT], "exactly once");
    let event = joined.wait_for(&a.id, TENANT_USER_JOINED, EVENT_TIMEOUT).await;
    assert_eq!(event.data["status"], "accepted");
    assert_eq!(app.get(&format!("/api/v1/invitations/{}", a.invitation_token), None).await.body["status"], "accepted");

    // An expired invitation is refused with a clear status.
    let r = app
        .post(&format!("/api/v1/tenants/{}/invitations", a.id), Some(&app.token(&a.id, Role::Admin)), json!({"email": "late@acme.example", "role": "viewer"}))
        .await;
    let token = r.body["token"].as_str().unwrap().to_owned();
    let client = app.platform.pool.get().await.unwrap();
    client
        .execute("UPDATE platform.invitations SET expires_at = now() - interval '1 minute' WHERE id = $1", &[&r.body["id"].as_str().unwrap()])
        .await
        .unwrap();
    let r = app.post(&format!("/api/v1/invitations/{token}/accept"), Some(&service), json!({})).await;
    assert_eq!(r.status, StatusCode::GONE);
    assert_eq!(error_code(&r), "INVITATION_EXPIRED");
    assert_eq!(app.get(&format!("/api/v1/invitations/{token}"), None).await.body["status"], "expired");
}

fn member(id: i32, email: &str, status: &str) -> crm_client_auth::UserDetails {
    crm_client_auth::UserDetails {
        id,
        email: email.to_owned(),
        first_name: "Ann".into(),
        last_name: "Lee".into(),
        role: "sales_rep".into(),
        status: status.into(),
        email_verified: true,
        last_login_at: None,
        created_at: chrono::Utc::now(),
        updated_at: chrono::Utc::now(),
    }
}

async fn invitation_rows(app: &crate::helpers::TestApp, tenant: &crm_tenant::TenantId) -> i64 {
    let client = app.platform.pool.get().await.expect("connection");
    client
        .query_one("SELECT count(*) FROM platform.invitations WHERE tenant_id = $1", &[&tenant.to_string()])
        .await
        .expect("count")
        .get(0)
}

/// Issue 12 item 10: an email that already belongs to a member is refused at invitation time
/// (409 `EMAIL_TAKEN`, as for a second pending invitation), whatever its case or the member's
/// status; nothing is stored, no mail is sent.
#[tokio::test]
async fn inviting_a_members_email_is_a_conflict() {
    let app = spawn_app().await;
    let a = app.signup().await;
    let path = format!("/api/v1/tenants/{}/invitations", a.id);
    let admin = app.token(&a.id, Role::Admin);
    let manager = app.token(&a.id, Role::Manager);
    app.users.by_email.lock().unwrap().insert("ann@acme.example".into(), member(2, "ann@acme.example", "active"));
    app.users.by_email.lock().unwrap().insert("gone@acme.example".into(), member(3, "gone@acme.example", "inactive"));
    app.users.by_email.lock().unwrap().insert("josé@acme.example".into(), member(4, "josé@acme.example", "pending"));
    let before = invitation_rows(&app, &a.id).await;

    for (token, email, role) in [
        (&admin, "ann@acme.example", "viewer"),
        (&manager, "ANN@Acme.Example", "sales_rep"),
        (&admin, "  ann@acme.example ", "admin"),
        (&admin, "gone@acme.example", "viewer"),
        (&admin, "José@acme.example", "manager"),
    ] {
        let r = app.post(&path, Some(token), json!({"email": email, "role": role})).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{email}: {}", r.body);
        assert_eq!(error_code(&r), "EMAIL_TAKEN", "{email}");
        assert!(!r.body["error"].as_str().unwrap().contains("Ann"), "no member details leak: {}", r.body);
    }
    // The row and its `tenant.user_invited` event (the mail) are written together: neither.
    assert_eq!(invitation_rows(&app, &a.id).await, before, "nothing stored, no invitation mail");

    // Another email of the same domain is invited as before.
    let r = app.post(&path, Some(&admin), json!({"email": "annie@acme.example", "role": "viewer"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

/// When auth-service cannot say whether the email is a member's: 503, never a silent 201.
#[tokio::test]
async fn an_invitation_waits_for_auth_service() {
    let app = spawn_app().await;
    let a = app.signup().await;
    let path = format!("/api/v1/tenants/{}/invitations", a.id);
    let admin = app.token(&a.id, Role::Admin);
    let before = invitation_rows(&app, &a.id).await;
    for failure in [
        crm_client_auth::ClientError::Unavailable("connection refused".into()),
        crm_client_auth::ClientError::Unauthorized("bad token".into()),
    ] {
        *app.users.fail_with.lock().unwrap() = Some(failure);
        let r = app.post(&path, Some(&admin), json!({"email": "new@acme.example", "role": "viewer"})).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
        assert_eq!(error_code(&r), "SERVICE_UNAVAILABLE");
    }
    assert_eq!(invitation_rows(&app, &a.id).await, before, "nothing stored");
    *app.users.fail_with.lock().unwrap() = None;
    let r = app.post(&path, Some(&admin), json!({"email": "new@acme.example", "role": "viewer"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // Bad input is refused before auth-service is asked.
    let calls = *app.users.calls.lock().unwrap();
    let r = app.post(&path, Some(&admin), json!({"email": "not-an-email", "role": "viewer"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(*app.users.calls.lock().unwrap(), calls);
}
