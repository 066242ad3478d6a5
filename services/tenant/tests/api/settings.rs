//! Issue 15: tenant settings (`GET/PATCH /tenants/{id}/settings`), their event and the
//! inactive-lead schedule row the setting turns on and off.

use crm_client_tenant::subjects::TENANT_SETTINGS_UPDATED;
use crm_testing::TEST_OPERATOR_TOKEN;
use crm_web::Role;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

async fn scheduled(app: &TestApp, tenant: &crm_tenant::TenantId) -> bool {
    let client = app.platform.pool.get().await.expect("connection");
    client
        .query_opt("SELECT 1 FROM platform.inactive_lead_schedule WHERE tenant_id = $1", &[&tenant.to_string()])
        .await
        .expect("schedule")
        .is_some()
}

#[tokio::test]
async fn members_read_the_defaults_and_admins_change_them_with_an_event() {
    let app = spawn_app().await;
    let a = app.signup().await;
    let b = app.signup().await;
    let path = format!("/api/v1/tenants/{}/settings", a.id);
    let admin = app.token(&a.id, Role::Admin);

    let r = app.get(&path, Some(&app.token(&a.id, Role::Viewer))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body, json!({"inactive_lead_days": null, "marketing_consent_policy": "opt_in", "trash_retention_days": 30}));
    let first = r.header("etag").expect("ETag").to_owned();
    assert_eq!(app.get(&path, Some(&app.token(&a.id, Role::Service))).await.status, StatusCode::OK, "service tokens read it");
    assert_eq!(app.get(&path, Some(TEST_OPERATOR_TOKEN)).await.status, StatusCode::OK);
    assert_eq!(app.get(&path, Some(&app.token(&b.id, Role::Admin))).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&path, None).await.status, StatusCode::UNAUTHORIZED);
    assert!(!scheduled(&app, &a.id).await);

    let mut events = app.platform.events(TENANT_SETTINGS_UPDATED).await;
    let r = app
        .send(app.client.builder(Method::PATCH, &path, Some(&admin)).header("if-match", &first).json(&json!({"inactive_lead_days": 14, "marketing_consent_policy": "opt_out"})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body, json!({"inactive_lead_days": 14, "marketing_consent_policy": "opt_out", "trash_retention_days": 30}));
    let second = r.header("etag").expect("ETag").to_owned();
    assert_ne!(first, second);
    let event = events.wait_for(&a.id, TENANT_SETTINGS_UPDATED, EVENT_TIMEOUT).await;
    assert_eq!(event.data["tenant_id"], a.id.to_string());
    assert_eq!(event.data["settings"]["inactive_lead_days"], 14);
    assert_eq!(event.actor.as_deref(), Some("1"));
    assert!(scheduled(&app, &a.id).await, "the inactive-lead job is scheduled");
    assert_eq!(app.get(&path, Some(&admin)).await.header("etag"), Some(second.as_str()));

    // A stale version is 412 and changes nothing.
    let r = app.send(app.client.builder(Method::PATCH, &path, Some(&admin)).header("if-match", &first).json(&json!({"trash_retention_days": 7}))).await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(app.get(&path, Some(&admin)).await.body["trash_retention_days"], 30);

    // null turns the job off; only admins change settings; other tenants do not see them.
    let r = app.patch(&path, Some(&admin), json!({"inactive_lead_days": null})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body["inactive_lead_days"].is_null());
    assert_eq!(r.body["marketing_consent_policy"], "opt_out", "untouched fields keep their value");
    assert!(!scheduled(&app, &a.id).await);
    for role in [Role::Manager, Role::SalesRep, Role::Viewer, Role::Service] {
        assert_eq!(app.patch(&path, Some(&app.token(&a.id, role)), json!({"trash_retention_days": 7})).await.status, StatusCode::FORBIDDEN, "{role:?}");
    }
    assert_eq!(app.patch(&path, Some(&app.token(&b.id, Role::Admin)), json!({"trash_retention_days": 7})).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/api/v1/tenants/{}/settings", b.id), Some(&app.token(&b.id, Role::Admin))).await.body["marketing_consent_policy"], "opt_in");
}

#[tokio::test]
async fn bad_settings_are_400_naming_every_field() {
    let app = spawn_app().await;
    let a = app.signup().await;
    let path = format!("/api/v1/tenants/{}/settings", a.id);
    let admin = app.token(&a.id, Role::Admin);
    let r = app.patch(&path, Some(&admin), json!({"inactive_lead_days": 0, "marketing_consent_policy": "maybe", "trash_retention_days": 3651})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let fields = &r.body["details"]["fields"];
    for field in ["inactive_lead_days", "marketing_consent_policy", "trash_retention_days"] {
        assert!(fields[field].is_string(), "{field}: {}", r.body);
    }
    for body in [json!({}), json!({"inactive_lead_days": "30"}), json!({"inactive_lead_days": 3651}), json!({"trash_retention_days": null}), json!({"plan": "gold"})] {
        let r = app.patch(&path, Some(&admin), body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
    }
    for days in [1, 3650] {
        let r = app.patch(&path, Some(&admin), json!({"inactive_lead_days": days, "trash_retention_days": days})).await;
        assert_eq!(r.status, StatusCode::OK, "{days}: {}", r.body);
    }
    assert_eq!(app.get("/api/v1/tenants/not-a-ulid/settings", Some(TEST_OPERATOR_TOKEN)).await.status, StatusCode::NOT_FOUND);
}
