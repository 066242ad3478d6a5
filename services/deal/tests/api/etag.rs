//! Issue 12, item 11: deals and pipeline stages answer with an `ETag`; PUT/PATCH/DELETE with
//! a stale `If-Match` get 412 and change nothing; writes without `If-Match` keep working.

use reqwest::Method;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{error_code, spawn_app};

#[tokio::test]
async fn deal_writes_with_a_stale_if_match_are_refused() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let created = app.post("/api/v1/deals", &t.admin, json!({"title": "Lost update"})).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let id = created.body["id"].as_i64().unwrap();
    let path = format!("/api/v1/deals/{id}");
    let v1 = created.header("etag").expect("ETag on 201").to_owned();
    assert_eq!(app.get(&path, &t.admin).await.header("etag"), Some(v1.as_str()), "GET: the same version");

    // Alice saves with the version she read.
    let r = app.send_with(Method::PATCH, &path, &t.admin, &[("if-match", &v1)], Some(json!({"title": "Alice"}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v2 = r.header("etag").expect("ETag on PATCH").to_owned();
    assert_ne!(v1, v2);
    // Bob still holds v1: PUT, PATCH and DELETE are refused.
    let put_body = json!({"title": "Bob", "stage": "lead"});
    for (method, body) in [(Method::PUT, Some(put_body.clone())), (Method::PATCH, Some(json!({"title": "Bob"}))), (Method::DELETE, None)] {
        let r = app.send_with(method.clone(), &path, &t.admin, &[("if-match", &v1)], body).await;
        assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "{method}: {}", r.body);
        assert_eq!(error_code(&r), "PRECONDITION_FAILED");
    }
    assert_eq!(app.get(&path, &t.admin).await.body["title"], "Alice", "nothing changed");
    // The current version, `*`, and no If-Match at all are accepted.
    let r = app.send_with(Method::PUT, &path, &t.admin, &[("if-match", &v2)], Some(put_body)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v3 = r.header("etag").expect("ETag on PUT").to_owned();
    let r = app.send_with(Method::PATCH, &path, &t.admin, &[("if-match", "*")], Some(json!({"title": "Star"}))).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app.patch(&path, &t.admin, json!({"title": "No precondition"})).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app.send_with(Method::DELETE, &path, &t.admin, &[("if-match", &v3)], None).await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    let r = app.send_with(Method::PATCH, &path, &t.admin, &[("if-match", "not-quoted")], Some(json!({"title": "x"}))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "a malformed If-Match");
    let current = app.get(&path, &t.admin).await.header("etag").unwrap().to_owned();
    let r = app.send_with(Method::DELETE, &path, &t.admin, &[("if-match", &current)], None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    // Another tenant's token: 404, whatever the If-Match.
    let other = app.tenant().await;
    let id2 = app.deal(&t.admin, "Mine").await;
    let r = app.send_with(Method::PATCH, &format!("/api/v1/deals/{id2}"), &other.admin, &[("if-match", "*")], Some(json!({"title": "x"}))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn stage_writes_with_a_stale_if_match_are_refused() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let created = app.post("/api/v1/pipeline/stages", &t.admin, json!({"key": "demo", "name": "Demo", "probability": 40, "kind": "open"})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let v1 = created.header("etag").expect("ETag on 201").to_owned();
    let got = app.get("/api/v1/pipeline/stages/demo", &t.admin).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["name"], "Demo");
    assert_eq!(got.header("etag"), Some(v1.as_str()));
    assert_eq!(app.get("/api/v1/pipeline/stages/nope", &t.admin).await.status, StatusCode::NOT_FOUND);

    let body = json!({"name": "Demo 2", "position": 9, "probability": 45, "kind": "open"});
    let r = app.send_with(Method::PUT, "/api/v1/pipeline/stages/demo", &t.admin, &[("if-match", &v1)], Some(body.clone())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v2 = r.header("etag").expect("ETag on PUT").to_owned();
    assert_ne!(v1, v2);
    let r = app.send_with(Method::PUT, "/api/v1/pipeline/stages/demo", &t.admin, &[("if-match", &v1)], Some(body)).await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    let r = app.send_with(Method::DELETE, "/api/v1/pipeline/stages/demo", &t.admin, &[("if-match", &v1)], None).await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(app.get("/api/v1/pipeline/stages/demo", &t.admin).await.body["name"], "Demo 2");
    let r = app.send_with(Method::DELETE, "/api/v1/pipeline/stages/demo", &t.admin, &[("if-match", &v2)], None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
}
