//! Issue 16 (S-fields): lead scores: the default rules, a score that changes when an email is
//! opened or clicked (events driven through the consumers), redelivery counted once, field
//! rules on contact changes, rule CRUD and the explanation endpoint.

use crm_client_communication::subjects::{EMAIL_CLICKED, EMAIL_OPENED};
use crm_events::Envelope;
use crm_tenant::TenantId;
use crm_testing::{TestTenants, start_consumers, wait_until};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

struct App {
    app: TestApp,
    tenants: TestTenants,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for App {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl std::ops::Deref for App {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.app
    }
}

async fn spawn() -> App {
    let app = spawn_app().await;
    let tenants = TestTenants::default();
    let prefix = format!("test-score-{}", ulid::Ulid::generate().to_string().to_ascii_lowercase());
    let tasks = start_consumers(&app.platform, &tenants, contact_service::consumers::consumers(&prefix), true).await;
    App { app, tenants, tasks }
}

impl App {
    async fn tenant(&self) -> Tenant {
        let t = self.app.tenant().await;
        self.tenants.watch(&t.id);
        t
    }

    async fn publish(&self, event: &Envelope) {
        let payload = serde_json::to_vec(event).expect("serialize");
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", event.id.as_str());
        headers.insert(crm_events::TENANT_HEADER, event.tenant_id.as_str());
        self.platform.jetstream.publish_with_headers(event.r#type.clone(), headers, payload.into()).await.expect("publish").await.expect("ack");
    }

    async fn score(&self, t: &Tenant, id: i64) -> Value {
        self.get(&format!("/api/v1/contacts/{id}/score"), &t.viewer).await.expect(StatusCode::OK)
    }

    /// Waits until the stored score is `want`.
    async fn wait_score(&self, t: &Tenant, id: i64, want: i64) -> Value {
        wait_until(&format!("score {want}"), EVENT_TIMEOUT, || async {
            let s = self.score(t, id).await;
            (s["stored_score"] == want).then_some(s)
        })
        .await
    }
}

fn email_event(tenant: &TenantId, subject: &str, contact_id: i64) -> Envelope {
    let data = json!({"email_id": 1, "activity_id": null, "contact_id": contact_id, "email_address": "ada@example.com", "template_id": null});
    Envelope::new(subject, tenant, None, data).expect("envelope")
}

#[tokio::test]
async fn a_score_changes_when_an_email_is_opened() {
    let app = spawn().await;
    let t = app.tenant().await;
    // Default rules: no points for a plain lead without a job title.
    let c = app.create_contact(&t.rep, json!({"first_name": "Ada", "email": "ada@example.com"})).await;
    let id = c["id"].as_i64().expect("id");
    let s = app.score(&t, id).await;
    assert_eq!((s["score"].as_i64(), s["stored_score"].as_i64()), (Some(0), Some(0)));

    // An open: +5 (the default "Opened an email" rule, fresh so not decayed yet).
    let opened = email_event(&t.id, EMAIL_OPENED, id);
    app.publish(&opened).await;
    let s = app.wait_score(&t, id, 5).await;
    assert_eq!(s["items"][0]["rule"], "Opened an email");
    assert_eq!(s["items"][0]["count"], 1);
    // The same event again (redelivery, another Nats-Msg-Id): counted once.
    let raw = serde_json::to_value(&opened).expect("json");
    let replay: Envelope = serde_json::from_value(raw).expect("envelope");
    app.publish(&replay).await;
    // A click: +10; after it the open still counts once (score 15, not 20).
    app.publish(&email_event(&t.id, EMAIL_CLICKED, id)).await;
    let s = app.wait_score(&t, id, 15).await;
    assert_eq!(s["score"], 15);
    assert_eq!(s["items"].as_array().map(Vec::len), Some(2));

    // Field rules follow contact changes (contact.updated): prospect +15, job title +5.
    app.patch(&format!("/api/v1/contacts/{id}"), &t.admin, json!({"status": "prospect", "job_title": "CTO"})).await.expect(StatusCode::OK);
    app.wait_score(&t, id, 35).await;
    // An event for a contact that does not exist is skipped (no error, nothing parked).
    app.publish(&email_event(&t.id, EMAIL_OPENED, 999_999)).await;
}

/// Signals of one contact handled at the same time by different consumers all count: a
/// consumer that read the contact's signals before another committed its own must not
/// overwrite the score with a stale sum (a lost update). The test holds the contact's row
/// lock (as an UPDATE takes it) while an open and a click arrive, so both consumers are
/// mid-transaction together, then lets them go.
#[tokio::test]
async fn signals_arriving_together_all_count() {
    let app = spawn().await;
    let t = app.tenant().await;
    for round in 0..2 {
        let body = json!({"first_name": format!("Race {round}"), "email": format!("race{round}@example.com")});
        let id = app.create_contact(&t.rep, body).await["id"].as_i64().expect("id");
        app.wait_score(&t, id, 0).await;
        let holder = app.platform.db.tenant(&t.id).await.expect("tenant tx");
        holder.execute("SELECT 1 FROM contacts WHERE id = $1 FOR NO KEY UPDATE", &[&(id as i32)]).await.expect("lock");
        app.publish(&email_event(&t.id, EMAIL_OPENED, id)).await;
        app.publish(&email_event(&t.id, EMAIL_CLICKED, id)).await;
        // Both consumers wait on the contact row (with the bug: at their UPDATE, each with a
        // sum that lacks the other's signal).
        let pool = app.platform.pool.clone();
        wait_until("both consumers waiting on the contact", EVENT_TIMEOUT, || async {
            let db = pool.get().await.expect("connection");
            let sql = "SELECT count(*) FROM pg_stat_activity \
                       WHERE datname = current_database() AND wait_event_type = 'Lock' AND query ILIKE '%contacts%'";
            let waiting: i64 = db.query_one(sql, &[]).await.expect("pg_stat_activity").get(0);
            (waiting >= 2).then_some(())
        })
        .await;
        holder.rollback().await.expect("release");
        // 5 for the open + 10 for the click (fresh: no decay yet).
        app.wait_score(&t, id, 15).await;
    }
}

#[tokio::test]
async fn scoring_rules_are_managed_by_admins_and_managers() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let defaults = app.get("/api/v1/scoring/rules", &t.viewer).await.expect(StatusCode::OK);
    let n = defaults["data"].as_array().map(Vec::len).unwrap_or_default();
    assert!(n >= 4, "{defaults}");
    assert!(defaults["data"].as_array().into_iter().flatten().all(|r| r["created_by"].is_null()));

    let body = json!({"name": "Gold tier", "kind": "field_value", "points": 20, "config": {"field": "tags", "equals": "vip"}});
    assert_eq!(app.post("/api/v1/scoring/rules", &t.rep, body.clone()).await.status, StatusCode::FORBIDDEN);
    let created = app.post("/api/v1/scoring/rules", &t.manager, body).await;
    let etag = created.header("etag").expect("etag").to_owned();
    let rule = created.expect(StatusCode::CREATED);
    let bad = app.post("/api/v1/scoring/rules", &t.admin, json!({"name": "x", "kind": "field_value", "points": 1, "config": {"field": "shoe_size", "equals": 1}})).await;
    assert_eq!(bad_fields(&bad), ["config.field"]);

    let c = app.create_contact(&t.admin, json!({"first_name": "Vip", "tags": ["vip"]})).await;
    let s = app.get(&format!("/api/v1/contacts/{}/score", c["id"]), &t.viewer).await.expect(StatusCode::OK);
    assert_eq!(s["score"], 20);
    assert_eq!(s["items"][0]["rule_id"], rule["id"]);

    // Disable it with PUT (If-Match), then delete it.
    let path = format!("/api/v1/scoring/rules/{}", rule["id"]);
    let put = json!({"name": "Gold tier", "kind": "field_value", "points": 20, "enabled": false, "config": {"field": "tags", "equals": "vip"}});
    let stale = app.send(app.builder(reqwest::Method::PUT, &path, Some(&t.admin)).header("if-match", "\"x\"").json(&put)).await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    app.send(app.builder(reqwest::Method::PUT, &path, Some(&t.admin)).header("if-match", etag).json(&put)).await.expect(StatusCode::OK);
    let s = app.get(&format!("/api/v1/contacts/{}/score", c["id"]), &t.viewer).await.expect(StatusCode::OK);
    assert_eq!(s["score"], 0);
    assert_eq!(app.delete(&path, &t.admin).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.delete(&path, &t.admin).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/api/v1/contacts/999999/score", &t.viewer).await.status, StatusCode::NOT_FOUND);
}

/// The score is on every contact, and lists filter (`min_score`, `max_score`) and sort
/// (`sort=-score`, paged by cursor) by it.
#[tokio::test]
async fn contacts_are_filtered_and_sorted_by_score() {
    let app = spawn().await;
    let t = app.tenant().await;
    let mut ids = Vec::new();
    // Default rules: prospect +15, a job title +5.
    for (name, body) in [
        ("Zero", json!({"status": "lead"})),
        ("Five", json!({"status": "lead", "job_title": "CTO"})),
        ("Twenty", json!({"status": "prospect", "job_title": "CEO"})),
    ] {
        let mut body = body;
        body["first_name"] = json!(name);
        ids.push(app.create_contact(&t.rep, body).await["id"].as_i64().expect("id"));
    }
    for (id, want) in ids.iter().zip([0, 5, 20]) {
        app.wait_score(&t, *id, want).await;
    }
    let c = app.get(&format!("/api/v1/contacts/{}", ids[2]), &t.viewer).await.expect(StatusCode::OK);
    assert_eq!(c["score"], 20);

    let page = app.get("/api/v1/contacts?sort=-score&limit=2", &t.viewer).await.expect(StatusCode::OK);
    let names: Vec<&str> = page["data"].as_array().into_iter().flatten().filter_map(|c| c["first_name"].as_str()).collect();
    assert_eq!(names, ["Twenty", "Five"]);
    let cursor = page["pagination"]["next_cursor"].as_str().expect("next page");
    let rest = app.get(&format!("/api/v1/contacts?sort=-score&limit=2&cursor={cursor}"), &t.viewer).await.expect(StatusCode::OK);
    assert_eq!(rest["data"][0]["first_name"], "Zero");
    let up = app.get("/api/v1/contacts?sort=score&limit=1", &t.viewer).await.expect(StatusCode::OK);
    assert_eq!(up["data"][0]["first_name"], "Zero");

    let some = app.get("/api/v1/contacts?min_score=5&max_score=19", &t.viewer).await.expect(StatusCode::OK);
    assert_eq!(some["pagination"]["total_count"], 1);
    assert_eq!(some["data"][0]["first_name"], "Five");
    let bad = app.get("/api/v1/contacts?min_score=lots", &t.viewer).await;
    assert_eq!(bad_fields(&bad), ["min_score"]);
}
