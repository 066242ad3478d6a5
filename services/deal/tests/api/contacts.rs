//! `/deals/{id}/contacts`: contacts on deals with their roles.

use crm_web::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{bad_fields, error_code, spawn_app};

#[tokio::test]
async fn contacts_join_deals_with_roles() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    app.add_contact(20, "Grace", "Hopper");
    app.add_contact(21, "Alan", "Turing");
    let d1 = app.deal(&t.admin, "One").await;
    let d2 = app.deal(&t.admin, "Two").await;

    let r = app.post(&format!("/api/v1/deals/{d1}/contacts"), &t.admin, json!({"contact_id": 20, "role": "decision_maker"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["contact_name"], "Grace Hopper");
    assert_eq!(r.body["role"], "decision_maker");
    let r = app.post(&format!("/api/v1/deals/{d1}/contacts"), &t.admin, json!({"contact_id": 21})).await;
    assert_eq!(r.body["role"], "other", "default role");
    let r = app.post(&format!("/api/v1/deals/{d2}/contacts"), &t.admin, json!({"contact_id": 20, "role": "user"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "a contact can be on many deals");

    let r = app.post(&format!("/api/v1/deals/{d1}/contacts"), &t.admin, json!({"contact_id": 20, "role": "user"})).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(error_code(&r), "CONTACT_ON_DEAL");
    let r = app.post(&format!("/api/v1/deals/{d1}/contacts"), &t.admin, json!({"contact_id": 99})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body["details"]["fields"]["contact_id"].is_string());
    let r = app.post(&format!("/api/v1/deals/{d1}/contacts"), &t.admin, json!({"contact_id": 0, "role": "boss"})).await;
    let mut fields = bad_fields(&r);
    fields.sort();
    assert_eq!(fields, ["contact_id", "role"]);
    let r = app.post("/api/v1/deals/999999/contacts", &t.admin, json!({"contact_id": 20})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let viewer = app.token(&t, 9, Role::Viewer);
    let r = app.get(&format!("/api/v1/deals/{d1}/contacts"), &viewer).await;
    assert_eq!(r.status, StatusCode::OK);
    let list: Vec<(i64, String, String)> = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["contact_id"].as_i64().unwrap(), c["role"].as_str().unwrap().to_owned(), c["contact_name"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(list, [(20, "decision_maker".into(), "Grace Hopper".into()), (21, "other".into(), "Alan Turing".into())]);
    assert_eq!(app.post(&format!("/api/v1/deals/{d1}/contacts"), &viewer, json!({"contact_id": 21})).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.delete(&format!("/api/v1/deals/{d1}/contacts/21"), &viewer).await.status, StatusCode::FORBIDDEN);

    assert_eq!(app.delete(&format!("/api/v1/deals/{d1}/contacts/21"), &t.admin).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.delete(&format!("/api/v1/deals/{d1}/contacts/21"), &t.admin).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.delete(&format!("/api/v1/deals/{d1}/contacts/abc"), &t.admin).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/api/v1/deals/{d1}/contacts"), &t.admin).await.body["data"].as_array().unwrap().len(), 1);

    // Deleting a deal takes its contact links along; the contact stays on the other deal.
    assert_eq!(app.delete(&format!("/api/v1/deals/{d1}"), &t.admin).await.status, StatusCode::NO_CONTENT);
    let r = app.get("/api/v1/deals?contact_id=20", &t.admin).await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["data"][0]["title"], "Two");
}
