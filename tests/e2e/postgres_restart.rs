//! PostgreSQL restarted under the running platform: meanwhile every service answers 503
//! (never 500, never hangs past the timeout) and `/ready` says so; afterwards they recover by
//! themselves (no restart of `crm`), `/ready` is 200 and the event path works again.

use std::time::{Duration, Instant};

use crm_testing::{NatsServer, PostgresServer, wait_until};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::*;

/// Longest a request may take while the database is down (connect/acquire timeouts are 2 s).
const DOWN_ANSWER: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_answer_503_while_postgres_is_down_and_recover_after() {
    let mut pg = PostgresServer::start().await;
    let database_url = pg.create_database("crm").await;
    let nats = NatsServer::start().await;
    let env = [("DB_CONNECT_TIMEOUT_SECS", "2"), ("DB_ACQUIRE_TIMEOUT_SECS", "2"), ("DB_QUERY_TIMEOUT_SECS", "5")];
    let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let crm = Crm::start_with(Backends { database_url, nats_url: nats.url(), env }).await;
    let api = crm.api();
    let admin = signup_admin(&api, "Acme Inc", "acme").await;
    let before = close_a_deal(&api, &admin, "Before").await;

    pg.stop().await;
    for (service, port, _) in crm.every_port() {
        let ready = crm.api_at(port);
        wait_until(&format!("{service} /ready to answer 503"), WAIT, || async {
            let r = ready.call(Method::GET, "/ready", None, None).await;
            (r.status == StatusCode::SERVICE_UNAVAILABLE).then_some(())
        })
        .await;
    }
    let health = api.call(Method::GET, "/health", None, None).await;
    assert_eq!(health.status, StatusCode::SERVICE_UNAVAILABLE, "{}", health.body);
    // Requests of every kind on every port: 503 with the error shape, within the bound.
    for (service, port, path) in crm.every_port() {
        let path = path.replace("{tenant}", &admin.tenant_id);
        let on = crm.api_at(port);
        let started = Instant::now();
        let r = on.call(Method::GET, &path, Some(&admin.token), None).await;
        assert!(started.elapsed() < DOWN_ANSWER, "{service} {path} took {:?}", started.elapsed());
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{service} {path} while the database is down: {}", r.body);
        assert!(r.body["code"].is_string() && r.body["request_id"].is_string(), "error shape: {}", r.body);
    }
    for (path, body) in [
        ("/api/v1/contacts", json!({"first_name": "Down", "last_name": "Time"})),
        ("/api/v1/auth/login", json!({"tenant": admin.subdomain, "email": admin.email, "password": PASSWORD})),
    ] {
        let started = Instant::now();
        let token = (path != "/api/v1/auth/login").then_some(admin.token.as_str());
        let r = api.call(Method::POST, path, token, Some(body)).await;
        assert!(started.elapsed() < DOWN_ANSWER, "POST {path} took {:?}", started.elapsed());
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "POST {path} while the database is down: {}", r.body);
    }
    let r = api.patch(&format!("/api/v1/deals/{}", before.deal["id"]), &admin.token, json!({"title": "Changed while down"})).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);

    pg.restart().await;
    for (service, port, _) in crm.every_port() {
        let ready = crm.api_at(port);
        wait_until(&format!("{service} /ready to answer 200 again"), WAIT, || async {
            let r = ready.call(Method::GET, "/ready", None, None).await;
            (r.status == StatusCode::OK).then_some(())
        })
        .await;
    }
    // Recovered without a restart: the first requests succeed (no 5xx after recovery).
    for (service, port, path) in crm.every_port() {
        let path = path.replace("{tenant}", &admin.tenant_id);
        let r = crm.api_at(port).get(&path, &admin.token).await;
        assert_eq!(r.status, StatusCode::OK, "{service} {path} after recovery: {}", r.body);
    }
    let contact = api.get(&format!("/api/v1/contacts/{}", before.contact["id"]), &admin.token).await;
    assert_eq!(contact.status, StatusCode::OK);
    assert_eq!(contact.body, api.get(&format!("/api/v1/contacts/{}", before.contact["id"]), &admin.token).await.body);
    let deal = api.get(&format!("/api/v1/deals/{}", before.deal["id"]), &admin.token).await;
    assert_eq!(deal.body["title"], "Before deal", "the write refused while down left nothing behind");
    let r = login(&api, &admin.subdomain, &admin.email, PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // Writes and the event path (outbox relay, consumer) work again.
    let after = close_a_deal(&api, &admin, "After").await;
    assert_eq!(after.activity["subject"], "Deal closed won: After deal");
    let activities = all_pages(&api, "/api/v1/activities?limit=100", &admin.token).await;
    assert_eq!(activities.len(), 2, "one activity per closed deal: {activities:?}");
}
