//! Notes (issue 16): CRUD with ETags and events, the permission matrix (own vs all, viewers
//! read only), tenant isolation, validation, the contact and company timelines, and what
//! happens to notes when their records are gone for good.

use crm_client_communication::subjects::{NOTE_CREATED, NOTE_DELETED, NOTE_UPDATED};
use crm_client_contact::subjects::{COMPANY_DELETED, CONTACT_DELETED};
use crm_client_contact::{CompanyBasicInfo, ContactBasicInfo};
use crm_client_core::ClientError;
use crm_client_deal::DealBasicInfo;
use crm_client_deal::subjects::DEAL_DELETED;
use crm_events::Envelope;
use crm_testing::wait_until;
use crm_web::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

const MANAGER: i32 = 5;

async fn wait_count(app: &TestApp, tenant: &crm_tenant::TenantId, table: &str, condition: &str, n: i64) {
    wait_until(&format!("{n} rows in {table} where {condition}"), WAIT, || async { (app.count(tenant, table, condition).await == n).then_some(()) }).await;
}

async fn write(app: &TestApp, token: &str, body: Value) -> Value {
    app.post("/api/v1/notes", token, body).await.expect(StatusCode::CREATED)
}

async fn if_match(app: &TestApp, method: Method, path: &str, token: &str, etag: &str, body: Option<Value>) -> Response {
    app.with_headers(method, path, token, &[("If-Match", etag)], body).await
}

fn ids(page: &Response) -> Vec<i64> {
    page.body["data"].as_array().unwrap_or_else(|| panic!("no data: {}", page.body)).iter().map(|n| n["id"].as_i64().expect("id")).collect()
}

#[tokio::test]
async fn write_read_change_and_delete_a_note_with_names_etags_and_events() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let rep = app.token(&t, REP, Role::SalesRep);
    let mut created = app.platform.events(NOTE_CREATED).await;
    let mut updated = app.platform.events(NOTE_UPDATED).await;
    let mut deleted = app.platform.events(NOTE_DELETED).await;

    let r = app.post("/api/v1/notes", &rep, json!({"body": "  # Call recap\n\n- budget **approved**\n", "contact_id": ADA, "company_id": ACME, "deal_id": BIG_DEAL})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let etag = r.header("etag").expect("ETag").to_owned();
    let n = r.body.clone();
    assert_eq!(n["body"], "# Call recap\n\n- budget **approved**", "trimmed, markdown kept as written");
    assert_eq!((n["author_id"].as_i64(), n["author_name"].as_str()), (Some(REP as i64), Some("Sam Rep")));
    assert_eq!((n["contact_name"].as_str(), n["company_name"].as_str(), n["deal_title"].as_str()), (Some("Ada <b> Lovelace"), Some("Acme & Sons"), Some("Big deal")));
    assert!(n["created_at"].is_string() && n["updated_at"] == n["created_at"]);
    let id = n["id"].as_i64().expect("id");
    let path = format!("/api/v1/notes/{id}");
    let event = created.wait_for(&t.id, NOTE_CREATED, WAIT).await;
    assert_eq!((event.data["id"].as_i64(), event.actor.as_deref()), (Some(id), Some("2")));
    assert_eq!((event.data["body"].as_str(), event.data["body_truncated"].as_bool()), (n["body"].as_str(), Some(false)));
    assert_eq!((event.data["contact_id"].as_i64(), event.data["author_id"].as_i64()), (Some(ADA as i64), Some(REP as i64)));

    let got = app.get(&path, &t.admin).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body, n);
    assert_eq!(got.header("etag"), Some(etag.as_str()));

    // A stale ETag is refused; the current one lets the change through and moves the ETag.
    let stale = if_match(&app, Method::PATCH, &path, &rep, "\"stale\"", Some(json!({"body": "lost"}))).await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED, "{}", stale.body);
    let r = if_match(&app, Method::PATCH, &path, &rep, &etag, Some(json!({"body": "Budget approved; next call Friday", "company_id": null}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let etag2 = r.header("etag").expect("ETag").to_owned();
    assert_ne!(etag2, etag);
    assert_eq!((r.body["body"].as_str(), r.body["company_id"].is_null(), r.body["contact_id"].as_i64()), (Some("Budget approved; next call Friday"), true, Some(ADA as i64)));
    assert_eq!(r.body["author_id"], REP, "the author never changes");
    let event = updated.wait_for(&t.id, NOTE_UPDATED, WAIT).await;
    assert_eq!(event.data["id"].as_i64(), Some(id));
    assert_eq!(event.data["changes"]["body"]["new"], "Budget approved; next call Friday");
    assert_eq!(event.data["changes"]["company_id"], json!({"old": ACME, "new": null}));
    assert!(event.data["changes"].get("updated_at").is_none(), "{}", event.data);
    // The old ETag is now stale; a patch that changes nothing keeps the ETag.
    let again = if_match(&app, Method::PATCH, &path, &rep, &etag, Some(json!({"body": "x"}))).await;
    assert_eq!(again.status, StatusCode::PRECONDITION_FAILED);
    let same = app.patch(&path, &rep, json!({"body": "Budget approved; next call Friday"})).await;
    assert_eq!(same.status, StatusCode::OK, "{}", same.body);
    assert_eq!(same.header("etag"), Some(etag2.as_str()));

    // Links can move, but one must remain.
    let r = app.patch(&path, &rep, json!({"contact_id": null, "deal_id": null})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(field_error(&r, "contact_id").contains("at least one"));

    let stale = if_match(&app, Method::DELETE, &path, &rep, &etag, None).await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    let r = if_match(&app, Method::DELETE, &path, &rep, &etag2, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let event = deleted.wait_for(&t.id, NOTE_DELETED, WAIT).await;
    assert_eq!((event.data["id"].as_i64(), event.actor.as_deref()), (Some(id), Some("2")));
    assert_eq!(app.get(&path, &rep).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.delete(&path, &rep).await.status, StatusCode::NOT_FOUND);
    for bad in ["0", "-1", "abc", "99999999999"] {
        assert_eq!(app.get(&format!("/api/v1/notes/{bad}"), &rep).await.status, StatusCode::NOT_FOUND, "{bad}");
    }
}

#[tokio::test]
async fn lists_filter_and_page_newest_first() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let rep = app.token(&t, REP, Role::SalesRep);
    let other = app.token(&t, OTHER_REP, Role::SalesRep);
    let a = write(&app, &rep, json!({"body": "about Ada", "contact_id": ADA})).await;
    let b = write(&app, &other, json!({"body": "about Acme", "company_id": ACME})).await;
    let c = write(&app, &rep, json!({"body": "about the deal and Ada", "deal_id": BIG_DEAL, "contact_id": ADA})).await;
    let (a, b, c) = (a["id"].as_i64().unwrap(), b["id"].as_i64().unwrap(), c["id"].as_i64().unwrap());

    let all = app.get("/api/v1/notes", &t.admin).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert_eq!(ids(&all), [c, b, a]);
    assert_eq!(all.body["pagination"]["total_count"], 3);
    assert_eq!(all.body["data"][1]["author_name"], "Olga Other");
    assert_eq!(ids(&app.get(&format!("/api/v1/notes?contact_id={ADA}"), &t.admin).await), [c, a]);
    assert_eq!(ids(&app.get(&format!("/api/v1/notes?company_id={ACME}"), &t.admin).await), [b]);
    assert_eq!(ids(&app.get(&format!("/api/v1/notes?deal_id={BIG_DEAL}"), &t.admin).await), [c]);
    assert_eq!(ids(&app.get(&format!("/api/v1/notes?author_id={REP}"), &t.admin).await), [c, a]);
    assert_eq!(ids(&app.get(&format!("/api/v1/notes?author_id={REP}&contact_id={ADA}&deal_id={BIG_DEAL}"), &t.admin).await), [c]);
    assert_eq!(ids(&app.get("/api/v1/notes?sort=created_at", &t.admin).await), [a, b, c]);

    // Keyset pages: two, then one, then none.
    let first = app.get("/api/v1/notes?limit=2", &t.admin).await;
    assert_eq!(ids(&first), [c, b]);
    assert_eq!(first.body["pagination"]["has_next"], true);
    let cursor = first.body["pagination"]["next_cursor"].as_str().expect("cursor").to_owned();
    let second = app.get(&format!("/api/v1/notes?limit=2&cursor={cursor}"), &t.admin).await;
    assert_eq!(ids(&second), [a]);
    assert_eq!(second.body["pagination"]["has_next"], false);
    let other_sort = app.get(&format!("/api/v1/notes?limit=2&sort=updated_at&cursor={cursor}"), &t.admin).await;
    assert_eq!(other_sort.status, StatusCode::BAD_REQUEST, "a cursor belongs to its sort");

    let r = app.get("/api/v1/notes?contact_id=abc&company_id=0&deal_id=-3&author_id=x&limit=0&sort=body", &t.admin).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    for field in ["contact_id", "company_id", "deal_id", "author_id", "limit", "sort"] {
        field_error(&r, field);
    }
    let r = app.get("/api/v1/notes?cursor=garbage", &t.admin).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn sales_reps_change_their_own_notes_managers_any_viewers_none() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let rep = app.token(&t, REP, Role::SalesRep);
    let other = app.token(&t, OTHER_REP, Role::SalesRep);
    let manager = app.token(&t, MANAGER, Role::Manager);
    let viewer = app.token(&t, VIEWER, Role::Viewer);
    let mine = write(&app, &rep, json!({"body": "mine", "contact_id": ADA})).await;
    let path = format!("/api/v1/notes/{}", mine["id"]);

    // Everyone reads (viewers and other reps too).
    for token in [&rep, &other, &manager, &viewer, &t.admin] {
        assert_eq!(app.get(&path, token).await.status, StatusCode::OK);
        assert_eq!(app.get("/api/v1/notes", token).await.status, StatusCode::OK);
    }
    // Another rep may neither change nor delete it.
    let r = app.patch(&path, &other, json!({"body": "hijacked"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(app.delete(&path, &other).await.status, StatusCode::FORBIDDEN);
    // Viewers write nothing.
    assert_eq!(app.post("/api/v1/notes", &viewer, json!({"body": "v", "contact_id": ADA})).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.patch(&path, &viewer, json!({"body": "v"})).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.delete(&path, &viewer).await.status, StatusCode::FORBIDDEN);
    // Without a token: 401.
    assert_eq!(app.request(Method::GET, "/api/v1/notes", None, None).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.request(Method::POST, "/api/v1/notes", None, Some(json!({"body": "x", "contact_id": ADA}))).await.status, StatusCode::UNAUTHORIZED);
    // The author, a manager and an admin may change it; the author stays.
    assert_eq!(app.patch(&path, &rep, json!({"body": "mine, edited"})).await.status, StatusCode::OK);
    let r = app.patch(&path, &manager, json!({"body": "edited by the manager"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["author_id"], REP);
    assert_eq!(app.patch(&path, &t.admin, json!({"deal_id": BIG_DEAL})).await.status, StatusCode::OK);
    assert_eq!(app.count(&t.id, "notes", &format!("body = 'edited by the manager' AND deal_id = {BIG_DEAL}")).await, 1);
    // The author may delete its note; a manager may delete another's.
    let others = write(&app, &other, json!({"body": "Olga's", "contact_id": ADA})).await;
    assert_eq!(app.delete(&format!("/api/v1/notes/{}", others["id"]), &rep).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.delete(&format!("/api/v1/notes/{}", others["id"]), &manager).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.delete(&path, &rep).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.count(&t.id, "notes", "true").await, 0);
}

#[tokio::test]
async fn another_tenants_notes_do_not_exist() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let u = app.tenant().await;
    let n = write(&app, &t.admin, json!({"body": "tenant t only", "contact_id": ADA})).await;
    let path = format!("/api/v1/notes/{}", n["id"]);
    assert_eq!(app.get(&path, &u.admin).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.patch(&path, &u.admin, json!({"body": "overwritten"})).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.delete(&path, &u.admin).await.status, StatusCode::NOT_FOUND);
    let list = app.get("/api/v1/notes", &u.admin).await;
    assert_eq!(list.body["data"], json!([]), "{}", list.body);
    let timeline = app.get(&format!("/api/v1/contacts/{ADA}/timeline"), &u.admin).await;
    assert!(timeline.body["data"].as_array().expect("data").iter().all(|i| i["kind"] != "note"), "{}", timeline.body);
    // A token of tenant u with tenant t's id in the header is refused before anything is read.
    let r = app.with_headers(Method::GET, &path, &u.admin, &[("X-Tenant-ID", &t.id.to_string())], None).await;
    assert!(matches!(r.status, StatusCode::FORBIDDEN | StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED), "{}", r.status);
    assert_eq!(app.get(&path, &t.admin).await.body["body"], "tenant t only");
}

#[tokio::test]
async fn bad_notes_are_refused_naming_the_field_and_nothing_is_written() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let cases: Vec<(Value, &str)> = vec![
        (json!({"body": "", "contact_id": ADA}), "body"),
        (json!({"body": " \n\t ", "contact_id": ADA}), "body"),
        (json!({"body": "x".repeat(100_001), "contact_id": ADA}), "body"),
        (json!({"body": "bell \u{7}", "contact_id": ADA}), "body"),
        (json!({"body": "about nothing"}), "contact_id"),
        (json!({"body": "x", "contact_id": 0}), "contact_id"),
        (json!({"body": "x", "company_id": -2}), "company_id"),
        (json!({"body": "x", "deal_id": 0, "contact_id": ADA}), "deal_id"),
    ];
    for (body, field) in cases {
        let r = app.post("/api/v1/notes", &t.admin, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
        assert_eq!(error_code(&r), "VALIDATION_FAILED");
        field_error(&r, field);
    }
    // The longest body is fine (characters, not bytes).
    let r = app.post("/api/v1/notes", &t.admin, json!({"body": "é".repeat(100_000), "contact_id": ADA})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    app.delete(&format!("/api/v1/notes/{}", r.body["id"]), &t.admin).await.expect(StatusCode::NO_CONTENT);
    // Server-side fields, unknown fields, wrong types and shapes.
    for bad in [
        json!({"body": "x", "contact_id": ADA, "author_id": 3}),
        json!({"body": "x", "contact_id": ADA, "created_at": "2026-01-01T00:00:00Z"}),
        json!({"body": 5, "contact_id": ADA}),
        json!({"contact_id": ADA}),
        json!({"body": "x", "contact_id": "ten"}),
        json!([]),
    ] {
        let r = app.post("/api/v1/notes", &t.admin, bad.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
        error_code(&r);
    }
    // Links to records that do not exist: 422 naming each.
    let r = app.post("/api/v1/notes", &t.admin, json!({"body": "x", "contact_id": 999, "company_id": 998, "deal_id": 997})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(error_code(&r), "REFERENCE_NOT_FOUND");
    assert_eq!(field_error(&r, "contact_id"), "contact 999 does not exist");
    assert_eq!(field_error(&r, "company_id"), "company 998 does not exist");
    assert_eq!(field_error(&r, "deal_id"), "deal 997 does not exist");
    // A patch is checked the same way (the fields it changes).
    let n = write(&app, &t.admin, json!({"body": "ok", "contact_id": ADA})).await;
    let path = format!("/api/v1/notes/{}", n["id"]);
    let r = app.patch(&path, &t.admin, json!({"body": "", "deal_id": 0})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    field_error(&r, "body");
    field_error(&r, "deal_id");
    let r = app.patch(&path, &t.admin, json!({"deal_id": 997})).await;
    assert_eq!(field_error(&r, "deal_id"), "deal 997 does not exist");
    let r = app.patch(&path, &t.admin, json!({"author_id": 3})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    // A service that cannot be asked: refused (503), not stored unchecked.
    app.fail_all(ClientError::Unavailable("down".into()));
    let r = app.post("/api/v1/notes", &t.admin, json!({"body": "x", "deal_id": BIG_DEAL})).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    // Reading degrades: names are null.
    let got = app.get(&path, &t.admin).await;
    assert_eq!(got.status, StatusCode::OK);
    assert!(got.body["author_name"].is_null() && got.body["contact_name"].is_null());
    assert_eq!(app.count(&t.id, "notes", "true").await, 1);
    assert_eq!(app.count(&t.id, "notes", "body = 'ok' AND deal_id IS NULL").await, 1);
}

#[tokio::test]
async fn notes_are_in_the_contact_and_company_timelines() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let rep = app.token(&t, REP, Role::SalesRep);
    let call = app.post("/api/v1/activities", &rep, json!({"type": "call", "subject": "Call with Acme", "contact_id": ADA, "company_id": ACME, "outcome": "ok"})).await;
    assert_eq!(call.status, StatusCode::CREATED, "{}", call.body);
    let note = write(&app, &rep, json!({"body": "## Pricing   \r\nThey want **10%** off", "contact_id": ADA, "company_id": ACME, "deal_id": BIG_DEAL})).await;
    let deal_only = write(&app, &rep, json!({"body": "deal only", "deal_id": BIG_DEAL})).await;

    let timeline = app.get(&format!("/api/v1/contacts/{ADA}/timeline"), &rep).await;
    assert_eq!(timeline.status, StatusCode::OK, "{}", timeline.body);
    let items = timeline.body["data"].as_array().expect("data");
    assert_eq!(items.len(), 2, "{}", timeline.body);
    let item = &items[0];
    assert_eq!((item["kind"].as_str(), item["type"].as_str(), item["id"].as_i64()), (Some("note"), Some("note"), note["id"].as_i64()));
    assert_eq!(item["title"], "Pricing");
    assert_eq!(item["description"], "## Pricing   \r\nThey want **10%** off");
    assert_eq!((item["owner_id"].as_i64(), item["owner_name"].as_str(), item["deal_id"].as_i64()), (Some(REP as i64), Some("Sam Rep"), Some(BIG_DEAL as i64)));
    assert_eq!(item["occurred_at"], note["created_at"]);
    assert_eq!(items[1]["kind"], "activity");
    assert!(items.iter().all(|i| i["id"] != deal_only["id"] || i["kind"] != "note"), "a note not about Ada is not in her timeline");
    let only_notes = app.get(&format!("/api/v1/contacts/{ADA}/timeline?type=note"), &rep).await;
    assert_eq!(only_notes.body["data"].as_array().map(Vec::len), Some(1), "{}", only_notes.body);

    let company = app.get(&format!("/api/v1/companies/{ACME}/timeline"), &rep).await;
    assert_eq!(company.status, StatusCode::OK, "{}", company.body);
    let kinds: Vec<(&str, i64)> = company.body["data"].as_array().expect("data").iter().map(|i| (i["kind"].as_str().unwrap(), i["id"].as_i64().unwrap())).collect();
    assert_eq!(kinds, [("note", note["id"].as_i64().unwrap()), ("activity", call.body["id"].as_i64().unwrap())]);
    // Keyset pages over the company timeline.
    let first = app.get(&format!("/api/v1/companies/{ACME}/timeline?limit=1"), &rep).await;
    assert_eq!(first.body["data"][0]["kind"], "note");
    let cursor = first.body["pagination"]["next_cursor"].as_str().expect("cursor").to_owned();
    let second = app.get(&format!("/api/v1/companies/{ACME}/timeline?limit=1&cursor={cursor}"), &rep).await;
    assert_eq!(second.body["data"][0]["kind"], "activity", "{}", second.body);
    assert_eq!(second.body["pagination"]["has_next"], false);
    // A company without history must exist; bad parameters are named.
    assert_eq!(app.get("/api/v1/companies/4242/timeline", &rep).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/api/v1/companies/abc/timeline", &rep).await.status, StatusCode::NOT_FOUND);
    let r = app.get(&format!("/api/v1/companies/{ACME}/timeline?type=fax&sort=occurred_at"), &rep).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    field_error(&r, "type");
    field_error(&r, "sort");
    // Viewers read timelines too; without a token, no.
    let viewer = app.token(&t, VIEWER, Role::Viewer);
    assert_eq!(app.get(&format!("/api/v1/companies/{ACME}/timeline"), &viewer).await.status, StatusCode::OK);
    assert_eq!(app.request(Method::GET, &format!("/api/v1/companies/{ACME}/timeline"), None, None).await.status, StatusCode::UNAUTHORIZED);
}

fn contact_deleted(tenant: &crm_tenant::TenantId, id: i32) -> Envelope {
    let data = ContactBasicInfo { id, first_name: "Ada".into(), last_name: "Lovelace".into(), email: "ada@example.com".into(), marketing_consent: Default::default() };
    Envelope::new(CONTACT_DELETED, tenant, Some(ADMIN.to_string()), data).expect("envelope")
}

#[tokio::test]
async fn erasing_a_contact_deletes_its_notes_and_deleted_companies_and_deals_drop_theirs() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let rep = app.token(&t, REP, Role::SalesRep);
    let ada_only = write(&app, &rep, json!({"body": "Ada's health", "contact_id": ADA})).await;
    let ada_and_deal = write(&app, &rep, json!({"body": "Ada on the deal", "contact_id": ADA, "deal_id": BIG_DEAL})).await;
    let nemo = write(&app, &rep, json!({"body": "Nemo", "contact_id": NO_EMAIL, "company_id": ACME})).await;
    let acme_only = write(&app, &rep, json!({"body": "Acme only", "company_id": ACME})).await;
    let acme_and_deal = write(&app, &rep, json!({"body": "Acme and deal", "company_id": ACME, "deal_id": BIG_DEAL})).await;

    let erased = contact_deleted(&t.id, ADA);
    app.publish(&erased, &erased.id).await;
    wait_count(&app, &t.id, "gone_references", &format!("kind = 'contact' AND id = {ADA}"), 1).await;
    // Every note about Ada goes, also one linked to a deal: it is free text about her.
    assert_eq!(app.count(&t.id, "notes", &format!("contact_id = {ADA}")).await, 0);
    for gone in [&ada_only, &ada_and_deal] {
        assert_eq!(app.get(&format!("/api/v1/notes/{}", gone["id"]), &rep).await.status, StatusCode::NOT_FOUND);
    }
    assert_eq!(app.get(&format!("/api/v1/notes/{}", nemo["id"]), &rep).await.status, StatusCode::OK);
    // And no note can be written about her afterwards.
    let r = app.post("/api/v1/notes", &rep, json!({"body": "again", "contact_id": ADA})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(field_error(&r, "contact_id"), format!("contact {ADA} does not exist"));

    // A company gone for good: notes only about it go, the others lose the link.
    let company = Envelope::new(COMPANY_DELETED, &t.id, Some(ADMIN.to_string()), CompanyBasicInfo { id: ACME, name: "Acme & Sons".into() }).expect("envelope");
    app.publish(&company, &company.id).await;
    wait_count(&app, &t.id, "gone_references", &format!("kind = 'company' AND id = {ACME}"), 1).await;
    assert_eq!(app.count(&t.id, "notes", &format!("id = {}", acme_only["id"])).await, 0);
    assert_eq!(app.count(&t.id, "notes", &format!("id = {} AND company_id IS NULL AND deal_id = {BIG_DEAL}", acme_and_deal["id"])).await, 1);
    assert_eq!(app.count(&t.id, "notes", &format!("id = {} AND company_id IS NULL AND contact_id = {NO_EMAIL}", nemo["id"])).await, 1);

    // A deal gone for good: the same.
    let deal = Envelope::new(DEAL_DELETED, &t.id, Some(ADMIN.to_string()), DealBasicInfo { id: BIG_DEAL, title: "Big deal".into(), stage: "proposal".into(), value: 5000.0 })
        .expect("envelope");
    app.publish(&deal, &deal.id).await;
    wait_count(&app, &t.id, "gone_references", &format!("kind = 'deal' AND id = {BIG_DEAL}"), 1).await;
    assert_eq!(app.count(&t.id, "notes", &format!("id = {}", acme_and_deal["id"])).await, 0);
    assert_eq!(app.count(&t.id, "notes", "true").await, 1, "only Nemo's note is left");
}
