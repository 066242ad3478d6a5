//! Issue 12 (real-world input and security findings) on auth-service, with the real
//! tenant-service beside it: members' emails are not invited again (item 10), logout
//! revokes the access token everywhere (19), If-Match on users (11), single-line names (13),
//! sort whitelist (15), NUL characters (12), type errors (18) and tenant addresses (16).

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{BASE_DOMAIN, spawn_app, until_status};

fn fields(body: &Value) -> Vec<String> {
    body["details"]["fields"].as_object().map(|f| f.keys().cloned().collect()).unwrap_or_default()
}

// ---- item 10 -------------------------------------------------------------------------

#[tokio::test]
async fn inviting_an_active_members_email_is_409_at_invitation_time() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    let rep = app.user(&tenant, "sales_rep").await;
    let path = format!("/api/v1/tenants/{}/invitations", tenant.id);
    // The input: the member's email, as registered and in another case; the admin's own.
    for email in [rep.email.clone(), rep.email.to_uppercase(), tenant.admin.email.clone()] {
        let r = app.tenant_api.post(&path, tenant.admin.access(), json!({"email": email, "role": "viewer"})).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{email}: {}", r.body);
        assert_eq!(r.body["code"], "EMAIL_TAKEN");
    }
    // A manager's token is forwarded just as well.
    let manager = app.user(&tenant, "manager").await;
    let r = app.tenant_api.post(&path, manager.access(), json!({"email": rep.email, "role": "viewer"})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    // A deactivated member too: registering would fail; reactivating is the way back.
    let (status, _) = app.patch(&format!("/api/v1/users/{}", rep.id()), tenant.admin.access(), json!({"status": "inactive"})).await;
    assert_eq!(status, StatusCode::OK);
    let r = app.tenant_api.post(&path, tenant.admin.access(), json!({"email": rep.email, "role": "viewer"})).await;
    assert_eq!((r.status, r.body["code"].as_str()), (StatusCode::CONFLICT, Some("EMAIL_TAKEN")), "{}", r.body);

    // The same email in another tenant is someone else there: invited.
    let other = app.tenant().await;
    let r = app
        .tenant_api
        .post(&format!("/api/v1/tenants/{}/invitations", other.id), other.admin.access(), json!({"email": rep.email, "role": "viewer"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

#[tokio::test]
async fn the_member_lookup_by_email_is_for_admins_managers_and_services() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    let rep = app.user(&tenant, "sales_rep").await;
    let path = |email: &str| format!("/api/v1/users/by-email?email={}", email.replace('+', "%2B").replace('@', "%40"));
    let (status, body) = app.get(&path(&rep.email.to_uppercase()), tenant.admin.access()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], rep.id());
    assert!(body.get("password_hash").is_none());
    let service = app.platform.token(&tenant.id, 0, crm_web::Role::Service);
    assert_eq!(app.get(&path(&rep.email), &service).await.0, StatusCode::OK);
    assert_eq!(app.get(&path("nobody@x.example"), tenant.admin.access()).await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&path(&rep.email), rep.access()).await.0, StatusCode::FORBIDDEN);
    let (status, body) = app.get(&path("not-an-email"), tenant.admin.access()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(fields(&body), ["email"]);
    assert_eq!(app.get("/api/v1/users/by-email", tenant.admin.access()).await.0, StatusCode::BAD_REQUEST);
    // Cross-tenant: another tenant's admin does not find this tenant's member.
    let other = app.tenant().await;
    assert_eq!(app.get(&path(&rep.email), other.admin.access()).await.0, StatusCode::NOT_FOUND);
}

// ---- item 19 -------------------------------------------------------------------------

#[tokio::test]
async fn logout_revokes_the_access_token_it_was_made_with_in_every_service() {
    let app = spawn_app().await;
    let (_other, other_url) = crate::revocation::other_service().await;
    let tenant = app.tenant().await;
    let user = app.user(&tenant, "manager").await;
    // A second session of the same user stays valid.
    let (status, second) = app.login(&tenant, &user.email, &user.password).await;
    assert_eq!(status, StatusCode::OK);
    let second = second["access_token"].as_str().unwrap().to_owned();
    let tenant_path = format!("{other_url}/api/v1/tenants/{}", tenant.id);
    let other = || async { app.http.get(&tenant_path).bearer_auth(user.access()).send().await.unwrap() };
    assert_eq!(other().await.status(), StatusCode::OK);

    let mut logged_out = app.platform.events(crm_client_auth::subjects::USER_LOGGED_OUT).await;
    let (status, _) = app.post("/api/v1/auth/logout", Some(user.access()), json!({"refresh_token": user.refresh()})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let done = Instant::now();
    until_status(&app, "/api/v1/auth/me", user.access(), StatusCode::UNAUTHORIZED, Duration::from_secs(1)).await;
    crm_testing::wait_until("the other service to refuse the signed-out token", Duration::from_secs(1), || async {
        (other().await.status() == StatusCode::UNAUTHORIZED).then_some(())
    })
    .await;
    assert!(done.elapsed() < Duration::from_secs(1), "{:?}", done.elapsed());
    let (status, body) = app.get("/api/v1/auth/me", user.access()).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("TOKEN_REVOKED")), "{body}");
    let body: Value = other().await.json().await.unwrap();
    assert_eq!(body["code"], "TOKEN_REVOKED");
    let event = logged_out.wait_for(&tenant.id, crm_client_auth::subjects::USER_LOGGED_OUT, Duration::from_secs(10)).await;
    assert_eq!(event.data["id"], user.id());

    // The refresh token is dead too; the other session is not.
    assert_eq!(app.post("/api/v1/auth/refresh", None, json!({"refresh_token": user.refresh()})).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/api/v1/auth/me", &second).await.0, StatusCode::OK);
    assert_eq!(app.http.get(&tenant_path).bearer_auth(&second).send().await.unwrap().status(), StatusCode::OK);
    // Logging out again with the revoked token: 401 (nothing left to end).
    assert_eq!(app.post("/api/v1/auth/logout", Some(user.access()), json!({"refresh_token": user.refresh()})).await.0, StatusCode::UNAUTHORIZED);

    // One row, living as long as the token.
    let claims = app.platform.keys.verify_access(user.access()).unwrap();
    let client = app.platform.pool.get().await.unwrap();
    let row = client.query_one("SELECT tenant_id, user_id, expires_at FROM platform.revoked_tokens WHERE jti = $1", &[&claims.jti]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), tenant.id.to_string());
    assert_eq!(row.get::<_, i32>(1), user.id());
    assert_eq!(row.get::<_, chrono::DateTime<chrono::Utc>>(2).timestamp(), claims.exp);
}

#[tokio::test]
async fn expired_revocations_are_forgotten() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    let user = app.user(&tenant, "viewer").await;
    let client = app.platform.pool.get().await.unwrap();
    let stale = ulid::Ulid::generate().to_string();
    client
        .execute(
            "INSERT INTO platform.revoked_tokens (jti, tenant_id, user_id, expires_at) VALUES ($1, $2, 1, now() - interval '1 hour')",
            &[&stale, &tenant.id.to_string()],
        )
        .await
        .unwrap();
    // A guard reading the table skips it; the next logout deletes it.
    let guard = crm_web::RevocationGuard::new(crm_web::RevocationConfig::default());
    guard.sync(&app.platform.db).await.unwrap();
    assert!(!guard.is_token_revoked(&stale));
    let (status, _) = app.post("/api/v1/auth/logout", Some(user.access()), json!({"refresh_token": user.refresh()})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let n: i64 = client.query_one("SELECT count(*) FROM platform.revoked_tokens WHERE jti = $1", &[&stale]).await.unwrap().get(0);
    assert_eq!(n, 0);
    guard.sync(&app.platform.db).await.unwrap();
    let claims = app.platform.keys.verify_access(user.access()).unwrap();
    assert!(guard.is_token_revoked(&claims.jti));
}

// ---- item 12 and 18 ------------------------------------------------------------------

#[tokio::test]
async fn nul_characters_and_wrong_types_are_400_naming_the_field() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    // The input, and variants in every text field of the public endpoints.
    let cases = [
        ("/api/v1/auth/login", json!({"email": "a@b.example", "password": "x", "tenant": "ac\u{0}me"}), "tenant"),
        ("/api/v1/auth/login", json!({"email": "a\u{0}@b.example", "password": "x", "tenant": tenant.subdomain}), "email"),
        ("/api/v1/auth/login", json!({"email": "a@b.example", "password": "pass\u{0}word", "tenant": tenant.subdomain}), "password"),
        ("/api/v1/auth/password-reset", json!({"email": "a@b.example", "tenant": "ac\u{0}me"}), "tenant"),
        ("/api/v1/auth/password-reset/confirm", json!({"token": "t\u{0}k", "new_password": "long enough pass"}), "token"),
        ("/api/v1/auth/register", json!({"invitation_token": "x", "password": "long enough", "first_name": "Zoë\u{0}", "last_name": "L"}), "first_name"),
        ("/api/v1/auth/refresh", json!({"refresh_token": "abc\u{0}"}), "refresh_token"),
        // Type errors (item 18).
        ("/api/v1/auth/login", json!({"email": "a@b.example", "password": 12345678, "tenant": tenant.subdomain}), "password"),
        ("/api/v1/auth/login", json!({"email": ["a@b.example"], "password": "x"}), "email"),
        ("/api/v1/auth/register", json!({"invitation_token": "x", "password": "long enough", "first_name": {"a": 1}, "last_name": "L"}), "first_name"),
        ("/api/v1/auth/register", json!({"invitation_token": "x", "password": "long enough", "first_name": "A"}), "last_name"),
    ];
    for (path, body, field) in cases {
        let (status, answer) = app.post(path, None, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}: {answer}");
        assert_eq!(answer["code"], "VALIDATION_FAILED", "{path} {body}: {answer}");
        assert!(fields(&answer).contains(&field.to_owned()), "{path} {body}: {answer}");
        assert!(!answer.to_string().contains('\u{0}') && !answer.to_string().contains("\\u0000"), "the value is not quoted: {answer}");
    }
    // Authenticated bodies and query strings.
    let admin = tenant.admin.access();
    let me = tenant.admin.id();
    for (method, path, body, field) in [
        (Method::PATCH, format!("/api/v1/users/{me}"), Some(json!({"first_name": "A\u{0}n"})), "first_name"),
        (Method::PATCH, format!("/api/v1/users/{me}"), Some(json!({"last_name": 42})), "last_name"),
        (Method::PATCH, format!("/api/v1/users/{me}"), Some(json!({"role": true})), "role"),
        (Method::GET, "/api/v1/users?search=ab%00".to_owned(), None, "search"),
        (Method::GET, "/api/v1/users?role=ad%00min".to_owned(), None, "role"),
        (Method::GET, "/api/v1/users?count=maybe".to_owned(), None, "count"),
        (Method::GET, "/api/v1/users/basic?ids=1%002".to_owned(), None, "ids"),
        (Method::GET, "/api/v1/users/by-email?email=a%00%40b.example".to_owned(), None, "email"),
        (Method::POST, "/api/v1/auth/logout".to_owned(), Some(json!({"refresh_token": "r\u{0}"})), "refresh_token"),
    ] {
        let mut req = app.request(method.clone(), &path, Some(admin));
        if let Some(body) = &body {
            req = req.json(body);
        }
        let (status, answer) = app.send(req).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {path}: {answer}");
        assert_eq!(answer["code"], "VALIDATION_FAILED", "{method} {path}: {answer}");
        assert!(fields(&answer).contains(&field.to_owned()), "{method} {path}: {answer}");
    }
    // A NUL in a path id: refused by the path extractor, naming the parameter.
    let (status, answer) = app.get("/api/v1/users/1%00", admin).await;
    assert_eq!((status, answer["code"].as_str()), (StatusCode::BAD_REQUEST, Some("VALIDATION_FAILED")), "{answer}");
}

// ---- item 16 -------------------------------------------------------------------------

#[tokio::test]
async fn a_token_on_another_tenants_address_is_403_tenant_mismatch() {
    let app = spawn_app().await;
    let a = app.tenant().await;
    let b = app.tenant().await;
    let host = format!("{}.{BASE_DOMAIN}", a.subdomain);
    for path in ["/api/v1/auth/me".to_owned(), "/api/v1/users".to_owned(), format!("/api/v1/users/{}", a.admin.id())] {
        let (status, body) = app.send(app.request(Method::GET, &path, Some(b.admin.access())).header("host", &host)).await;
        assert_eq!((status, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("TENANT_MISMATCH")), "{path}: {body}");
        // Its own address (and no tenant address) are fine.
        let own = format!("{}.{BASE_DOMAIN}", b.subdomain);
        let (status, _) = app.send(app.request(Method::GET, &path, Some(b.admin.access())).header("host", own)).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
}

// ---- item 11 -------------------------------------------------------------------------

#[tokio::test]
async fn user_writes_honour_if_match() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    let rep = app.user(&tenant, "sales_rep").await;
    let admin = tenant.admin.access();
    let path = format!("/api/v1/users/{}", rep.id());
    let read = app.api.get(&path, admin).await;
    assert_eq!(read.status, StatusCode::OK);
    let first = read.header("etag").expect("ETag on GET").to_owned();
    // The user renames themself; the admin's copy is now stale.
    let r = app.api.send(app.request(Method::PATCH, &path, Some(rep.access())).header("if-match", &first).json(&json!({"first_name": "Renée"}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let second = r.header("etag").expect("ETag on PATCH").to_owned();
    assert_ne!(first, second);
    let r = app.api.send(app.request(Method::PATCH, &path, Some(admin)).header("if-match", &first).json(&json!({"role": "viewer"}))).await;
    assert_eq!((r.status, r.body["code"].as_str()), (StatusCode::PRECONDITION_FAILED, Some("PRECONDITION_FAILED")), "{}", r.body);
    let now = app.get(&path, admin).await.1;
    assert_eq!((now["role"].as_str(), now["first_name"].as_str()), (Some("sales_rep"), Some("Renée")), "nothing changed");
    assert_eq!(app.get("/api/v1/auth/me", rep.access()).await.0, StatusCode::OK, "no revocation either");
    // With the current tag, or without If-Match: as before.
    let r = app.api.send(app.request(Method::PATCH, &path, Some(admin)).header("if-match", &second).json(&json!({"role": "viewer"}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(app.patch(&path, admin, json!({"last_name": "Ng"})).await.0, StatusCode::OK);
    // Cross-tenant: the right tag does not open another tenant's user.
    let other = app.tenant().await;
    let tag = app.api.get(&path, admin).await.header("etag").unwrap().to_owned();
    let r = app.api.send(app.request(Method::PATCH, &path, Some(other.admin.access())).header("if-match", tag).json(&json!({"first_name": "X"}))).await;
    assert!(matches!(r.status, StatusCode::NOT_FOUND | StatusCode::FORBIDDEN), "{}", r.body);
    assert_eq!(app.get(&path, admin).await.1["first_name"], "Renée");
}

// ---- item 13 -------------------------------------------------------------------------

#[tokio::test]
async fn single_line_fields_refuse_control_characters() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    let admin = tenant.admin.access();
    let path = format!("/api/v1/users/{}", tenant.admin.id());
    for (field, value) in [
        ("first_name", "Bob\r\nBcc: x@y.example"),
        ("last_name", "Lee\nX-Injected: 1"),
        ("first_name", "Zoë\u{7}"),
        ("last_name", "李\u{1b}[31m"),
        ("first_name", "Ann\u{85}Lee"),
    ] {
        let (status, body) = app.patch(&path, admin, json!({ field: value })).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}={value:?}: {body}");
        assert_eq!(fields(&body), [field], "{body}");
    }
    // Names in other alphabets are fine.
    let (status, body) = app.patch(&path, admin, json!({"first_name": "Ελένη", "last_name": "王"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Registration: the same rule (the invitation is checked after the fields).
    let (status, body) = app
        .post("/api/v1/auth/register", None, json!({"invitation_token": "x", "password": "long enough", "first_name": "Bob\r\nBcc: x@y.example", "last_name": "L\tee"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(fields(&body), ["first_name", "last_name"], "{body}");
    // Search boxes are single lines too.
    let (status, body) = app.get("/api/v1/users?search=ann%0D%0Alee", admin).await;
    assert_eq!((status, fields(&body)), (StatusCode::BAD_REQUEST, vec!["search".to_owned()]), "{body}");
    // Tenant name and invitation email on tenant-service.
    let t = format!("/api/v1/tenants/{}", tenant.id);
    let r = app.tenant_api.patch(&t, admin, json!({"name": "Acme\r\nInc"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body["details"]["fields"]["name"].is_string());
    let r = app.tenant_api.post(&format!("{t}/invitations"), admin, json!({"email": "a@b.example\r\nBcc: c@d.example", "role": "viewer"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body["details"]["fields"]["email"].is_string());
    let r = app
        .tenant_api
        .post("/api/v1/tenants", crm_testing::TEST_OPERATOR_TOKEN, json!({"name": "Evil\nCorp", "subdomain": crate::helpers::unique("e"), "admin_email": "a@b.example"}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body["details"]["fields"]["name"].is_string());
}

// ---- item 15 -------------------------------------------------------------------------

#[tokio::test]
async fn lists_refuse_sorts_outside_their_whitelist() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    let admin = tenant.admin.access();
    let me = tenant.admin.id();
    for path in [
        "/api/v1/users?sort=password_hash".to_owned(),
        "/api/v1/users?sort=-password_hash".to_owned(),
        "/api/v1/users?sort=id;DROP%20TABLE%20users".to_owned(),
        "/api/v1/users?sort=first_name".to_owned(),
        format!("/api/v1/users/{me}/audit?sort=changed_at"),
        format!("/api/v1/users/{me}/audit?sort=password"),
        format!("/api/v1/tenants/{}/invitations?sort=token_hash", tenant.id),
        format!("/api/v1/tenants/{}/invitations?sort=created_at", tenant.id),
        format!("/api/v1/tenants/{}/invitations?sort=email", tenant.id),
    ] {
        let api = if path.contains("/tenants/") { &app.tenant_api } else { &app.api };
        let r = api.get(&path, admin).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {}", r.body);
        assert_eq!(r.body["code"], "VALIDATION_FAILED", "{path}");
        assert!(fields(&r.body).contains(&"sort".to_owned()), "{path}: {}", r.body);
    }
    for path in [
        "/api/v1/users?sort=-email".to_owned(),
        "/api/v1/users?sort=last_name".to_owned(),
        format!("/api/v1/users/{me}/audit?sort=-changed_at"),
        format!("/api/v1/tenants/{}/invitations?sort=-created_at", tenant.id),
    ] {
        let api = if path.contains("/tenants/") { &app.tenant_api } else { &app.api };
        assert_eq!(api.get(&path, admin).await.status, StatusCode::OK, "{path}");
    }
}
