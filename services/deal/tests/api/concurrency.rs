//! Many tenants, interleaved requests, a small pool: every answer holds its own tenant's
//! data only.

use std::sync::Arc;
use std::time::Duration;

use crm_client_auth::MockAuthClient;
use crm_client_contact::MockContactClient;
use crm_tenant::TenantDb;
use deal_service::{AppState, Lookups, SERVICE};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn interleaved_tenants_never_see_each_other() {
    let app = spawn_app().await;
    // A second deal-service instance over a pool of 3 connections.
    let pool = crm_testing::test_pool_with(crm_testing::test_db_config().with_max_connections(3)).await;
    let lookups = Lookups {
        contacts: Arc::new(MockContactClient::default()),
        users: Arc::new(MockAuthClient::default()),
        timeout: Duration::from_millis(200),
    };
    let state = AppState {
        db: TenantDb::new(pool),
        auth: app.platform.auth.clone(),
        cursors: app.platform.cursors.clone(),
        lookups: Arc::new(lookups),
    };
    let url = app.platform.serve(SERVICE, deal_service::router(state)).await;

    let mut tenants = Vec::new();
    for i in 0..8 {
        let t = app.tenant().await;
        for j in 0..(i + 1) {
            app.create_deal(&t.admin, json!({"title": format!("t{i}-d{j}"), "value": i * 100 + j})).await;
        }
        tenants.push((i, t));
    }
    let tenants = Arc::new(tenants);
    let mut tasks = Vec::new();
    for round in 0..6 {
        for idx in 0..tenants.len() {
            let (tenants, url, http) = (tenants.clone(), url.clone(), app.http.clone());
            tasks.push(tokio::spawn(async move {
                let (i, t) = &tenants[(idx + round) % tenants.len()];
                let prefix = format!("t{i}-");
                let list: serde_json::Value =
                    http.get(format!("{url}/api/v1/deals?limit=100")).bearer_auth(&t.admin).send().await.unwrap().json().await.unwrap();
                let titles: Vec<&str> = list["data"].as_array().unwrap().iter().map(|d| d["title"].as_str().unwrap()).collect();
                assert_eq!(titles.len(), i + 1, "{list}");
                assert!(titles.iter().all(|title| title.starts_with(&prefix)), "{titles:?} for tenant {i}");
                let board: serde_json::Value =
                    http.get(format!("{url}/api/v1/deals/pipeline")).bearer_auth(&t.admin).send().await.unwrap().json().await.unwrap();
                assert_eq!(board["totals"]["total_deals"], i + 1);
                let r = http
                    .post(format!("{url}/api/v1/deals"))
                    .bearer_auth(&t.admin)
                    .json(&json!({"title": format!("{prefix}new-{round}")}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::CREATED);
                let created: serde_json::Value = r.json().await.unwrap();
                let id = created["id"].as_i64().unwrap();
                http.delete(format!("{url}/api/v1/deals/{id}")).bearer_auth(&t.admin).send().await.unwrap();
            }));
        }
    }
    for task in tasks {
        task.await.expect("no task panicked");
    }
}
