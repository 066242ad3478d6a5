//! Issue 16 (merge), acceptance: "a merge moves a contact's deals, activities, emails, notes
//! and files to the survivor and the history shows it" (real `crm serve`, real consumers).
//! Files are moved by the same consumer statement list (repo/references.rs); they are not
//! uploaded here.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crm_testing::wait_until;

use crate::harness::*;

/// The kinds and ids on a contact's timeline.
async fn timeline(api: &Api, token: &str, contact_id: &Value) -> Vec<(String, i64)> {
    all_pages(api, &format!("/api/v1/contacts/{contact_id}/timeline?limit=100"), token)
        .await
        .iter()
        .map(|i| (i["kind"].as_str().unwrap_or_default().to_owned(), i["id"].as_i64().unwrap_or_default()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_moves_deals_activities_tasks_emails_and_notes_and_the_history_shows_it() {
    let (crm, _db, _nats) = Crm::start().await;
    let api = crm.api();
    let admin = signup_admin(&api, "Merge Inc", "merge").await;
    let t = &admin.token;
    let company = api.create("/api/v1/companies", t, json!({"name": "Merge Corp"})).await;
    let survivor = api.create("/api/v1/contacts", t, json!({"first_name": "Grace", "last_name": "Hopper", "email": "grace@merge.example"})).await;
    let dup = api
        .create(
            "/api/v1/contacts",
            t,
            json!({"first_name": "Grace", "last_name": "Hoper", "email": "g.hopper@merge.example", "phone": "+1 202 555 0143", "company_id": company["id"]}),
        )
        .await;
    let (s, d) = (survivor["id"].clone(), dup["id"].clone());

    // The duplicate's references in deal- and communication-service.
    let deal = api.create("/api/v1/deals", t, json!({"title": "Merge deal", "value": 10.0, "primary_contact_id": d, "company_id": company["id"]})).await;
    let both = api.create("/api/v1/deals", t, json!({"title": "Both deal", "value": 5.0})).await;
    for (deal_id, contact_id, role) in [(&deal["id"], &d, "decision_maker"), (&both["id"], &d, "user"), (&both["id"], &s, "influencer")] {
        let r = api.post(&format!("/api/v1/deals/{deal_id}/contacts"), Some(t), json!({"contact_id": contact_id, "role": role})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let activity = api.create("/api/v1/activities", t, json!({"type": "call", "subject": "Intro call", "status": "completed", "contact_id": d})).await;
    let task = api.create("/api/v1/tasks", t, json!({"title": "Call Grace back", "contact_id": d})).await;
    let note = api.create("/api/v1/notes", t, json!({"body": "# Met at the conference", "contact_id": d})).await;
    let email = api.post("/api/v1/emails", Some(t), json!({"contact_id": d, "subject": "Hello", "body_html": "<p>Nice to meet you</p>", "body_text": "Nice to meet you"})).await;
    assert_eq!(email.status, StatusCode::ACCEPTED, "{}", email.body);
    let before = timeline(&api, t, &d).await;
    assert!(before.iter().any(|(k, _)| k == "email"), "{before:?}");

    // Duplicates: the two are candidates (similar names).
    let dups = api.get(&format!("/api/v1/contacts/duplicates?contact_id={s}"), t).await;
    assert_eq!(dups.status, StatusCode::OK, "{}", dups.body);
    assert_eq!(dups.body["data"][0]["duplicate"]["id"], d, "{}", dups.body);

    // Merge, keeping the duplicate's phone and company (the survivor has none) and the survivor's email.
    let r = api.post(&format!("/api/v1/contacts/{s}/merge"), Some(t), json!({"from": [d], "fields": {"last_name": s}})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["email"], "grace@merge.example");
    assert_eq!(r.body["phone"], "+1 202 555 0143");
    assert_eq!(r.body["company_id"], company["id"]);
    assert_eq!(api.get(&format!("/api/v1/contacts/{d}"), t).await.status, StatusCode::NOT_FOUND);

    // deal-service: primary contact and deal contacts (one row per deal).
    wait_until("the deal's primary contact moves to the survivor", WAIT, || async {
        let r = api.get(&format!("/api/v1/deals/{}", deal["id"]), t).await;
        (r.body["primary_contact_id"] == s).then_some(())
    })
    .await;
    let contacts_of = |deal_id: Value| {
        let api = &api;
        async move {
            let r = api.get(&format!("/api/v1/deals/{deal_id}/contacts"), t).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            r.body["data"].as_array().cloned().unwrap_or_default().iter().map(|c| (c["contact_id"].clone(), c["role"].clone())).collect::<Vec<_>>()
        }
    };
    assert_eq!(contacts_of(deal["id"].clone()).await, vec![(s.clone(), json!("decision_maker"))]);
    assert_eq!(contacts_of(both["id"].clone()).await, vec![(s.clone(), json!("influencer"))], "the survivor's own row stays");

    // communication-service: activity, task, note, email on the survivor's timeline.
    let expected = [("activity", &activity["id"]), ("task", &task["id"]), ("note", &note["id"])];
    let moved = wait_until("the duplicate's timeline moves to the survivor", WAIT, || async {
        let items = timeline(&api, t, &s).await;
        let all = expected.iter().all(|(k, id)| items.iter().any(|(kind, i)| kind == k && Some(*i) == id.as_i64()));
        (all && items.iter().any(|(k, _)| k == "email")).then_some(items)
    })
    .await;
    assert!(moved.len() >= 4, "{moved:?}");
    let a = api.get(&format!("/api/v1/activities/{}", activity["id"]), t).await;
    assert_eq!(a.body["contact_id"], s, "{}", a.body);

    // History: one merge entry under the survivor, by the admin.
    let entry = wait_until("the contact.merged audit entry", WAIT, || async {
        let r = api.get(&format!("/api/v1/audit?resource=contact&resource_id={s}"), t).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body["data"].as_array().and_then(|d| d.iter().find(|e| e["action"] == "merged").cloned())
    })
    .await;
    assert_eq!(entry["event_type"], "contact.merged", "{entry}");
    assert_eq!(entry["data"]["merged_ids"], json!([d]), "{entry}");
    assert_eq!(entry["actor_id"], admin.user_id, "{entry}");

    // A write naming the merged contact is refused (it is in the trash).
    let r = api.call(Method::POST, "/api/v1/deals", Some(t), Some(json!({"title": "Late", "primary_contact_id": d}))).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
}
