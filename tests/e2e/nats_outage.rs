//! NATS stopped mid-run: writes keep succeeding (the events wait in the outbox), and once
//! NATS is back every event is delivered: exactly one activity and one task per closed deal.

use std::collections::HashMap;

use crm_testing::{NatsServer, TestDatabase, wait_until};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::*;

const DEALS: usize = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_written_while_nats_is_down_are_delivered_once_after_it_returns() {
    let db = TestDatabase::create("crm_e2e").await;
    let mut nats = NatsServer::start().await;
    let crm = Crm::start_with(Backends { database_url: db.url.clone(), nats_url: nats.url(), env: vec![] }).await;
    let api = crm.api();
    let admin = signup_admin(&api, "Acme Inc", "acme").await;
    // The path works before the outage (and the durable consumer exists).
    let before = close_a_deal(&api, &admin, "Before").await;

    let contact = api.create("/api/v1/contacts", &admin.token, json!({"first_name": "Ola", "last_name": "Outage"})).await;
    let mut deals = Vec::new();
    for i in 0..DEALS {
        let body = json!({"title": format!("Outage deal {i}"), "value": 100 + i, "primary_contact_id": contact["id"], "owner_id": admin.user_id});
        deals.push(api.create("/api/v1/deals", &admin.token, body).await);
    }

    nats.kill();
    wait_until("/ready to report NATS down", WAIT, || async {
        let r = api.call(reqwest::Method::GET, "/ready", None, None).await;
        (r.status == StatusCode::SERVICE_UNAVAILABLE).then_some(())
    })
    .await;
    for deal in &deals {
        let r = api.patch(&format!("/api/v1/deals/{}", deal["id"]), &admin.token, json!({"stage": "closed_won"})).await;
        assert_eq!(r.status, StatusCode::OK, "a write while NATS is down succeeds: {}", r.body);
    }
    // Nothing can be delivered yet.
    assert_eq!(closed_won_activities(&api, &admin).await.len(), 1, "only the deal closed before the outage has its activity");

    nats.restart().await;
    wait_until("/ready after NATS returns", WAIT, || async {
        let r = api.call(reqwest::Method::GET, "/ready", None, None).await;
        (r.status == StatusCode::OK).then_some(())
    })
    .await;
    wait_until(&format!("{} closed-won activities", DEALS + 1), WAIT, || async {
        (closed_won_activities(&api, &admin).await.len() > DEALS).then_some(())
    })
    .await;
    // A marker closed after recovery: once its task exists, the backlog before it has been
    // handled too (one ordered stream, one consumer), so the counts below are final.
    let after = close_a_deal(&api, &admin, "After").await;

    let activities = closed_won_activities(&api, &admin).await;
    let mut per_deal: HashMap<String, usize> = HashMap::new();
    for a in &activities {
        *per_deal.entry(a["deal_id"].to_string()).or_default() += 1;
    }
    let mut expected: Vec<&Value> = deals.iter().map(|d| &d["id"]).collect();
    expected.push(&before.deal["id"]);
    expected.push(&after.deal["id"]);
    assert_eq!(activities.len(), expected.len(), "none lost, none doubled: {per_deal:?}");
    for id in &expected {
        assert_eq!(per_deal.get(&id.to_string()), Some(&1), "deal {id}: exactly one activity: {per_deal:?}");
    }
    let tasks = all_pages(&api, "/api/v1/tasks/mine?limit=100", &admin.token).await;
    for id in &expected {
        let n = tasks.iter().filter(|t| &&t["deal_id"] == id).count();
        assert_eq!(n, 1, "deal {id}: exactly one follow-up task");
    }
    assert_eq!(tasks.len(), expected.len());
}

async fn closed_won_activities(api: &Api, admin: &Session) -> Vec<Value> {
    all_pages(api, "/api/v1/activities?limit=100", &admin.token)
        .await
        .into_iter()
        .filter(|a| a["subject"].as_str().is_some_and(|s| s.starts_with("Deal closed won: ")))
        .collect()
}
