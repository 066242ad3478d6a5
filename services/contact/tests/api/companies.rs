use crm_client_contact::subjects::{COMPANY_CREATED, COMPANY_TRASHED};
use crm_web::codes;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn company_crud_publishes_events() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let mut created_events = app.platform.events(COMPANY_CREATED).await;
    let mut deleted_events = app.platform.events(COMPANY_TRASHED).await;

    let body = json!({
        "name": "Acme Corp", "domain": "Acme.example", "industry": "software", "size_category": "51-200",
        "address": {"street": "1 Main St", "city": "Berlin", "country": "DE", "postal_code": "10115"},
        "phone": "+49 30 1234", "website": "https://acme.example", "custom_fields": {"tier": "gold", "seats": 12},
        "tags": ["VIP", "vip", "Partner"]
    });
    let r = app.post("/api/v1/companies", &t.manager, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let c = r.body;
    let id = c["id"].as_i64().unwrap();
    assert_eq!(c["name"], "Acme Corp");
    assert_eq!(c["domain"], "acme.example");
    assert_eq!(c["address"], json!({"street": "1 Main St", "city": "Berlin", "state": "", "country": "DE", "postal_code": "10115"}));
    assert_eq!(c["custom_fields"], json!({"tier": "gold", "seats": 12}));
    assert_eq!(c["tags"], json!(["partner", "vip"]));
    assert_eq!(c["created_by"], MANAGER);
    assert!(c["parent_company_id"].is_null());
    let event = created_events.wait_for(&t.id, COMPANY_CREATED, EVENT_TIMEOUT).await;
    assert_eq!(event.data, json!({"id": id, "name": "Acme Corp"}));

    let r = app.get(&format!("/api/v1/companies/{id}"), &t.viewer).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, c);

    // PATCH changes only what is given; null clears.
    let r = app.patch(&format!("/api/v1/companies/{id}"), &t.rep, json!({"name": "Acme GmbH", "phone": null})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["name"], "Acme GmbH");
    assert_eq!(r.body["phone"], "");
    assert_eq!(r.body["domain"], "acme.example");

    // PUT replaces everything.
    let r = app.put(&format!("/api/v1/companies/{id}"), &t.admin, json!({"name": "Acme AG"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["domain"], "");
    assert_eq!(r.body["custom_fields"], json!({}));

    // DELETE moves it to the trash (issue 16): company.trashed, then 404 like a gone one.
    let r = app.delete(&format!("/api/v1/companies/{id}"), &t.manager).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let event = deleted_events.wait_for(&t.id, COMPANY_TRASHED, EVENT_TIMEOUT).await;
    assert_eq!(event.data["name"], "Acme AG");
    assert_eq!(event.data["deleted_by"], MANAGER);
    let r = app.get(&format!("/api/v1/companies/{id}"), &t.admin).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&r), codes::NOT_FOUND);
}

#[tokio::test]
async fn company_input_is_validated_field_by_field() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let r = app
        .post(
            "/api/v1/companies",
            &t.admin,
            json!({"name": " ", "website": "not a url", "domain": "x", "custom_fields": [1], "tags": ["a,b"], "phone": "call me", "parent_company_id": -1}),
        )
        .await;
    let mut fields = bad_fields(&r);
    fields.sort();
    assert_eq!(fields, ["custom_fields", "domain", "name", "parent_company_id", "phone", "tags", "website"]);

    let big = json!({"name": "A", "custom_fields": {"blob": "x".repeat(20_000)}});
    assert_eq!(bad_fields(&app.post("/api/v1/companies", &t.admin, big).await), ["custom_fields"]);
    assert_eq!(bad_fields(&app.post("/api/v1/companies", &t.admin, json!({"name": "n".repeat(300)})).await), ["name"]);

    for body in [json!({"name": 5}), json!({"nme": "typo"}), json!([]), json!({"name": "A", "address": "street"})] {
        let r = app.post("/api/v1/companies", &t.admin, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
        error_code(&r);
    }
    let r = app.send(app.http.post(format!("{}/api/v1/companies", app.url)).bearer_auth(&t.admin).header("content-type", "application/json").body("{\"name\":")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(app.count(&t.id, "companies").await, 0);
}

#[tokio::test]
async fn company_permissions_follow_the_matrix() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let r = app.post("/api/v1/companies", &t.viewer, json!({"name": "Nope"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&r), codes::FORBIDDEN);
    // sales_rep writes companies (shared accounts) but deletes none.
    let c = app.create_company(&t.rep, "Shared").await;
    let id = c["id"].as_i64().unwrap();
    assert_eq!(app.patch(&format!("/api/v1/companies/{id}"), &t.viewer, json!({"name": "X"})).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.delete(&format!("/api/v1/companies/{id}"), &t.rep).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.get(&format!("/api/v1/companies/{id}"), &t.viewer).await.body["name"], "Shared");
    let r = app.get("/api/v1/companies", "not-a-token").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.count(&t.id, "companies").await, 1);
}

#[tokio::test]
async fn hierarchy_refuses_cycles_and_lists_children() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let r = app.post("/api/v1/companies", &t.admin, json!({"name": "Orphan", "parent_company_id": 999})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(&r), codes::REFERENCE_NOT_FOUND);

    let a = app.create_company(&t.admin, "Holding").await["id"].as_i64().unwrap();
    let b = app.post("/api/v1/companies", &t.admin, json!({"name": "Sub B", "parent_company_id": a})).await.body["id"].as_i64().unwrap();
    let c = app.post("/api/v1/companies", &t.admin, json!({"name": "Sub C", "parent_company_id": b})).await.body["id"].as_i64().unwrap();
    app.post("/api/v1/companies", &t.admin, json!({"name": "Sub A2", "parent_company_id": a})).await;

    for (id, parent) in [(a, c), (a, a), (b, c)] {
        let r = app.patch(&format!("/api/v1/companies/{id}"), &t.admin, json!({"parent_company_id": parent})).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{id} -> {parent}: {}", r.body);
        assert_eq!(error_code(&r), "COMPANY_CYCLE");
    }
    let r = app.get(&format!("/api/v1/companies/{a}/children"), &t.viewer).await;
    assert_eq!(r.status, StatusCode::OK);
    let names: Vec<&str> = r.body["data"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Sub A2", "Sub B"]);
    assert_eq!(r.body["pagination"]["total_count"], 2);
    let r = app.get(&format!("/api/v1/companies?parent_company_id={b}"), &t.viewer).await;
    assert_eq!(ids(&r.body), [c]);

    // Trashing a parent keeps the reference (it may come back); erasing it orphans its children.
    assert_eq!(app.delete(&format!("/api/v1/companies/{b}"), &t.admin).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&format!("/api/v1/companies/{c}"), &t.admin).await.body["parent_company_id"], b);
    assert_eq!(app.delete(&format!("/api/v1/companies/{b}?erase=true"), &t.admin).await.status, StatusCode::NO_CONTENT);
    assert!(app.get(&format!("/api/v1/companies/{c}"), &t.admin).await.body["parent_company_id"].is_null());
    assert_eq!(app.get("/api/v1/companies/999999/children", &t.admin).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn other_tenants_see_nothing_and_change_nothing() {
    let app = spawn_app().await;
    let (a, b) = (app.tenant().await, app.tenant().await);
    let id = app.create_company(&a.admin, "Secret Co").await["id"].as_i64().unwrap();
    for r in [
        app.get(&format!("/api/v1/companies/{id}"), &b.admin).await,
        app.get(&format!("/api/v1/companies/{id}/basic"), &b.admin).await,
        app.get(&format!("/api/v1/companies/{id}/children"), &b.admin).await,
        app.patch(&format!("/api/v1/companies/{id}"), &b.admin, json!({"name": "Pwned"})).await,
        app.put(&format!("/api/v1/companies/{id}"), &b.admin, json!({"name": "Pwned"})).await,
        app.delete(&format!("/api/v1/companies/{id}"), &b.admin).await,
    ] {
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    }
    assert_eq!(app.get(&format!("/api/v1/companies/basic?ids={id}"), &b.admin).await.body["data"], json!([]));
    assert_eq!(app.get("/api/v1/companies", &b.admin).await.body["pagination"]["total_count"], 0);
    assert_eq!(app.get(&format!("/api/v1/companies/{id}"), &a.admin).await.body["name"], "Secret Co");
    // An X-Tenant-ID naming another tenant is refused.
    let r = app.send(app.http.get(format!("{}/api/v1/companies", app.url)).bearer_auth(&a.admin).header("x-tenant-id", b.id.to_string())).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn lists_filter_sort_and_paginate() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    for (name, industry, tags) in [("Delta", "retail", vec!["b2b"]), ("Alpha", "software", vec!["b2b", "eu"]), ("Charlie", "software", vec![]), ("Bravo", "software", vec!["eu"]), ("Echo", "software", vec!["eu"])] {
        let r = app.post("/api/v1/companies", &t.admin, json!({"name": name, "industry": industry, "tags": tags})).await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let mut names = Vec::new();
    let mut next = "/api/v1/companies?industry=software&limit=2".to_owned();
    loop {
        let r = app.get(&next, &t.viewer).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["pagination"]["total_count"], 4);
        names.extend(r.body["data"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_owned()));
        match r.body["pagination"]["next_cursor"].as_str() {
            Some(cursor) => next = format!("/api/v1/companies?industry=software&limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(names, ["Alpha", "Bravo", "Charlie", "Echo"]);

    let r = app.get("/api/v1/companies?sort=-name&tag=eu&tag=B2B&count=false", &t.viewer).await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["data"][0]["name"], "Alpha");
    assert!(r.body["pagination"].get("total_count").is_none());
    let r = app.get("/api/v1/companies?search=chrlie", &t.viewer).await;
    assert_eq!(r.body["data"][0]["name"], "Charlie", "{}", r.body);
    let r = app.get("/api/v1/companies?search=%25", &t.viewer).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["data"], json!([]));

    for bad in ["limit=0", "limit=1000", "limit=-1", "cursor=garbage", "sort=password_hash", "sort=name;drop table companies", "parent_company_id=x"] {
        let r = app.get(&format!("/api/v1/companies?{bad}"), &t.viewer).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
        error_code(&r);
    }
    // A cursor made for another order is refused.
    let r = app.get("/api/v1/companies?limit=1", &t.viewer).await;
    let cursor = r.body["pagination"]["next_cursor"].as_str().unwrap().to_owned();
    assert_eq!(app.get(&format!("/api/v1/companies?sort=created_at&cursor={cursor}"), &t.viewer).await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn basic_lookups_single_and_batch() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let a = app.create_company(&t.admin, "A").await["id"].as_i64().unwrap();
    let b = app.create_company(&t.admin, "B").await["id"].as_i64().unwrap();
    let r = app.get(&format!("/api/v1/companies/{a}/basic"), &t.viewer).await;
    assert_eq!(r.body, json!({"id": a, "name": "A"}));
    let r = app.get(&format!("/api/v1/companies/basic?ids={b},{a},999"), &t.viewer).await;
    assert_eq!(r.body, json!({"data": [{"id": a, "name": "A"}, {"id": b, "name": "B"}]}));
    let many = (1..=501).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
    for bad in ["", "?ids=", "?ids=a", "?ids=1,-2", &format!("?ids={many}")] {
        let r = app.get(&format!("/api/v1/companies/basic{bad}"), &t.viewer).await;
        assert_eq!(bad_fields(&r), ["ids"], "{bad}");
    }
    assert_eq!(app.get("/api/v1/companies/abc/basic", &t.viewer).await.status, StatusCode::NOT_FOUND);
}
