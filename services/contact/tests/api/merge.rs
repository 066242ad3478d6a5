//! Issue 16 (merge): duplicate candidates of contacts and companies with scores and reasons,
//! and merging: the survivor takes the chosen values, the others go to the trash with
//! `merged_into`, and `*.merged` / `*.trashed` / `*.updated` are in the outbox of the same
//! transaction. (The references in deal- and communication-service move through the events:
//! tests/e2e/merge.rs.)

use crm_client_contact::subjects::{COMPANY_MERGED, CONTACT_MERGED, CONTACT_TRASHED, CONTACT_UPDATED};
use crm_tenant::TenantId;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

/// Envelopes (`data` and `actor`) in the tenant's outbox with this subject, oldest first.
async fn outbox(app: &TestApp, tenant: &TenantId, subject: &str) -> Vec<Value> {
    let client = app.platform.pool.get().await.expect("connection");
    let sql = format!("SELECT payload FROM {}.outbox WHERE subject = $1 ORDER BY created_at, id", tenant.schema().as_str());
    client.query(&sql, &[&subject]).await.expect("outbox").iter().map(|r| r.get::<_, Value>(0)).collect()
}

/// `(deleted_at IS NOT NULL, merged_into)` of a row, read directly.
async fn trash_state(app: &TestApp, tenant: &TenantId, table: &str, id: &Value) -> (bool, Option<i32>) {
    let client = app.platform.pool.get().await.expect("connection");
    let sql = format!("SELECT deleted_at IS NOT NULL, merged_into FROM {}.{table} WHERE id = $1", tenant.schema().as_str());
    let id = id.as_i64().expect("id") as i32;
    let row = client.query_one(&sql, &[&id]).await.expect("row");
    (row.get(0), row.get(1))
}

fn pair_ids(page: &Value) -> Vec<(i64, i64)> {
    page["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|p| (p["contact"]["id"].as_i64().expect("id"), p["duplicate"]["id"].as_i64().expect("id")))
        .collect()
}

fn pair<'a>(page: &'a Value, a: &Value, b: &Value) -> &'a Value {
    page["data"]
        .as_array()
        .expect("data")
        .iter()
        .find(|p| p["contact"]["id"] == a["id"] && p["duplicate"]["id"] == b["id"])
        .unwrap_or_else(|| panic!("no pair ({}, {}) in {page}", a["id"], b["id"]))
}

#[tokio::test]
async fn duplicates_are_found_by_email_phone_and_name_with_scores() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let acme = app.create_company(&t.admin, "Acme").await;
    let ann = app
        .create_contact(&t.admin, json!({"first_name": "Ann", "last_name": "Smith", "email": "Ann@Acme.io", "phone": "+44 20 7946 0958", "company_id": acme["id"]}))
        .await;
    // Same mailbox (a +tag), similar name.
    let anne = app.create_contact(&t.admin, json!({"first_name": "Anne", "last_name": "Smith", "email": "ann+crm@acme.io"})).await;
    // Same phone written differently, another name.
    let bob = app.create_contact(&t.admin, json!({"first_name": "Bob", "last_name": "Jones", "phone": "020 7946 0958"})).await;
    // Similar name only, at the same company.
    let smyth = app.create_contact(&t.admin, json!({"first_name": "Anna", "last_name": "Smith", "company_id": acme["id"]})).await;
    let alone = app.create_contact(&t.admin, json!({"first_name": "Zed", "last_name": "Quux", "email": "zed@else.org", "phone": "555"})).await;

    let page = app.get("/api/v1/contacts/duplicates", &t.viewer).await.expect(StatusCode::OK);
    let pairs = pair_ids(&page);
    let id = |v: &Value| v["id"].as_i64().expect("id");
    assert!(pairs.contains(&(id(&ann), id(&anne))), "{page}");
    assert!(pairs.contains(&(id(&ann), id(&bob))), "{page}");
    assert!(pairs.contains(&(id(&ann), id(&smyth))), "{page}");
    assert!(pairs.iter().all(|(a, b)| a < b && *a != id(&alone) && *b != id(&alone)), "{page}");
    let mut sorted = pairs.clone();
    sorted.sort();
    assert_eq!(pairs, sorted, "in (contact, duplicate) id order");

    let email = pair(&page, &ann, &anne);
    assert_eq!(email["reasons"], json!(["email", "name"]), "{email}");
    let phone = pair(&page, &ann, &bob);
    assert_eq!(phone["reasons"], json!(["phone"]), "{phone}");
    assert_eq!(phone["score"], json!(0.7));
    let name = pair(&page, &ann, &smyth);
    assert_eq!(name["reasons"], json!(["name", "same_company"]), "{name}");
    for p in page["data"].as_array().expect("data") {
        let s = p["score"].as_f64().expect("score");
        assert!((0.0..=1.0).contains(&s), "{p}");
    }
    assert!(email["score"].as_f64() > name["score"].as_f64(), "email and name outrank a name at the same company");
    assert!(name["name_similarity"].as_f64().expect("similarity") >= 0.6);
    assert_eq!(email["contact"]["company_name"], "Acme");

    // One contact's candidates, both directions.
    let of_anne = app.get(&format!("/api/v1/contacts/duplicates?contact_id={}", anne["id"]), &t.viewer).await.expect(StatusCode::OK);
    assert!(pair_ids(&of_anne).contains(&(id(&anne), id(&ann))), "{of_anne}");
    let of_alone = app.get(&format!("/api/v1/contacts/duplicates?contact_id={}", alone["id"]), &t.viewer).await.expect(StatusCode::OK);
    assert_eq!(of_alone["data"], json!([]));

    // Pages: every pair once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/contacts/duplicates?limit=1&cursor={c}"),
            None => "/api/v1/contacts/duplicates?limit=1".to_owned(),
        };
        let page = app.get(&path, &t.viewer).await.expect(StatusCode::OK);
        seen.extend(pair_ids(&page));
        match page["pagination"]["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(seen.len() <= pairs.len(), "pagination loops: {seen:?}");
    }
    assert_eq!(seen, pairs);

    // A trashed contact is no candidate.
    app.delete(&format!("/api/v1/contacts/{}", bob["id"]), &t.admin).await.expect(StatusCode::NO_CONTENT);
    let page = app.get("/api/v1/contacts/duplicates", &t.viewer).await.expect(StatusCode::OK);
    assert!(!pair_ids(&page).contains(&(id(&ann), id(&bob))), "{page}");
    let r = app.get(&format!("/api/v1/contacts/duplicates?contact_id={}", bob["id"]), &t.viewer).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);

    // Bad parameters are named.
    assert_eq!(bad_fields(&app.get("/api/v1/contacts/duplicates?contact_id=abc", &t.viewer).await), ["contact_id"]);
    assert_eq!(bad_fields(&app.get("/api/v1/contacts/duplicates?sort=score", &t.viewer).await), ["sort"]);
    assert_eq!(app.get("/api/v1/contacts/duplicates?limit=-1", &t.viewer).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(app.get("/api/v1/contacts/duplicates?cursor=garbage", &t.viewer).await.status, StatusCode::BAD_REQUEST);

    // Another tenant sees none of them, and cannot name one.
    let other = app.tenant().await;
    assert_eq!(app.get("/api/v1/contacts/duplicates", &other.admin).await.expect(StatusCode::OK)["data"], json!([]));
    let r = app.get(&format!("/api/v1/contacts/duplicates?contact_id={}", ann["id"]), &other.admin).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn company_duplicates_by_site_and_name() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let post = |body: Value| app.post("/api/v1/companies", &t.admin, body);
    let acme = post(json!({"name": "Acme Corporation", "domain": "acme.io"})).await.expect(StatusCode::CREATED);
    let site = post(json!({"name": "ACME Holding", "website": "https://www.acme.io/about"})).await.expect(StatusCode::CREATED);
    let named = post(json!({"name": "Acme Corporations"})).await.expect(StatusCode::CREATED);
    post(json!({"name": "Globex", "domain": "globex.com"})).await.expect(StatusCode::CREATED);

    let page = app.get("/api/v1/companies/duplicates", &t.viewer).await.expect(StatusCode::OK);
    let found: Vec<(Value, Value, Value)> = page["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|p| (p["company"]["id"].clone(), p["duplicate"]["id"].clone(), p["reasons"].clone()))
        .collect();
    assert!(found.contains(&(acme["id"].clone(), site["id"].clone(), json!(["domain"]))), "{page}");
    assert!(found.contains(&(acme["id"].clone(), named["id"].clone(), json!(["name"]))), "{page}");
    assert_eq!(found.len(), 2, "{page}");
    let of = app.get(&format!("/api/v1/companies/duplicates?company_id={}", site["id"]), &t.viewer).await.expect(StatusCode::OK);
    assert_eq!(of["data"][0]["duplicate"]["id"], acme["id"]);
    assert_eq!(app.get("/api/v1/companies/duplicates?company_id=999999", &t.viewer).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn merging_contacts_keeps_the_chosen_values_and_trashes_the_others() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let survivor = app
        .create_contact(&t.admin, json!({"first_name": "Ann", "last_name": "Smith", "email": "ann@old.io", "tags": ["a"], "custom_fields": {"tier": "gold"}}))
        .await;
    let m1 = app
        .create_contact(
            &t.admin,
            json!({"first_name": "Anne", "last_name": "Smith", "email": "ann@new.io", "phone": "+1 555 0100", "job_title": "CTO", "tags": ["b"], "custom_fields": {"tier": "silver", "region": "eu"}}),
        )
        .await;
    let m2 = app.create_contact(&t.admin, json!({"first_name": "A.", "last_name": "Smith", "job_title": "Engineer", "tags": ["a", "c"]})).await;

    let body = json!({"from": [m2["id"], m1["id"]], "fields": {"email": m1["id"], "first_name": m1["id"]}});
    let merged = app.post(&format!("/api/v1/contacts/{}/merge", survivor["id"]), &t.manager, body).await.expect(StatusCode::OK);
    assert_eq!(merged["id"], survivor["id"]);
    assert_eq!(merged["email"], "ann@new.io", "chosen");
    assert_eq!(merged["first_name"], "Anne", "chosen");
    assert_eq!(merged["last_name"], "Smith");
    assert_eq!(merged["phone"], "+1 555 0100", "the survivor had none: the first in `from` order that has one");
    assert_eq!(merged["job_title"], "Engineer", "m2 comes first in `from`");
    assert_eq!(merged["tags"], json!(["a", "b", "c"]));
    assert_eq!(merged["custom_fields"], json!({"tier": "gold", "region": "eu"}));

    // The merged contacts are in the trash, pointing at the survivor.
    for m in [&m1, &m2] {
        assert_eq!(app.get(&format!("/api/v1/contacts/{}", m["id"]), &t.admin).await.status, StatusCode::NOT_FOUND);
        assert_eq!(trash_state(&app, &t.id, "contacts", &m["id"]).await, (true, Some(survivor["id"].as_i64().unwrap() as i32)));
    }
    assert_eq!(trash_state(&app, &t.id, "contacts", &survivor["id"]).await, (false, None));

    // Events of the same transaction.
    let merged_events = outbox(&app, &t.id, CONTACT_MERGED).await;
    assert_eq!(merged_events.len(), 1);
    let mut ids = vec![m1["id"].as_i64().unwrap(), m2["id"].as_i64().unwrap()];
    ids.sort();
    assert_eq!(merged_events[0]["data"], json!({"id": survivor["id"], "survivor_id": survivor["id"], "merged_ids": ids, "merged_by": MANAGER}));
    let trashed = outbox(&app, &t.id, CONTACT_TRASHED).await;
    assert_eq!(trashed.len(), 2);
    assert!(trashed.iter().all(|e| e["data"]["merged_into"] == survivor["id"] && e["data"]["deleted_by"] == json!(MANAGER)), "{trashed:?}");
    let updated = outbox(&app, &t.id, CONTACT_UPDATED).await;
    let last = updated.last().expect("contact.updated");
    assert_eq!(last["data"]["id"], survivor["id"]);
    assert_eq!(last["data"]["changes"]["email"], json!({"old": "ann@old.io", "new": "ann@new.io"}), "{last}");

    // Merged once: not again, neither as survivor nor as merged record.
    let third = app.create_contact(&t.admin, json!({"first_name": "X"})).await;
    let r = app.post(&format!("/api/v1/contacts/{}/merge", third["id"]), &t.admin, json!({"from": [m1["id"]]})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.body["details"]["merged_into"], survivor["id"]);
    let r = app.post(&format!("/api/v1/contacts/{}/merge", m1["id"]), &t.admin, json!({"from": [third["id"]]})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    // The trash shows where it went; the email it held is free again.
    app.create_contact(&t.admin, json!({"first_name": "New", "email": "ann@old.io"})).await;
}

#[tokio::test]
async fn merge_input_permissions_and_tenants_are_checked() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let s = app.create_contact(&t.rep, json!({"first_name": "Mine"})).await;
    let m = app.create_contact(&t.rep, json!({"first_name": "Mine too"})).await;
    let foreign = app.create_contact(&t.other_rep, json!({"first_name": "Not mine"})).await;
    let path = format!("/api/v1/contacts/{}/merge", s["id"]);

    // 400 naming the field.
    for (body, field) in [
        (json!({"from": []}), "from"),
        (json!({"from": [s["id"]]}), "from"),
        (json!({"from": [m["id"], m["id"]]}), "from"),
        (json!({"from": (1000..1011).collect::<Vec<i32>>()}), "from"),
        (json!({"from": [m["id"]], "fields": {"password": m["id"]}}), "fields.password"),
        (json!({"from": [m["id"]], "fields": {"email": foreign["id"]}}), "fields.email"),
    ] {
        assert_eq!(bad_fields(&app.post(&path, &t.admin, body.clone()).await), [field], "{body}");
    }
    assert_eq!(app.post(&path, &t.admin, json!({"from": "x"})).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(app.post(&path, &t.admin, json!({"from": [m["id"]], "extra": 1})).await.status, StatusCode::BAD_REQUEST);
    // 404: unknown, trashed, path ids that cannot exist.
    assert_eq!(app.post(&path, &t.admin, json!({"from": [999_999]})).await.status, StatusCode::NOT_FOUND);
    let gone = app.create_contact(&t.admin, json!({"first_name": "Gone"})).await;
    app.delete(&format!("/api/v1/contacts/{}", gone["id"]), &t.admin).await.expect(StatusCode::NO_CONTENT);
    assert_eq!(app.post(&path, &t.admin, json!({"from": [gone["id"]]})).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.post("/api/v1/contacts/abc/merge", &t.admin, json!({"from": [m["id"]]})).await.status, StatusCode::NOT_FOUND);
    // 403: viewers; a rep with a contact it neither owns nor created.
    assert_eq!(app.post(&path, &t.viewer, json!({"from": [m["id"]]})).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.post(&path, &t.rep, json!({"from": [foreign["id"]]})).await.status, StatusCode::FORBIDDEN);
    // 412: a stale survivor.
    let stale = app.send(app.builder(reqwest::Method::POST, &path, Some(&t.rep)).header("if-match", "\"stale\"").json(&json!({"from": [m["id"]]}))).await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED, "{}", stale.body);
    // Another tenant: 404, nothing changed.
    let other = app.tenant().await;
    assert_eq!(app.post(&path, &other.admin, json!({"from": [m["id"]]})).await.status, StatusCode::NOT_FOUND);
    let other_s = app.create_contact(&other.admin, json!({"first_name": "Theirs"})).await;
    let r = app.post(&format!("/api/v1/contacts/{}/merge", other_s["id"]), &other.admin, json!({"from": [m["id"]]})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(trash_state(&app, &t.id, "contacts", &m["id"]).await, (false, None));
    assert!(outbox(&app, &t.id, CONTACT_MERGED).await.is_empty());
    // Nothing was half-written by the refusals.
    assert_eq!(app.get(&format!("/api/v1/contacts/{}", m["id"]), &t.rep).await.status, StatusCode::OK);

    // A rep merges its own contacts.
    app.post(&path, &t.rep, json!({"from": [m["id"]]})).await.expect(StatusCode::OK);
    assert_eq!(trash_state(&app, &t.id, "contacts", &m["id"]).await.0, true);
}

#[tokio::test]
async fn merging_companies_moves_their_contacts_and_subsidiaries() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let post = |body: Value| app.post("/api/v1/companies", &t.admin, body);
    let survivor = post(json!({"name": "Acme", "tags": ["x"]})).await.expect(StatusCode::CREATED);
    let merged = post(json!({"name": "Acme Inc", "domain": "acme.io", "tags": ["y"]})).await.expect(StatusCode::CREATED);
    let child = post(json!({"name": "Acme Labs", "parent_company_id": merged["id"]})).await.expect(StatusCode::CREATED);
    let person = app.create_contact(&t.admin, json!({"first_name": "Pat", "company_id": merged["id"]})).await;

    let path = format!("/api/v1/companies/{}/merge", survivor["id"]);
    assert_eq!(app.post(&path, &t.rep, json!({"from": [merged["id"]]})).await.status, StatusCode::FORBIDDEN);
    let r = app.post(&path, &t.admin, json!({"from": [merged["id"]], "fields": {"name": merged["id"]}})).await.expect(StatusCode::OK);
    assert_eq!(r["name"], "Acme Inc");
    assert_eq!(r["domain"], "acme.io");
    assert_eq!(r["tags"], json!(["x", "y"]));
    assert_eq!(trash_state(&app, &t.id, "companies", &merged["id"]).await, (true, Some(survivor["id"].as_i64().unwrap() as i32)));
    let person = app.get(&format!("/api/v1/contacts/{}", person["id"]), &t.admin).await.expect(StatusCode::OK);
    assert_eq!(person["company_id"], survivor["id"]);
    assert_eq!(person["company_name"], "Acme Inc");
    let child = app.get(&format!("/api/v1/companies/{}", child["id"]), &t.admin).await.expect(StatusCode::OK);
    assert_eq!(child["parent_company_id"], survivor["id"]);
    // Found by its new name's words.
    let found = app.get("/api/v1/contacts?search=acme%20inc", &t.admin).await.expect(StatusCode::OK);
    assert_eq!(ids(&found), vec![person["id"].as_i64().unwrap()]);
    let events = outbox(&app, &t.id, COMPANY_MERGED).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"]["merged_ids"], json!([merged["id"]]));
    let r = app.post(&path, &t.admin, json!({"from": [merged["id"]]})).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
}
