//! Issue 12 item 9: records gone in other services. `contact.deleted` erases the person's
//! emails and the activities and tasks about them; `company.deleted` and `deal.deleted` drop
//! the references. Each consumer is idempotent and out-of-order safe.

use crm_client_contact::subjects::{COMPANY_DELETED, CONTACT_DELETED};
use crm_client_contact::{CompanyBasicInfo, ContactBasicInfo};
use crm_client_deal::DealBasicInfo;
use crm_client_deal::subjects::DEAL_DELETED;
use crm_events::Envelope;
use crm_testing::wait_until;
use crm_web::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::consumers::closed_won;
use crate::helpers::*;

fn contact_deleted(tenant: &crm_tenant::TenantId, id: i32) -> Envelope {
    let data = ContactBasicInfo { id, first_name: "Ada".into(), last_name: "Lovelace".into(), email: "ada@example.com".into(), marketing_consent: Default::default() };
    Envelope::new(CONTACT_DELETED, tenant, Some(ADMIN.to_string()), data).expect("envelope")
}

fn company_deleted(tenant: &crm_tenant::TenantId, id: i32) -> Envelope {
    Envelope::new(COMPANY_DELETED, tenant, Some(ADMIN.to_string()), CompanyBasicInfo { id, name: "Acme & Sons".into() }).expect("envelope")
}

fn deal_deleted(tenant: &crm_tenant::TenantId, id: i32) -> Envelope {
    let data = DealBasicInfo { id, title: "Big deal".into(), stage: "proposal".into(), value: 5000.0 };
    Envelope::new(DEAL_DELETED, tenant, Some(ADMIN.to_string()), data).expect("envelope")
}

async fn wait_count(app: &TestApp, tenant: &crm_tenant::TenantId, table: &str, condition: &str, n: i64) {
    wait_until(&format!("{n} rows in {table} where {condition}"), WAIT, || async { (app.count(tenant, table, condition).await == n).then_some(()) }).await;
}

#[tokio::test]
async fn erasing_a_contact_removes_its_emails_activities_and_tasks() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let rep = app.token(&t, REP, Role::SalesRep);
    // An email to Ada (address, subject and bodies stored), delivered.
    let sent = app
        .post("/api/v1/emails", &rep, json!({"contact_id": ADA, "subject": "Ihre Anfrage, Frau Lovelace", "body_html": "<p>Private details for Ada</p>", "body_text": "Private details for Ada"}))
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.body);
    let (email_id, email_activity) = (sent.body["email"]["id"].clone(), sent.body["activity"]["id"].clone());
    app.smtp.wait_for("ada@example.com", "Private details for Ada").await;
    wait_count(&app, &t.id, "email_tracking", &format!("id = {email_id} AND status = 'sent'"), 1).await;
    // Notes and a task people wrote about Ada, a won deal's generated note and task, and a
    // call with someone else.
    let call = app
        .post(
            "/api/v1/activities",
            &rep,
            json!({"type": "call", "subject": "Call with Ada", "description": "She mentioned her health", "contact_id": ADA, "outcome": "ok"}),
        )
        .await;
    assert_eq!(call.status, StatusCode::CREATED, "{}", call.body);
    let task = app.post("/api/v1/tasks", &rep, json!({"title": "Send Ada the brochure", "contact_id": ADA})).await;
    assert_eq!(task.status, StatusCode::CREATED, "{}", task.body);
    let won = closed_won(&t.id, 601, "Ada's renewal", Some(REP));
    app.publish(&won, &won.id).await;
    wait_count(&app, &t.id, "tasks", "deal_id = 601", 1).await;
    let other = app.post("/api/v1/activities", &rep, json!({"type": "note", "subject": "Nemo called", "contact_id": NO_EMAIL})).await;
    assert_eq!(other.status, StatusCode::CREATED, "{}", other.body);

    let erased = contact_deleted(&t.id, ADA);
    app.publish(&erased, &erased.id).await;
    wait_count(&app, &t.id, "gone_references", &format!("kind = 'contact' AND id = {ADA}"), 1).await;

    // Nothing of the person's email is kept: no row, no address, no body.
    assert_eq!(app.count(&t.id, "email_tracking", &format!("contact_id = {ADA} OR email_address = 'ada@example.com'")).await, 0);
    assert_eq!(app.count(&t.id, "activities", &format!("contact_id = {ADA} OR id IN ({email_activity}, {})", call.body["id"])).await, 0);
    assert_eq!(app.count(&t.id, "tasks", &format!("contact_id = {ADA}")).await, 0);
    assert_eq!(app.get(&format!("/api/v1/emails/{email_id}"), &t.admin).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/api/v1/activities/{}", call.body["id"]), &t.admin).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/api/v1/tasks/{}", task.body["id"]), &t.admin).await.status, StatusCode::NOT_FOUND);
    let timeline = app.get(&format!("/api/v1/contacts/{ADA}/timeline"), &t.admin).await;
    assert_eq!(timeline.body["data"], json!([]), "{}", timeline.body);
    // What the platform generated from the won deal stays, without the person.
    let generated = app.get("/api/v1/activities?deal_id=601", &t.admin).await;
    assert_eq!(generated.body["data"].as_array().map(Vec::len), Some(1), "{}", generated.body);
    assert_eq!(generated.body["data"][0]["contact_id"], Value::Null);
    assert_eq!(generated.body["data"][0]["deal_id"], 601);
    assert_eq!(app.count(&t.id, "tasks", "deal_id = 601 AND contact_id IS NULL").await, 1);
    // Someone else's history is untouched.
    assert_eq!(app.get(&format!("/api/v1/activities/{}", other.body["id"]), &t.admin).await.status, StatusCode::OK);

    // Idempotent: the same event delivered again (another message id) changes nothing.
    let before = app.get("/api/v1/activities?deal_id=601", &t.admin).await.body;
    app.publish(&erased, &format!("{}-again", erased.id)).await;
    let sentinel = contact_deleted(&t.id, 999);
    app.publish(&sentinel, &sentinel.id).await;
    wait_count(&app, &t.id, "gone_references", "kind = 'contact' AND id = 999", 1).await;
    assert_eq!(app.get("/api/v1/activities?deal_id=601", &t.admin).await.body, before);
    assert_eq!(app.count(&t.id, "gone_references", "kind = 'contact'").await, 2);
    assert_eq!(app.smtp.count_to("ada@example.com"), 1);

    // A new activity or email for the erased person is refused, although the (mock)
    // contact-service still knows it: the deletion raced the check.
    let late = app.post("/api/v1/activities", &rep, json!({"type": "note", "subject": "After erasure", "contact_id": ADA})).await;
    assert_eq!(late.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", late.body);
    assert_eq!(error_code(&late), "REFERENCE_NOT_FOUND");
    field_error(&late, "contact_id");
    let mail = app.post("/api/v1/emails", &rep, json!({"contact_id": ADA, "subject": "Again", "body_html": "<p>x</p>"})).await;
    assert_eq!(mail.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", mail.body);
    let task = app.post("/api/v1/tasks", &rep, json!({"title": "Call Ada again", "contact_id": ADA})).await;
    assert_eq!(task.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", task.body);
}

#[tokio::test]
async fn deleting_a_company_or_deal_drops_every_reference_and_a_put_back_works() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let activity = app
        .post(
            "/api/v1/activities",
            &t.admin,
            json!({"type": "meeting", "subject": "Kick-off", "contact_id": ADA, "company_id": ACME, "deal_id": BIG_DEAL, "outcome": "done"}),
        )
        .await;
    assert_eq!(activity.status, StatusCode::CREATED, "{}", activity.body);
    let task = app.post("/api/v1/tasks", &t.admin, json!({"title": "Prepare the offer", "contact_id": ADA, "deal_id": BIG_DEAL})).await;
    assert_eq!(task.status, StatusCode::CREATED, "{}", task.body);
    let sent = app.post("/api/v1/emails", &t.admin, json!({"contact_id": ADA, "deal_id": BIG_DEAL, "subject": "Offer", "body_html": "<p>Offer</p>"})).await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.body);
    let etag_before = app.get(&format!("/api/v1/activities/{}", activity.body["id"]), &t.admin).await.header("etag").map(str::to_owned);

    for event in [company_deleted(&t.id, ACME), deal_deleted(&t.id, BIG_DEAL)] {
        app.publish(&event, &event.id).await;
    }
    wait_count(&app, &t.id, "gone_references", "kind IN ('company', 'deal')", 2).await;

    let got = app.get(&format!("/api/v1/activities/{}", activity.body["id"]), &t.admin).await;
    assert_eq!((got.body["company_id"].clone(), got.body["deal_id"].clone()), (Value::Null, Value::Null), "{}", got.body);
    assert_eq!(got.body["contact_id"], ADA, "only the gone references are dropped");
    assert_ne!(got.header("etag").map(str::to_owned), etag_before, "the record changed, so did its tag");
    let listed = app.get(&format!("/api/v1/activities?company_id={ACME}&count=true"), &t.admin).await;
    assert_eq!(listed.body["pagination"]["total_count"], 0, "{}", listed.body);
    assert_eq!(app.get(&format!("/api/v1/tasks?deal_id={BIG_DEAL}&count=true"), &t.admin).await.body["pagination"]["total_count"], 0);
    let task_now = app.get(&format!("/api/v1/tasks/{}", task.body["id"]), &t.admin).await;
    assert_eq!(task_now.body["deal_id"], Value::Null);
    let email = app.get(&format!("/api/v1/emails/{}", sent.body["email"]["id"]), &t.admin).await;
    assert_eq!(email.body["deal_id"], Value::Null, "{}", email.body);
    assert_eq!(app.count(&t.id, "activities", &format!("company_id = {ACME} OR deal_id = {BIG_DEAL}")).await, 0);

    // A record PUT back exactly as read succeeds (with its If-Match, too).
    let mut body = got.body.clone();
    for derived in ["id", "contact_name", "company_name", "deal_title", "owner_name", "needs_review", "created_by", "created_at", "updated_at"] {
        body.as_object_mut().unwrap().remove(derived);
    }
    let etag = got.header("etag").unwrap().to_owned();
    let put = app.with_headers(Method::PUT, &format!("/api/v1/activities/{}", activity.body["id"]), &t.admin, &[("If-Match", &etag)], Some(body)).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    let mut task_body = task_now.body.clone();
    for derived in ["id", "created_at", "updated_at", "created_by", "completed_at", "is_overdue", "contact_name", "deal_title", "assigned_to_name"] {
        task_body.as_object_mut().unwrap().remove(derived);
    }
    let put = app.put(&format!("/api/v1/tasks/{}", task.body["id"]), &t.admin, task_body).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);

    // Idempotent and order-independent: the same events again, then a won-deal event of the
    // deleted deal and company applied late, reference neither.
    for event in [company_deleted(&t.id, ACME), deal_deleted(&t.id, BIG_DEAL)] {
        app.publish(&event, &format!("{}-again", event.id)).await;
    }
    let late = closed_won(&t.id, BIG_DEAL, "Big deal", Some(REP));
    app.publish(&late, &late.id).await;
    wait_count(&app, &t.id, "tasks", &format!("source_event_id = '{}'", late.id), 1).await;
    assert_eq!(
        app.count(&t.id, "activities", &format!("source_event_id = '{}' AND deal_id IS NULL AND company_id IS NULL AND contact_id = {ADA}", late.id)).await,
        1
    );
    assert_eq!(app.count(&t.id, "tasks", &format!("source_event_id = '{}' AND deal_id IS NULL", late.id)).await, 1);
    assert_eq!(app.count(&t.id, "gone_references", "true").await, 2);
    // And a request naming the deleted deal is refused even though the (mock) deal-service
    // still answers for it.
    let refused = app.post("/api/v1/tasks", &t.admin, json!({"title": "Follow up", "deal_id": BIG_DEAL})).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.body);
    field_error(&refused, "deal_id");
    let refused = app.patch(&format!("/api/v1/activities/{}", activity.body["id"]), &t.admin, json!({"company_id": ACME})).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.body);
    field_error(&refused, "company_id");
}

#[tokio::test]
async fn a_deletion_applied_before_the_event_that_references_it_leaves_the_same_state() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    // The deletions arrive first (other subjects, other consumers: no order between them).
    for event in [contact_deleted(&t.id, ADA), company_deleted(&t.id, ACME), deal_deleted(&t.id, 602)] {
        app.publish(&event, &event.id).await;
    }
    wait_count(&app, &t.id, "gone_references", "true", 3).await;
    let won = closed_won(&t.id, 602, "Late news", Some(REP));
    app.publish(&won, &won.id).await;
    wait_count(&app, &t.id, "tasks", &format!("source_event_id = '{}'", won.id), 1).await;
    let activities = app.get("/api/v1/activities?count=true", &t.admin).await;
    assert_eq!(activities.body["pagination"]["total_count"], 1, "{}", activities.body);
    let a = &activities.body["data"][0];
    assert_eq!((a["contact_id"].clone(), a["company_id"].clone(), a["deal_id"].clone()), (Value::Null, Value::Null, Value::Null), "{a}");
    assert_eq!(a["subject"], "Deal closed won: Late news");
    assert_eq!(app.count(&t.id, "tasks", "contact_id IS NULL AND deal_id IS NULL").await, 1);
}
