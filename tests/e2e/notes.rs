//! Issue 16 (notes) on the whole platform (real `crm serve`, real consumers): a note's create,
//! change and delete appear in the audit log read from auth-service (with the changed fields
//! and the request id), the note is in the contact's and the company's timeline through the
//! combined server, and erasing the contact in contact-service deletes its notes in
//! communication-service through `contact.deleted`.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::*;

/// Waits until the note's history has an entry of `action`; returns it.
async fn wait_entry(api: &Api, token: &str, note_id: &Value, action: &str) -> Value {
    let path = format!("/api/v1/audit?resource=note&resource_id={note_id}");
    crm_testing::wait_until(&format!("the note.{action} audit entry of {note_id}"), WAIT, || async {
        let r = api.get(&path, token).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
        r.body["data"].as_array().and_then(|d| d.iter().find(|e| e["action"] == action).cloned())
    })
    .await
}

fn kinds(timeline: &Resp) -> Vec<(String, i64)> {
    let items = timeline.body["data"].as_array().unwrap_or_else(|| panic!("no data: {}", timeline.body));
    items.iter().map(|i| (i["kind"].as_str().unwrap_or_default().to_owned(), i["id"].as_i64().unwrap_or_default())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notes_are_audited_in_the_timelines_and_erased_with_their_contact() {
    let (crm, _db, _nats) = Crm::start().await;
    let api = crm.api();
    let admin = signup_admin(&api, "Notes Inc", "notes").await;
    let company = api.create("/api/v1/companies", &admin.token, json!({"name": "Notes Company"})).await;
    let contact = api
        .create("/api/v1/contacts", &admin.token, json!({"first_name": "Ada", "last_name": "Byron", "email": "ada@notes.example", "company_id": company["id"]}))
        .await;

    let note = api
        .create("/api/v1/notes", &admin.token, json!({"body": "# First call\nShe wants a demo", "contact_id": contact["id"], "company_id": company["id"]}))
        .await;
    let id = note["id"].clone();
    assert_eq!(note["contact_name"], "Ada Byron", "{note}");
    assert_eq!(note["company_name"], "Notes Company", "{note}");
    assert_eq!(note["author_id"], admin.user_id, "{note}");
    let r = api
        .try_call(Method::PATCH, &format!("/api/v1/notes/{id}"), Some(&admin.token), &[("X-Request-ID", "notes-e2e-patch-1")], Some(json!({"body": "# First call\nShe wants a demo on Friday"})))
        .await
        .expect("PATCH");
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // History: created, then updated with the old and new body, the actor and the request id.
    let created = wait_entry(&api, &admin.token, &id, "created").await;
    assert_eq!((created["event_type"].as_str(), created["resource_id"].as_str()), (Some("note.created"), Some(id.to_string().as_str())), "{created}");
    let updated = wait_entry(&api, &admin.token, &id, "updated").await;
    assert_eq!(updated["changes"], json!({"body": {"old": "# First call\nShe wants a demo", "new": "# First call\nShe wants a demo on Friday"}}), "{updated}");
    assert_eq!((updated["actor_id"].as_i64(), updated["request_id"].as_str()), (Some(admin.user_id), Some("notes-e2e-patch-1")), "{updated}");

    // The timelines through the combined server: the contact's (contact-service owns
    // /contacts/{id}, communication-service /contacts/{id}/timeline) and the company's.
    let timeline = api.get(&format!("/api/v1/contacts/{}/timeline", contact["id"]), &admin.token).await;
    assert_eq!(timeline.status, StatusCode::OK, "{}", timeline.body);
    assert!(kinds(&timeline).contains(&("note".to_owned(), id.as_i64().unwrap_or_default())), "{}", timeline.body);
    let timeline = api.get(&format!("/api/v1/companies/{}/timeline", company["id"]), &admin.token).await;
    assert_eq!(timeline.status, StatusCode::OK, "{}", timeline.body);
    assert_eq!(timeline.body["data"][0]["title"], "First call", "{}", timeline.body);
    assert_eq!(api.get(&format!("/api/v1/companies/{}", company["id"]), &admin.token).await.status, StatusCode::OK, "contact-service still answers /companies/{{id}}");

    // A user's delete is audited too.
    let other = api.create("/api/v1/notes", &admin.token, json!({"body": "to be deleted", "company_id": company["id"]})).await;
    let r = api.call(Method::DELETE, &format!("/api/v1/notes/{}", other["id"]), Some(&admin.token), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let deleted = wait_entry(&api, &admin.token, &other["id"], "deleted").await;
    assert_eq!(deleted["data"]["body"], "to be deleted", "{deleted}");

    // Erasing the contact (admins, for data-protection requests) deletes its notes in
    // communication-service through contact.deleted.
    let r = api.call(Method::DELETE, &format!("/api/v1/contacts/{}?erase=true", contact["id"]), Some(&admin.token), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let path = format!("/api/v1/notes/{id}");
    crm_testing::wait_until("the erased contact's note deleted", WAIT, || async { (api.get(&path, &admin.token).await.status == StatusCode::NOT_FOUND).then_some(()) }).await;
    let left = api.get(&format!("/api/v1/notes?company_id={}", company["id"]), &admin.token).await;
    assert_eq!(left.body["data"], json!([]), "{}", left.body);
}
