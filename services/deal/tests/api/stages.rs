//! `/pipeline/stages`: the per-tenant stage configuration (admin only).

use crm_client_deal::subjects;
use crm_web::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{EVENT_TIMEOUT, bad_fields, error_code, spawn_app};

#[tokio::test]
async fn every_tenant_starts_with_the_default_stages() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let viewer = app.token(&t, 3, Role::Viewer);
    let r = app.get("/api/v1/pipeline/stages", &viewer).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let stages: Vec<(String, i64, String)> = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["key"].as_str().unwrap().to_owned(), s["probability"].as_i64().unwrap(), s["kind"].as_str().unwrap().to_owned()))
        .collect();
    let expected = [
        ("lead", 10, "open"),
        ("qualified", 25, "open"),
        ("proposal", 50, "open"),
        ("negotiation", 75, "open"),
        ("closed_won", 100, "won"),
        ("closed_lost", 0, "lost"),
    ];
    assert_eq!(stages, expected.map(|(k, p, kind)| (k.to_owned(), p, kind.to_owned())));
    let service = app.token(&t, 0, Role::Service);
    assert_eq!(app.get("/api/v1/pipeline/stages", &service).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn admins_add_rename_and_reorder_stages() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let manager = app.token(&t, 8, Role::Manager);
    let body = json!({"key": "demo", "name": "Demo", "probability": 40, "kind": "open", "position": 3});
    let r = app.post("/api/v1/pipeline/stages", &manager, body.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "admin only");
    let r = app.post("/api/v1/pipeline/stages", &t.admin, body.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body, json!({"key": "demo", "name": "Demo", "position": 3, "probability": 40, "kind": "open"}));
    let r = app.post("/api/v1/pipeline/stages", &t.admin, body).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(error_code(&r), "STAGE_EXISTS");
    let r = app.post("/api/v1/pipeline/stages", &t.admin, json!({"key": "Bad Key", "name": "", "probability": 101, "kind": "maybe"})).await;
    let mut fields = bad_fields(&r);
    fields.sort();
    assert_eq!(fields, ["key", "kind", "name", "probability"]);
    let r = app.post("/api/v1/pipeline/stages", &t.admin, json!({"key": "last", "name": "Last", "probability": 5, "kind": "open"})).await;
    assert_eq!(r.body["position"], 7, "appended after the last stage");

    // A deal in the new stage takes its probability; renaming the key moves the deal along.
    let d = app.create_deal(&t.admin, json!({"title": "Demo deal", "stage": "demo", "value": 10})).await;
    assert_eq!(d["probability"], 40);
    let r = app
        .put("/api/v1/pipeline/stages/demo", &t.admin, json!({"key": "product_demo", "name": "Product demo", "position": 2, "probability": 45, "kind": "open"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let got = app.get(&format!("/api/v1/deals/{}", d["id"]), &t.admin).await;
    assert_eq!(got.body["stage"], "product_demo");
    let keys: Vec<String> = app.get("/api/v1/pipeline/stages", &t.admin).await.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys[..3], ["lead", "product_demo", "qualified"]);
    let pipeline = app.get("/api/v1/deals/pipeline", &t.admin).await;
    assert_eq!(pipeline.body["stages"][1]["stage"], "product_demo");
    assert_eq!(pipeline.body["stages"][1]["deal_count"], 1);

    // Kind of a stage holding deals cannot change; renaming onto an existing key conflicts.
    let r = app
        .put("/api/v1/pipeline/stages/product_demo", &t.admin, json!({"name": "Won?", "position": 2, "probability": 100, "kind": "won"}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(error_code(&r), "STAGE_IN_USE");
    let r = app
        .put("/api/v1/pipeline/stages/product_demo", &t.admin, json!({"key": "lead", "name": "x", "position": 2, "probability": 1, "kind": "open"}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = app.put("/api/v1/pipeline/stages/nope", &t.admin, json!({"name": "x", "position": 1, "probability": 1, "kind": "open"})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app.put("/api/v1/pipeline/stages/lead", &t.admin, json!({"name": "x", "probability": 1, "kind": "open"})).await;
    assert_eq!(bad_fields(&r), vec!["position"]);
}

#[tokio::test]
async fn a_stage_holding_deals_is_deleted_only_when_its_deals_move() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let mut changed = app.platform.events(subjects::DEAL_STAGE_CHANGED).await;
    let d = app.create_deal(&t.admin, json!({"title": "In proposal", "stage": "proposal"})).await;
    let r = app.delete("/api/v1/pipeline/stages/proposal", &t.admin).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(error_code(&r), "STAGE_IN_USE");
    assert_eq!(r.body["details"]["deal_count"], 1);
    let r = app.delete("/api/v1/pipeline/stages/proposal?move_to=closed_won", &t.admin).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "open deals do not become won");
    let r = app.delete("/api/v1/pipeline/stages/proposal?move_to=proposal", &t.admin).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = app.delete("/api/v1/pipeline/stages/proposal?move_to=ghost", &t.admin).await;
    assert_eq!(error_code(&r), "UNKNOWN_STAGE");
    let manager = app.token(&t, 8, Role::Manager);
    assert_eq!(app.delete("/api/v1/pipeline/stages/proposal?move_to=qualified", &manager).await.status, StatusCode::FORBIDDEN);

    let r = app.delete("/api/v1/pipeline/stages/proposal?move_to=qualified", &t.admin).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let got = app.get(&format!("/api/v1/deals/{}", d["id"]), &t.admin).await;
    assert_eq!(got.body["stage"], "qualified");
    assert_eq!(got.body["probability"], 25);
    let history = got.body["stage_history"].as_array().unwrap();
    assert_eq!(history.last().unwrap()["from_stage"], "proposal");
    let event = changed.wait_for(&t.id, subjects::DEAL_STAGE_CHANGED, EVENT_TIMEOUT).await;
    assert_eq!((event.data["from_stage"].as_str(), event.data["to_stage"].as_str()), (Some("proposal"), Some("qualified")));
    assert_eq!(app.get("/api/v1/deals/pipeline", &t.admin).await.body["stages"].as_array().unwrap().len(), 5);
    let r = app.patch(&format!("/api/v1/deals/{}", d["id"]), &t.admin, json!({"stage": "proposal"})).await;
    assert_eq!(error_code(&r), "UNKNOWN_STAGE", "a deleted stage is unknown");

    // Empty stages go at once; the last open stage stays.
    assert_eq!(app.delete("/api/v1/pipeline/stages/negotiation", &t.admin).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.delete("/api/v1/pipeline/stages/lead", &t.admin).await.status, StatusCode::NO_CONTENT);
    let r = app.delete("/api/v1/pipeline/stages/qualified?move_to=closed_lost", &t.admin).await;
    assert_eq!(error_code(&r), "LAST_OPEN_STAGE");
    assert_eq!(app.delete("/api/v1/pipeline/stages/nope", &t.admin).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn stage_configuration_is_per_tenant() {
    let app = spawn_app().await;
    let a = app.tenant().await;
    let b = app.tenant().await;
    let r = app.post("/api/v1/pipeline/stages", &a.admin, json!({"key": "only_a", "name": "A", "probability": 1, "kind": "open"})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(app.delete("/api/v1/pipeline/stages/closed_lost", &a.admin).await.status, StatusCode::NO_CONTENT);
    let b_stages = app.get("/api/v1/pipeline/stages", &b.admin).await.body["data"].as_array().unwrap().len();
    assert_eq!(b_stages, 6);
    let r = app.post("/api/v1/deals", &b.admin, json!({"title": "x", "stage": "only_a"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.put("/api/v1/pipeline/stages/only_a", &b.admin, json!({"name": "x", "position": 1, "probability": 1, "kind": "open"})).await.status, StatusCode::NOT_FOUND);
}
