//! Issue 15 automation, on real PostgreSQL, NATS and SMTP: reminders once with two instances,
//! sequences across a restart (no step twice), consent and one-click unsubscribe, rule runs
//! that fail visibly and are retried, a loop of rules that stops, inactive-lead follow-ups.

use std::sync::Arc;

use chrono::{Duration, Utc};
use communication_service::service::scheduler::Automation;
use crm_client_communication::subjects::{EMAIL_UNSUBSCRIBED, TASK_REMINDER_DUE};
use crm_client_contact::MarketingConsent;
use crm_client_core::ClientError;
use crm_events::Envelope;
use crm_testing::wait_until;
use crm_web::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::consumers::closed_won;
use crate::helpers::*;

fn grant_consent(app: &TestApp, contact: i32) {
    app.contacts.contacts.lock().unwrap().get_mut(&contact).expect("contact").marketing_consent = MarketingConsent::Granted;
}

async fn template(app: &TestApp, t: &Tenant, name: &str, subject: &str) -> i64 {
    let body = json!({"name": name, "subject": subject, "body_html": format!("<p>Hello {{{{contact.first_name}}}}, {name}</p>")});
    let r = app.post("/api/v1/email-templates", &t.admin, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_i64().expect("id")
}

/// Runs a SQL statement in the tenant's schema (moving due times instead of waiting hours).
async fn exec(app: &TestApp, tenant: &crm_tenant::TenantId, sql: &str) {
    let client = app.platform.pool.get().await.expect("connection");
    let sql = sql.replace("{schema}", &tenant.schema().quoted());
    client.execute(&sql, &[]).await.expect("statement");
}

async fn wait_rows(app: &TestApp, tenant: &crm_tenant::TenantId, table: &str, condition: &str, n: i64) {
    wait_until(&format!("{n} rows in {table} where {condition}"), WAIT, || async { (app.count(tenant, table, condition).await >= n).then_some(()) }).await;
}

#[tokio::test]
async fn a_reminder_fires_once_with_two_instances_and_again_when_rescheduled() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    // A second instance: its own automation loop on the same database.
    let mut second = app.state.clone();
    second.automation = Arc::new(Automation::default());
    let _other = start_scheduler(&second, &app.automation_tenants);
    let mut due_events = app.platform.events(TASK_REMINDER_DUE).await;

    let soon = Utc::now() + Duration::milliseconds(300);
    let r = app
        .post("/api/v1/tasks", &t.admin, json!({"title": "Call Ada back", "assigned_to": REP, "reminder_at": soon, "due_date": soon + Duration::hours(1)}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let task_id = r.body["id"].as_i64().unwrap();
    let mail = app.smtp.wait_for("user2@example.com", "Reminder: Call Ada back").await;
    assert!(mail.decoded().contains(&format!("https://app.crm.test/tasks/{task_id}")), "{}", mail.decoded());
    let event = due_events.wait_for(&t.id, TASK_REMINDER_DUE, WAIT).await;
    assert_eq!((event.data["task_id"].as_i64(), event.data["assigned_to"].as_i64()), (Some(task_id), Some(REP as i64)));
    wait_rows(&app, &t.id, "task_reminders", &format!("task_id = {task_id} AND status = 'sent'"), 1).await;

    // A later reminder of another task is a sentinel: once it is sent, both loops have long
    // passed the first one.
    let sentinel = app.post("/api/v1/tasks", &t.admin, json!({"title": "Sentinel", "assigned_to": OTHER_REP, "reminder_at": Utc::now()})).await;
    assert_eq!(sentinel.status, StatusCode::CREATED);
    app.smtp.wait_for("user3@example.com", "Reminder: Sentinel").await;
    assert_eq!(app.smtp.count_to("user2@example.com"), 1, "one reminder with two instances running");
    assert_eq!(due_events.count_within(&t.id, TASK_REMINDER_DUE, std::time::Duration::from_millis(500)).await, 2);

    // A changed reminder_at schedules it again (once); clearing it cancels.
    let etag = app.get(&format!("/api/v1/tasks/{task_id}"), &t.admin).await.header("etag").expect("etag").to_owned();
    let r = app
        .with_headers(reqwest::Method::PATCH, &format!("/api/v1/tasks/{task_id}"), &t.admin, &[("If-Match", &etag)], Some(json!({"reminder_at": Utc::now()})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    wait_until("the second reminder", WAIT, || async { (app.smtp.count_to("user2@example.com") == 2).then_some(()) }).await;
    let cleared = app.post("/api/v1/tasks", &t.admin, json!({"title": "Never", "assigned_to": VIEWER, "reminder_at": Utc::now() + Duration::seconds(30)})).await;
    let id = cleared.body["id"].as_i64().unwrap();
    let etag = cleared.header("etag").expect("etag").to_owned();
    let r = app.with_headers(reqwest::Method::PATCH, &format!("/api/v1/tasks/{id}"), &t.admin, &[("If-Match", &etag)], Some(json!({"reminder_at": null}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(app.count(&t.id, "task_reminders", &format!("task_id = {id}")).await, 0);
}

#[tokio::test]
async fn a_sequence_resumes_after_a_restart_without_sending_a_step_twice() {
    let first = spawn_app().await;
    let t = first.tenant().await;
    grant_consent(&first, ADA);
    let welcome = template(&first, &t, "Welcome", "Welcome aboard").await;
    let tips = template(&first, &t, "Tips", "Three tips").await;
    let r = first
        .post("/api/v1/sequences", &t.admin, json!({"name": "Onboarding", "steps": [{"template_id": welcome, "delay_hours": 0}, {"template_id": tips, "delay_hours": 48}]}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["steps"][1]["delay_hours"], 48.0);
    let sequence = r.body["id"].as_i64().unwrap();
    let r = first.post(&format!("/api/v1/sequences/{sequence}/enrollments"), &t.admin, json!({"contact_id": ADA})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let enrollment = r.body["id"].as_i64().unwrap();
    assert_eq!(r.body["steps"][0]["status"], "scheduled");
    let again = first.post(&format!("/api/v1/sequences/{sequence}/enrollments"), &t.admin, json!({"contact_id": ADA})).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);

    let mail = first.smtp.wait_for("ada@example.com", "Welcome aboard").await;
    let raw = mail.decoded();
    assert!(raw.contains("List-Unsubscribe: <https://crm.test/api/v1/unsubscribe/"), "{raw}");
    assert!(raw.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"), "{raw}");
    wait_rows(&first, &t.id, "enrollment_steps", &format!("enrollment_id = {enrollment} AND position = 1 AND status = 'sent'"), 1).await;
    let list = first.get(&format!("/api/v1/sequences/{sequence}/enrollments"), &t.admin).await;
    let steps = &list.body["data"][0]["steps"];
    assert_eq!((steps[0]["status"].as_str(), steps[1]["status"].as_str()), (Some("sent"), Some("scheduled")), "{}", list.body);
    assert!(steps[0]["email_id"].is_i64());

    // The platform stops in the middle of the sequence...
    drop(first);
    // ... the second step's 48 hours pass ...
    exec_moved(&t.id, enrollment).await;
    // ... and a new instance resumes it.
    let second = spawn_app().await;
    second.adopt(&t.id);
    second.platform.watch_tenant(&t.id);
    grant_consent(&second, ADA);
    second.smtp.wait_for("ada@example.com", "Three tips").await;
    wait_rows(&second, &t.id, "sequence_enrollments", &format!("id = {enrollment} AND status = 'completed'"), 1).await;
    assert_eq!(second.smtp.count_to("ada@example.com"), 1, "only the second step after the restart");
    assert_eq!(second.count(&t.id, "email_tracking", "marketing AND contact_id = 10").await, 2, "one email per step");
}

/// Makes the second step of `enrollment` due now (as if 48 hours had passed).
async fn exec_moved(tenant: &crm_tenant::TenantId, enrollment: i64) {
    let pool = crm_testing::test_pool().await;
    let client = pool.get().await.expect("connection");
    let sql = format!(
        "UPDATE {}.enrollment_steps SET due_at = now(), next_attempt_at = now() WHERE enrollment_id = {enrollment} AND position = 2",
        tenant.schema().quoted()
    );
    assert_eq!(client.execute(&sql, &[]).await.expect("move the due time"), 1);
}

#[tokio::test]
async fn consent_and_one_click_unsubscribe_govern_marketing_steps() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let hello = template(&app, &t, "Hello", "Hello there").await;
    let next = template(&app, &t, "Next", "Next one").await;
    let r = app
        .post("/api/v1/sequences", &t.admin, json!({"name": "Nurture", "steps": [{"template_id": hello, "delay_minutes": 0}, {"template_id": next, "delay_hours": 1}]}))
        .await;
    let sequence = r.body["id"].as_i64().unwrap();

    // opt_in (the default) and no recorded consent: the step is skipped, with the reason.
    let r = app.post(&format!("/api/v1/sequences/{sequence}/enrollments"), &t.admin, json!({"contact_id": ADA})).await;
    let enrollment = r.body["id"].as_i64().unwrap();
    wait_rows(&app, &t.id, "enrollment_steps", &format!("enrollment_id = {enrollment} AND position = 1 AND status = 'skipped'"), 1).await;
    let e = app.get(&format!("/api/v1/sequences/{sequence}/enrollments/{enrollment}"), &t.admin).await;
    assert_eq!(e.body["steps"][0]["reason"], "no_consent", "{}", e.body);
    let rep = app.token(&t, REP, Role::SalesRep);
    let r = app.request(reqwest::Method::DELETE, &format!("/api/v1/sequences/{sequence}/enrollments/{enrollment}"), Some(&rep), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "a rep unenrolls only its own enrollments");
    let r = app.request(reqwest::Method::DELETE, &format!("/api/v1/sequences/{sequence}/enrollments/{enrollment}"), Some(&t.admin), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let e = app.get(&format!("/api/v1/sequences/{sequence}/enrollments/{enrollment}"), &t.admin).await;
    assert_eq!((e.body["status"].as_str(), e.body["stop_reason"].as_str()), (Some("stopped"), Some("unenrolled")));
    assert_eq!(e.body["steps"][1]["status"], "cancelled");

    // With consent (a rep enrolls its own contact): sent, with a working one-click unsubscribe.
    grant_consent(&app, ADA);
    let r = app.post(&format!("/api/v1/sequences/{sequence}/enrollments"), &rep, json!({"contact_id": ADA})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let enrollment = r.body["id"].as_i64().unwrap();
    let mail = app.smtp.wait_for("ada@example.com", "Hello there").await;
    let text = mail.decoded();
    let start = text.find("/api/v1/unsubscribe/").expect("unsubscribe link") + "/api/v1/unsubscribe/".len();
    let token: String = text[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
    let path = format!("/api/v1/unsubscribe/{token}");
    let mut unsubscribed = app.platform.events(EMAIL_UNSUBSCRIBED).await;
    let page = app.request(reqwest::Method::GET, &path, None, None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(app.count(&t.id, "unsubscribes", "true").await, 0, "GET only shows the page");
    let done = app.client.http.post(format!("{}{path}", app.client.url)).header("content-type", "application/x-www-form-urlencoded").body("List-Unsubscribe=One-Click").send().await.expect("POST");
    assert_eq!(done.status(), StatusCode::OK);
    let event = unsubscribed.wait_for(&t.id, EMAIL_UNSUBSCRIBED, WAIT).await;
    assert_eq!((event.data["contact_id"].as_i64(), event.data["email_address"].as_str()), (Some(ADA as i64), Some("ada@example.com")));
    let e = app.get(&format!("/api/v1/sequences/{sequence}/enrollments/{enrollment}"), &t.admin).await;
    assert_eq!((e.body["status"].as_str(), e.body["stop_reason"].as_str()), (Some("stopped"), Some("unsubscribed")), "{}", e.body);
    let again = app.client.http.post(format!("{}{path}", app.client.url)).send().await.expect("POST");
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(unsubscribed.count_within(&t.id, EMAIL_UNSUBSCRIBED, std::time::Duration::from_millis(500)).await, 1, "idempotent");
    let last = if token.ends_with('x') { 'y' } else { 'x' };
    let forged = app.request(reqwest::Method::POST, &format!("/api/v1/unsubscribe/{}{last}", &token[..token.len() - 1]), None, None).await;
    assert_eq!(forged.status, StatusCode::NOT_FOUND);
    // Unsubscribed here: no marketing step goes to the address again, whatever the consent.
    let r = app.post(&format!("/api/v1/sequences/{sequence}/enrollments"), &t.admin, json!({"contact_id": ADA})).await;
    let third = r.body["id"].as_i64().unwrap();
    wait_rows(&app, &t.id, "enrollment_steps", &format!("enrollment_id = {third} AND position = 1 AND reason = 'unsubscribed'"), 1).await;
}

#[tokio::test]
async fn a_failing_rule_run_is_visible_and_can_be_retried() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    grant_consent(&app, ADA);
    let thanks = template(&app, &t, "Thanks", "Thank you for your order").await;
    let rule = json!({"name": "Won -> thanks", "trigger": {"event": "deal.closed_won"},
        "conditions": [{"field": "value", "op": "gte", "value": 10000}],
        "actions": [{"type": "create_task", "title": "Send a gift", "due_in_hours": 24}, {"type": "send_email", "template_id": thanks}]});
    let r = app.post("/api/v1/automation/rules", &t.admin, rule.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let rule_id = r.body["id"].as_i64().unwrap();
    let rep = app.token(&t, REP, Role::SalesRep);
    assert_eq!(app.post("/api/v1/automation/rules", &rep, rule).await.status, StatusCode::FORBIDDEN);
    let bad = app.post("/api/v1/automation/rules", &t.admin, json!({"name": "x", "trigger": {"event": "deal.teleported"}, "actions": [{"type": "send_email"}]})).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    assert!(bad.body["details"]["fields"]["trigger.event"].is_string() && bad.body["details"]["fields"]["actions[0].template_id"].is_string(), "{}", bad.body);

    // contact-service is down: the run fails, visibly, and its task is not kept.
    *app.contacts.fail_with.lock().unwrap() = Some(ClientError::Unavailable("down for the test".into()));
    let event = closed_won(&t.id, 601, "Big renewal", Some(REP));
    app.publish(&event, &event.id).await;
    let runs = wait_until("a failed run", WAIT, || async {
        let r = app.get(&format!("/api/v1/automation/rules/{rule_id}/runs"), &t.admin).await;
        (r.body["data"][0]["status"] == "failed").then_some(r.body)
    })
    .await;
    let run = &runs["data"][0];
    assert_eq!(run["attempts"], 1);
    assert!(run["error"].as_str().unwrap().contains("actions[1] (send_email)"), "{run}");
    assert!(run["next_attempt_at"].is_string());
    assert_eq!(run["event"]["id"], event.id.as_str());
    assert_eq!(app.count(&t.id, "tasks", "title = 'Send a gift'").await, 0, "a failed run keeps none of its effects");

    // Fixed, retried now: succeeds.
    *app.contacts.fail_with.lock().unwrap() = None;
    let run_id = run["id"].as_i64().unwrap();
    let r = app.post(&format!("/api/v1/automation/runs/{run_id}/retry"), &t.admin, json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    app.smtp.wait_for("ada@example.com", "Thank you for your order").await;
    let done = wait_until("the retried run", WAIT, || async {
        let r = app.get(&format!("/api/v1/automation/rules/{rule_id}/runs"), &t.admin).await;
        (r.body["data"][0]["status"] == "succeeded").then_some(r.body)
    })
    .await;
    assert_eq!(done["data"][0]["attempts"], 2);
    assert_eq!(app.count(&t.id, "tasks", &format!("title = 'Send a gift' AND assigned_to = {REP} AND deal_id = 601")).await, 1);
    let again = app.post(&format!("/api/v1/automation/runs/{run_id}/retry"), &t.admin, json!({})).await;
    assert_eq!(again.status, StatusCode::CONFLICT);

    // Below the threshold: no run at all.
    let small = Envelope::new(crm_client_deal::subjects::DEAL_CLOSED_WON, &t.id, None, json!({"id": 602, "title": "Small", "stage": "closed_won", "value": 50.0, "owner_id": REP, "company_id": null, "primary_contact_id": ADA, "actual_close_date": "2026-03-14", "close_reason": null}))
        .expect("envelope");
    app.publish(&small, &small.id).await;
    wait_rows(&app, &t.id, "activities", "deal_id = 602", 1).await;
    assert_eq!(app.count(&t.id, "automation_runs", &format!("event_id = '{}'", small.id)).await, 0);
}

#[tokio::test]
async fn a_loop_of_rules_stops_at_the_depth_limit() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    grant_consent(&app, ADA);
    let ping = template(&app, &t, "Ping", "Ping").await;
    // Every logged email activity sends another email, which logs another activity...
    let r = app
        .post("/api/v1/automation/rules", &t.admin, json!({"name": "Echo", "trigger": {"event": "activity.logged"},
            "conditions": {"all": [{"field": "type", "op": "eq", "value": "email"}]},
            "actions": [{"type": "send_email", "template_id": ping}]}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let rule_id = r.body["id"].as_i64().unwrap();
    let r = app.post("/api/v1/emails", &t.admin, json!({"contact_id": ADA, "subject": "Hi", "body_html": "<p>Hi</p>"})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let stopped = wait_until("a loop_stopped run", WAIT, || async {
        let r = app.get(&format!("/api/v1/automation/rules/{rule_id}/runs?status=loop_stopped"), &t.admin).await;
        r.body["data"].as_array().and_then(|d| d.first().cloned())
    })
    .await;
    assert_eq!(stopped["depth"], 5, "{stopped}");
    assert!(stopped["error"].as_str().unwrap().contains("limit 5"), "{stopped}");
    let all = app.get(&format!("/api/v1/automation/rules/{rule_id}/runs?count=true"), &t.admin).await;
    assert_eq!(all.body["pagination"]["total_count"], 6, "depths 0..=4 ran, 5 stopped: {}", all.body);
    wait_until("the 5 rule emails", WAIT, || async { (app.smtp.count_to("ada@example.com") >= 6).then_some(()) }).await;
    assert_eq!(app.count(&t.id, "email_tracking", "subject = 'Ping'").await, 5);
}

#[tokio::test]
async fn an_inactive_lead_gets_one_open_follow_up_task() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let inactive = |days: i64| {
        let data = json!({"contact_id": ADA, "owner_id": REP, "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com",
            "status": "lead", "last_contacted_at": null, "inactive_days": days});
        Envelope::new("contact.became_inactive", &t.id, None, data).expect("envelope")
    };
    let first = inactive(30);
    app.publish(&first, &first.id).await;
    wait_rows(&app, &t.id, "tasks", &format!("contact_id = {ADA} AND type = 'follow_up'"), 1).await;
    let second = inactive(31);
    app.publish(&second, &second.id).await;
    let consumer = app.durables.iter().find(|d| d.ends_with("contact-inactive")).expect("consumer").clone();
    wait_rows(&app, &t.id, "processed_events", &format!("consumer = '{consumer}' AND event_id = '{}'", second.id), 1).await;
    assert_eq!(app.count(&t.id, "tasks", &format!("contact_id = {ADA} AND type = 'follow_up' AND status = 'pending'")).await, 1, "one open per contact");
    let rep = app.token(&t, REP, Role::SalesRep);
    let mine = app.get("/api/v1/tasks/mine", &rep).await;
    assert_eq!(mine.body["data"][0]["title"], "Follow up with Ada Lovelace", "{}", mine.body);
    assert_eq!(mine.body["data"][0]["custom_fields"]["reason"], "inactive_lead");

    // Once it is done, the next inactivity period gets a new one.
    exec(&app, &t.id, "UPDATE {schema}.tasks SET status = 'completed', completed_at = now() WHERE type = 'follow_up'").await;
    let third = inactive(60);
    app.publish(&third, &third.id).await;
    wait_rows(&app, &t.id, "tasks", &format!("contact_id = {ADA} AND type = 'follow_up' AND status = 'pending'"), 1).await;
}

#[tokio::test]
async fn under_an_opt_out_policy_steps_go_out_unless_consent_is_withdrawn() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let settings = crm_client_tenant::TenantSettings { marketing_consent_policy: crm_client_tenant::MarketingConsentPolicy::OptOut, ..Default::default() };
    app.tenant_service.settings.lock().unwrap().insert(t.id.to_string(), settings);
    let news = template(&app, &t, "News", "Our news").await;
    let later = template(&app, &t, "Later", "Later news").await;
    let r = app
        .post("/api/v1/sequences", &t.admin, json!({"name": "News", "steps": [{"template_id": news, "delay_hours": 0}, {"template_id": later, "delay_hours": 24}]}))
        .await;
    let sequence = r.body["id"].as_i64().unwrap();
    // Consent unknown: sent under opt_out.
    let r = app.post(&format!("/api/v1/sequences/{sequence}/enrollments"), &t.admin, json!({"contact_id": ADA})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let enrollment = r.body["id"].as_i64().unwrap();
    app.smtp.wait_for("ada@example.com", "Our news").await;
    // Withdrawn (contact-service's event): the enrollment stops at once.
    let withdrawn = Envelope::new(
        "contact.consent_changed",
        &t.id,
        None,
        json!({"contact_id": ADA, "status": "withdrawn", "previous": "unknown", "source": "phone call", "at": Utc::now()}),
    )
    .expect("envelope");
    app.publish(&withdrawn, &withdrawn.id).await;
    wait_rows(&app, &t.id, "sequence_enrollments", &format!("id = {enrollment} AND status = 'stopped' AND stop_reason = 'consent_withdrawn'"), 1).await;
    assert_eq!(app.count(&t.id, "enrollment_steps", &format!("enrollment_id = {enrollment} AND position = 2 AND status = 'cancelled'")).await, 1);
    // And the check right before sending holds even without the event.
    app.contacts.contacts.lock().unwrap().get_mut(&ADA).unwrap().marketing_consent = MarketingConsent::Withdrawn;
    let r = app.post(&format!("/api/v1/sequences/{sequence}/enrollments"), &t.admin, json!({"contact_id": ADA})).await;
    let again = r.body["id"].as_i64().unwrap();
    wait_rows(&app, &t.id, "enrollment_steps", &format!("enrollment_id = {again} AND position = 1 AND reason = 'no_consent'"), 1).await;
}

#[tokio::test]
async fn update_field_changes_the_contact_through_its_service_as_the_rules_creator() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let r = app
        .post("/api/v1/automation/rules", &t.admin, json!({"name": "Won -> customer", "trigger": {"event": "deal.closed_won"},
            "actions": [{"type": "update_field", "entity": "contact", "field": "status", "value": "customer"}]}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let bad = app
        .post("/api/v1/automation/rules", &t.admin, json!({"name": "Bad", "trigger": {"event": "deal.closed_won"},
            "actions": [{"type": "update_field", "entity": "contact", "field": "email", "value": "x@example.com"}]}))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    let event = closed_won(&t.id, 701, "Upgrade", Some(REP));
    app.publish(&event, &event.id).await;
    wait_until("the contact became a customer", WAIT, || async {
        let status = app.contacts.contacts.lock().unwrap().get(&ADA).map(|c| serde_json::to_value(c.status).unwrap());
        (status == Some(json!("customer"))).then_some(())
    })
    .await;
    wait_rows(&app, &t.id, "automation_runs", "status = 'succeeded'", 1).await;
    assert_eq!(app.count(&t.id, "automation_lineage", &format!("key = 'contact.updated:{ADA}' AND depth = 1")).await, 1);
}
