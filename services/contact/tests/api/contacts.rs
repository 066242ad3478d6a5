use crm_client_auth::ClientError;
use crm_client_contact::subjects::{CONTACT_CONVERTED, CONTACT_CREATED, CONTACT_TRASHED, CONTACT_UPDATED};
use crm_web::codes;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn contact_crud_with_enrichment_and_events() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let mut created = app.platform.events(CONTACT_CREATED).await;
    let mut updated = app.platform.events(CONTACT_UPDATED).await;
    let mut deleted = app.platform.events(CONTACT_TRASHED).await;
    let company = app.create_company(&t.admin, "Initech").await["id"].as_i64().unwrap();

    let r = app
        .post(
            "/api/v1/contacts",
            &t.manager,
            json!({"first_name": "Peter", "last_name": "Gibbons", "email": "Peter@Initech.example", "phone": "+1 555 0100",
                   "job_title": "Engineer", "company_id": company, "owner_id": REP, "source": "referral",
                   "address": {"city": "Austin", "state": "TX"}, "custom_fields": {"stapler": false}, "notes": "TPS", "tags": ["Hot"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let c = r.body;
    let id = c["id"].as_i64().unwrap();
    assert_eq!(c["company_name"], "Initech");
    assert_eq!(c["owner_name"], "Rita User");
    assert_eq!(c["status"], "lead");
    assert_eq!(c["created_by"], MANAGER);
    assert_eq!(c["address"]["city"], "Austin");
    assert_eq!(c["tags"], json!(["hot"]));
    let e = created.wait_for(&t.id, CONTACT_CREATED, EVENT_TIMEOUT).await;
    assert_eq!(e.data, json!({"id": id, "first_name": "Peter", "last_name": "Gibbons", "email": "Peter@Initech.example", "marketing_consent": "unknown"}));
    assert_eq!(e.actor.as_deref(), Some("2"));

    let r = app.get(&format!("/api/v1/contacts/{id}"), &t.viewer).await;
    assert_eq!(r.body, c);

    // Without owner_id the creator owns the contact.
    let own = app.create_contact(&t.rep, json!({"first_name": "Milton"})).await;
    assert_eq!(own["owner_id"], REP);
    assert!(own["company_name"].is_null());
    assert_eq!(own["email"], "");

    let r = app.patch(&format!("/api/v1/contacts/{id}"), &t.manager, json!({"job_title": "Manager", "company_id": null})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["job_title"], "Manager");
    assert!(r.body["company_name"].is_null());
    assert_eq!(r.body["phone"], "+1 555 0100");
    let e = updated.wait_for(&t.id, CONTACT_UPDATED, EVENT_TIMEOUT).await;
    assert_eq!(e.data["id"], id);

    let r = app.put(&format!("/api/v1/contacts/{id}"), &t.manager, json!({"first_name": "Pete", "email": "pete@initech.example"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["phone"], "");
    assert_eq!(r.body["owner_id"], REP, "an absent owner_id keeps the owner on PUT");

    // One auth-service call per list page, however many owners.
    let before = app.auth_calls();
    let r = app.get("/api/v1/contacts", &t.viewer).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["data"].as_array().unwrap().len(), 2);
    assert!(r.body["data"].as_array().unwrap().iter().all(|c| c["owner_name"] == "Rita User"));
    assert_eq!(app.auth_calls() - before, 1);

    assert_eq!(app.delete(&format!("/api/v1/contacts/{id}"), &t.manager).await.status, StatusCode::NO_CONTENT);
    // Into the trash (issue 16): contact.trashed, then 404 like a gone one.
    deleted.wait_for(&t.id, CONTACT_TRASHED, EVENT_TIMEOUT).await;
    assert_eq!(app.get(&format!("/api/v1/contacts/{id}"), &t.manager).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.delete(&format!("/api/v1/contacts/{id}"), &t.manager).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn contact_input_errors_name_every_field() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let r = app
        .post("/api/v1/contacts", &t.admin, json!({"first_name": "", "email": "nope", "status": "vip", "custom_fields": "x", "notes": "n".repeat(20_000), "address": {"postal_code": "1".repeat(30)}}))
        .await;
    let mut fields = bad_fields(&r);
    fields.sort();
    assert_eq!(fields, ["address.postal_code", "custom_fields", "email", "first_name", "notes", "status"]);
    for body in [json!({}), json!({"first_name": 1}), json!({"first_name": "A", "owner_id": "x"}), json!({"first_name": "A", "bogus": 1})] {
        let r = app.post("/api/v1/contacts", &t.admin, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
    }
    let r = app.post("/api/v1/contacts", &t.admin, json!({"first_name": "A", "company_id": 4242})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["details"]["fields"]["company_id"], "no such company");
    let r = app.post("/api/v1/contacts", &t.admin, json!({"first_name": "A", "owner_id": 777})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(&r), codes::REFERENCE_NOT_FOUND);
    // Ids that cannot exist are unknown references too, not a failed call to auth-service
    // (found by the schema-driven fuzz pass: owner_id 0 was a 500).
    for owner in [0, -1, i32::MIN as i64] {
        let r = app.post("/api/v1/contacts", &t.admin, json!({"first_name": "A", "owner_id": owner, "company_id": 0})).await;
        assert_eq!(bad_fields(&r), ["company_id", "owner_id"], "{owner}");
        let r = app.put("/api/v1/contacts/2147483646", &t.admin, json!({"first_name": "A", "last_name": "", "owner_id": owner})).await;
        assert!(matches!(r.status, StatusCode::UNPROCESSABLE_ENTITY | StatusCode::NOT_FOUND), "{owner}: {}", r.body);
    }
    let id = app.create_contact(&t.admin, json!({"first_name": "A"})).await["id"].as_i64().unwrap();
    assert_eq!(bad_fields(&app.patch(&format!("/api/v1/contacts/{id}"), &t.admin, json!({})).await), ["body"]);
    assert_eq!(bad_fields(&app.patch(&format!("/api/v1/contacts/{id}"), &t.admin, json!({"status": "won"})).await), ["status"]);
    assert_eq!(app.count(&t.id, "contacts").await, 1);
}

#[tokio::test]
async fn email_is_unique_per_tenant_case_insensitively() {
    let app = spawn_app().await;
    let (t, other) = (app.tenant().await, app.tenant().await);
    app.create_contact(&t.admin, json!({"first_name": "A", "email": "Sam@Example.com"})).await;
    let r = app.post("/api/v1/contacts", &t.admin, json!({"first_name": "B", "email": "sam@example.COM"})).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(error_code(&r), codes::EMAIL_TAKEN);
    let b = app.create_contact(&t.admin, json!({"first_name": "B", "email": "b@example.com"})).await["id"].as_i64().unwrap();
    let r = app.patch(&format!("/api/v1/contacts/{b}"), &t.admin, json!({"email": "SAM@example.com"})).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    // Changing the case of one's own email is fine; another tenant may use the same email.
    assert_eq!(app.patch(&format!("/api/v1/contacts/{b}"), &t.admin, json!({"email": "B@example.com"})).await.status, StatusCode::OK);
    app.create_contact(&other.admin, json!({"first_name": "A", "email": "sam@example.com"})).await;
    assert_eq!(app.count(&t.id, "contacts").await, 2);
}

#[tokio::test]
async fn roles_limit_writes() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let r = app.post("/api/v1/contacts", &t.viewer, json!({"first_name": "V"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&r), codes::FORBIDDEN);
    let theirs = app.create_contact(&t.manager, json!({"first_name": "Managed", "owner_id": OTHER_REP})).await["id"].as_i64().unwrap();
    let mine = app.create_contact(&t.rep, json!({"first_name": "Mine"})).await["id"].as_i64().unwrap();

    // A sales rep creates and changes only its own contacts.
    assert_eq!(app.post("/api/v1/contacts", &t.rep, json!({"first_name": "X", "owner_id": OTHER_REP})).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.patch(&format!("/api/v1/contacts/{theirs}"), &t.rep, json!({"first_name": "Hijack"})).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.delete(&format!("/api/v1/contacts/{theirs}"), &t.rep).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.patch(&format!("/api/v1/contacts/{mine}"), &t.rep, json!({"owner_id": OTHER_REP})).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.patch(&format!("/api/v1/contacts/{mine}"), &t.rep, json!({"last_name": "Own"})).await.status, StatusCode::OK);
    assert_eq!(app.patch(&format!("/api/v1/contacts/{mine}"), &t.viewer, json!({"last_name": "V"})).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.delete(&format!("/api/v1/contacts/{mine}"), &t.viewer).await.status, StatusCode::FORBIDDEN);
    // Reading is open to every role.
    assert_eq!(app.get(&format!("/api/v1/contacts/{theirs}"), &t.rep).await.body["first_name"], "Managed");
    assert_eq!(app.get(&format!("/api/v1/contacts/{theirs}"), &t.other_rep).await.status, StatusCode::OK);
    assert_eq!(app.delete(&format!("/api/v1/contacts/{mine}"), &t.rep).await.status, StatusCode::NO_CONTENT);
    // In the trash (issue 16): the row stays, the contact is gone from the list.
    assert_eq!(app.get("/api/v1/contacts", &t.rep).await.body["pagination"]["total_count"], 1);
}

#[tokio::test]
async fn other_tenants_get_404_and_change_nothing() {
    let app = spawn_app().await;
    let (a, b) = (app.tenant().await, app.tenant().await);
    let id = app.create_contact(&a.admin, json!({"first_name": "Alice", "email": "alice@a.example"})).await["id"].as_i64().unwrap();
    for r in [
        app.get(&format!("/api/v1/contacts/{id}"), &b.admin).await,
        app.get(&format!("/api/v1/contacts/{id}/basic"), &b.admin).await,
        app.get(&format!("/api/v1/contacts/{id}/status-history"), &b.admin).await,
        app.patch(&format!("/api/v1/contacts/{id}"), &b.admin, json!({"first_name": "Mallory"})).await,
        app.put(&format!("/api/v1/contacts/{id}"), &b.admin, json!({"first_name": "Mallory"})).await,
        app.delete(&format!("/api/v1/contacts/{id}"), &b.admin).await,
    ] {
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    }
    assert_eq!(app.get(&format!("/api/v1/contacts/basic?ids={id}"), &b.admin).await.body["data"], json!([]));
    assert_eq!(app.get("/api/v1/contacts?search=alice", &b.admin).await.body["data"], json!([]));
    let r = app.get(&format!("/api/v1/contacts/{id}"), &a.admin).await;
    assert_eq!(r.body["first_name"], "Alice");
    assert_eq!(app.count(&a.id, "contacts").await, 1);
}

#[tokio::test]
async fn a_failing_auth_service_degrades_names_and_refuses_unchecked_owners() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let id = app.create_contact(&t.admin, json!({"first_name": "A", "owner_id": REP})).await["id"].as_i64().unwrap();
    *app.users.fail_with.lock().unwrap() = Some(ClientError::Unavailable("down".into()));
    let r = app.get(&format!("/api/v1/contacts/{id}"), &t.viewer).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["owner_name"].is_null());
    assert_eq!(r.body["owner_id"], REP);
    let r = app.get("/api/v1/contacts", &t.viewer).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["data"][0]["owner_name"].is_null());
    let r = app.post("/api/v1/contacts", &t.admin, json!({"first_name": "B", "owner_id": OTHER_REP})).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    // Owning it oneself needs no lookup.
    assert_eq!(app.post("/api/v1/contacts", &t.admin, json!({"first_name": "C"})).await.status, StatusCode::CREATED);
    assert_eq!(app.count(&t.id, "contacts").await, 2);
}

#[tokio::test]
async fn status_changes_are_recorded_and_conversions_counted() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let mut converted = app.platform.events(CONTACT_CONVERTED).await;
    let id = app.create_contact(&t.rep, json!({"first_name": "Lena", "email": "lena@x.example"})).await["id"].as_i64().unwrap();
    let r = app.patch(&format!("/api/v1/contacts/{id}"), &t.rep, json!({"status": "prospect", "status_reason": "replied"})).await;
    assert_eq!(r.body["status"], "prospect");
    let r = app.patch(&format!("/api/v1/contacts/{id}"), &t.manager, json!({"status": "customer", "status_reason": "signed"})).await;
    assert_eq!(r.status, StatusCode::OK);
    let e = converted.wait_for(&t.id, CONTACT_CONVERTED, EVENT_TIMEOUT).await;
    assert_eq!(e.data["id"], id);
    assert_eq!(e.data["from_status"], "prospect");
    assert_eq!(e.data["reason"], "signed");
    assert_eq!(e.data["email"], "lena@x.example");

    let r = app.get(&format!("/api/v1/contacts/{id}/status-history"), &t.viewer).await;
    assert_eq!(r.status, StatusCode::OK);
    let h: Vec<(serde_json::Value, serde_json::Value, serde_json::Value, serde_json::Value)> = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["from_status"].clone(), e["to_status"].clone(), e["reason"].clone(), e["changed_by"].clone()))
        .collect();
    assert_eq!(
        h,
        [
            (json!("prospect"), json!("customer"), json!("signed"), json!(MANAGER)),
            (json!("lead"), json!("prospect"), json!("replied"), json!(REP)),
            (json!(null), json!("lead"), json!(null), json!(REP)),
        ]
    );
    app.create_contact(&t.rep, json!({"first_name": "Other"})).await;
    let r = app.get("/api/v1/contacts/stats", &t.viewer).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["by_status"]["customer"], 1);
    assert_eq!(r.body["by_status"]["lead"], 1);
    assert_eq!(r.body["by_status"]["churned"], 0);
    assert_eq!(r.body["conversions"], 1);
    assert_eq!(r.body["new_leads"], 2);
    assert_eq!(r.body["conversion_rate"], 0.5);
    assert_eq!(bad_fields(&app.get("/api/v1/contacts/stats?from=yesterday", &t.viewer).await), ["from"]);
    let r = app.get("/api/v1/contacts/stats?from=2020-01-01T00:00:00Z&to=2020-02-01T00:00:00Z", &t.viewer).await;
    assert_eq!(r.body["conversions"], 0);
    assert_eq!(r.body["conversion_rate"], 0.0);
}

#[tokio::test]
async fn lists_filter_sort_paginate_and_tags() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let acme = app.create_company(&t.admin, "Acme").await["id"].as_i64().unwrap();
    for (first, last, status, owner, company, tags) in [
        ("Zoe", "Adams", "lead", REP, Some(acme), vec!["vip"]),
        ("Yan", "Brown", "customer", REP, None, vec!["vip", "eu"]),
        ("Xia", "Clark", "lead", OTHER_REP, Some(acme), vec![]),
        ("Will", "Davis", "lead", REP, Some(acme), vec!["eu"]),
    ] {
        app.create_contact(&t.admin, json!({"first_name": first, "last_name": last, "status": status, "owner_id": owner, "company_id": company, "tags": tags})).await;
    }
    let r = app.get(&format!("/api/v1/contacts?status=lead&owner_id={REP}&company_id={acme}&sort=last_name"), &t.viewer).await;
    let names: Vec<&str> = r.body["data"].as_array().unwrap().iter().map(|c| c["last_name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Adams", "Davis"]);
    assert_eq!(r.body["pagination"]["total_count"], 2);
    let r = app.get("/api/v1/contacts?tag=VIP&tag=eu", &t.viewer).await;
    assert_eq!(r.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["data"][0]["first_name"], "Yan");

    let mut seen = Vec::new();
    let mut path = "/api/v1/contacts?sort=-first_name&limit=3".to_owned();
    loop {
        let r = app.get(&path, &t.viewer).await;
        seen.extend(r.body["data"].as_array().unwrap().iter().map(|c| c["first_name"].as_str().unwrap().to_owned()));
        let Some(cursor) = r.body["pagination"]["next_cursor"].as_str() else { break };
        path = format!("/api/v1/contacts?sort=-first_name&limit=3&cursor={cursor}");
    }
    assert_eq!(seen, ["Zoe", "Yan", "Xia", "Will"]);
    let r = app.get("/api/v1/contacts?created_after=2000-01-01T00:00:00Z&created_before=2000-01-02T00:00:00Z", &t.viewer).await;
    assert_eq!(r.body["data"], json!([]));

    for bad in ["status=vip", "owner_id=abc", "created_after=soon", "sort=email", "sort=-id%20desc", "limit=101", "cursor=x.y", "search=%20x%20", "search=jo&sort=first_name"] {
        let r = app.get(&format!("/api/v1/contacts?{bad}"), &t.viewer).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
        error_code(&r);
    }
    let tags = app.get("/api/v1/tags", &t.viewer).await;
    assert_eq!(tags.body["data"], json!([{"tag": "eu", "contacts": 2, "companies": 0}, {"tag": "vip", "contacts": 2, "companies": 0}]));
}

#[tokio::test]
async fn basic_lookups_for_other_services() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let a = app.create_contact(&t.admin, json!({"first_name": "Ann", "last_name": "Lee", "email": "ann@x.example"})).await["id"].as_i64().unwrap();
    let b = app.create_contact(&t.admin, json!({"first_name": "Bo"})).await["id"].as_i64().unwrap();
    let service = app.platform.token(&t.id, 0, crm_web::Role::Service);
    let r = app.get(&format!("/api/v1/contacts/{a}/basic"), &service).await;
    assert_eq!(r.body, json!({"id": a, "first_name": "Ann", "last_name": "Lee", "email": "ann@x.example", "marketing_consent": "unknown"}));
    let r = app.get(&format!("/api/v1/contacts/basic?ids={b},{a},12345"), &t.viewer).await;
    assert_eq!(ids(&r.body), [a, b]);
    assert_eq!(r.body["data"][1]["email"], "");
    assert_eq!(bad_fields(&app.get("/api/v1/contacts/basic?ids=1,x", &t.viewer).await), ["ids"]);
    assert_eq!(app.get("/api/v1/contacts/99999/basic", &t.viewer).await.status, StatusCode::NOT_FOUND);
    // A service token reads but never writes.
    assert_eq!(app.post("/api/v1/contacts", &service, json!({"first_name": "S"})).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn concurrent_tenants_never_see_each_other() {
    let app = spawn_app().await;
    let mut tenants = Vec::new();
    for _ in 0..4 {
        tenants.push(app.tenant().await);
    }
    let mut tasks = Vec::new();
    for (i, t) in tenants.iter().enumerate() {
        for n in 0..10 {
            let (url, token, http) = (app.url.clone(), t.admin.clone(), app.http.clone());
            tasks.push(tokio::spawn(async move {
                let body = json!({"first_name": format!("T{i}"), "last_name": format!("N{n}"), "email": format!("c{n}@t{i}.example")});
                let r = http.post(format!("{url}/api/v1/contacts")).bearer_auth(&token).json(&body).send().await.unwrap();
                assert_eq!(r.status(), StatusCode::CREATED);
                let list: serde_json::Value = http.get(format!("{url}/api/v1/contacts?limit=100")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
                for c in list["data"].as_array().unwrap() {
                    assert_eq!(c["first_name"], format!("T{i}"), "tenant {i} saw {c}");
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    for t in &tenants {
        assert_eq!(app.count(&t.id, "contacts").await, 10);
    }
}
