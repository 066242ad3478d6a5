
use chrono::{NaiveDate, Utc};
use crm_client_auth::subjects::USER_PASSWORD_RESET_REQUESTED;
use crm_client_communication::subjects::ACTIVITY_LOGGED;
use crm_client_deal::subjects::DEAL_CLOSED_WON;
use crm_client_deal::{DealBasicInfo, DealClosedEvent};
use crm_events::Envelope;
use crm_testing::wait_until;
use crm_web::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

pub fn closed_won(tenant: &crm_tenant::TenantId, deal_id: i32, title: &str, owner: Option<i32>) -> Envelope {
    let data = DealClosedEvent {
        deal: DealBasicInfo { id: deal_id, title: title.into(), stage: "closed_won".into(), value: 12500.0 },
        owner_id: owner,
        company_id: Some(ACME),
        primary_contact_id: Some(ADA),
        actual_close_date: NaiveDate::from_ymd_opt(2026, 3, 14).unwrap_or_default(),
        close_reason: None,
    };
    Envelope::new(DEAL_CLOSED_WON, tenant, Some(ADMIN.to_string()), data).expect("envelope")
}

async fn wait_for_rows(app: &TestApp, tenant: &crm_tenant::TenantId, table: &str, condition: &str, n: i64) {
    wait_until(&format!("{n} rows in {table} where {condition}"), WAIT, || async {
        (app.count(tenant, table, condition).await >= n).then_some(())
    })
    .await;
}

#[tokio::test]
async fn deal_closed_won_logs_an_activity_and_a_follow_up_task_once() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let mut logged = app.platform.events(ACTIVITY_LOGGED).await;
    let event = closed_won(&t.id, 501, "Renewal 2026", Some(REP));
    assert!(!app.publish(&event, &event.id).await);
    wait_for_rows(&app, &t.id, "tasks", "deal_id = 501", 1).await;

    let activities = app.get("/api/v1/activities?deal_id=501", &t.admin).await;
    assert_eq!(activities.body["pagination"]["total_count"], 1, "{}", activities.body);
    let a = &activities.body["data"][0];
    assert_eq!(a["subject"], "Deal closed won: Renewal 2026");
    assert_eq!(a["type"], "note");
    assert_eq!(a["status"], "completed");
    assert_eq!(a["outcome"], "won");
    assert_eq!((a["contact_id"].as_i64(), a["company_id"].as_i64(), a["owner_id"].as_i64()), (Some(ADA as i64), Some(ACME as i64), Some(REP as i64)));
    assert_eq!(a["contact_name"], "Ada <b> Lovelace");
    assert_eq!(a["custom_fields"]["event"], DEAL_CLOSED_WON);
    let published = logged.wait_for(&t.id, ACTIVITY_LOGGED, WAIT).await;
    assert_eq!(published.data["id"], a["id"]);

    let rep = app.token(&t, REP, Role::SalesRep);
    let mine = app.get("/api/v1/tasks/mine", &rep).await;
    assert_eq!(mine.body["pagination"]["total_count"], 1);
    let task = &mine.body["data"][0];
    assert_eq!(task["title"], "Follow up on won deal: Renewal 2026");
    assert_eq!(task["type"], "follow_up");
    assert_eq!(task["deal_id"], 501);
    assert_eq!(task["contact_id"], ADA);
    assert!(task["due_date"].is_string() && task["reminder_at"].is_string());

    // The same message id again: JetStream drops it. The same event under another message
    // id (a redelivery after the duplicate window): the consumer skips it.
    assert!(app.publish(&event, &event.id).await, "JetStream de-duplicates by Nats-Msg-Id");
    assert!(!app.publish(&event, &format!("{}-redelivered", event.id)).await);
    // Events of one subject are applied in order: once a later one is visible, the
    // redelivery was handled.
    let later = closed_won(&t.id, 502, "Later deal", Some(REP));
    app.publish(&later, &later.id).await;
    wait_for_rows(&app, &t.id, "tasks", "deal_id = 502", 1).await;
    assert_eq!(app.count(&t.id, "activities", "deal_id = 501").await, 1);
    assert_eq!(app.count(&t.id, "tasks", "deal_id = 501").await, 1);
    let consumer = app.durables.iter().find(|d| d.ends_with("deal-closed-won")).expect("consumer");
    assert_eq!(app.count(&t.id, "processed_events", &format!("consumer = '{consumer}' AND event_id = '{}'", event.id)).await, 1);
}

#[tokio::test]
async fn a_won_deal_without_owner_falls_back_to_the_actor() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let event = closed_won(&t.id, 503, "Ownerless", None);
    app.publish(&event, &event.id).await;
    wait_for_rows(&app, &t.id, "tasks", &format!("deal_id = 503 AND assigned_to = {ADMIN}"), 1).await;
}

#[tokio::test]
async fn a_poison_message_is_retried_then_parked_and_does_not_block() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let poison = Envelope::new(DEAL_CLOSED_WON, &t.id, None, json!({"not": "a deal"})).expect("envelope");
    app.publish(&poison, &poison.id).await;
    let after = closed_won(&t.id, 504, "After the poison", Some(REP));
    app.publish(&after, &after.id).await;
    wait_for_rows(&app, &t.id, "activities", "deal_id = 504", 1).await;
    let consumer = app.durables.iter().find(|d| d.ends_with("deal-closed-won")).expect("consumer");
    wait_for_rows(&app, &t.id, "dead_letters", &format!("consumer = '{consumer}' AND event_id = '{}'", poison.id), 1).await;
    assert_eq!(app.count(&t.id, "processed_events", &format!("consumer = '{consumer}' AND event_id = '{}'", poison.id)).await, 0);
}

#[tokio::test]
async fn an_invitation_sends_an_email_with_a_working_token() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let tenant_state = tenant_service::AppState::new(app.platform.db.clone(), app.platform.auth.clone(), app.platform.registry.clone(), app.platform.cursors.clone(), tenant_service::Settings::default())
        .with_users(std::sync::Arc::new(crm_client_auth::MockAuthClient::default()));
    let tenant_service = TestClient::new(app.platform.serve(tenant_service::SERVICE, tenant_service::router(tenant_state)).await);
    let invited = format!("new.{}@example.com", ulid::Ulid::generate().to_string().to_ascii_lowercase());
    let r = tenant_service.post(&format!("/api/v1/tenants/{}/invitations", t.id), &t.admin, json!({"email": invited, "role": "sales_rep"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    let mail = app.smtp.wait_for(&invited, "register?invitation=").await;
    let text = mail.decoded();
    assert!(text.contains("Ann Admin invited you"), "inviter looked up with a service token: {text}");
    assert!(text.contains("as sales_rep"), "{text}");
    let start = text.find("register?invitation=").expect("link") + "register?invitation=".len();
    let token: String = text[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || "-_.~".contains(*c)).collect();
    assert_eq!(token, r.body["token"].as_str().expect("token"), "the emailed token is the invitation's");
    let lookup = tenant_service.request(reqwest::Method::GET, &format!("/api/v1/invitations/{token}"), None, None).await;
    assert_eq!(lookup.status, StatusCode::OK, "{}", lookup.body);
    assert_eq!(lookup.body["email"], invited.as_str());
    assert_eq!(lookup.body["status"], "pending");
    let row = app.count(&t.id, "email_tracking", &format!("kind = 'invitation' AND email_address = '{invited}' AND body_html IS NULL")).await;
    assert_eq!(row, 1, "recorded without the secret body");
}

#[tokio::test]
async fn a_password_reset_request_sends_one_reset_email() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let reset = |email: &str| {
        let data = json!({"id": 9, "email": email, "first_name": "Rita", "last_name": "Reset", "role": "viewer",
            "reset_token": format!("rst_{}", ulid::Ulid::generate()), "expires_at": Utc::now() + chrono::Duration::hours(1)});
        Envelope::new(USER_PASSWORD_RESET_REQUESTED, &t.id, None, data).expect("envelope")
    };
    let event = reset("rita@example.com");
    app.publish(&event, &event.id).await;
    let token = event.data["reset_token"].as_str().unwrap().to_owned();
    let mail = app.smtp.wait_for("rita@example.com", &format!("reset-password?token={token}")).await;
    assert!(mail.decoded().contains("Hello Rita"));
    assert!(mail.decoded().contains("Subject: Reset your password"));

    app.publish(&event, &format!("{}-again", event.id)).await;
    let sentinel = reset("sentinel@example.com");
    app.publish(&sentinel, &sentinel.id).await;
    app.smtp.wait_for("sentinel@example.com", "reset-password?token=").await;
    assert_eq!(app.smtp.count_to("rita@example.com"), 1, "a redelivered event sends nothing");
}
