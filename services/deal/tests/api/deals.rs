//! Deals CRUD, validation, references, permissions, tenancy, stage rules and events.

use chrono::Duration;
use crm_client_core::ClientError;
use crm_client_deal::subjects;
use crm_web::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{ADMIN, EVENT_TIMEOUT, bad_fields, error_code, spawn_app, today};

#[tokio::test]
async fn create_returns_the_deal_with_defaults_names_and_calculated_fields() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let mut created = app.platform.events(subjects::DEAL_CREATED).await;
    app.add_company(10, "Acme Corp");
    app.add_contact(20, "Grace", "Hopper");
    app.add_user(2, "Bob", "Seller");
    let close = today() + Duration::days(10);
    let r = app
        .post(
            "/api/v1/deals",
            &t.admin,
            json!({"title": "  Big renewal ", "value": 1234.56, "currency": "eur", "company_id": 10, "primary_contact_id": 20,
                   "owner_id": 2, "expected_close_date": close.to_string(), "deal_source": "referral",
                   "description": "three year term", "custom_fields": {"region": "emea"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let d = &r.body;
    assert_eq!(d["title"], "Big renewal");
    assert_eq!(d["value"], 1234.56);
    assert_eq!(d["currency"], "EUR");
    assert_eq!(d["stage"], "lead", "first open stage");
    assert_eq!(d["probability"], 10, "the stage's probability");
    assert_eq!(d["weighted_value"], 123.46, "1234.56 x 10% rounded to the cent");
    assert_eq!(d["company_name"], "Acme Corp");
    assert_eq!(d["primary_contact_name"], "Grace Hopper");
    assert_eq!(d["owner_name"], "Bob Seller");
    assert_eq!(d["owner_id"], 2);
    assert_eq!(d["created_by"], ADMIN);
    assert_eq!(d["deal_age_days"], 0);
    assert_eq!(d["days_until_close"], 10);
    assert_eq!(d["expected_close_date"], close.to_string());
    assert_eq!(d["actual_close_date"], serde_json::Value::Null);
    assert_eq!(d["deal_source"], "referral");
    assert_eq!(d["custom_fields"]["region"], "emea");

    let event = created.wait_for(&t.id, subjects::DEAL_CREATED, EVENT_TIMEOUT).await;
    assert_eq!(event.data, json!({"id": d["id"], "title": "Big renewal", "stage": "lead", "value": 1234.56}));
    assert_eq!(event.actor.as_deref(), Some("1"));

    // Owner defaults to the caller; no value means no weighted value.
    let d = app.create_deal(&t.admin, json!({"title": "Small", "stage": "proposal", "probability": 35})).await;
    assert_eq!(d["owner_id"], ADMIN);
    assert_eq!(d["owner_name"], "Ada Admin");
    assert_eq!(d["probability"], 35);
    assert!(d["value"].is_null() && d["weighted_value"].is_null());
    assert!(d["days_until_close"].is_null());

    // GET shows the same deal with its history.
    let got = app.get(&format!("/api/v1/deals/{}", d["id"]), &t.admin).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["title"], "Small");
    let history = got.body["stage_history"].as_array().unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["from_stage"], serde_json::Value::Null);
    assert_eq!(history[0]["to_stage"], "proposal");
    assert_eq!(history[0]["changed_by"], ADMIN);
}

#[tokio::test]
async fn invalid_input_is_refused_field_by_field_and_nothing_is_written() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let r = app
        .post(
            "/api/v1/deals",
            &t.admin,
            json!({"title": " ", "value": -5, "currency": "XYZ", "probability": 150, "expected_close_date": "2026-13-01",
                   "company_id": 0, "owner_id": -1, "custom_fields": [1], "deal_source": "x".repeat(101)}),
        )
        .await;
    let fields = bad_fields(&r);
    for f in ["title", "value", "currency", "probability", "expected_close_date", "company_id", "owner_id", "custom_fields", "deal_source"] {
        assert!(fields.contains(&f.to_owned()), "{f} in {fields:?}");
    }
    for (body, why) in [
        (json!({"title": "x", "value": 10.001}), "three decimals"),
        (json!({"title": "x", "value": 1e13}), "too large for NUMERIC(15,2)"),
        (json!({"title": "x", "probability": 33.5}), "fractional probability"),
        (json!({"title": "x".repeat(256)}), "long title"),
        (json!({"title": "x", "currency": "usd1"}), "currency"),
    ] {
        let r = app.post("/api/v1/deals", &t.admin, body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{why}: {}", r.body);
    }
    for (body, why) in [
        (json!({}), "missing title"),
        (json!({"title": 5}), "wrong type"),
        (json!({"title": "x", "value": "12"}), "value as string"),
        (json!({"title": "x", "stagee": "lead"}), "unknown field"),
        (json!({"title": "x", "company_id": 99999999999i64}), "id overflow"),
    ] {
        let r = app.post("/api/v1/deals", &t.admin, body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{why}: {}", r.body);
        error_code(&r);
    }
    let r = app
        .http
        .post(format!("{}/api/v1/deals", app.url))
        .bearer_auth(&t.admin)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let list = app.get("/api/v1/deals", &t.admin).await;
    assert_eq!(list.body["pagination"]["total_count"], 0, "nothing half-written");
}

#[tokio::test]
async fn referenced_company_contact_and_owner_must_exist() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    app.add_company(10, "Acme");
    let r = app
        .post("/api/v1/deals", &t.admin, json!({"title": "x", "company_id": 11, "primary_contact_id": 21, "owner_id": 99}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(error_code(&r), "REFERENCE_NOT_FOUND");
    let fields = &r.body["details"]["fields"];
    assert!(fields["company_id"].is_string() && fields["primary_contact_id"].is_string() && fields["owner_id"].is_string(), "{}", r.body);

    let id = app.create_deal(&t.admin, json!({"title": "x", "company_id": 10})).await["id"].clone();
    let r = app.patch(&format!("/api/v1/deals/{id}"), &t.admin, json!({"company_id": 12})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body["details"]["fields"]["company_id"].is_string());
    let r = app.patch(&format!("/api/v1/deals/{id}"), &t.admin, json!({"owner_id": 77})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    // contact-service down: the reference cannot be checked, nothing is written.
    *app.contacts.fail_with.lock().unwrap() = Some(ClientError::Unavailable("down".into()));
    let r = app.post("/api/v1/deals", &t.admin, json!({"title": "y", "company_id": 10})).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    // ... but a deal without references needs no check.
    let r = app.post("/api/v1/deals", &t.admin, json!({"title": "z"})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let list = app.get("/api/v1/deals?search=y", &t.admin).await;
    assert_eq!(list.body["pagination"]["total_count"], 0);
}

#[tokio::test]
async fn stage_changes_follow_the_rules_and_are_recorded() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let mut changed = app.platform.events(subjects::DEAL_STAGE_CHANGED).await;
    let d = app.create_deal(&t.admin, json!({"title": "Deal", "value": 1000})).await;
    let path = format!("/api/v1/deals/{}", d["id"]);

    let r = app.patch(&path, &t.admin, json!({"stage": "no_such_stage"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(&r), "UNKNOWN_STAGE");
    let r = app.post("/api/v1/deals", &t.admin, json!({"title": "x", "stage": "Lead"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "stage keys are exact");

    let r = app.patch(&path, &t.admin, json!({"stage": "proposal"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["probability"], 50, "the new stage's probability");
    assert_eq!(r.body["weighted_value"], 500.0);
    let event = changed.wait_for(&t.id, subjects::DEAL_STAGE_CHANGED, EVENT_TIMEOUT).await;
    assert_eq!(event.data["from_stage"], "lead");
    assert_eq!(event.data["to_stage"], "proposal");
    assert_eq!(event.data["id"], d["id"]);

    // An explicit probability wins over the stage's.
    let r = app.patch(&path, &t.admin, json!({"stage": "negotiation", "probability": 60})).await;
    assert_eq!(r.body["probability"], 60);
    // Fields of closed deals are refused on open ones.
    let r = app.patch(&path, &t.admin, json!({"close_reason": "price"})).await;
    assert_eq!(bad_fields(&r), vec!["close_reason"]);
    let r = app.patch(&path, &t.admin, json!({"actual_close_date": "2026-01-01"})).await;
    assert_eq!(bad_fields(&r), vec!["actual_close_date"]);

    let r = app.patch(&path, &t.admin, json!({"stage": "closed_lost", "close_reason": "budget cut"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["actual_close_date"], today().to_string());
    assert_eq!(r.body["close_reason"], "budget cut");
    assert_eq!(r.body["probability"], 0);
    assert!(r.body["days_until_close"].is_null());

    let r = app.patch(&path, &t.admin, json!({"stage": "lead"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(&r), "DEAL_CLOSED");
    let r = app.patch(&path, &t.admin, json!({"stage": "closed_won"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "won -> lost needs reopen too");
    // Editing other fields of a closed deal is fine and keeps it closed.
    let r = app.patch(&path, &t.admin, json!({"title": "Deal (lost)"})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["close_reason"], "budget cut");
    assert_eq!(r.body["actual_close_date"], today().to_string());

    let r = app.patch(&path, &t.admin, json!({"stage": "qualified", "reopen": true})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body["actual_close_date"].is_null() && r.body["close_reason"].is_null());
    assert_eq!(r.body["probability"], 25);

    let history = app.get(&path, &t.admin).await.body["stage_history"].clone();
    let moves: Vec<(String, String)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["from_stage"].as_str().unwrap_or("-").to_owned(), h["to_stage"].as_str().unwrap().to_owned()))
        .collect();
    let expected = [("-", "lead"), ("lead", "proposal"), ("proposal", "negotiation"), ("negotiation", "closed_lost"), ("closed_lost", "qualified")];
    assert_eq!(moves, expected.map(|(a, b)| (a.to_owned(), b.to_owned())));
    assert!(history[1]["changed_at"].is_string() && history[1]["changed_by"] == ADMIN);
}

#[tokio::test]
async fn closing_won_publishes_exactly_one_closed_won_event() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    app.add_company(10, "Acme");
    app.add_contact(20, "Grace", "Hopper");
    let mut won = app.platform.events(subjects::DEAL_CLOSED_WON).await;
    let d = app.create_deal(&t.admin, json!({"title": "Win me", "value": 999.99, "company_id": 10, "primary_contact_id": 20})).await;
    let path = format!("/api/v1/deals/{}", d["id"]);
    let given = today() - Duration::days(2);
    let r = app.patch(&path, &t.admin, json!({"stage": "closed_won", "actual_close_date": given.to_string()})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["actual_close_date"], given.to_string());
    assert_eq!(r.body["probability"], 100);
    // Further edits of the won deal publish no second closed_won.
    let r = app.patch(&path, &t.admin, json!({"description": "signed"})).await;
    assert_eq!(r.status, StatusCode::OK);

    let event = won.wait_for(&t.id, subjects::DEAL_CLOSED_WON, EVENT_TIMEOUT).await;
    assert_eq!(
        event.data,
        json!({"id": d["id"], "title": "Win me", "stage": "closed_won", "value": 999.99, "owner_id": ADMIN,
               "company_id": 10, "primary_contact_id": 20, "actual_close_date": given.to_string(), "close_reason": null})
    );
    assert_eq!(won.count_within(&t.id, subjects::DEAL_CLOSED_WON, std::time::Duration::from_millis(1500)).await, 1);
}

#[tokio::test]
async fn closing_lost_publishes_closed_lost_and_the_event_commits_with_the_change() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let mut lost = app.platform.events(subjects::DEAL_CLOSED_LOST).await;
    let d = app.create_deal(&t.admin, json!({"title": "Lose me"})).await;
    let path = format!("/api/v1/deals/{}", d["id"]);
    // A refused change (unknown reference) writes neither the deal nor an event.
    let r = app.patch(&path, &t.admin, json!({"stage": "closed_lost", "owner_id": 404})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.get(&path, &t.admin).await.body["stage"], "lead");
    let r = app.patch(&path, &t.admin, json!({"stage": "closed_lost", "close_reason": "competitor"})).await;
    assert_eq!(r.status, StatusCode::OK);
    let event = lost.wait_for(&t.id, subjects::DEAL_CLOSED_LOST, EVENT_TIMEOUT).await;
    assert_eq!(event.data["close_reason"], "competitor");
    assert_eq!(event.data["actual_close_date"], today().to_string());
    assert_eq!(lost.count_within(&t.id, subjects::DEAL_CLOSED_LOST, std::time::Duration::from_millis(1000)).await, 1);

    // Created directly as won: deal.created and deal.closed_won.
    let mut won = app.platform.events(subjects::DEAL_CLOSED_WON).await;
    let d = app.create_deal(&t.admin, json!({"title": "Already won", "stage": "closed_won", "value": 5})).await;
    assert_eq!(d["actual_close_date"], today().to_string());
    let event = won.wait_for(&t.id, subjects::DEAL_CLOSED_WON, EVENT_TIMEOUT).await;
    assert_eq!(event.data["id"], d["id"]);
}

#[tokio::test]
async fn patch_changes_only_given_fields_and_null_clears() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    app.add_company(10, "Acme");
    let mut updated = app.platform.events(subjects::DEAL_UPDATED).await;
    let d = app.create_deal(&t.admin, json!({"title": "T", "value": 10, "company_id": 10, "description": "d"})).await;
    let path = format!("/api/v1/deals/{}", d["id"]);
    let r = app.patch(&path, &t.admin, json!({"value": null, "company_id": null, "title": "T2"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body["value"].is_null() && r.body["company_id"].is_null() && r.body["company_name"].is_null());
    assert_eq!(r.body["description"], "d", "absent fields stay");
    assert_eq!(r.body["title"], "T2");
    let event = updated.wait_for(&t.id, subjects::DEAL_UPDATED, EVENT_TIMEOUT).await;
    assert_eq!(event.data["title"], "T2");

    let r = app.patch(&path, &t.admin, json!({})).await;
    assert_eq!(bad_fields(&r), vec!["body"]);
    let r = app.patch(&path, &t.admin, json!({"title": ""})).await;
    assert_eq!(bad_fields(&r), vec!["title"]);
    let r = app.patch("/api/v1/deals/99999999", &t.admin, json!({"title": "x"})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn put_replaces_the_deal() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let d = app.create_deal(&t.admin, json!({"title": "T", "value": 10, "description": "d", "deal_source": "web"})).await;
    let path = format!("/api/v1/deals/{}", d["id"]);
    let r = app.put(&path, &t.admin, json!({"title": "New"})).await;
    assert_eq!(bad_fields(&r), vec!["stage"]);
    let r = app.put(&path, &t.admin, json!({"title": "New", "stage": "qualified", "value": 20.5})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["title"], "New");
    assert_eq!(r.body["value"], 20.5);
    assert_eq!(r.body["probability"], 25);
    assert!(r.body["description"].is_null() && r.body["deal_source"].is_null() && r.body["owner_id"].is_null());
    assert_eq!(app.put("/api/v1/deals/0", &t.admin, json!({"title": "x", "stage": "lead"})).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn delete_trashes_the_deal_and_erase_publishes_deal_deleted() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let mut trashed = app.platform.events(subjects::DEAL_TRASHED).await;
    let mut deleted = app.platform.events(subjects::DEAL_DELETED).await;
    let d = app.create_deal(&t.admin, json!({"title": "Gone", "value": 3})).await;
    let path = format!("/api/v1/deals/{}", d["id"]);
    // DELETE moves it to the trash (issue 16): deal.trashed, then 404 like a gone one.
    assert_eq!(app.delete(&path, &t.admin).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&path, &t.admin).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.delete(&path, &t.admin).await.status, StatusCode::NOT_FOUND);
    let event = trashed.wait_for(&t.id, subjects::DEAL_TRASHED, EVENT_TIMEOUT).await;
    assert_eq!((event.data["title"].as_str(), event.data["deleted_by"].as_i64()), (Some("Gone"), Some(ADMIN as i64)));
    // Erasing it (admins, also from the trash) is gone for good: deal.deleted.
    assert_eq!(app.delete(&format!("{path}?erase=true"), &t.admin).await.status, StatusCode::NO_CONTENT);
    let event = deleted.wait_for(&t.id, subjects::DEAL_DELETED, EVENT_TIMEOUT).await;
    assert_eq!(event.data, json!({"id": d["id"], "title": "Gone", "stage": "lead", "value": 3.0}));
    assert_eq!(app.delete(&format!("{path}?erase=true"), &t.admin).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn roles_are_enforced() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    app.add_user(5, "Rita", "Rep");
    app.add_user(6, "Sam", "Rep");
    let viewer = app.token(&t, 7, Role::Viewer);
    let rep = app.token(&t, 5, Role::SalesRep);
    let other_rep = app.token(&t, 6, Role::SalesRep);
    let manager = app.token(&t, 8, Role::Manager);

    let r = app.post("/api/v1/deals", &viewer, json!({"title": "x"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&r), "FORBIDDEN");
    let d = app.create_deal(&rep, json!({"title": "Mine"})).await;
    assert_eq!(d["owner_id"], 5);
    let r = app.post("/api/v1/deals", &rep, json!({"title": "For Sam", "owner_id": 6})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "a rep creates only own deals");

    let path = format!("/api/v1/deals/{}", d["id"]);
    assert_eq!(app.get(&path, &viewer).await.status, StatusCode::OK, "everyone reads");
    assert_eq!(app.get(&path, &other_rep).await.status, StatusCode::OK);
    let r = app.patch(&path, &other_rep, json!({"title": "stolen"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(app.delete(&path, &other_rep).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.patch(&path, &viewer, json!({"title": "v"})).await.status, StatusCode::FORBIDDEN);
    let r = app.patch(&path, &rep, json!({"owner_id": 6})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "a rep does not give deals away");
    assert_eq!(app.patch(&path, &rep, json!({"stage": "qualified"})).await.status, StatusCode::OK);
    assert_eq!(app.get(&path, &t.admin).await.body["title"], "Mine", "refused writes changed nothing");
    assert_eq!(app.delete(&path, &manager).await.status, StatusCode::NO_CONTENT);

    let anonymous = app.request(reqwest::Method::GET, "/api/v1/deals", None, None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let garbage = app.get("/api/v1/deals", "not-a-jwt").await;
    assert_eq!(garbage.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn another_tenants_deals_are_not_found_and_untouched() {
    let app = spawn_app().await;
    let a = app.tenant().await;
    let b = app.tenant().await;
    let d = app.create_deal(&a.admin, json!({"title": "A's deal", "value": 100})).await;
    let path = format!("/api/v1/deals/{}", d["id"]);
    for r in [
        app.get(&path, &b.admin).await,
        app.patch(&path, &b.admin, json!({"title": "hijacked"})).await,
        app.put(&path, &b.admin, json!({"title": "hijacked", "stage": "lead"})).await,
        app.delete(&path, &b.admin).await,
        app.get(&format!("{path}/basic"), &b.admin).await,
        app.get(&format!("{path}/contacts"), &b.admin).await,
        app.post(&format!("{path}/contacts"), &b.admin, json!({"contact_id": 1})).await,
    ] {
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    }
    let batch = app.get(&format!("/api/v1/deals/basic?ids={}", d["id"]), &b.admin).await;
    assert_eq!(batch.body["data"], json!([]));
    assert_eq!(app.get("/api/v1/deals", &b.admin).await.body["pagination"]["total_count"], 0);
    let pipeline = app.get("/api/v1/deals/pipeline", &b.admin).await;
    assert_eq!(pipeline.body["totals"]["total_deals"], 0);
    let still = app.get(&path, &a.admin).await;
    assert_eq!(still.body["title"], "A's deal");
    assert_eq!(still.body["stage_history"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn unknown_ids_are_not_found() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    for path in ["/api/v1/deals/424242", "/api/v1/deals/abc", "/api/v1/deals/-1", "/api/v1/deals/99999999999", "/api/v1/deals/1/basic"] {
        let r = app.get(path, &t.admin).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(error_code(&r), "NOT_FOUND");
    }
}

#[tokio::test]
async fn basic_lookups_single_and_batched() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let a = app.create_deal(&t.admin, json!({"title": "A", "value": 12.5})).await;
    let b = app.create_deal(&t.admin, json!({"title": "B"})).await;
    let service = app.token(&t, 0, Role::Service);
    let r = app.get(&format!("/api/v1/deals/{}/basic", a["id"]), &service).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body, json!({"id": a["id"], "title": "A", "stage": "lead", "value": 12.5}));
    let r = app.get(&format!("/api/v1/deals/basic?ids={},{},{},999999", b["id"], a["id"], a["id"]), &service).await;
    assert_eq!(r.status, StatusCode::OK);
    let ids: Vec<i64> = r.body["data"].as_array().unwrap().iter().map(|d| d["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(r.body["data"][1]["value"], 0.0, "no value shows as 0 in the basic info");
    for bad in ["", "?ids=", "?ids=a,b", "?ids=1,,2", "?ids=-4", "?ids=1%27%20OR%201=1"] {
        let r = app.get(&format!("/api/v1/deals/basic{bad}"), &service).await;
        assert_eq!(bad_fields(&r), vec!["ids"], "{bad}");
    }
    let many = (1..=501).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
    let r = app.get(&format!("/api/v1/deals/basic?ids={many}"), &service).await;
    assert_eq!(bad_fields(&r), vec!["ids"]);
    // Service tokens read basics but never write.
    assert_eq!(app.post("/api/v1/deals", &service, json!({"title": "x"})).await.status, StatusCode::FORBIDDEN);
}
