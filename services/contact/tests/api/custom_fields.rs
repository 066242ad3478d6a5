//! Issue 16 (S-fields): typed custom fields: definitions (admins manage, everyone reads),
//! validation of contact and company writes, `?cf.<key>=` filters (exactly the matching
//! records) and `sort=cf.<key>` with keyset pagination.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

async fn define(app: &TestApp, token: &str, body: Value) -> Value {
    app.post("/api/v1/custom-fields", token, body).await.expect(StatusCode::CREATED)
}

/// Every page of a list, following the cursors.
async fn all_pages(app: &TestApp, token: &str, path: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &cursor {
            Some(c) => format!("{path}{sep}limit=2&cursor={c}"),
            None => format!("{path}{sep}limit=2"),
        };
        let page = app.get(&url, token).await.expect(StatusCode::OK);
        out.extend(page["data"].as_array().expect("data").iter().cloned());
        match page["pagination"]["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

#[tokio::test]
async fn definitions_are_managed_by_admins_and_read_by_everyone() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let body = json!({"entity": "contact", "key": "tier", "label": "Tier", "type": "select", "options": ["gold", "silver"]});
    assert_eq!(app.post("/api/v1/custom-fields", &t.manager, body.clone()).await.status, StatusCode::FORBIDDEN);
    let tier = define(&app, &t.admin, body.clone()).await;
    assert_eq!(tier["type"], "select");
    assert_eq!(tier["required"], false);
    // The same key twice for the entity: 409.
    let dup = app.post("/api/v1/custom-fields", &t.admin, body).await;
    assert_eq!(dup.status, StatusCode::CONFLICT, "{}", dup.body);
    // Bad definitions: every field named.
    let bad = app.post("/api/v1/custom-fields", &t.admin, json!({"entity": "deal", "key": "Bad-Key", "label": "", "type": "colour"})).await;
    let mut fields = bad_fields(&bad);
    fields.sort();
    assert_eq!(fields, ["entity", "key", "label", "type"]);
    let no_options = app.post("/api/v1/custom-fields", &t.admin, json!({"entity": "company", "key": "k", "label": "K", "type": "select"})).await;
    assert_eq!(bad_fields(&no_options), ["options"]);

    let list = app.get("/api/v1/custom-fields?entity=contact", &t.viewer).await.expect(StatusCode::OK);
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1));
    let id = tier["id"].as_i64().expect("id");
    let got = app.get(&format!("/api/v1/custom-fields/{id}"), &t.rep).await;
    let etag = got.header("etag").expect("etag").to_owned();
    // PATCH with a stale ETag: 412; with the current one: the options change.
    let stale = app
        .send(app.builder(reqwest::Method::PATCH, &format!("/api/v1/custom-fields/{id}"), Some(&t.admin)).header("if-match", "\"stale\"").json(&json!({"label": "X"})))
        .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    let patched = app
        .send(
            app.builder(reqwest::Method::PATCH, &format!("/api/v1/custom-fields/{id}"), Some(&t.admin))
                .header("if-match", etag)
                .json(&json!({"options": ["gold", "silver", "bronze"], "label": "Customer tier"})),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(patched["options"], json!(["gold", "silver", "bronze"]));
    // The type is fixed.
    let retype = app.patch(&format!("/api/v1/custom-fields/{id}"), &t.admin, json!({"type": "text"})).await;
    assert_eq!(retype.status, StatusCode::BAD_REQUEST);
    assert_eq!(app.delete(&format!("/api/v1/custom-fields/{id}"), &t.rep).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.delete(&format!("/api/v1/custom-fields/{id}"), &t.admin).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&format!("/api/v1/custom-fields/{id}"), &t.admin).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn every_write_is_validated_against_the_definitions() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    // No definition yet: the bag is untyped (as before issue 16).
    app.create_contact(&t.admin, json!({"first_name": "Old", "custom_fields": {"anything": [1, 2]}})).await;
    define(&app, &t.admin, json!({"entity": "contact", "key": "tier", "label": "Tier", "type": "select", "options": ["gold", "silver"], "required": true})).await;
    define(&app, &t.admin, json!({"entity": "contact", "key": "seats", "label": "Seats", "type": "number"})).await;
    define(&app, &t.admin, json!({"entity": "contact", "key": "renewal", "label": "Renewal", "type": "date"})).await;
    define(&app, &t.admin, json!({"entity": "contact", "key": "budget", "label": "Budget", "type": "currency"})).await;
    define(&app, &t.admin, json!({"entity": "contact", "key": "site", "label": "Site", "type": "url"})).await;

    let bad = app
        .post(
            "/api/v1/contacts",
            &t.admin,
            json!({"first_name": "A", "custom_fields": {"tierr": "gold", "seats": "ten", "renewal": "2026-02-30", "budget": 5, "site": "ftp://x"}}),
        )
        .await;
    let mut fields = bad_fields(&bad);
    fields.sort();
    assert_eq!(
        fields,
        ["custom_fields.budget", "custom_fields.renewal", "custom_fields.seats", "custom_fields.site", "custom_fields.tier", "custom_fields.tierr"]
    );
    let ok = app
        .create_contact(
            &t.admin,
            json!({"first_name": "B", "custom_fields": {"tier": "gold", "seats": 12, "renewal": "2026-12-31", "budget": {"amount": 1500.5, "currency": "EUR"}, "site": null}}),
        )
        .await;
    assert_eq!(ok["custom_fields"], json!({"tier": "gold", "seats": 12, "renewal": "2026-12-31", "budget": {"amount": 1500.5, "currency": "EUR"}}));
    // PATCH: the merged record is checked too.
    let id = ok["id"].as_i64().expect("id");
    let r = app.patch(&format!("/api/v1/contacts/{id}"), &t.admin, json!({"custom_fields": {"tier": "platinum"}})).await;
    assert_eq!(bad_fields(&r), ["custom_fields.tier"]);

    // Companies have their own definitions.
    define(&app, &t.admin, json!({"entity": "company", "key": "segment", "label": "Segment", "type": "multi_select", "options": ["smb", "enterprise"]})).await;
    let r = app.post("/api/v1/companies", &t.admin, json!({"name": "Acme", "custom_fields": {"segment": ["mid"]}})).await;
    assert_eq!(bad_fields(&r), ["custom_fields.segment"]);
    let c = app.post("/api/v1/companies", &t.admin, json!({"name": "Acme", "custom_fields": {"segment": ["smb", "smb"]}})).await.expect(StatusCode::CREATED);
    assert_eq!(c["custom_fields"], json!({"segment": ["smb"]}));
}

#[tokio::test]
async fn a_custom_field_filter_returns_exactly_the_matching_contacts() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    define(&app, &t.admin, json!({"entity": "contact", "key": "tier", "label": "Tier", "type": "select", "options": ["gold", "silver"]})).await;
    define(&app, &t.admin, json!({"entity": "contact", "key": "seats", "label": "Seats", "type": "number"})).await;
    define(&app, &t.admin, json!({"entity": "contact", "key": "vip", "label": "VIP", "type": "boolean"})).await;
    define(&app, &t.admin, json!({"entity": "contact", "key": "langs", "label": "Languages", "type": "multi_select", "options": ["de", "en", "fr"]})).await;
    let mut gold = Vec::new();
    for (i, (tier, seats, vip, langs)) in [
        ("gold", 10.0, true, vec!["de", "en"]),
        ("silver", 10.0, false, vec!["en"]),
        ("gold", 2.5, false, vec!["fr"]),
        ("silver", 7.0, true, vec![]),
        ("gold", 100.0, true, vec!["en", "fr"]),
    ]
    .into_iter()
    .enumerate()
    {
        let c = app
            .create_contact(&t.admin, json!({"first_name": format!("C{i}"), "last_name": "Cara", "custom_fields": {"tier": tier, "seats": seats, "vip": vip, "langs": langs}}))
            .await;
        if tier == "gold" {
            gold.push(c["id"].as_i64().expect("id"));
        }
    }
    // One with no custom fields at all.
    app.create_contact(&t.admin, json!({"first_name": "Plain"})).await;

    let page = app.get("/api/v1/contacts?cf.tier=gold&sort=created_at", &t.viewer).await.expect(StatusCode::OK);
    assert_eq!(ids(&page), gold);
    assert_eq!(page["pagination"]["total_count"], 3);
    let names = |page: &Value| -> Vec<String> { page["data"].as_array().expect("data").iter().map(|c| c["first_name"].as_str().unwrap_or_default().to_owned()).collect() };
    let mut n = names(&app.get("/api/v1/contacts?cf.seats=10", &t.viewer).await.expect(StatusCode::OK));
    n.sort();
    assert_eq!(n, ["C0", "C1"]);
    let mut n = names(&app.get("/api/v1/contacts?cf.vip=true&cf.tier=gold", &t.viewer).await.expect(StatusCode::OK));
    n.sort();
    assert_eq!(n, ["C0", "C4"]);
    let mut n = names(&app.get("/api/v1/contacts?cf.langs=fr", &t.viewer).await.expect(StatusCode::OK));
    n.sort();
    assert_eq!(n, ["C2", "C4"]);
    // Repeated: any of the values.
    let mut n = names(&app.get("/api/v1/contacts?cf.seats=2.5&cf.seats=7", &t.viewer).await.expect(StatusCode::OK));
    n.sort();
    assert_eq!(n, ["C2", "C3"]);
    // Typed: a value that is not of the field's type, or an unknown field, is a 400 naming it.
    let r = app.get("/api/v1/contacts?cf.seats=many&cf.nope=1&cf.tier=bronze", &t.viewer).await;
    let mut f = bad_fields(&r);
    f.sort();
    assert_eq!(f, ["cf.nope", "cf.seats", "cf.tier"]);
    // With search too (every contact is a "Cara").
    let mut found = ids(&app.get("/api/v1/contacts?search=cara&cf.tier=gold", &t.viewer).await.expect(StatusCode::OK));
    found.sort();
    assert_eq!(found, gold);
}

#[tokio::test]
async fn sorting_by_a_custom_field_is_typed_and_pages_correctly() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    define(&app, &t.admin, json!({"entity": "contact", "key": "seats", "label": "Seats", "type": "number"})).await;
    define(&app, &t.admin, json!({"entity": "contact", "key": "renewal", "label": "Renewal", "type": "date"})).await;
    // Numbers: 9 < 10 < 100 (as text they would be 10 < 100 < 9); two equal values; one absent.
    for (name, seats, renewal) in [("a", Some(100), "2027-01-01"), ("b", Some(9), "2026-03-01"), ("c", None, "2026-12-31"), ("d", Some(10), "2025-06-30"), ("e", Some(10), "2026-03-02")] {
        let mut cf = json!({"renewal": renewal});
        if let Some(s) = seats {
            cf["seats"] = json!(s);
        }
        app.create_contact(&t.admin, json!({"first_name": name, "custom_fields": cf})).await;
    }
    let names = |rows: &[Value]| -> Vec<String> { rows.iter().map(|c| c["first_name"].as_str().unwrap_or_default().to_owned()).collect::<Vec<_>>() };
    let asc = all_pages(&app, &t.viewer, "/api/v1/contacts?sort=cf.seats").await;
    assert_eq!(names(&asc), ["b", "d", "e", "a", "c"]);
    let desc = all_pages(&app, &t.viewer, "/api/v1/contacts?sort=-cf.seats").await;
    assert_eq!(names(&desc), ["a", "e", "d", "b", "c"]);
    let dates = all_pages(&app, &t.viewer, "/api/v1/contacts?sort=cf.renewal").await;
    assert_eq!(names(&dates), ["d", "b", "e", "c", "a"]);
    // Filter and sort together.
    let both = all_pages(&app, &t.viewer, "/api/v1/contacts?sort=-cf.renewal&cf.seats=10").await;
    assert_eq!(names(&both), ["e", "d"]);
    // A cursor of another order is refused; an unknown field is a 400 naming sort.
    let page = app.get("/api/v1/contacts?sort=cf.seats&limit=1", &t.viewer).await.expect(StatusCode::OK);
    let cursor = page["pagination"]["next_cursor"].as_str().expect("cursor");
    let r = app.get(&format!("/api/v1/contacts?sort=-cf.seats&cursor={cursor}"), &t.viewer).await;
    assert_eq!(error_code(&r), "INVALID_CURSOR");
    assert_eq!(bad_fields(&app.get("/api/v1/contacts?sort=cf.nope", &t.viewer).await), ["sort"]);
}

#[tokio::test]
async fn companies_filter_and_sort_by_custom_fields() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    define(&app, &t.admin, json!({"entity": "company", "key": "arr", "label": "ARR", "type": "currency"})).await;
    define(&app, &t.admin, json!({"entity": "company", "key": "segment", "label": "Segment", "type": "select", "options": ["smb", "enterprise"]})).await;
    for (name, amount, segment) in [("Big", 900000.0, "enterprise"), ("Small", 5000.0, "smb"), ("Mid", 75000.5, "enterprise")] {
        let body = json!({"name": name, "custom_fields": {"arr": {"amount": amount, "currency": "EUR"}, "segment": segment}});
        app.post("/api/v1/companies", &t.admin, body).await.expect(StatusCode::CREATED);
    }
    let names = |rows: &[Value]| -> Vec<String> { rows.iter().map(|c| c["name"].as_str().unwrap_or_default().to_owned()).collect::<Vec<_>>() };
    let rows = all_pages(&app, &t.viewer, "/api/v1/companies?sort=-cf.arr").await;
    assert_eq!(names(&rows), ["Big", "Mid", "Small"]);
    let rows = all_pages(&app, &t.viewer, "/api/v1/companies?cf.segment=enterprise&sort=cf.arr").await;
    assert_eq!(names(&rows), ["Mid", "Big"]);
    let rows = all_pages(&app, &t.viewer, "/api/v1/companies?cf.arr=5000").await;
    assert_eq!(names(&rows), ["Small"]);
}
