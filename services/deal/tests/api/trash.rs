//! The trash of deals (issue 16): hidden from lists, board, forecast, GET and lookups while
//! trashed, restored with its contacts and history, erase (admins) and the purge after the
//! tenant's retention publishing `deal.deleted`, permissions and tenant isolation.

use crm_client_deal::subjects;
use crm_tenant::TenantId;
use crm_web::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

/// Moves the trashed deal's deletion `days` into the past.
async fn age(app: &TestApp, tenant: &TenantId, id: i64, days: i32) {
    let client = app.platform.pool.get().await.expect("connection");
    let sql = format!("UPDATE {}.deals SET deleted_at = now() - make_interval(days => $2) WHERE id = $1", tenant.schema().as_str());
    assert_eq!(client.execute(&sql, &[&(id as i32), &days]).await.expect("age"), 1);
}

fn ids(page: &Value) -> Vec<i64> {
    page["data"].as_array().expect("data").iter().map(|d| d["id"].as_i64().unwrap()).collect()
}

#[tokio::test]
async fn a_trashed_deal_is_hidden_and_comes_back_with_its_contacts_and_history() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    app.add_contact(20, "Ann", "Lee");
    app.add_company(10, "Acme");
    let mut restored = app.platform.events(subjects::DEAL_RESTORED).await;
    let d = app.create_deal(&t.admin, json!({"title": "Big", "value": 100, "company_id": 10, "primary_contact_id": 20})).await;
    let id = d["id"].as_i64().unwrap();
    let keep = app.deal(&t.admin, "Small").await;
    assert_eq!(app.post(&format!("/api/v1/deals/{id}/contacts"), &t.admin, json!({"contact_id": 20})).await.status, StatusCode::CREATED);
    assert_eq!(app.patch(&format!("/api/v1/deals/{id}"), &t.admin, json!({"stage": "qualified"})).await.status, StatusCode::OK);

    assert_eq!(app.delete(&format!("/api/v1/deals/{id}"), &t.admin).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&format!("/api/v1/deals/{id}"), &t.admin).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/api/v1/deals/{id}/basic"), &t.admin).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/api/v1/deals/{id}/contacts"), &t.admin).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/api/v1/deals/basic?ids={id},{keep}"), &t.admin).await.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(ids(&app.get("/api/v1/deals", &t.admin).await.body), [keep]);
    assert_eq!(ids(&app.get("/api/v1/deals?contact_id=20", &t.admin).await.body), Vec::<i64>::new());
    let board = app.get("/api/v1/deals/pipeline", &t.admin).await;
    assert_eq!(board.body["totals"]["total_deals"], 1, "{}", board.body);

    let page = app.get("/api/v1/trash/deals", &t.admin).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(ids(&page.body), [id]);
    let item = &page.body["data"][0];
    assert_eq!((item["title"].as_str(), item["company_name"].as_str(), item["deleted_by"].as_i64()), (Some("Big"), Some("Acme"), Some(ADMIN as i64)));
    let at = chrono::DateTime::parse_from_rfc3339(item["deleted_at"].as_str().unwrap()).unwrap();
    let purge = chrono::DateTime::parse_from_rfc3339(item["purge_at"].as_str().unwrap()).unwrap();
    assert_eq!(purge - at, chrono::Duration::days(30));

    let r = app.post(&format!("/api/v1/trash/deals/{id}/restore"), &t.admin, json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!((r.body["stage"].as_str(), r.body["primary_contact_id"].as_i64(), r.body["company_id"].as_i64()), (Some("qualified"), Some(20), Some(10)));
    assert_eq!(restored.wait_for(&t.id, subjects::DEAL_RESTORED, EVENT_TIMEOUT).await.data["id"].as_i64(), Some(id));
    let got = app.get(&format!("/api/v1/deals/{id}"), &t.admin).await;
    assert_eq!(got.body["stage_history"].as_array().unwrap().len(), 2, "{}", got.body);
    assert_eq!(app.get(&format!("/api/v1/deals/{id}/contacts"), &t.admin).await.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(app.post(&format!("/api/v1/trash/deals/{id}/restore"), &t.admin, json!({})).await.status, StatusCode::NOT_FOUND);
    assert_eq!(ids(&app.get("/api/v1/trash/deals", &t.admin).await.body), Vec::<i64>::new());
}

#[tokio::test]
async fn erase_and_purge_publish_deal_deleted_and_respect_the_retention() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let manager = app.token(&t, 8, Role::Manager);
    let mut deleted = app.platform.events(subjects::DEAL_DELETED).await;
    let (old, recent, live) = (app.deal(&t.admin, "Old").await, app.deal(&t.admin, "Recent").await, app.deal(&t.admin, "Live").await);
    for id in [old, recent] {
        assert_eq!(app.delete(&format!("/api/v1/deals/{id}"), &t.admin).await.status, StatusCode::NO_CONTENT);
    }
    age(&app, &t.id, old, 31).await;
    age(&app, &t.id, recent, 29).await;

    assert_eq!(app.post("/api/v1/trash/deals/purge", &manager, json!({})).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.delete(&format!("/api/v1/trash/deals/{recent}"), &manager).await.status, StatusCode::FORBIDDEN);
    let r = app.post("/api/v1/trash/deals/purge", &t.admin, json!({})).await;
    assert_eq!((r.status, r.body.clone()), (StatusCode::OK, json!({"deals": 1, "retention_days": 30})));
    assert_eq!(deleted.wait_for(&t.id, subjects::DEAL_DELETED, EVENT_TIMEOUT).await.data["id"].as_i64(), Some(old));
    assert_eq!(ids(&app.get("/api/v1/trash/deals", &t.admin).await.body), [recent]);

    // Erase from the trash and a live one at once.
    assert_eq!(app.delete(&format!("/api/v1/trash/deals/{recent}"), &t.admin).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.delete(&format!("/api/v1/deals/{live}?erase=true"), &t.admin).await.status, StatusCode::NO_CONTENT);
    assert_eq!(deleted.count_within(&t.id, subjects::DEAL_DELETED, std::time::Duration::from_secs(5)).await, 3);
    assert_eq!(ids(&app.get("/api/v1/deals", &t.admin).await.body), Vec::<i64>::new());
}

#[tokio::test]
async fn reps_see_and_restore_their_own_trashed_deals_and_tenants_are_apart() {
    let app = spawn_app().await;
    let (t, other) = (app.tenant().await, app.tenant().await);
    app.add_user(5, "Rita", "Rep");
    app.add_user(6, "Sam", "Rep");
    let (rep, other_rep, viewer) = (app.token(&t, 5, Role::SalesRep), app.token(&t, 6, Role::SalesRep), app.token(&t, 7, Role::Viewer));
    let mine = app.deal(&rep, "Mine").await;
    let theirs = app.deal(&other_rep, "Theirs").await;
    assert_eq!(app.delete(&format!("/api/v1/deals/{mine}"), &rep).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.delete(&format!("/api/v1/deals/{theirs}"), &t.admin).await.status, StatusCode::NO_CONTENT);

    assert_eq!(ids(&app.get("/api/v1/trash/deals", &rep).await.body), [mine]);
    assert_eq!(ids(&app.get("/api/v1/trash/deals", &other_rep).await.body), [theirs]);
    assert_eq!(ids(&app.get("/api/v1/trash/deals", &t.admin).await.body).len(), 2);
    assert_eq!(app.get("/api/v1/trash/deals", &viewer).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.get("/api/v1/trash/deals?sort=title", &t.admin).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(app.post(&format!("/api/v1/trash/deals/{theirs}/restore"), &rep, json!({})).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.delete(&format!("/api/v1/deals/{mine}?erase=true"), &rep).await.status, StatusCode::FORBIDDEN);

    // Another tenant sees nothing and reaches nothing.
    assert_eq!(ids(&app.get("/api/v1/trash/deals", &other.admin).await.body), Vec::<i64>::new());
    assert_eq!(app.post(&format!("/api/v1/trash/deals/{mine}/restore"), &other.admin, json!({})).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.delete(&format!("/api/v1/trash/deals/{mine}"), &other.admin).await.status, StatusCode::NOT_FOUND);

    assert_eq!(app.post(&format!("/api/v1/trash/deals/{mine}/restore"), &rep, json!({})).await.status, StatusCode::OK);
    assert_eq!(app.post(&format!("/api/v1/trash/deals/{theirs}/restore"), &other_rep, json!({})).await.status, StatusCode::OK);
}
