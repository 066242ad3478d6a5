use crm_client_communication::subjects::ACTIVITY_LOGGED;
use crm_client_core::ClientError;
use crm_web::Role;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn log_an_activity_with_names_and_event() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let mut events = app.platform.events(ACTIVITY_LOGGED).await;
    let r = app
        .post(
            "/api/v1/activities",
            &t.admin,
            json!({"type": "call", "subject": "Discovery call", "direction": "outbound", "outcome": "Connected",
                   "duration_minutes": 25, "contact_id": ADA, "company_id": ACME, "deal_id": BIG_DEAL, "owner_id": REP,
                   "custom_fields": {"channel": "phone"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let a = &r.body;
    assert_eq!(a["type"], "call");
    assert_eq!(a["status"], "completed");
    assert_eq!(a["outcome"], "connected");
    assert!(a["completed_at"].is_string());
    assert_eq!(a["contact_name"], "Ada <b> Lovelace");
    assert_eq!(a["company_name"], "Acme & Sons");
    assert_eq!(a["deal_title"], "Big deal");
    assert_eq!(a["owner_name"], "Sam Rep");
    assert_eq!(a["created_by"], ADMIN);
    assert_eq!(a["needs_review"], false);
    assert_eq!(a["custom_fields"]["channel"], "phone");

    let event = events.wait_for(&t.id, ACTIVITY_LOGGED, WAIT).await;
    assert_eq!(event.data["id"], a["id"]);
    assert_eq!(event.data["subject"], "Discovery call");
    assert_eq!(event.data["contact_id"], ADA);

    let got = app.get(&format!("/api/v1/activities/{}", a["id"]), &t.admin).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body, r.body);
}

#[tokio::test]
async fn incomplete_activities_are_kept_and_flagged_for_review() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    // A call with no contact, company or deal and no outcome: stored, flagged.
    let r = app.post("/api/v1/activities", &t.admin, json!({"type": "call", "subject": "Someone called"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["needs_review"], true);
    assert_eq!(r.body["owner_id"], ADMIN);
    let list = app.get("/api/v1/activities?needs_review=true", &t.admin).await;
    assert_eq!(list.body["pagination"]["total_count"], 1);
}

#[tokio::test]
async fn validation_lists_every_bad_field_and_writes_nothing() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let r = app
        .post(
            "/api/v1/activities",
            &t.admin,
            json!({"type": "fax", "subject": "", "status": "maybe", "direction": "up", "duration_minutes": -1, "contact_id": 0}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&r), "VALIDATION_FAILED");
    for field in ["type", "subject", "status", "direction", "duration_minutes", "contact_id"] {
        field_error(&r, field);
    }
    let long = app.post("/api/v1/activities", &t.admin, json!({"type": "note", "subject": "x".repeat(300)})).await;
    assert_eq!(field_error(&long, "subject"), "must be at most 255 characters");
    for bad in [json!({"type": "note"}), json!({"type": 5, "subject": "x"}), json!({"type": "note", "subject": "x", "bogus": 1}), json!([])] {
        let r = app.post("/api/v1/activities", &t.admin, bad).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        error_code(&r);
    }
    let malformed = app.http.post(format!("{}/api/v1/activities", app.url)).bearer_auth(&t.admin).header("content-type", "application/json").body("{").send().await.unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    assert_eq!(app.count(&t.id, "activities", "true").await, 0);
}

#[tokio::test]
async fn unknown_references_are_refused_and_a_down_service_degrades() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let r = app.post("/api/v1/activities", &t.admin, json!({"type": "note", "subject": "x", "contact_id": 999, "deal_id": 998})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(error_code(&r), "REFERENCE_NOT_FOUND");
    assert_eq!(field_error(&r, "contact_id"), "contact 999 does not exist");
    assert_eq!(field_error(&r, "deal_id"), "deal 998 does not exist");

    app.fail_all(ClientError::Unavailable("down".into()));
    let r = app.post("/api/v1/activities", &t.admin, json!({"type": "note", "subject": "x", "contact_id": ADA})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["needs_review"], true, "unverified reference");
    assert!(r.body["contact_name"].is_null());
    assert!(r.body["owner_name"].is_null());
    let list = app.get("/api/v1/activities", &t.admin).await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.body["data"][0]["contact_name"].is_null());
}

#[tokio::test]
async fn auth_and_roles() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let body = json!({"type": "note", "subject": "x", "contact_id": ADA});
    let r = app.request(Method::POST, "/api/v1/activities", None, Some(body.clone())).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = app.request(Method::GET, "/api/v1/activities", Some("garbage"), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let viewer = app.token(&t, VIEWER, Role::Viewer);
    let r = app.post("/api/v1/activities", &viewer, body.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&r), "FORBIDDEN");
    assert_eq!(app.get("/api/v1/activities", &viewer).await.status, StatusCode::OK);
    let service = app.token(&t, 0, Role::Service);
    assert_eq!(app.get("/api/v1/activities", &service).await.status, StatusCode::FORBIDDEN);

    // A sales rep logs as owner only, and changes only their own activities.
    let rep = app.token(&t, REP, Role::SalesRep);
    let r = app.post("/api/v1/activities", &rep, json!({"type": "note", "subject": "x", "owner_id": OTHER_REP})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let mine = app.post("/api/v1/activities", &rep, body.clone()).await;
    assert_eq!(mine.status, StatusCode::CREATED);
    assert_eq!(mine.body["owner_id"], REP);
    let other = app.post("/api/v1/activities", &t.admin, json!({"type": "note", "subject": "admin's", "contact_id": ADA})).await;
    let path = format!("/api/v1/activities/{}", other.body["id"]);
    assert_eq!(app.patch(&path, &rep, json!({"subject": "mine now"})).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.delete(&path, &rep).await.status, StatusCode::FORBIDDEN);
    let r = app.patch(&format!("/api/v1/activities/{}", mine.body["id"]), &rep, json!({"subject": "edited"})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(app.get(&path, &t.admin).await.body["subject"], "admin's");
}

#[tokio::test]
async fn cross_tenant_ids_are_not_found_and_change_nothing() {
    let app = spawn_app().await;
    let a = app.tenant().await;
    let b = app.tenant().await;
    let r = app.post("/api/v1/activities", &a.admin, json!({"type": "note", "subject": "A's", "contact_id": ADA})).await;
    let path = format!("/api/v1/activities/{}", r.body["id"]);
    for response in [
        app.get(&path, &b.admin).await,
        app.patch(&path, &b.admin, json!({"subject": "B was here"})).await,
        app.put(&path, &b.admin, json!({"type": "note", "subject": "B was here"})).await,
        app.delete(&path, &b.admin).await,
    ] {
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{}", response.body);
        assert_eq!(error_code(&response), "NOT_FOUND");
    }
    assert_eq!(app.get(&path, &a.admin).await.body["subject"], "A's");
    assert_eq!(app.get("/api/v1/activities", &b.admin).await.body["pagination"]["total_count"], 0);
    for bad in ["abc", "0", "-1", "99999999999"] {
        assert_eq!(app.get(&format!("/api/v1/activities/{bad}"), &a.admin).await.status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn update_patch_and_delete() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let r = app
        .post("/api/v1/activities", &t.admin, json!({"type": "meeting", "subject": "Demo", "status": "scheduled",
              "scheduled_at": "2030-01-02T10:00:00Z", "contact_id": ADA}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(r.body["completed_at"].is_null());
    let path = format!("/api/v1/activities/{}", r.body["id"]);

    let mut events = app.platform.events(ACTIVITY_LOGGED).await;
    let done = app.patch(&path, &t.admin, json!({"status": "completed", "outcome": "interested", "description": "Went well"})).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(done.body["status"], "completed");
    assert!(done.body["completed_at"].is_string());
    assert_eq!(done.body["description"], "Went well");
    assert_eq!(done.body["scheduled_at"], "2030-01-02T10:00:00Z");
    let event = events.wait_for(&t.id, ACTIVITY_LOGGED, WAIT).await;
    assert_eq!(event.data["id"], r.body["id"]);

    let cleared = app.patch(&path, &t.admin, json!({"description": null, "contact_id": null, "deal_id": BIG_DEAL})).await;
    assert_eq!(cleared.body["description"], "");
    assert!(cleared.body["contact_id"].is_null());
    assert_eq!(cleared.body["deal_title"], "Big deal");

    let bad = app.patch(&path, &t.admin, json!({"status": "scheduled", "completed_at": "2020-01-01T00:00:00Z"})).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    field_error(&bad, "completed_at");
    assert_eq!(app.patch(&path, &t.admin, json!({"nope": 1})).await.status, StatusCode::BAD_REQUEST);

    let replaced = app.put(&path, &t.admin, json!({"type": "note", "subject": "Replaced", "contact_id": ADA})).await;
    assert_eq!(replaced.status, StatusCode::OK);
    assert_eq!(replaced.body["type"], "note");
    assert!(replaced.body["deal_id"].is_null());
    assert!(replaced.body["outcome"].is_null());

    assert_eq!(app.delete(&path, &t.admin).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&path, &t.admin).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.delete(&path, &t.admin).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn list_filters_pages_and_batches_enrichment() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    for n in 0..5 {
        let at = format!("2026-01-0{}T12:00:00Z", n + 1);
        let kind = if n % 2 == 0 { "call" } else { "email" };
        let r = app
            .post("/api/v1/activities", &t.admin, json!({"type": kind, "subject": format!("a{n}"), "completed_at": at,
                  "contact_id": ADA, "company_id": ACME, "owner_id": if n < 3 { REP } else { ADMIN }, "outcome": "ok"}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let before = app.calls();
    let page = app.get("/api/v1/activities?limit=2", &t.admin).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let after = app.calls();
    assert_eq!((after.0 - before.0, after.1 - before.1, after.2 - before.2), (1, 1, 0), "one call per referenced service");
    let subjects: Vec<_> = page.body["data"].as_array().unwrap().iter().map(|a| a["subject"].as_str().unwrap().to_owned()).collect();
    assert_eq!(subjects, ["a4", "a3"], "newest first");
    assert_eq!(page.body["pagination"]["total_count"], 5);
    assert_eq!(page.body["pagination"]["has_next"], true);
    assert_eq!(page.body["data"][0]["contact_name"], "Ada <b> Lovelace");
    let cursor = page.body["pagination"]["next_cursor"].as_str().unwrap().to_owned();
    let next = app.get(&format!("/api/v1/activities?limit=2&cursor={cursor}"), &t.admin).await;
    let subjects: Vec<_> = next.body["data"].as_array().unwrap().iter().map(|a| a["subject"].as_str().unwrap().to_owned()).collect();
    assert_eq!(subjects, ["a2", "a1"]);

    let calls = app.get("/api/v1/activities?type=call&owner_id=2", &t.admin).await;
    assert_eq!(calls.body["pagination"]["total_count"], 2);
    let range = app.get("/api/v1/activities?from=2026-01-02T00:00:00Z&to=2026-01-04T00:00:00Z&sort=occurred_at", &t.admin).await;
    let subjects: Vec<_> = range.body["data"].as_array().unwrap().iter().map(|a| a["subject"].as_str().unwrap().to_owned()).collect();
    assert_eq!(subjects, ["a1", "a2"]);
    assert_eq!(app.get(&format!("/api/v1/activities?contact_id={ADA}&count=false"), &t.admin).await.body["pagination"].get("total_count"), None);

    // A cursor of another sort, garbage and bad parameters: 400 with the error shape.
    let wrong_sort = app.get(&format!("/api/v1/activities?sort=created_at&cursor={cursor}"), &t.admin).await;
    assert_eq!(error_code(&wrong_sort), "INVALID_CURSOR");
    for bad in ["limit=0", "limit=101", "limit=-5", "limit=abc", "cursor=garbage", "sort=password", "sort=1;drop%20table%20activities",
        "type=fax", "from=yesterday", "owner_id=x", "needs_review=maybe"] {
        let r = app.get(&format!("/api/v1/activities?{bad}"), &t.admin).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
        error_code(&r);
    }
}
