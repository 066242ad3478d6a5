//! The trash of contacts and companies (issue 16): hidden everywhere while trashed, restore
//! with references intact, 409 on an email taken meanwhile, erase (admins) and the purge
//! after the tenant's retention publishing `*.deleted`, permissions and tenant isolation.

use crm_client_contact::subjects::{COMPANY_RESTORED, COMPANY_TRASHED, CONTACT_DELETED, CONTACT_RESTORED, CONTACT_TRASHED};
use crm_tenant::TenantId;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

/// Moves the trashed row's deletion `days` into the past (the purge's clock is the row's).
async fn age(app: &TestApp, tenant: &TenantId, table: &str, id: i64, days: i32) {
    let client = app.platform.pool.get().await.expect("connection");
    let sql = format!(
        "UPDATE {}.{table} SET deleted_at = now() - make_interval(days => $2) WHERE id = $1",
        tenant.schema().as_str()
    );
    assert_eq!(client.execute(&sql, &[&(id as i32), &days]).await.expect("age"), 1);
}

/// Sets the tenant's `trash_retention_days` (tenant-service's settings row).
async fn set_retention(app: &TestApp, tenant: &TenantId, days: i32) {
    let client = app.platform.pool.get().await.expect("connection");
    client
        .execute(
            "INSERT INTO platform.tenant_settings (tenant_id, trash_retention_days) VALUES ($1, $2)
             ON CONFLICT (tenant_id) DO UPDATE SET trash_retention_days = EXCLUDED.trash_retention_days",
            &[&tenant.to_string(), &days],
        )
        .await
        .expect("settings");
}

fn trash_ids(page: &Value) -> Vec<(String, i64)> {
    page["data"].as_array().expect("data").iter().map(|i| (i["type"].as_str().unwrap().to_owned(), i["id"].as_i64().unwrap())).collect()
}

#[tokio::test]
async fn a_trashed_contact_is_hidden_everywhere_and_comes_back_with_its_references() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let mut trashed = app.platform.events(CONTACT_TRASHED).await;
    let mut restored = app.platform.events(CONTACT_RESTORED).await;
    let company = app.create_company(&t.admin, "Globex").await["id"].as_i64().unwrap();
    let c = app
        .create_contact(&t.rep, json!({"first_name": "Hank", "last_name": "Scorpio", "email": "hank@globex.example", "company_id": company, "tags": ["vip"]}))
        .await;
    let id = c["id"].as_i64().unwrap();
    let keep = app.create_contact(&t.rep, json!({"first_name": "Homer", "last_name": "Simpson"})).await["id"].as_i64().unwrap();

    assert_eq!(app.delete(&format!("/api/v1/contacts/{id}"), &t.rep).await.status, StatusCode::NO_CONTENT);
    let e = trashed.wait_for(&t.id, CONTACT_TRASHED, EVENT_TIMEOUT).await;
    assert_eq!((e.data["id"].as_i64(), e.data["email"].as_str(), e.data["deleted_by"].as_i64()), (Some(id), Some("hank@globex.example"), Some(REP as i64)));
    assert!(e.data["deleted_at"].is_string());

    // Hidden: GET, lists, search, counts, lookups, tags, stats, export, status history.
    assert_eq!(app.get(&format!("/api/v1/contacts/{id}"), &t.admin).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/api/v1/contacts/{id}/basic"), &t.admin).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/api/v1/contacts/{id}/status-history"), &t.admin).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.patch(&format!("/api/v1/contacts/{id}"), &t.admin, json!({"job_title": "x"})).await.status, StatusCode::NOT_FOUND);
    let list = app.get("/api/v1/contacts", &t.admin).await.expect(StatusCode::OK);
    assert_eq!(ids(&list), [keep]);
    assert_eq!(list["pagination"]["total_count"], 1);
    assert_eq!(ids(&app.get(&format!("/api/v1/contacts?company_id={company}"), &t.admin).await.expect(StatusCode::OK)), Vec::<i64>::new());
    assert_eq!(ids(&app.get("/api/v1/contacts?search=scorpio", &t.admin).await.expect(StatusCode::OK)), Vec::<i64>::new());
    assert_eq!(app.get(&format!("/api/v1/contacts/basic?ids={id},{keep}"), &t.admin).await.expect(StatusCode::OK)["data"].as_array().unwrap().len(), 1);
    let tags = app.get("/api/v1/tags", &t.admin).await.expect(StatusCode::OK);
    assert!(!tags["data"].as_array().unwrap().iter().any(|t| t["tag"] == "vip"), "{tags}");
    assert_eq!(app.get("/api/v1/contacts/stats", &t.admin).await.expect(StatusCode::OK)["by_status"]["lead"], 1);
    let csv = app.get("/api/v1/contacts/export", &t.admin).await;
    assert!(!format!("{}", csv.body).contains("Scorpio"));

    // In the trash: who, when, when it goes (the default 30 days).
    let page = app.get("/api/v1/trash", &t.manager).await.expect(StatusCode::OK);
    assert_eq!(trash_ids(&page), [("contact".to_owned(), id)]);
    let item = &page["data"][0];
    assert_eq!((item["name"].as_str(), item["email"].as_str(), item["deleted_by"].as_i64()), (Some("Hank Scorpio"), Some("hank@globex.example"), Some(REP as i64)));
    let at = chrono::DateTime::parse_from_rfc3339(item["deleted_at"].as_str().unwrap()).unwrap();
    let purge = chrono::DateTime::parse_from_rfc3339(item["purge_at"].as_str().unwrap()).unwrap();
    assert_eq!(purge - at, chrono::Duration::days(30));

    // Restore: the same record with its company, tags and owner.
    let r = app.post(&format!("/api/v1/trash/contacts/{id}/restore"), &t.rep, json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!((r.body["id"].as_i64(), r.body["company_id"].as_i64(), r.body["company_name"].as_str()), (Some(id), Some(company), Some("Globex")));
    assert_eq!(r.body["tags"], json!(["vip"]));
    assert_eq!(r.body["owner_name"], "Rita User");
    assert!(r.header("etag").is_some());
    assert_eq!(restored.wait_for(&t.id, CONTACT_RESTORED, EVENT_TIMEOUT).await.data["id"].as_i64(), Some(id));
    assert_eq!(app.get(&format!("/api/v1/contacts/{id}"), &t.admin).await.status, StatusCode::OK);
    assert_eq!(ids(&app.get("/api/v1/contacts?search=scorpio", &t.admin).await.expect(StatusCode::OK)), [id]);
    assert_eq!(trash_ids(&app.get("/api/v1/trash", &t.admin).await.expect(StatusCode::OK)), vec![]);
    // Not in the trash any more: a second restore is 404.
    assert_eq!(app.post(&format!("/api/v1/trash/contacts/{id}/restore"), &t.admin, json!({})).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_trashed_contact_frees_its_email_and_restoring_it_then_is_409() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let old = app.create_contact(&t.admin, json!({"first_name": "Ann", "email": "Ann@Example.com"})).await["id"].as_i64().unwrap();
    assert_eq!(app.delete(&format!("/api/v1/contacts/{old}"), &t.admin).await.status, StatusCode::NO_CONTENT);
    // The email is free for a new contact (also through the import's duplicate check).
    let new = app.create_contact(&t.admin, json!({"first_name": "Ann", "email": "ann@example.com"})).await["id"].as_i64().unwrap();
    let r = app.post(&format!("/api/v1/trash/contacts/{old}/restore"), &t.admin, json!({})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(error_code(&r), "EMAIL_TAKEN");
    assert!(r.body["details"]["fields"]["email"].is_string(), "{}", r.body);
    // Still in the trash; restorable once the email is free again.
    assert_eq!(app.get(&format!("/api/v1/contacts/{old}"), &t.admin).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.delete(&format!("/api/v1/contacts/{new}?erase=true"), &t.admin).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.post(&format!("/api/v1/trash/contacts/{old}/restore"), &t.admin, json!({})).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_trashed_company_keeps_its_contacts_and_comes_back() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let mut trashed = app.platform.events(COMPANY_TRASHED).await;
    let mut restored = app.platform.events(COMPANY_RESTORED).await;
    let co = app.create_company(&t.admin, "Initrode").await["id"].as_i64().unwrap();
    let c = app.create_contact(&t.admin, json!({"first_name": "Bill", "last_name": "Lumbergh", "company_id": co})).await["id"].as_i64().unwrap();
    assert_eq!(app.delete(&format!("/api/v1/companies/{co}"), &t.rep).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.delete(&format!("/api/v1/companies/{co}"), &t.manager).await.status, StatusCode::NO_CONTENT);
    assert_eq!(trashed.wait_for(&t.id, COMPANY_TRASHED, EVENT_TIMEOUT).await.data["deleted_by"].as_i64(), Some(MANAGER as i64));

    assert_eq!(app.get(&format!("/api/v1/companies/{co}"), &t.admin).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/api/v1/companies/basic?ids={co}"), &t.admin).await.expect(StatusCode::OK)["data"], json!([]));
    assert_eq!(app.get("/api/v1/companies?search=initrode", &t.admin).await.expect(StatusCode::OK)["data"], json!([]));
    // The contact keeps the reference, without the name; a new contact cannot take it.
    let contact = app.get(&format!("/api/v1/contacts/{c}"), &t.admin).await.expect(StatusCode::OK);
    assert_eq!((contact["company_id"].as_i64(), contact["company_name"].is_null()), (Some(co), true));
    assert_eq!(ids(&app.get("/api/v1/contacts?search=initrode", &t.admin).await.expect(StatusCode::OK)), Vec::<i64>::new());
    let r = app.post("/api/v1/contacts", &t.admin, json!({"first_name": "Milton", "company_id": co})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);

    let page = app.get("/api/v1/trash?type=company", &t.admin).await.expect(StatusCode::OK);
    assert_eq!(trash_ids(&page), [("company".to_owned(), co)]);
    assert_eq!(page["data"][0]["name"], "Initrode");
    let r = app.post(&format!("/api/v1/trash/companies/{co}/restore"), &t.manager, json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["name"], "Initrode");
    restored.wait_for(&t.id, COMPANY_RESTORED, EVENT_TIMEOUT).await;
    assert_eq!(app.get(&format!("/api/v1/contacts/{c}"), &t.admin).await.body["company_name"], "Initrode");
    assert_eq!(ids(&app.get("/api/v1/contacts?search=initrode", &t.admin).await.expect(StatusCode::OK)), [c]);
}

#[tokio::test]
async fn erasing_is_for_admins_works_on_trashed_and_live_records_and_publishes_deleted() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let mut deleted = app.platform.events(CONTACT_DELETED).await;
    let a = app.create_contact(&t.rep, json!({"first_name": "A"})).await["id"].as_i64().unwrap();
    let b = app.create_contact(&t.rep, json!({"first_name": "B"})).await["id"].as_i64().unwrap();
    for token in [&t.rep, &t.manager] {
        assert_eq!(app.delete(&format!("/api/v1/contacts/{a}?erase=true"), token).await.status, StatusCode::FORBIDDEN);
        assert_eq!(app.delete(&format!("/api/v1/trash/contacts/{a}"), token).await.status, StatusCode::FORBIDDEN);
    }
    assert_eq!(app.delete(&format!("/api/v1/contacts/{a}?erase=maybe"), &t.admin).await.status, StatusCode::BAD_REQUEST);
    // A live one at once.
    assert_eq!(app.delete(&format!("/api/v1/contacts/{a}?erase=true"), &t.admin).await.status, StatusCode::NO_CONTENT);
    assert_eq!(deleted.wait_for(&t.id, CONTACT_DELETED, EVENT_TIMEOUT).await.data["id"].as_i64(), Some(a));
    // A trashed one, through the trash.
    assert_eq!(app.delete(&format!("/api/v1/contacts/{b}"), &t.rep).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.delete(&format!("/api/v1/trash/contacts/{b}"), &t.admin).await.status, StatusCode::NO_CONTENT);
    assert_eq!(deleted.count_within(&t.id, CONTACT_DELETED, std::time::Duration::from_secs(5)).await, 2);
    assert_eq!(app.count(&t.id, "contacts").await, 0);
    assert_eq!(app.post(&format!("/api/v1/trash/contacts/{b}/restore"), &t.admin, json!({})).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.delete(&format!("/api/v1/trash/contacts/{b}"), &t.admin).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_purge_erases_what_is_past_the_tenants_retention_and_only_that() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let mut deleted = app.platform.events(CONTACT_DELETED).await;
    let old = app.create_contact(&t.admin, json!({"first_name": "Old"})).await["id"].as_i64().unwrap();
    let recent = app.create_contact(&t.admin, json!({"first_name": "Recent"})).await["id"].as_i64().unwrap();
    let live = app.create_contact(&t.admin, json!({"first_name": "Live"})).await["id"].as_i64().unwrap();
    let co = app.create_company(&t.admin, "Old Co").await["id"].as_i64().unwrap();
    for path in [format!("/api/v1/contacts/{old}"), format!("/api/v1/contacts/{recent}"), format!("/api/v1/companies/{co}")] {
        assert_eq!(app.delete(&path, &t.admin).await.status, StatusCode::NO_CONTENT);
    }
    age(&app, &t.id, "contacts", old, 31).await;
    age(&app, &t.id, "contacts", recent, 29).await;
    age(&app, &t.id, "companies", co, 31).await;

    assert_eq!(app.post("/api/v1/trash/purge", &t.manager, json!({})).await.status, StatusCode::FORBIDDEN);
    let r = app.post("/api/v1/trash/purge", &t.admin, json!({})).await.expect(StatusCode::OK);
    assert_eq!(r, json!({"contacts": 1, "companies": 1, "retention_days": 30}));
    assert_eq!(deleted.wait_for(&t.id, CONTACT_DELETED, EVENT_TIMEOUT).await.data["id"].as_i64(), Some(old));
    assert_eq!(trash_ids(&app.get("/api/v1/trash", &t.admin).await.expect(StatusCode::OK)), [("contact".to_owned(), recent)]);
    assert_eq!(app.get(&format!("/api/v1/contacts/{live}"), &t.admin).await.status, StatusCode::OK);

    // A shorter retention (tenant setting) takes the recent one too, and the listing's
    // purge_at follows it.
    set_retention(&app, &t.id, 10).await;
    let page = app.get("/api/v1/trash", &t.admin).await.expect(StatusCode::OK);
    let at = chrono::DateTime::parse_from_rfc3339(page["data"][0]["deleted_at"].as_str().unwrap()).unwrap();
    let purge = chrono::DateTime::parse_from_rfc3339(page["data"][0]["purge_at"].as_str().unwrap()).unwrap();
    assert_eq!(purge - at, chrono::Duration::days(10));
    let r = app.post("/api/v1/trash/purge", &t.admin, json!({})).await.expect(StatusCode::OK);
    assert_eq!(r, json!({"contacts": 1, "companies": 0, "retention_days": 10}));
    assert_eq!(app.count(&t.id, "contacts").await, 1);
}

#[tokio::test]
async fn concurrent_purges_erase_and_announce_each_row_once() {
    use contact_service::service::trash::purge_tenant;
    let app = spawn_app().await;
    let t = app.tenant().await;
    let mut ids = Vec::new();
    for i in 0..20 {
        let id = app.create_contact(&t.admin, json!({"first_name": format!("P{i}")})).await["id"].as_i64().unwrap();
        assert_eq!(app.delete(&format!("/api/v1/contacts/{id}"), &t.admin).await.status, StatusCode::NO_CONTENT);
        age(&app, &t.id, "contacts", id, 40).await;
        ids.push(id);
    }
    let mut deleted = app.platform.events(CONTACT_DELETED).await;
    let now = chrono::Utc::now();
    let (a, b) = tokio::join!(purge_tenant(&app.platform.db, &t.id, 30, now), purge_tenant(&app.platform.db, &t.id, 30, now));
    let (a, b) = (a.expect("purge a"), b.expect("purge b"));
    assert_eq!(a.contacts + b.contacts, 20, "{a:?} {b:?}");
    assert_eq!(deleted.count_within(&t.id, CONTACT_DELETED, std::time::Duration::from_secs(3)).await, 20);
    assert_eq!(app.count(&t.id, "contacts").await, 0);
}

#[tokio::test]
async fn reps_see_and_restore_their_own_trash_viewers_none() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let mine = app.create_contact(&t.rep, json!({"first_name": "Mine"})).await["id"].as_i64().unwrap();
    let theirs = app.create_contact(&t.other_rep, json!({"first_name": "Theirs"})).await["id"].as_i64().unwrap();
    let co = app.create_company(&t.admin, "Co").await["id"].as_i64().unwrap();
    assert_eq!(app.delete(&format!("/api/v1/contacts/{mine}"), &t.rep).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.delete(&format!("/api/v1/contacts/{theirs}"), &t.manager).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.delete(&format!("/api/v1/companies/{co}"), &t.admin).await.status, StatusCode::NO_CONTENT);

    // Managers see everything; reps the contacts they deleted, own or created, no companies.
    assert_eq!(trash_ids(&app.get("/api/v1/trash", &t.manager).await.expect(StatusCode::OK)).len(), 3);
    assert_eq!(trash_ids(&app.get("/api/v1/trash", &t.rep).await.expect(StatusCode::OK)), [("contact".to_owned(), mine)]);
    assert_eq!(trash_ids(&app.get("/api/v1/trash", &t.other_rep).await.expect(StatusCode::OK)), [("contact".to_owned(), theirs)]);
    assert_eq!(app.get("/api/v1/trash?type=company", &t.rep).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.get("/api/v1/trash", &t.viewer).await.status, StatusCode::FORBIDDEN);
    let r = app.get("/api/v1/trash?type=deal", &t.admin).await;
    assert_eq!((r.status, bad_fields(&r)), (StatusCode::BAD_REQUEST, vec!["type".to_owned()]));

    assert_eq!(app.post(&format!("/api/v1/trash/contacts/{theirs}/restore"), &t.rep, json!({})).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.post(&format!("/api/v1/trash/companies/{co}/restore"), &t.rep, json!({})).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.post(&format!("/api/v1/trash/contacts/{mine}/restore"), &t.viewer, json!({})).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.post(&format!("/api/v1/trash/contacts/{mine}/restore"), &t.rep, json!({})).await.status, StatusCode::OK);
    // The other rep restores the contact it owns, though a manager deleted it.
    assert_eq!(app.post(&format!("/api/v1/trash/contacts/{theirs}/restore"), &t.other_rep, json!({})).await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_trash_pages_newest_deletion_first() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let mut expected = Vec::new();
    for i in 0..5 {
        let id = app.create_contact(&t.admin, json!({"first_name": format!("N{i}")})).await["id"].as_i64().unwrap();
        assert_eq!(app.delete(&format!("/api/v1/contacts/{id}"), &t.admin).await.status, StatusCode::NO_CONTENT);
        age(&app, &t.id, "contacts", id, 10 - i).await;
        expected.insert(0, ("contact".to_owned(), id));
    }
    let first = app.get("/api/v1/trash?limit=2", &t.admin).await.expect(StatusCode::OK);
    let cursor = first["pagination"]["next_cursor"].as_str().expect("next cursor").to_owned();
    let second = app.get(&format!("/api/v1/trash?limit=10&cursor={cursor}"), &t.admin).await.expect(StatusCode::OK);
    let mut all = trash_ids(&first);
    all.extend(trash_ids(&second));
    assert_eq!(all, expected);
    assert_eq!(app.get("/api/v1/trash?sort=name", &t.admin).await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn other_tenants_cannot_see_restore_or_erase_the_trash() {
    let app = spawn_app().await;
    let (a, b) = (app.tenant().await, app.tenant().await);
    let id = app.create_contact(&a.admin, json!({"first_name": "Secret"})).await["id"].as_i64().unwrap();
    assert_eq!(app.delete(&format!("/api/v1/contacts/{id}"), &a.admin).await.status, StatusCode::NO_CONTENT);
    assert_eq!(trash_ids(&app.get("/api/v1/trash", &b.admin).await.expect(StatusCode::OK)), vec![]);
    assert_eq!(app.post(&format!("/api/v1/trash/contacts/{id}/restore"), &b.admin, json!({})).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.delete(&format!("/api/v1/trash/contacts/{id}"), &b.admin).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.post("/api/v1/trash/purge", &b.admin, json!({})).await.status, StatusCode::OK);
    assert_eq!(trash_ids(&app.get("/api/v1/trash", &a.admin).await.expect(StatusCode::OK)), [("contact".to_owned(), id)]);
}
