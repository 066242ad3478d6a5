//! Issue 16 (S-fields): tags renamed, merged and deleted across contacts and companies in one
//! transaction, with an `*.updated` event per changed record.

use crm_client_contact::subjects::{COMPANY_UPDATED, CONTACT_UPDATED};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

async fn tags_of(app: &TestApp, token: &str, path: &str) -> Value {
    app.get(path, token).await.expect(StatusCode::OK)["tags"].clone()
}

/// Outbox rows of the tenant with this event type.
async fn outbox(app: &TestApp, tenant: &crm_tenant::TenantId, event_type: &str) -> i64 {
    let client = app.platform.pool.get().await.expect("connection");
    let sql = format!("SELECT count(*) FROM {}.outbox WHERE subject = $1", tenant.schema().as_str());
    client.query_one(&sql, &[&event_type]).await.expect("outbox").get(0)
}

#[tokio::test]
async fn rename_merge_and_delete_change_every_record_once() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let a = app.create_contact(&t.admin, json!({"first_name": "A", "tags": ["vip", "beta"]})).await;
    let b = app.create_contact(&t.admin, json!({"first_name": "B", "tags": ["VIP-old", "vip"]})).await;
    let c = app.create_contact(&t.admin, json!({"first_name": "C", "tags": ["other"]})).await;
    let co = app.post("/api/v1/companies", &t.admin, json!({"name": "Acme", "tags": ["vip"]})).await.expect(StatusCode::CREATED);
    let path = |kind: &str, v: &Value| format!("/api/v1/{kind}/{}", v["id"]);
    let (contacts_before, companies_before) = (outbox(&app, &t.id, CONTACT_UPDATED).await, outbox(&app, &t.id, COMPANY_UPDATED).await);

    // Rename: a record with both keeps one.
    let r = app.post("/api/v1/tags/rename", &t.manager, json!({"from": "vip-old", "to": "VIP"})).await.expect(StatusCode::OK);
    assert_eq!(r["contacts"], json!([b["id"]]));
    assert_eq!(tags_of(&app, &t.admin, &path("contacts", &b)).await, json!(["vip"]));
    let r = app.post("/api/v1/tags/rename", &t.admin, json!({"from": "vip", "to": "key account"})).await.expect(StatusCode::OK);
    assert_eq!(r["contacts"].as_array().map(Vec::len), Some(2));
    assert_eq!(r["companies"], json!([co["id"]]));
    assert_eq!(tags_of(&app, &t.admin, &path("contacts", &a)).await, json!(["beta", "key account"]));
    assert_eq!(tags_of(&app, &t.admin, &path("companies", &co)).await, json!(["key account"]));
    // One event per changed record, in the same transaction as the change.
    assert_eq!(outbox(&app, &t.id, CONTACT_UPDATED).await - contacts_before, 3);
    assert_eq!(outbox(&app, &t.id, COMPANY_UPDATED).await - companies_before, 1);

    // Merge.
    let r = app.post("/api/v1/tags/merge", &t.admin, json!({"from": ["beta", "other", "key account"], "to": "key account"})).await.expect(StatusCode::OK);
    assert_eq!(r["from"], json!(["beta", "other"]));
    assert_eq!(tags_of(&app, &t.admin, &path("contacts", &a)).await, json!(["key account"]));
    assert_eq!(tags_of(&app, &t.admin, &path("contacts", &c)).await, json!(["key account"]));
    let list = app.get("/api/v1/tags", &t.viewer).await.expect(StatusCode::OK);
    assert_eq!(list["data"], json!([{"tag": "key account", "contacts": 3, "companies": 1}]));

    // Delete (the path is case-insensitive and percent-decoded).
    app.delete("/api/v1/tags/Key%20Account", &t.admin).await.expect(StatusCode::OK);
    assert_eq!(tags_of(&app, &t.admin, &path("contacts", &a)).await, json!([]));
    assert_eq!(app.get("/api/v1/tags", &t.viewer).await.expect(StatusCode::OK)["data"], json!([]));
    // Nothing carries it any more.
    assert_eq!(app.delete("/api/v1/tags/key%20account", &t.admin).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn only_roles_that_reach_every_record_manage_tags_and_input_is_checked() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    app.create_contact(&t.rep, json!({"first_name": "A", "tags": ["x"]})).await;
    for token in [&t.rep, &t.viewer] {
        let r = app.post("/api/v1/tags/rename", token, json!({"from": "x", "to": "y"})).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    }
    assert_eq!(bad_fields(&app.post("/api/v1/tags/rename", &t.admin, json!({"from": "x", "to": "a,b"})).await), ["to"]);
    assert_eq!(bad_fields(&app.post("/api/v1/tags/rename", &t.admin, json!({"from": "X", "to": "x"})).await), ["to"]);
    assert_eq!(bad_fields(&app.post("/api/v1/tags/merge", &t.admin, json!({"from": [], "to": "x"})).await), ["from"]);
    assert_eq!(app.post("/api/v1/tags/rename", &t.admin, json!({"from": "nope", "to": "y"})).await.status, StatusCode::NOT_FOUND);
}
