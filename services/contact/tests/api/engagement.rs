//! Issue 15 on contact-service: marketing consent (PUT/GET, history, event, withdrawal by
//! `email.unsubscribed`), `last_contacted_at` from `activity.logged` / `email.sent`,
//! `?inactive_days=N` across time zones, and the daily inactive-lead job with two instances.

use chrono::{DateTime, Duration, Utc};
use contact_service::service::engagement::{InactiveLeadConfig, run_due};
use crm_client_communication::subjects::{ACTIVITY_LOGGED, EMAIL_SENT, EMAIL_UNSUBSCRIBED};
use crm_client_contact::subjects::{CONTACT_BECAME_INACTIVE, CONTACT_CONSENT_CHANGED};
use crm_events::Envelope;
use crm_tenant::{TenantDb, TenantId};
use crm_testing::{TestTenants, start_consumers, wait_until};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

/// The service with its consumers running for the tenants the test watches.
struct App {
    app: TestApp,
    tenants: TestTenants,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for App {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl std::ops::Deref for App {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.app
    }
}

async fn spawn() -> App {
    let app = spawn_app().await;
    let tenants = TestTenants::default();
    let prefix = format!("test-contact-{}", ulid::Ulid::generate().to_string().to_ascii_lowercase());
    let tasks = start_consumers(&app.platform, &tenants, contact_service::consumers::consumers(&prefix), true).await;
    App { app, tenants, tasks }
}

impl App {
    async fn tenant(&self) -> Tenant {
        let t = self.app.tenant().await;
        self.tenants.watch(&t.id);
        t
    }

    async fn publish(&self, tenant: &TenantId, subject: &str, data: Value) -> Envelope {
        let event = Envelope::new(subject, tenant, None, data).expect("envelope");
        self.publish_envelope(&event).await;
        event
    }

    async fn publish_envelope(&self, event: &Envelope) {
        let payload = serde_json::to_vec(event).expect("serialize");
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", event.id.as_str());
        headers.insert(crm_events::TENANT_HEADER, event.tenant_id.as_str());
        self.platform.jetstream.publish_with_headers(event.r#type.clone(), headers, payload.into()).await.expect("publish").await.expect("ack");
    }

    async fn contact(&self, t: &Tenant, id: i64) -> Value {
        self.get(&format!("/api/v1/contacts/{id}"), &t.admin).await.expect(StatusCode::OK)
    }

    /// Runs SQL on the tenant's schema (test setup: backdating rows).
    async fn sql(&self, tenant: &TenantId, sql: &str, params: &[&(dyn tokio_postgres::types::ToSql + Sync)]) {
        let client = self.platform.pool.get().await.expect("connection");
        let sql = sql.replace("{schema}", tenant.schema().as_str());
        client.execute(sql.as_str(), params).await.expect("setup SQL");
    }
}

fn activity(id: i64, contact_id: i64, completed_at: Option<&str>) -> Value {
    json!({"id": id, "type": "call", "subject": "Call", "description": "", "contact_id": contact_id, "company_id": null,
           "deal_id": null, "owner_id": ADMIN, "completed_at": completed_at, "created_at": Utc::now()})
}

fn instant(raw: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(raw).expect("RFC 3339").with_timezone(&Utc)
}

fn time_of(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str().map(instant)
}

#[tokio::test]
async fn consent_is_recorded_with_history_and_an_event_per_change() {
    let app = spawn().await;
    let t = app.tenant().await;
    let c = app.create_contact(&t.rep, json!({"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"})).await;
    let id = c["id"].as_i64().unwrap();
    assert_eq!(c["marketing_consent"], "unknown");
    assert!(c["last_contacted_at"].is_null());
    let path = format!("/api/v1/contacts/{id}/consent");

    let r = app.get(&path, &t.viewer).await.expect(StatusCode::OK);
    assert_eq!(r, json!({"contact_id": id, "status": "unknown", "updated_at": null, "source": null, "history": []}));

    let mut events = app.platform.events(CONTACT_CONSENT_CHANGED).await;
    let r = app.put(&path, &t.rep, json!({"status": "granted", "source": "web_form"})).await.expect(StatusCode::OK);
    assert_eq!(r["status"], "granted");
    assert_eq!(r["source"], "web_form");
    assert_eq!(r["history"].as_array().unwrap().len(), 1);
    assert_eq!(r["history"][0]["previous"], "unknown");
    assert_eq!(r["history"][0]["changed_by"], REP);
    let event = events.wait_for(&t.id, CONTACT_CONSENT_CHANGED, EVENT_TIMEOUT).await;
    assert_eq!(event.data["contact_id"], id);
    assert_eq!(event.data["status"], "granted");
    assert_eq!(event.data["previous"], "unknown");
    assert_eq!(event.data["source"], "web_form");
    assert_eq!(time_of(&event.data["at"]), time_of(&r["updated_at"]));

    // The contact JSON and the lookups other services use carry it.
    assert_eq!(app.contact(&t, id).await["marketing_consent"], "granted");
    assert_eq!(app.get(&format!("/api/v1/contacts/{id}/basic"), &t.viewer).await.expect(StatusCode::OK)["marketing_consent"], "granted");
    let batch = app.get(&format!("/api/v1/contacts/basic?ids={id}"), &t.viewer).await.expect(StatusCode::OK);
    assert_eq!(batch["data"][0]["marketing_consent"], "granted");

    // Withdrawn, then the record as read can still be PUT back (response-only fields).
    let r = app.put(&path, &t.admin, json!({"status": "withdrawn", "source": "phone"})).await.expect(StatusCode::OK);
    assert_eq!(r["status"], "withdrawn");
    let history: Vec<&str> = r["history"].as_array().unwrap().iter().map(|h| h["status"].as_str().unwrap()).collect();
    assert_eq!(history, ["withdrawn", "granted"], "newest first");
    let current = app.contact(&t, id).await;
    assert_eq!(current["marketing_consent"], "withdrawn");
    app.put(&format!("/api/v1/contacts/{id}"), &t.admin, current).await.expect(StatusCode::OK);
    assert_eq!(app.contact(&t, id).await["marketing_consent"], "withdrawn", "a contact PUT does not touch consent");

    // The same status again is recorded (renewed evidence) but is not a change: no event.
    let r = app.put(&path, &t.admin, json!({"status": "withdrawn", "source": "email_reply"})).await.expect(StatusCode::OK);
    assert_eq!(r["history"].as_array().unwrap().len(), 3);
    assert_eq!(events.count_within(&t.id, CONTACT_CONSENT_CHANGED, std::time::Duration::from_secs(2)).await, 2);
}

#[tokio::test]
async fn consent_input_and_access_are_checked() {
    let app = spawn().await;
    let t = app.tenant().await;
    let id = app.create_contact(&t.rep, json!({"first_name": "Ada", "last_name": "L"})).await["id"].as_i64().unwrap();
    let path = format!("/api/v1/contacts/{id}/consent");
    let r = app.put(&path, &t.admin, json!({"status": "unknown", "source": ""})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(bad_fields(&r), ["source", "status"]);
    for body in [
        json!({"status": "granted"}),
        json!({"status": "yes", "source": "form"}),
        json!({"status": "granted", "source": "line\nbreak"}),
        json!({"status": "granted", "source": "x".repeat(101)}),
        json!({"status": "granted", "source": "form", "at": "2026-01-01T00:00:00Z"}),
        json!({"status": 1, "source": "form"}),
    ] {
        assert_eq!(app.put(&path, &t.admin, body.clone()).await.status, StatusCode::BAD_REQUEST, "{body}");
    }
    let ok = json!({"status": "granted", "source": "form"});
    assert_eq!(app.put(&path, &t.other_rep, ok.clone()).await.status, StatusCode::FORBIDDEN, "another rep's contact");
    assert_eq!(app.put(&path, &t.viewer, ok.clone()).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.put("/api/v1/contacts/999999/consent", &t.admin, ok.clone()).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/api/v1/contacts/999999/consent", &t.admin).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/api/v1/contacts/abc/consent", &t.admin).await.status, StatusCode::NOT_FOUND);
    let other = app.tenant().await;
    assert_eq!(app.get(&path, &other.admin).await.status, StatusCode::NOT_FOUND, "tenants are separate");
    assert_eq!(app.put(&path, &t.rep, ok).await.status, StatusCode::OK);
}

#[tokio::test]
async fn an_unsubscribe_withdraws_consent_once() {
    let app = spawn().await;
    let t = app.tenant().await;
    let ada = app.create_contact(&t.admin, json!({"first_name": "Ada", "last_name": "L", "email": "ada@example.com"})).await["id"].as_i64().unwrap();
    let bob = app.create_contact(&t.admin, json!({"first_name": "Bob", "last_name": "B", "email": "Bob@Example.com"})).await["id"].as_i64().unwrap();
    // Granted before the test watches events (set directly: no event to tell apart).
    app.sql(&t.id, "UPDATE {schema}.contacts SET marketing_consent = 'granted' WHERE id = $1", &[&(ada as i32)]).await;

    let mut changes = app.platform.events(CONTACT_CONSENT_CHANGED).await;
    let unsubscribe = app.publish(&t.id, EMAIL_UNSUBSCRIBED, json!({"email_id": 7, "contact_id": ada, "email_address": "ada@example.com"})).await;
    wait_until("Ada's consent withdrawn", EVENT_TIMEOUT, || async {
        (app.contact(&t, ada).await["marketing_consent"] == "withdrawn").then_some(())
    })
    .await;
    let record = app.get(&format!("/api/v1/contacts/{ada}/consent"), &t.viewer).await.expect(StatusCode::OK);
    assert_eq!(record["source"], "unsubscribe");
    assert!(record["history"][0]["changed_by"].is_null(), "the platform, not a user");
    let event = changes.wait_for(&t.id, CONTACT_CONSENT_CHANGED, EVENT_TIMEOUT).await;
    assert_eq!((event.data["contact_id"].as_i64(), event.data["status"].as_str(), event.data["previous"].as_str()), (Some(ada), Some("withdrawn"), Some("granted")));
    assert_eq!(event.data["source"], "unsubscribe");

    // Without a contact id, the address finds the contact (case-insensitively).
    app.publish(&t.id, EMAIL_UNSUBSCRIBED, json!({"email_id": 8, "contact_id": null, "email_address": "bob@example.COM"})).await;
    wait_until("Bob's consent withdrawn", EVENT_TIMEOUT, || async {
        (app.contact(&t, bob).await["marketing_consent"] == "withdrawn").then_some(())
    })
    .await;

    // The same unsubscribe again (redelivered, or a second click with a new event): no change.
    app.publish_envelope(&unsubscribe).await;
    app.publish(&t.id, EMAIL_UNSUBSCRIBED, json!({"email_id": 7, "contact_id": ada, "email_address": "ada@example.com"})).await;
    // An unknown contact is not an error (the consumer goes on with the next event).
    app.publish(&t.id, EMAIL_UNSUBSCRIBED, json!({"email_id": 9, "contact_id": 999999, "email_address": "x@example.com"})).await;
    let marker = app.create_contact(&t.admin, json!({"first_name": "Cy", "last_name": "C", "email": "cy@example.com"})).await["id"].as_i64().unwrap();
    app.publish(&t.id, EMAIL_UNSUBSCRIBED, json!({"email_id": 10, "contact_id": marker, "email_address": "cy@example.com"})).await;
    wait_until("the later event applied", EVENT_TIMEOUT, || async {
        (app.contact(&t, marker).await["marketing_consent"] == "withdrawn").then_some(())
    })
    .await;
    let record = app.get(&format!("/api/v1/contacts/{ada}/consent"), &t.viewer).await.expect(StatusCode::OK);
    assert_eq!(record["history"].as_array().unwrap().len(), 1, "one withdrawal: {record}");
    assert_eq!(app.count(&t.id, "contact_consent_history").await, 3, "Ada, Bob and Cy once each");
}

#[tokio::test]
async fn last_contacted_at_follows_activities_and_emails_forward_only() {
    let app = spawn().await;
    let t = app.tenant().await;
    let id = app.create_contact(&t.admin, json!({"first_name": "Ada", "last_name": "L", "email": "ada@example.com"})).await["id"].as_i64().unwrap();
    let etag = app.get(&format!("/api/v1/contacts/{id}"), &t.admin).await.header("etag").unwrap().to_owned();

    // A completed call, stamped in a far-east time zone.
    app.publish(&t.id, ACTIVITY_LOGGED, activity(1, id, Some("2026-03-10T09:00:00+14:00"))).await;
    wait_until("last_contacted_at set", EVENT_TIMEOUT, || async { time_of(&app.contact(&t, id).await["last_contacted_at"]) }).await;
    assert_eq!(time_of(&app.contact(&t, id).await["last_contacted_at"]), Some(instant("2026-03-09T19:00:00Z")));

    // Older (out of order, far west), not completed, without contact: no move back.
    app.publish(&t.id, ACTIVITY_LOGGED, activity(2, id, Some("2026-03-09T08:00:00-11:00"))).await; // = 19:00Z: equal
    app.publish(&t.id, ACTIVITY_LOGGED, activity(3, id, Some("2026-03-01T00:00:00Z"))).await;
    app.publish(&t.id, ACTIVITY_LOGGED, activity(4, id, None)).await;
    let mut no_contact = activity(5, id, Some("2026-03-20T00:00:00Z"));
    no_contact["contact_id"] = Value::Null;
    app.publish(&t.id, ACTIVITY_LOGGED, no_contact).await;
    // A later one in a far-west zone: an instant after the first.
    app.publish(&t.id, ACTIVITY_LOGGED, activity(6, id, Some("2026-03-09T23:30:00-11:00"))).await;
    wait_until("the later activity applied", EVENT_TIMEOUT, || async {
        (time_of(&app.contact(&t, id).await["last_contacted_at"]) == Some(instant("2026-03-10T10:30:00Z"))).then_some(())
    })
    .await;

    // A completion date in the future counts as the time the event was published.
    let before = Utc::now();
    app.publish(&t.id, ACTIVITY_LOGGED, activity(7, id, Some("2030-01-01T00:00:00Z"))).await;
    let at = wait_until("future clamped", EVENT_TIMEOUT, || async {
        time_of(&app.contact(&t, id).await["last_contacted_at"]).filter(|at| *at >= before - Duration::seconds(1))
    })
    .await;
    assert!(at <= Utc::now(), "{at}");

    // A sent email moves it to the event's time.
    let email = app.publish(&t.id, EMAIL_SENT, json!({"email_id": 3, "activity_id": null, "contact_id": id, "email_address": "ada@example.com", "template_id": null})).await;
    wait_until("email.sent applied", EVENT_TIMEOUT, || async {
        // PostgreSQL keeps microseconds.
        let at = time_of(&app.contact(&t, id).await["last_contacted_at"])?;
        (at.timestamp_micros() == email.timestamp.timestamp_micros()).then_some(())
    })
    .await;
    // A derived field: the contact's version (ETag) did not move.
    assert_eq!(app.get(&format!("/api/v1/contacts/{id}"), &t.admin).await.header("etag"), Some(etag.as_str()));
}

#[tokio::test]
async fn inactive_days_compares_instants_across_time_zones_and_boundaries() {
    let app = spawn().await;
    let t = app.tenant().await;
    let now = Utc::now();
    let mk = |name: &'static str| {
        let app = &app;
        let t = &t;
        async move { app.create_contact(&t.admin, json!({"first_name": name, "last_name": "X"})).await["id"].as_i64().unwrap() }
    };
    // Contacted 30 days + 10 min ago, written in UTC+14 (Kiritimati): inactive for 30 days.
    let east = mk("East").await;
    let t_east = (now - Duration::days(30) - Duration::minutes(10)).with_timezone(&chrono::FixedOffset::east_opt(14 * 3600).unwrap());
    app.publish(&t.id, ACTIVITY_LOGGED, activity(1, east, Some(&t_east.to_rfc3339()))).await;
    // Contacted 30 days - 10 min ago, written in UTC-11 (Niue): NOT inactive for 30 days,
    // although its local calendar date is two days before East's.
    let west = mk("West").await;
    let t_west = (now - Duration::days(30) + Duration::minutes(10)).with_timezone(&chrono::FixedOffset::west_opt(11 * 3600).unwrap());
    app.publish(&t.id, ACTIVITY_LOGGED, activity(2, west, Some(&t_west.to_rfc3339()))).await;
    // Never contacted, created 31 days ago: counted from creation.
    let old = mk("Old").await;
    app.sql(&t.id, "UPDATE {schema}.contacts SET created_at = $2 WHERE id = $1", &[&(old as i32), &(now - Duration::days(31))]).await;
    // Never contacted, created just now.
    let fresh = mk("Fresh").await;
    // Created long ago but contacted yesterday.
    let recent = mk("Recent").await;
    app.sql(&t.id, "UPDATE {schema}.contacts SET created_at = $2 WHERE id = $1", &[&(recent as i32), &(now - Duration::days(400))]).await;
    app.publish(&t.id, ACTIVITY_LOGGED, activity(3, recent, Some(&(now - Duration::days(1)).to_rfc3339()))).await;
    wait_until("the activities applied", EVENT_TIMEOUT, || async {
        let page = app.get("/api/v1/contacts?limit=100", &t.admin).await.expect(StatusCode::OK);
        let done = page["data"].as_array().unwrap().iter().filter(|c| !c["last_contacted_at"].is_null()).count();
        (done == 3).then_some(())
    })
    .await;

    let inactive = |days: i64| {
        let app = &app;
        let t = &t;
        async move {
            let page = app.get(&format!("/api/v1/contacts?inactive_days={days}&sort=first_name"), &t.viewer).await.expect(StatusCode::OK);
            let mut found = ids(&page);
            found.sort();
            assert_eq!(page["pagination"]["total_count"], found.len());
            found
        }
    };
    let sorted = |mut v: Vec<i64>| {
        v.sort();
        v
    };
    assert_eq!(inactive(30).await, sorted(vec![east, old]));
    assert_eq!(inactive(31).await, vec![old], "Old: 31 days and the test's seconds");
    assert_eq!(inactive(32).await, Vec::<i64>::new());
    assert_eq!(inactive(29).await, sorted(vec![east, west, old]));
    assert_eq!(inactive(1).await, sorted(vec![east, west, old, recent]), "yesterday is 24 h ago and a little more");
    assert_eq!(inactive(36500).await, Vec::<i64>::new());
    // Combined with the other filters (the status filter, and search).
    let page = app.get("/api/v1/contacts?inactive_days=30&status=customer", &t.admin).await.expect(StatusCode::OK);
    assert!(ids(&page).is_empty());
    let page = app.get("/api/v1/contacts?inactive_days=30&search=east", &t.admin).await.expect(StatusCode::OK);
    assert_eq!(ids(&page), vec![east]);
    let _ = fresh;

    for bad in ["0", "-1", "1.5", "abc", "36501", "99999999999999999999"] {
        let r = app.get(&format!("/api/v1/contacts?inactive_days={bad}"), &t.admin).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(bad_fields(&r), ["inactive_days"], "{bad}");
    }
}

/// Schedules the tenant's inactive-lead job (as tenant-service does when the setting is set).
async fn schedule(app: &App, tenant: &TenantId, days: Option<i32>) {
    let client = app.platform.pool.get().await.expect("connection");
    client
        .execute(
            "INSERT INTO platform.tenant_settings (tenant_id, inactive_lead_days) VALUES ($1, $2)
             ON CONFLICT (tenant_id) DO UPDATE SET inactive_lead_days = $2",
            &[&tenant.to_string(), &days],
        )
        .await
        .expect("settings");
    client
        .execute(
            "INSERT INTO platform.inactive_lead_schedule (tenant_id, due_at) VALUES ($1, now() - interval '1 second')
             ON CONFLICT (tenant_id) DO UPDATE SET due_at = now() - interval '1 second'",
            &[&tenant.to_string()],
        )
        .await
        .expect("schedule");
}

async fn schedule_row(app: &App, tenant: &TenantId) -> Option<(DateTime<Utc>, Option<i32>)> {
    let client = app.platform.pool.get().await.expect("connection");
    client
        .query_opt("SELECT due_at, last_found FROM platform.inactive_lead_schedule WHERE tenant_id = $1", &[&tenant.to_string()])
        .await
        .expect("schedule row")
        .map(|r| (r.get(0), r.get(1)))
}

/// Two instances of the job (own pools, as two replicas) poll at the same moment.
async fn two_instances_poll(tenant: &TenantId) {
    // Polls with two instances at once until one of them ran `tenant`'s job: a poll claims
    // the oldest due jobs first (at most `tenants_per_poll`), and the other tests' tenants
    // in this database may be due before this one.
    let config = InactiveLeadConfig { batch: 1000, ..InactiveLeadConfig::default() };
    let a = TenantDb::new(crm_testing::test_pool().await);
    let b = TenantDb::new(crm_testing::test_pool().await);
    wait_until("the tenant's job run by a poll", EVENT_TIMEOUT, || async {
        let (ra, rb) = tokio::join!(run_due(&a, &config), run_due(&b, &config));
        let (ra, rb) = (ra.expect("instance a"), rb.expect("instance b"));
        let ran = ra.iter().chain(&rb).any(|(t, _)| t == tenant);
        ran.then_some(())
    })
    .await;
}

#[tokio::test]
async fn the_daily_job_publishes_each_inactive_lead_once_per_period_with_two_instances() {
    let app = spawn().await;
    let t = app.tenant().await;
    let now = Utc::now();
    let create = |name: &'static str, status: &'static str| {
        let app = &app;
        let t = &t;
        async move {
            app.create_contact(&t.admin, json!({"first_name": name, "last_name": "X", "email": format!("{}@example.com", name.to_lowercase()), "status": status}))
                .await["id"]
                .as_i64()
                .unwrap()
        }
    };
    let lead = create("Lead", "lead").await; // never contacted, created 40 days ago
    let prospect = create("Prospect", "prospect").await; // contacted 31 days ago
    let customer = create("Customer", "customer").await; // inactive, but not a lead
    let active = create("Active", "lead").await; // contacted 2 days ago
    for id in [lead, prospect, customer, active] {
        app.sql(&t.id, "UPDATE {schema}.contacts SET created_at = $2 WHERE id = $1", &[&(id as i32), &(now - Duration::days(40))]).await;
    }
    app.sql(&t.id, "UPDATE {schema}.contacts SET last_contacted_at = $2 WHERE id = $1", &[&(prospect as i32), &(now - Duration::days(31))]).await;
    app.sql(&t.id, "UPDATE {schema}.contacts SET last_contacted_at = $2 WHERE id = $1", &[&(active as i32), &(now - Duration::days(2))]).await;
    schedule(&app, &t.id, Some(30)).await;

    let mut events = app.platform.events(CONTACT_BECAME_INACTIVE).await;
    two_instances_poll(&t.id).await;
    let first = events.wait_for(&t.id, CONTACT_BECAME_INACTIVE, EVENT_TIMEOUT).await;
    assert_eq!(events.count_within(&t.id, CONTACT_BECAME_INACTIVE, std::time::Duration::from_secs(2)).await, 2, "one each, whoever ran it");
    assert!([lead, prospect].contains(&first.data["contact_id"].as_i64().unwrap()), "{first:?}");
    assert_eq!(first.data["owner_id"], ADMIN);
    if first.data["contact_id"] == lead {
        assert!(first.data["last_contacted_at"].is_null());
        assert_eq!(first.data["inactive_days"], 40);
        assert_eq!(first.data["status"], "lead");
        assert_eq!(first.data["email"], "lead@example.com");
    } else {
        assert_eq!(first.data["inactive_days"], 31);
        assert_eq!(first.data["status"], "prospect");
    }
    // Rescheduled a day after the due time, with what it found.
    let (due, found) = schedule_row(&app, &t.id).await.expect("still scheduled");
    assert!(due > now + Duration::hours(23), "{due}");
    assert_eq!(found, Some(2));

    // Due again (the next day): the same inactivity period is not published twice.
    schedule(&app, &t.id, Some(30)).await;
    two_instances_poll(&t.id).await;
    wait_until("the second run recorded", EVENT_TIMEOUT, || async { (schedule_row(&app, &t.id).await?.1 == Some(0)).then_some(()) }).await;
    assert_eq!(events.count_within(&t.id, CONTACT_BECAME_INACTIVE, std::time::Duration::from_secs(1)).await, 2);

    // A contact (backdated 35 days: still inactive) opens a new period: published again.
    app.publish(&t.id, ACTIVITY_LOGGED, activity(1, prospect, Some(&(now - Duration::days(30) - Duration::hours(12)).to_rfc3339()))).await;
    wait_until("the activity applied", EVENT_TIMEOUT, || async {
        app.contact(&t, prospect).await["last_contacted_at"].as_str().map(instant).filter(|at| *at > now - Duration::days(31 + 1) && *at < now - Duration::days(30))
    })
    .await;
    schedule(&app, &t.id, Some(30)).await;
    two_instances_poll(&t.id).await;
    assert_eq!(events.count_within(&t.id, CONTACT_BECAME_INACTIVE, std::time::Duration::from_secs(3)).await, 3);

    // Turned off: the next poll drops the schedule row and publishes nothing.
    schedule(&app, &t.id, None).await;
    two_instances_poll(&t.id).await;
    assert!(schedule_row(&app, &t.id).await.is_none());
    assert_eq!(events.count_within(&t.id, CONTACT_BECAME_INACTIVE, std::time::Duration::from_secs(1)).await, 3);
}

#[tokio::test]
async fn the_job_is_visible_and_admins_run_it_now() {
    let app = spawn().await;
    let t = app.tenant().await;
    let path = "/api/v1/contacts/inactive-lead-job";
    let r = app.get(path, &t.viewer).await.expect(StatusCode::OK);
    assert_eq!(r, json!({"inactive_lead_days": null, "enabled": false, "next_run_at": null, "last_run_at": null, "last_found": null, "attempts": 0, "last_error": null}));
    let r = app.post(&format!("{path}/run"), &t.admin, json!({})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "off: {}", r.body);

    let id = app.create_contact(&t.admin, json!({"first_name": "Old", "last_name": "Lead"})).await["id"].as_i64().unwrap();
    app.sql(&t.id, "UPDATE {schema}.contacts SET created_at = now() - interval '10 days' WHERE id = $1", &[&(id as i32)]).await;
    schedule(&app, &t.id, Some(7)).await;
    two_instances_poll(&t.id).await;
    let r = wait_until("the run recorded", EVENT_TIMEOUT, || async {
        let r = app.get(path, &t.viewer).await.expect(StatusCode::OK);
        (r["last_found"] == 1).then_some(r)
    })
    .await;
    assert_eq!(r["enabled"], true);
    assert_eq!(r["inactive_lead_days"], 7);
    assert!(time_of(&r["next_run_at"]).unwrap() > Utc::now() + Duration::hours(23), "{r}");
    assert!(time_of(&r["last_run_at"]).is_some());

    for token in [&t.manager, &t.rep, &t.viewer] {
        assert_eq!(app.post(&format!("{path}/run"), token, json!({})).await.status, StatusCode::FORBIDDEN);
    }
    let r = app.post(&format!("{path}/run"), &t.admin, json!({})).await.expect(StatusCode::OK);
    assert!(time_of(&r["next_run_at"]).unwrap() <= Utc::now(), "{r}");
    // Run again at once: nothing new for the same period.
    two_instances_poll(&t.id).await;
    let r = wait_until("the second run recorded", EVENT_TIMEOUT, || async {
        let r = app.get(path, &t.viewer).await.expect(StatusCode::OK);
        (r["last_found"] == 0).then_some(r)
    })
    .await;
    assert!(time_of(&r["next_run_at"]).unwrap() > Utc::now() + Duration::hours(23), "{r}");
}
