//! Issue 12, item 9: deals drop references to companies and contacts deleted for good
//! (through `company.deleted` / `contact.deleted`), and a deal PUT back exactly as read
//! always succeeds.

use crm_client_contact::subjects::{COMPANY_DELETED, CONTACT_DELETED};
use crm_client_contact::{CompanyBasicInfo, ContactBasicInfo};
use crm_client_deal::subjects::DEAL_UPDATED;
use crm_events::Envelope;
use crm_testing::wait_until;
use crm_web::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{ADMIN, EVENT_TIMEOUT, Tenant, TestApp, error_code, spawn_app};

async fn get(app: &TestApp, t: &Tenant, id: i64) -> Value {
    app.get(&format!("/api/v1/deals/{id}"), &t.admin).await.expect(StatusCode::OK)
}

async fn count(app: &TestApp, t: &Tenant, query: &str) -> i64 {
    app.get(&format!("/api/v1/deals?{query}"), &t.admin).await.body["pagination"]["total_count"].as_i64().unwrap_or(-1)
}

#[tokio::test]
async fn a_deleted_company_is_dropped_from_its_deals_once() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let other = app.tenant().await;
    app.add_company(10, "Acme");
    app.add_company(11, "Globex");
    let a = app.create_deal(&t.admin, json!({"title": "A", "company_id": 10})).await["id"].as_i64().unwrap();
    let b = app.create_deal(&t.admin, json!({"title": "B", "company_id": 10, "stage": "closed_won"})).await["id"].as_i64().unwrap();
    let c = app.create_deal(&t.admin, json!({"title": "C", "company_id": 11})).await["id"].as_i64().unwrap();
    let elsewhere = app.create_deal(&other.admin, json!({"title": "other tenant", "company_id": 10})).await["id"].as_i64().unwrap();
    let etag_before = app.get(&format!("/api/v1/deals/{a}"), &t.admin).await.header("etag").map(str::to_owned);

    let mut updated = app.platform.events(DEAL_UPDATED).await;
    // contact-service deletes the company for good.
    app.contacts.companies.lock().unwrap().remove(&10);
    let event = Envelope::new(COMPANY_DELETED, &t.id, Some(ADMIN.to_string()), CompanyBasicInfo { id: 10, name: "Acme".into() }).unwrap();
    app.publish(&event).await;
    wait_until("the company dropped from the deals", EVENT_TIMEOUT, || async { (count(&app, &t, "company_id=10").await == 0).then_some(()) }).await;

    assert!(get(&app, &t, a).await["company_id"].is_null());
    assert!(get(&app, &t, b).await["company_id"].is_null(), "also on closed deals");
    assert_eq!(get(&app, &t, c).await["company_id"], 11, "other companies stay");
    let still = app.get(&format!("/api/v1/deals/{elsewhere}"), &other.admin).await.body;
    assert_eq!(still["company_id"], 10, "another tenant's deals are untouched");
    let etag_after = app.get(&format!("/api/v1/deals/{a}"), &t.admin).await.header("etag").map(str::to_owned);
    assert_ne!(etag_before, etag_after, "the deal changed: a new version");
    let e = updated.wait_for(&t.id, DEAL_UPDATED, EVENT_TIMEOUT).await;
    assert!([a, b].contains(&e.data["id"].as_i64().unwrap()), "{}", e.data);
    assert_eq!(e.actor.as_deref(), Some("1"), "attributed to who deleted the company");

    // Redelivered under another message id: nothing changes, nothing is published again.
    let mut again = Envelope::new(COMPANY_DELETED, &t.id, Some(ADMIN.to_string()), CompanyBasicInfo { id: 10, name: "Acme".into() }).unwrap();
    again.id = format!("{}-again", event.id);
    app.publish(&again).await;
    // Events of one subject apply in order: once a later one took effect, the redelivery was handled.
    let later = Envelope::new(COMPANY_DELETED, &t.id, None, CompanyBasicInfo { id: 11, name: "Globex".into() }).unwrap();
    app.publish(&later).await;
    wait_until("the later event applied", EVENT_TIMEOUT, || async { (count(&app, &t, "company_id=11").await == 0).then_some(()) }).await;
    assert_eq!(updated.count_within(&t.id, DEAL_UPDATED, std::time::Duration::from_millis(500)).await, 3, "A, B, then C: once each");
}

#[tokio::test]
async fn a_deleted_contact_is_dropped_as_primary_contact_and_from_deal_contacts() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    app.add_contact(20, "Ada", "Lovelace");
    app.add_contact(21, "Íñigo", "Núñez");
    let a = app.create_deal(&t.admin, json!({"title": "A", "primary_contact_id": 20})).await["id"].as_i64().unwrap();
    let b = app.create_deal(&t.admin, json!({"title": "B", "primary_contact_id": 21})).await["id"].as_i64().unwrap();
    app.post(&format!("/api/v1/deals/{b}/contacts"), &t.admin, json!({"contact_id": 20, "role": "influencer"})).await.expect(StatusCode::CREATED);
    app.post(&format!("/api/v1/deals/{b}/contacts"), &t.admin, json!({"contact_id": 21})).await.expect(StatusCode::CREATED);

    app.contacts.contacts.lock().unwrap().remove(&20);
    let event = Envelope::new(CONTACT_DELETED, &t.id, Some(ADMIN.to_string()), ContactBasicInfo {
        id: 20,
        first_name: "Ada".into(),
        last_name: "Lovelace".into(),
        email: "ada@example.com".into(),
        marketing_consent: Default::default(),
    })
    .unwrap();
    app.publish(&event).await;
    wait_until("the contact dropped", EVENT_TIMEOUT, || async { (count(&app, &t, "contact_id=20").await == 0).then_some(()) }).await;
    assert!(get(&app, &t, a).await["primary_contact_id"].is_null());
    assert_eq!(get(&app, &t, b).await["primary_contact_id"], 21);
    let contacts = app.get(&format!("/api/v1/deals/{b}/contacts"), &t.admin).await.body;
    let ids: Vec<i64> = contacts["data"].as_array().unwrap().iter().map(|c| c["contact_id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [21], "{contacts}");
}

#[tokio::test]
async fn a_deal_put_back_exactly_as_read_succeeds_even_when_its_references_are_gone() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    app.add_company(10, "Acme");
    app.add_contact(20, "Ada", "Lovelace");
    app.add_user(7, "Rita", "Rep");
    let id = app
        .create_deal(&t.admin, json!({"title": "As read", "company_id": 10, "primary_contact_id": 20, "owner_id": 7, "value": 1234.5,
            "currency": "EUR", "description": "line 1\nline 2", "custom_fields": {"tier": "gold"}, "expected_close_date": "2030-06-30"}))
        .await["id"]
        .as_i64()
        .unwrap();
    // Company, contact and owner are deleted elsewhere (no event consumed yet).
    app.contacts.companies.lock().unwrap().remove(&10);
    app.contacts.contacts.lock().unwrap().remove(&20);
    app.users.users.lock().unwrap().remove(&7);

    let read = app.get(&format!("/api/v1/deals/{id}"), &t.admin).await;
    let etag = read.header("etag").expect("ETag").to_owned();
    let r = app.send_with(reqwest::Method::PUT, &format!("/api/v1/deals/{id}"), &t.admin, &[("if-match", &etag)], Some(read.body.clone())).await;
    assert_eq!(r.status, StatusCode::OK, "the deal exactly as read: {}", r.body);
    for field in ["title", "company_id", "primary_contact_id", "owner_id", "value", "currency", "description", "custom_fields", "expected_close_date", "stage"] {
        assert_eq!(r.body[field], read.body[field], "{field}");
    }
    // Also as a sales rep owning it... and a CHANGED reference is still checked.
    let mut changed = r.body.clone();
    changed["company_id"] = json!(11);
    let r = app.put(&format!("/api/v1/deals/{id}"), &t.admin, changed).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(error_code(&r), "REFERENCE_NOT_FOUND");
    assert!(r.body["details"]["fields"]["company_id"].is_string() && r.body["details"]["fields"]["owner_id"].is_null(), "{}", r.body);
    // PATCH the same way: an unchanged reference is not re-validated.
    let r = app.patch(&format!("/api/v1/deals/{id}"), &t.admin, json!({"company_id": 10, "owner_id": 7, "title": "Renamed"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // The body's id must be the path's.
    let mut wrong = read.body.clone();
    wrong["id"] = json!(id + 1);
    let r = app.put(&format!("/api/v1/deals/{id}"), &t.admin, wrong).await;
    assert_eq!(crate::helpers::bad_fields(&r), ["id"]);

    // A sales rep who created a deal owned by someone else PUTs it back as read: no 403.
    app.add_user(8, "Sam", "Rep");
    let rep = app.token(&t, 8, Role::SalesRep);
    let mine = app.create_deal(&rep, json!({"title": "Rep's"})).await["id"].as_i64().unwrap();
    app.patch(&format!("/api/v1/deals/{mine}"), &t.admin, json!({"owner_id": ADMIN})).await.expect(StatusCode::OK);
    let read = app.get(&format!("/api/v1/deals/{mine}"), &rep).await.expect(StatusCode::OK);
    let r = app.put(&format!("/api/v1/deals/{mine}"), &rep, read).await;
    assert_eq!(r.status, StatusCode::OK, "an unchanged owner is no reassignment: {}", r.body);
}
