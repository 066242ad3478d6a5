//! Issue 16 (history): a contact PATCH through contact-service appears in the audit log read
//! from auth-service (real `crm serve`, real consumers), with the old and new values, the
//! actor, the request id of the PATCH and the time; only admins read it; filters and the
//! cursor work.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::*;

/// Waits until the contact's history has an entry of `action`; returns it.
async fn wait_entry(api: &Api, token: &str, contact_id: &Value, action: &str) -> Value {
    let path = format!("/api/v1/audit?resource=contact&resource_id={contact_id}");
    crm_testing::wait_until(&format!("the contact.{action} audit entry of {contact_id}"), WAIT, || async {
        let r = api.get(&path, token).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
        r.body["data"].as_array().and_then(|d| d.iter().find(|e| e["action"] == action).cloned())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patch_shows_its_old_and_new_values_in_the_audit_log() {
    let (crm, _db, _nats) = Crm::start().await;
    let api = crm.api();
    let admin = signup_admin(&api, "Audit Inc", "audit").await;
    let contact = api
        .create("/api/v1/contacts", &admin.token, json!({"first_name": "Ada", "last_name": "Byron", "email": "ada@audit.example", "job_title": "Analyst"}))
        .await;
    let id = contact["id"].clone();

    let r = api
        .try_call(
            Method::PATCH,
            &format!("/api/v1/contacts/{id}"),
            Some(&admin.token),
            &[("X-Request-ID", "audit-e2e-patch-1")],
            Some(json!({"last_name": "Lovelace", "job_title": "Mathematician"})),
        )
        .await
        .expect("PATCH");
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let updated = wait_entry(&api, &admin.token, &id, "updated").await;
    assert_eq!(updated["event_type"], "contact.updated", "{updated}");
    assert_eq!(updated["resource_id"], id.to_string(), "{updated}");
    assert_eq!(
        updated["changes"],
        json!({"last_name": {"old": "Byron", "new": "Lovelace"}, "job_title": {"old": "Analyst", "new": "Mathematician"}}),
        "only the changed fields, old -> new: {updated}"
    );
    assert_eq!(updated["actor_id"], admin.user_id, "{updated}");
    assert_eq!(updated["actor"], admin.user_id.to_string(), "{updated}");
    assert_eq!(updated["request_id"], "audit-e2e-patch-1", "{updated}");
    assert!(updated["occurred_at"].as_str().is_some_and(|t| t.parse::<chrono::DateTime<chrono::Utc>>().is_ok()), "{updated}");
    assert_eq!(updated["data"]["last_name"], "Lovelace", "{updated}");

    // The create is there too, older; newest first.
    let created = wait_entry(&api, &admin.token, &id, "created").await;
    assert!(created["changes"].is_null(), "{created}");
    let path = format!("/api/v1/audit?resource=contact&resource_id={id}&limit=1");
    let first = api.get(&path, &admin.token).await;
    assert_eq!(first.body["data"][0]["action"], "updated", "{}", first.body);
    let cursor = first.body["pagination"]["next_cursor"].as_str().expect("a second page").to_owned();
    let second = api.get(&format!("{path}&cursor={cursor}"), &admin.token).await;
    assert_eq!(second.body["data"][0]["action"], "created", "{}", second.body);

    // Filters: by actor and by time.
    let mine = api.get(&format!("/api/v1/audit?actor={}&resource=contact", admin.user_id), &admin.token).await;
    assert!(mine.body["data"].as_array().is_some_and(|d| d.len() >= 2), "{}", mine.body);
    let future = api.get("/api/v1/audit?from=2999-01-01T00:00:00Z", &admin.token).await;
    assert_eq!(future.body["data"], json!([]), "{}", future.body);
    let bad = api.get("/api/v1/audit?from=yesterday", &admin.token).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    assert!(bad.body["details"].to_string().contains("from"), "{}", bad.body);

    // A deal PATCH through deal-service: its diff too.
    let deal = api.create("/api/v1/deals", &admin.token, json!({"title": "Audit deal", "value": 100.0})).await;
    let r = api.patch(&format!("/api/v1/deals/{}", deal["id"]), &admin.token, json!({"title": "Audit deal (renamed)", "value": 250.5})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let path = format!("/api/v1/audit?resource=deal&resource_id={}", deal["id"]);
    let deal_entry = crm_testing::wait_until("the deal.updated audit entry", WAIT, || async {
        let r = api.get(&path, &admin.token).await;
        r.body["data"].as_array().and_then(|d| d.iter().find(|e| e["action"] == "updated").cloned())
    })
    .await;
    assert_eq!(
        deal_entry["changes"],
        json!({"title": {"old": "Audit deal", "new": "Audit deal (renamed)"}, "value": {"old": 100.0, "new": 250.5}}),
        "{deal_entry}"
    );

    // Admins only.
    let manager = invite_user(&api, &admin, "manager@audit.example", "manager").await;
    let r = api.get("/api/v1/audit", &manager.token).await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "FORBIDDEN"), "{}", r.body);
}
