use crm_client_tenant::subjects::{TENANT_CREATED, TENANT_DELETED, TENANT_UPDATED, TENANT_USER_INVITED};
use crm_testing::TEST_OPERATOR_TOKEN;
use crm_web::Role;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tenant_service::Settings;

use crate::helpers::{EVENT_TIMEOUT, error_code, spawn_app, spawn_app_with, unique_subdomain};

#[tokio::test]
async fn signup_provisions_the_schema_and_returns_an_admin_invitation() {
    let app = spawn_app().await;
    let mut created = app.platform.events(TENANT_CREATED).await;
    let mut invited = app.platform.events(TENANT_USER_INVITED).await;
    let subdomain = unique_subdomain();
    let r = app
        .post("/api/v1/tenants", None, json!({"name": "  Acme Inc ", "subdomain": subdomain.to_uppercase(), "admin_email": "Boss@Acme.Example"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let tenant = &r.body["tenant"];
    assert_eq!(tenant["name"], "Acme Inc");
    assert_eq!(tenant["subdomain"], subdomain, "case-folded");
    assert_eq!(tenant["status"], "active");
    let id = crm_tenant::TenantId::parse(tenant["id"].as_str().unwrap()).unwrap();
    assert!(tenant.get("schema_name").is_none(), "the schema is internal: {tenant}");
    let _ = id;
    let invitation = &r.body["invitation"];
    assert_eq!(invitation["role"], "admin");
    assert_eq!(invitation["email"], "boss@acme.example");
    assert_eq!(invitation["status"], "pending");
    assert_eq!(invitation["token"].as_str().unwrap().len(), 43);

    let tables = app.schema_tables(&id).await;
    for set in crm_database::schema::TENANT_SETS {
        assert!(tables.contains(&format!("{}_schema_history", set.name)), "{} in {tables:?}", set.name);
    }
    assert!(tables.contains(&"outbox".to_owned()));

    let event = created.wait_for(&id, TENANT_CREATED, EVENT_TIMEOUT).await;
    assert_eq!(event.data["subdomain"], subdomain);
    assert_eq!(event.data["status"], "active");
    let event = invited.wait_for(&id, TENANT_USER_INVITED, EVENT_TIMEOUT).await;
    assert_eq!(event.data["token"], invitation["token"], "the email sender gets the token");
}

#[tokio::test]
async fn signup_input_is_validated_field_by_field() {
    let app = spawn_app().await;
    let op = Some(TEST_OPERATOR_TOKEN);
    let r = app.post("/api/v1/tenants", op, json!({"name": "", "subdomain": "-bad-", "admin_email": "nope"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&r), "VALIDATION_FAILED");
    let fields = &r.body["details"]["fields"];
    assert!(fields["name"].is_string() && fields["subdomain"].is_string() && fields["admin_email"].is_string(), "{}", r.body);

    for (subdomain, why) in [("www", "reserved"), ("ab", "short"), ("a_b_c", "charset"), ("x".repeat(64).as_str(), "long")] {
        let r = app.post("/api/v1/tenants", op, json!({"name": "X", "subdomain": subdomain, "admin_email": "a@b.co"})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{why}");
        assert!(r.body["details"]["fields"]["subdomain"].is_string(), "{why}: {}", r.body);
    }
    let r = app.post("/api/v1/tenants", op, json!({"name": "X"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "missing fields: {}", r.body);
    let r = app
        .http
        .post(format!("{}/api/v1/tenants", app.url))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_taken_subdomain_is_a_conflict_even_when_racing() {
    let app = spawn_app().await;
    let tenant = app.signup().await;
    let r = app
        .post("/api/v1/tenants", Some(TEST_OPERATOR_TOKEN), json!({"name": "Other", "subdomain": tenant.subdomain.to_uppercase(), "admin_email": "a@b.co"}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(error_code(&r), "SUBDOMAIN_TAKEN");

    for _ in 0..3 {
        let subdomain = unique_subdomain();
        let body = json!({"name": "Race", "subdomain": subdomain, "admin_email": "a@b.co"});
        let (a, b) = tokio::join!(
            app.post("/api/v1/tenants", Some(TEST_OPERATOR_TOKEN), body.clone()),
            app.post("/api/v1/tenants", Some(TEST_OPERATOR_TOKEN), body.clone()),
        );
        let mut statuses = [a.status, b.status];
        statuses.sort();
        assert_eq!(statuses, [StatusCode::CREATED, StatusCode::CONFLICT]);
        let client = app.platform.pool.get().await.unwrap();
        let rows: i64 = client
            .query_one("SELECT count(*) FROM platform.tenants WHERE subdomain = $1", &[&subdomain])
            .await
            .unwrap()
            .get(0);
        assert_eq!(rows, 1);
        let schemas: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_namespace n JOIN platform.tenants t ON t.schema_name = n.nspname WHERE t.subdomain = $1",
                &[&subdomain],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(schemas, 1);
    }
}

#[tokio::test]
async fn closed_signup_needs_the_operator_and_open_signup_is_rate_limited() {
    let closed = spawn_app_with(Settings { signup_open: false, ..Settings::default() }).await;
    let body = json!({"name": "X", "subdomain": unique_subdomain(), "admin_email": "a@b.co"});
    let r = closed.post("/api/v1/tenants", None, body.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&r), "SIGNUP_CLOSED");
    let r = closed.post("/api/v1/tenants", Some(TEST_OPERATOR_TOKEN), body).await;
    assert_eq!(r.status, StatusCode::CREATED);

    // The per-IP window is shared by every test of the run (all from 127.0.0.1): a limit of
    // zero shows the refusal without depending on what other tests did.
    let limited = spawn_app_with(Settings { signup_per_ip_per_hour: 0, ..Settings::default() }).await;
    let r = limited.post("/api/v1/tenants", None, json!({"name": "X", "subdomain": unique_subdomain(), "admin_email": "a@b.co"})).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(error_code(&r), "RATE_LIMITED");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry));
}

#[tokio::test]
async fn lookup_by_subdomain_is_public_and_shows_the_status() {
    let app = spawn_app().await;
    let tenant = app.signup().await;
    let r = app.get(&format!("/api/v1/tenants/by-subdomain/{}", tenant.subdomain.to_uppercase()), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["id"], tenant.id.to_string());
    assert_eq!(r.body["status"], "active");
    let r = app.get("/api/v1/tenants/by-subdomain/no-such-tenant-here", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&r), "NOT_FOUND");
}

#[tokio::test]
async fn tenant_details_are_for_members_and_the_operator_only() {
    let app = spawn_app().await;
    let a = app.signup().await;
    let b = app.signup().await;
    let path = format!("/api/v1/tenants/{}", a.id);
    let r = app.get(&path, Some(&app.token(&a.id, Role::Viewer))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["subdomain"], a.subdomain);
    assert!(r.body["created_at"].is_string());
    assert_eq!(app.get(&path, Some(TEST_OPERATOR_TOKEN)).await.status, StatusCode::OK);
    assert_eq!(app.get(&format!("{path}/basic"), Some(&app.token(&a.id, Role::Service))).await.status, StatusCode::OK);

    let other = app.get(&path, Some(&app.token(&b.id, Role::Admin))).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND, "another tenant's id is not found, not forbidden");
    assert_eq!(app.get(&format!("{path}/basic"), Some(&app.token(&b.id, Role::Service))).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&path, None).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/api/v1/tenants/not-a-ulid", Some(TEST_OPERATOR_TOKEN)).await.status, StatusCode::NOT_FOUND);
    let mismatch = app
        .http
        .get(format!("{}{path}", app.url))
        .bearer_auth(app.token(&a.id, Role::Admin))
        .header("X-Tenant-ID", b.id.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(mismatch.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn admins_rename_and_only_the_operator_suspends_with_immediate_effect() {
    let app = spawn_app().await;
    let a = app.signup().await;
    let b = app.signup().await;
    let path = format!("/api/v1/tenants/{}", a.id);
    let admin = app.token(&a.id, Role::Admin);
    let mut updated = app.platform.events(TENANT_UPDATED).await;

    let r = app.patch(&path, Some(&admin), json!({"name": "Acme Renamed"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["name"], "Acme Renamed");
    let event = updated.wait_for(&a.id, TENANT_UPDATED, crate::helpers::EVENT_TIMEOUT).await;
    assert_eq!(event.data["name"], "Acme Renamed");

    assert_eq!(app.patch(&path, Some(&app.token(&a.id, Role::Manager)), json!({"name": "X"})).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.patch(&path, Some(&admin), json!({"status": "suspended"})).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.patch(&path, Some(&app.token(&b.id, Role::Admin)), json!({"name": "X"})).await.status, StatusCode::NOT_FOUND);
    let r = app.patch(&path, Some(&admin), json!({})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = app.patch(&path, Some(TEST_OPERATOR_TOKEN), json!({"status": "deleted"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body["details"]["fields"]["status"].is_string());
    let r = app.patch(&path, Some(&admin), json!({"name": "X", "plan": "gold"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "unknown fields are refused");

    // Suspension: the member token is refused on the very next request.
    assert_eq!(app.get(&path, Some(&admin)).await.status, StatusCode::OK);
    let r = app.patch(&path, Some(TEST_OPERATOR_TOKEN), json!({"status": "suspended"})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["status"], "suspended");
    let r = app.get(&path, Some(&admin)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&r), "TENANT_SUSPENDED");
    let r = app.get(&format!("/api/v1/tenants/by-subdomain/{}", a.subdomain), None).await;
    assert_eq!(r.body["status"], "suspended");
    let r = app.patch(&path, Some(TEST_OPERATOR_TOKEN), json!({"status": "active"})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(app.get(&path, Some(&admin)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_operator_deletes_a_tenant_with_its_schema() {
    let app = spawn_app().await;
    let a = app.signup().await;
    let path = format!("/api/v1/tenants/{}", a.id);
    let mut deleted = app.platform.events(TENANT_DELETED).await;
    assert_eq!(app.delete(&path, Some(&app.token(&a.id, Role::Admin))).await.status, StatusCode::UNAUTHORIZED);
    assert!(!app.schema_tables(&a.id).await.is_empty());

    assert_eq!(app.delete(&path, Some(TEST_OPERATOR_TOKEN)).await.status, StatusCode::NO_CONTENT);
    assert!(app.schema_tables(&a.id).await.is_empty(), "schema dropped");
    deleted.wait_for(&a.id, TENANT_DELETED, crate::helpers::EVENT_TIMEOUT).await;
    assert_eq!(app.get(&path, Some(TEST_OPERATOR_TOKEN)).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.delete(&path, Some(TEST_OPERATOR_TOKEN)).await.status, StatusCode::NOT_FOUND);
    let r = app.get(&path, Some(&app.token(&a.id, Role::Admin))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "tokens of a deleted tenant stop working");
}

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let doc = tenant_service::openapi();
    let paths = doc["paths"].as_object().unwrap();
    for p in ["/api/v1/tenants", "/api/v1/tenants/{id}", "/api/v1/invitations/{token}/accept", "/api/v1/tenants/{id}/invitations"] {
        assert!(paths.contains_key(p), "{p}");
    }
}

#[tokio::test]
async fn signups_take_spare_schemas_ready_in_advance() {
    // Only this test's app uses spares, so the spare it makes is the one its signup takes.
    let app = spawn_app_with(Settings { spare_schemas: 1, ..Settings::default() }).await;
    let spare = tenant_service::spares::create_spare(&app.state.db).await.expect("spare");
    assert!(!app.schema_tables(&spare).await.is_empty(), "a spare is a fully migrated schema");

    let mut ours = None;
    for _ in 0..20 {
        let tenant = app.signup().await;
        if tenant.id == spare {
            ours = Some(tenant);
            break;
        }
    }
    let tenant = ours.expect("a signup took the spare");
    let r = app.get(&format!("/api/v1/tenants/{}", tenant.id), Some(&app.token(&tenant.id, Role::Admin))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["id"], spare.to_string());
    let client = app.platform.pool.get().await.unwrap();
    let left: i64 = client
        .query_one("SELECT count(*) FROM platform.spare_schemas WHERE tenant_id = $1", &[&spare.to_string()])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "the spare is no longer offered");
}

fn keys(v: &serde_json::Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
    k.sort();
    k
}

/// Issue 12 item 17: the public lookup carries what a login page needs and nothing internal;
/// so do the other answers about tenants (signup, details, basic) and invitations.
#[tokio::test]
async fn public_answers_carry_no_internal_details() {
    let app = spawn_app().await;
    let tenant = app.signup().await;
    let r = app.get(&format!("/api/v1/tenants/by-subdomain/{}", tenant.subdomain), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(keys(&r.body), ["id", "name", "status", "subdomain"], "{}", r.body);
    assert_eq!(r.body["name"], "Acme Inc");
    let admin = app.token(&tenant.id, Role::Admin);
    let service = app.token(&tenant.id, Role::Service);
    for (path, token) in [
        (format!("/api/v1/tenants/{}", tenant.id), &admin),
        (format!("/api/v1/tenants/{}/basic", tenant.id), &service),
    ] {
        let r = app.get(&path, Some(token)).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body.get("schema_name").is_none(), "{path}: {}", r.body);
        assert!(!r.body.to_string().contains(tenant.id.schema().as_str()), "{path}: {}", r.body);
    }
    let r = app.get(&format!("/api/v1/invitations/{}", tenant.invitation_token), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(keys(&r.body), ["email", "expires_at", "id", "role", "status", "tenant_id"], "{}", r.body);
    // The signup answer and the PATCH answer.
    let subdomain = unique_subdomain();
    let r = app.post("/api/v1/tenants", Some(TEST_OPERATOR_TOKEN), json!({"name": "N", "subdomain": subdomain, "admin_email": "a@n.example"})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert!(!r.body.to_string().contains("schema_name") && !r.body.to_string().contains("tenant_01"), "{}", r.body);
    assert!(r.body["invitation"].get("token_hash").is_none());
    let r = app.patch(&format!("/api/v1/tenants/{}", tenant.id), Some(&admin), json!({"name": "Renamed"})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.get("schema_name").is_none(), "{}", r.body);
    // Unknown subdomains and malformed ones alike: 404 without detail.
    for bad in ["no-such-tenant", "a", "UPPER-case-no", "x%20y"] {
        let r = app.get(&format!("/api/v1/tenants/by-subdomain/{bad}"), None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{bad}");
    }
}

/// Issue 12 item 12: a NUL character in the lookup's path (and in other inputs of this
/// service) is 400 `VALIDATION_FAILED` naming the field, never 500.
#[tokio::test]
async fn nul_characters_and_wrong_types_are_400_naming_the_field() {
    let app = spawn_app().await;
    let tenant = app.signup().await;
    let admin = app.token(&tenant.id, Role::Admin);
    for path in ["/api/v1/tenants/by-subdomain/ac%00me", "/api/v1/tenants/by-subdomain/%00", "/api/v1/invitations/tok%00en"] {
        let r = app.get(path, None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {}", r.body);
        assert_eq!(error_code(&r), "VALIDATION_FAILED", "{path}");
        assert!(r.body["details"]["fields"].as_object().is_some_and(|f| f.len() == 1), "{path}: {}", r.body);
    }
    let invitations = format!("/api/v1/tenants/{}/invitations", tenant.id);
    for (method, path, body, field) in [
        (Method::POST, "/api/v1/tenants".to_owned(), Some(json!({"name": "A\u{0}cme", "subdomain": "acme-nul", "admin_email": "a@b.example"})), "name"),
        (Method::POST, "/api/v1/tenants".to_owned(), Some(json!({"name": "Acme", "subdomain": "ac\u{0}me", "admin_email": "a@b.example"})), "subdomain"),
        (Method::POST, "/api/v1/tenants".to_owned(), Some(json!({"name": ["Acme"], "subdomain": "acme-x", "admin_email": "a@b.example"})), "name"),
        (Method::POST, "/api/v1/tenants".to_owned(), Some(json!({"name": "Acme", "subdomain": "acme-x"})), "admin_email"),
        (Method::PATCH, format!("/api/v1/tenants/{}", tenant.id), Some(json!({"name": "Ac\u{0}me"})), "name"),
        (Method::PATCH, format!("/api/v1/tenants/{}", tenant.id), Some(json!({"name": 12})), "name"),
        (Method::POST, invitations.clone(), Some(json!({"email": "a\u{0}@b.example", "role": "viewer"})), "email"),
        (Method::POST, invitations.clone(), Some(json!({"email": "a@b.example", "role": 3})), "role"),
        (Method::GET, format!("{invitations}?status=pen%00ding"), None, "status"),
        (Method::GET, format!("{invitations}?count=perhaps"), None, "count"),
    ] {
        let token = if path == "/api/v1/tenants" { TEST_OPERATOR_TOKEN.to_owned() } else { admin.clone() };
        let r = app.client.request(method.clone(), &path, Some(&token), body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{method} {path} {body:?}: {}", r.body);
        assert_eq!(error_code(&r), "VALIDATION_FAILED", "{method} {path}");
        assert!(r.body["details"]["fields"][field].is_string(), "{method} {path}: {}", r.body);
    }
}

/// Issue 12 item 16: with tenant addresses (`<sub>.<BASE_DOMAIN>`), a member token of
/// tenant B sent to tenant A's address gets 403 `TENANT_MISMATCH`, even for B's own record.
#[tokio::test]
async fn a_token_on_another_tenants_address_is_403_tenant_mismatch() {
    let app = spawn_app().await;
    let a = app.signup().await;
    let b = app.signup().await;
    let b_admin = app.token(&b.id, Role::Admin);
    let host = format!("{}.crm.localhost", a.subdomain);
    for path in [format!("/api/v1/tenants/{}", b.id), format!("/api/v1/tenants/{}", a.id), format!("/api/v1/tenants/{}/invitations", b.id)] {
        let r = app.send(app.client.builder(Method::GET, &path, Some(&b_admin)).header("host", &host)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {}", r.body);
        assert_eq!(error_code(&r), "TENANT_MISMATCH", "{path}");
    }
    // On its own address: its tenant.
    let own = format!("{}.crm.localhost", b.subdomain);
    let r = app.send(app.client.builder(Method::GET, &format!("/api/v1/tenants/{}", b.id), Some(&b_admin)).header("host", own)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

/// Issue 12 item 11: the tenant answers with an `ETag`; a PATCH or DELETE with a stale
/// `If-Match` gets 412 and changes nothing; without If-Match it works as before.
#[tokio::test]
async fn tenant_writes_honour_if_match() {
    let app = spawn_app().await;
    let tenant = app.signup().await;
    let admin = app.token(&tenant.id, Role::Admin);
    let path = format!("/api/v1/tenants/{}", tenant.id);
    let r = app.get(&path, Some(&admin)).await;
    let first = r.header("etag").expect("ETag on GET").to_owned();
    // Two admins read the same version; the first saves, the second's copy is stale.
    let r = app.send(app.client.builder(Method::PATCH, &path, Some(&admin)).header("if-match", &first).json(&json!({"name": "First"}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let second = r.header("etag").expect("ETag on PATCH").to_owned();
    assert_ne!(first, second);
    let r = app.send(app.client.builder(Method::PATCH, &path, Some(&admin)).header("if-match", &first).json(&json!({"name": "Second"}))).await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "{}", r.body);
    assert_eq!(error_code(&r), "PRECONDITION_FAILED");
    assert_eq!(app.get(&path, Some(&admin)).await.body["name"], "First", "nothing changed");
    // A list holding the current tag passes, so does `*`, so does no If-Match.
    let r = app.send(app.client.builder(Method::PATCH, &path, Some(&admin)).header("if-match", format!("\"1\", {second}")).json(&json!({"name": "Third"}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let third = r.header("etag").unwrap().to_owned();
    let r = app.send(app.client.builder(Method::PATCH, &path, Some(&admin)).header("if-match", "*").json(&json!({"name": "Fourth"}))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_ne!(r.header("etag").unwrap(), third);
    assert_eq!(app.patch(&path, Some(&admin), json!({"name": "No precondition"})).await.status, StatusCode::OK);
    // A malformed If-Match is 400; the operator's DELETE with a stale tag is 412 and deletes nothing.
    let r = app.send(app.client.builder(Method::PATCH, &path, Some(&admin)).header("if-match", "not-quoted").json(&json!({"name": "X"}))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = app.send(app.client.builder(Method::DELETE, &path, Some(TEST_OPERATOR_TOKEN)).header("if-match", &first)).await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(app.get(&path, Some(&admin)).await.status, StatusCode::OK, "still there");
    let current = app.get(&path, Some(&admin)).await.header("etag").unwrap().to_owned();
    let r = app.send(app.client.builder(Method::DELETE, &path, Some(TEST_OPERATOR_TOKEN)).header("if-match", current)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    // Cross-tenant: another tenant's admin with the right tag still gets 404.
    let other = app.signup().await;
    let third = app.signup().await;
    let other_path = format!("/api/v1/tenants/{}", other.id);
    let tag = app.get(&other_path, Some(&app.token(&other.id, Role::Admin))).await.header("etag").unwrap().to_owned();
    let intruder = app.token(&third.id, Role::Admin);
    let r = app.send(app.client.builder(Method::PATCH, &other_path, Some(&intruder)).header("if-match", tag).json(&json!({"name": "Taken"}))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&other_path, Some(&app.token(&other.id, Role::Admin))).await.body["name"], "Acme Inc");
}
