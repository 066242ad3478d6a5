//! Issue 14 item 4: the whole API is rate limited per user and per tenant (seed 002,
//! requirements 7.1 and 7.3), answered with 429, `Retry-After` and the IETF draft's
//! `RateLimit-Policy` / `RateLimit` fields; a user's request is counted once, where it
//! enters, so the sub-requests of its enrichment are never refused (no silently missing
//! owner name right below the limit); another tenant is not affected.

use crm_testing::{NatsServer, TestDatabase};
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::*;

const USER_PER_MINUTE: u32 = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_past_its_quota_gets_429_and_its_enrichment_never_fails_below_it() {
    let db = TestDatabase::create("crm_e2e").await;
    let nats = NatsServer::start().await;
    let env = vec![
        ("RATE_LIMIT_USER_PER_MINUTE".to_owned(), USER_PER_MINUTE.to_string()),
        ("RATE_LIMIT_TENANT_PER_MINUTE".to_owned(), "0".to_owned()),
    ];
    let crm = Crm::start_with(Backends { database_url: db.url.clone(), nats_url: nats.url(), env }).await;
    let api = crm.api();
    let busy = signup_admin(&api, "Busy Inc", "busy").await;
    let quiet = signup_admin(&api, "Quiet Inc", "quiet").await;
    let contact = api.create("/api/v1/contacts", &busy.token, json!({"first_name": "Ada", "last_name": "Lovelace"})).await;
    let id = contact["id"].as_i64().unwrap();

    // Alternate the combined port and contact-service's own port: one quota per process.
    let urls = [format!("{}/api/v1/contacts/{id}", crm.url()), format!("http://127.0.0.1:{}/api/v1/contacts/{id}", 8082 + crm.offset)];
    let mut served = 0;
    let refused = loop {
        let response = crm.http.get(&urls[served % 2]).bearer_auth(&busy.token).send().await.unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            break response;
        }
        assert_eq!(response.status(), StatusCode::OK);
        let policy = response.headers()["ratelimit-policy"].to_str().unwrap().to_owned();
        assert_eq!(policy, format!("\"user\";q={USER_PER_MINUTE};w=60"));
        assert!(response.headers()["ratelimit"].to_str().unwrap().starts_with("\"user\";r="));
        let body: serde_json::Value = response.json().await.unwrap();
        // The owner's name comes from auth-service: its sub-request is not counted.
        assert!(body["owner_name"].is_string(), "request {served}: enrichment lost below the limit: {body}");
        served += 1;
        assert!(served <= USER_PER_MINUTE as usize + 5, "no 429 after {served} requests");
    };
    // The quota is a burst of one minute's worth, minus what signing up and creating spent.
    assert!(served >= USER_PER_MINUTE as usize - 10, "only {served} requests before the 429");
    let retry_after: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60 / u64::from(USER_PER_MINUTE) + 1).contains(&retry_after), "Retry-After {retry_after}");
    assert!(refused.headers()["ratelimit"].to_str().unwrap().starts_with("\"user\";r=0;"));
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "RATE_LIMITED", "{body}");

    // Another tenant's user, on the same process, is served.
    let r = api.get("/api/v1/contacts", &quiet.token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // Health and readiness are never limited.
    let r = crm.http.get(format!("{}/ready", crm.url())).bearer_auth(&busy.token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// Issue 14 item 4, per-tenant admission: with one request of a tenant in flight at a time
/// (`TENANT_MAX_IN_FLIGHT=1`), 24 concurrent reads of that tenant wait their turn and are all
/// served with their owner's name: the enrichment's sub-request to auth-service is part of a
/// request that holds the tenant's slot and is not admitted again (if it were, it would wait
/// for that slot until the queue timeout and the name would be lost). Another tenant is served
/// meanwhile, on the combined port and on contact-service's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_past_the_tenant_in_flight_bound_wait_their_turn_and_keep_their_enrichment() {
    let db = TestDatabase::create("crm_e2e").await;
    let nats = NatsServer::start().await;
    let env = [
        ("TENANT_MAX_IN_FLIGHT", "1"),
        ("TENANT_QUEUE_TIMEOUT_MS", "20000"),
        ("RATE_LIMIT_USER_PER_MINUTE", "0"),
        ("RATE_LIMIT_TENANT_PER_MINUTE", "0"),
    ];
    let env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let crm = Crm::start_with(Backends { database_url: db.url.clone(), nats_url: nats.url(), env }).await;
    let api = crm.api();
    let busy = signup_admin(&api, "Busy Inc", "busy").await;
    let quiet = signup_admin(&api, "Quiet Inc", "quiet").await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let contact = api.create("/api/v1/contacts", &busy.token, json!({"first_name": "Ada", "last_name": format!("L{n}")})).await;
        ids.push(contact["id"].as_i64().unwrap());
    }
    let quiet_contact = api.create("/api/v1/contacts", &quiet.token, json!({"first_name": "Quiet", "last_name": "One"})).await;
    let quiet_id = quiet_contact["id"].as_i64().unwrap();

    let contact_port = format!("http://127.0.0.1:{}", 8082 + crm.offset);
    let reads = (0..24).map(|n| {
        let base = if n % 2 == 0 { crm.url() } else { contact_port.clone() };
        let url = format!("{base}/api/v1/contacts/{}", ids[n % ids.len()]);
        let request = crm.http.get(url).bearer_auth(&busy.token);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            (status, response.json::<serde_json::Value>().await.unwrap_or_default())
        }
    });
    let quiet_read = async {
        let r = api.get(&format!("/api/v1/contacts/{quiet_id}"), &quiet.token).await;
        (r.status, r.body)
    };
    let (answers, (quiet_status, quiet_body)) = tokio::join!(futures::future::join_all(reads), quiet_read);
    for (n, (status, body)) in answers.iter().enumerate() {
        assert_eq!(*status, StatusCode::OK, "read {n}: {body}");
        assert!(body["owner_name"].is_string(), "read {n}: enrichment lost behind the in-flight bound: {body}");
    }
    assert_eq!(quiet_status, StatusCode::OK, "{quiet_body}");
    assert!(quiet_body["owner_name"].is_string(), "{quiet_body}");
}
