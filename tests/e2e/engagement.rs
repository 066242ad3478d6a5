//! Issue 15 end to end, contact-service's side, over the real `crm serve`: a logged activity
//! moves the contact's `last_contacted_at` (and `?inactive_days=` follows it); consent is
//! recorded through the API and withdrawn by an `email.unsubscribed` event (as the one-click
//! unsubscribe publishes it), which publishes `contact.consent_changed`; tenant settings are
//! read and changed by the admin.

use async_nats::jetstream::{self, consumer::DeliverPolicy};
use chrono::{DateTime, Utc};
use crm_events::Envelope;
use crm_tenant::TenantId;
use crm_testing::wait_until;
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::*;

fn instant(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str().and_then(|s| DateTime::parse_from_rfc3339(s).ok()).map(|t| t.with_timezone(&Utc))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activities_move_last_contact_and_an_unsubscribe_withdraws_consent() {
    let (crm, _db, nats) = Crm::start().await;
    let api = crm.api();
    let admin = signup_admin(&api, "Engage Inc", "engage").await;
    let contact = api.create("/api/v1/contacts", &admin.token, json!({"first_name": "Una", "last_name": "Sub", "email": "una@engage.example"})).await;
    let id = contact["id"].as_i64().expect("id");
    assert_eq!(contact["marketing_consent"], "unknown");
    assert!(contact["last_contacted_at"].is_null());
    let path = format!("/api/v1/contacts/{id}");

    // A call completed two hours ago (written in UTC+14): last contact is that instant.
    let completed = Utc::now() - chrono::Duration::hours(2);
    let written = completed.with_timezone(&chrono::FixedOffset::east_opt(14 * 3600).expect("offset")).to_rfc3339();
    api.create("/api/v1/activities", &admin.token, json!({"type": "call", "subject": "Intro call", "status": "completed", "completed_at": written, "contact_id": id})).await;
    let at = wait_until("last_contacted_at from activity.logged", WAIT, || async {
        instant(&api.get(&path, &admin.token).await.body["last_contacted_at"])
    })
    .await;
    assert_eq!(at.timestamp_millis(), completed.timestamp_millis(), "{}", crm.log_tail());
    let inactive = api.get("/api/v1/contacts?inactive_days=1", &admin.token).await;
    assert_eq!(inactive.status, StatusCode::OK, "{}", inactive.body);
    assert!(inactive.body["data"].as_array().expect("data").iter().all(|c| c["id"] != id), "contacted 2 h ago: {}", inactive.body);

    // Consent granted through the API, then withdrawn by an unsubscribe.
    let r = api.call(Method::PUT, &format!("{path}/consent"), Some(&admin.token), Some(json!({"status": "granted", "source": "web_form"}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "granted");
    let tenant = TenantId::parse(&admin.tenant_id).expect("tenant id");
    let event = Envelope::new("email.unsubscribed", &tenant, None, json!({"email_id": 1, "contact_id": id, "email_address": "una@engage.example"})).expect("envelope");
    let client = async_nats::connect(nats.url()).await.expect("the test's nats-server");
    let js = jetstream::new(client);
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", event.id.as_str());
    headers.insert(crm_events::TENANT_HEADER, event.tenant_id.as_str());
    js.publish_with_headers("email.unsubscribed", headers, serde_json::to_vec(&event).expect("json").into()).await.expect("publish").await.expect("ack");
    wait_until("consent withdrawn by the unsubscribe", WAIT, || async {
        let c = api.get(&path, &admin.token).await.body;
        (c["marketing_consent"] == "withdrawn").then_some(())
    })
    .await;
    let record = api.get(&format!("{path}/consent"), &admin.token).await;
    assert_eq!(record.body["source"], "unsubscribe", "{}", record.body);
    assert_eq!(record.body["history"].as_array().map(Vec::len), Some(2), "{}", record.body);

    // contact.consent_changed was published for it (communication-service stops sequences on it).
    let stream = js.get_stream(crm_events::STREAM_NAME).await.expect("the CRM stream");
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig {
            filter_subject: "contact.consent_changed".into(),
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .expect("ordered consumer");
    let mut messages = consumer.messages().await.expect("messages");
    let deadline = tokio::time::Instant::now() + WAIT;
    let withdrawn = loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        assert!(!left.is_zero(), "no contact.consent_changed (withdrawn) within {WAIT:?}\n{}", crm.log_tail());
        if let Ok(Some(Ok(message))) = tokio::time::timeout(left, messages.next()).await
            && let Ok(e) = serde_json::from_slice::<Envelope>(&message.payload)
            && e.data["status"] == "withdrawn"
        {
            break e;
        }
    };
    assert_eq!(withdrawn.data["contact_id"], id);
    assert_eq!(withdrawn.data["previous"], "granted");
    assert_eq!(withdrawn.data["source"], "unsubscribe");

    // Tenant settings: defaults, then the admin turns the inactive-lead job on.
    let settings = format!("/api/v1/tenants/{}/settings", admin.tenant_id);
    let r = api.get(&settings, &admin.token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["marketing_consent_policy"], "opt_in");
    assert!(r.body["inactive_lead_days"].is_null());
    let r = api.patch(&settings, &admin.token, json!({"inactive_lead_days": 14})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["inactive_lead_days"], 14);
}
