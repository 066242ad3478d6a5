//! Issue 12 item 14: ONE rule for email visibility on every path that shows an email's
//! content or address. A sales rep sees the emails it sent or whose activity it owns;
//! system emails (invitations, password resets) are for admins only.

use chrono::Utc;
use crm_client_auth::subjects::USER_PASSWORD_RESET_REQUESTED;
use crm_events::Envelope;
use crm_web::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

/// Everything the caller can see of emails, as one string (bodies, subjects, addresses).
async fn everything_seen(app: &TestApp, token: &str) -> String {
    let mut seen = String::new();
    for path in [
        "/api/v1/activities?type=email&count=true".to_owned(),
        "/api/v1/activities?count=true".to_owned(),
        format!("/api/v1/activities?contact_id={ADA}&count=true"),
        format!("/api/v1/contacts/{ADA}/timeline"),
        format!("/api/v1/contacts/{ADA}/timeline?type=email"),
        "/api/v1/reports/activities".to_owned(),
    ] {
        let r = app.get(&path, token).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
        seen.push_str(&r.body.to_string());
    }
    seen
}

#[tokio::test]
async fn a_sales_rep_sees_no_other_users_email_on_any_path() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let rep = app.token(&t, REP, Role::SalesRep);
    let other = app.token(&t, OTHER_REP, Role::SalesRep);
    let manager = app.token(&t, 5, Role::Manager);
    let viewer = app.token(&t, VIEWER, Role::Viewer);
    let sent = app
        .post("/api/v1/emails", &t.admin, json!({"contact_id": ADA, "subject": "Board salaries", "body_html": "<p>Confidential: Гехаймнис 机密</p>", "body_text": "Confidential: Гехаймнис 机密"}))
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.body);
    let (email, activity) = (sent.body["email"]["id"].clone(), sent.body["activity"]["id"].clone());

    // The rep: not found on every single path, absent from every list and count.
    assert_eq!(app.get(&format!("/api/v1/emails/{email}"), &rep).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/api/v1/activities/{activity}"), &rep).await.status, StatusCode::NOT_FOUND);
    let seen = everything_seen(&app, &rep).await;
    for secret in ["Board salaries", "Confidential", "机密", "ada@example.com"] {
        assert!(!seen.contains(secret), "{secret} leaked to a rep: {seen}");
    }
    let list = app.get("/api/v1/activities?type=email&count=true", &rep).await;
    assert_eq!(list.body["pagination"]["total_count"], 0, "{}", list.body);
    // Nor can it change or delete what it cannot see (404, not 403: no hint it exists).
    let patch = app.patch(&format!("/api/v1/activities/{activity}"), &rep, json!({"subject": "mine now"})).await;
    assert_eq!(patch.status, StatusCode::NOT_FOUND, "{}", patch.body);
    assert_eq!(app.delete(&format!("/api/v1/activities/{activity}"), &rep).await.status, StatusCode::NOT_FOUND);

    // Roles that read every email (emails: read all) see it on every path.
    for token in [&t.admin, &manager, &viewer] {
        assert_eq!(app.get(&format!("/api/v1/emails/{email}"), token).await.status, StatusCode::OK);
        assert_eq!(app.get(&format!("/api/v1/activities/{activity}"), token).await.status, StatusCode::OK);
        let seen = everything_seen(&app, token).await;
        assert!(seen.contains("Board salaries") && seen.contains("Confidential: Гехаймнис 机密"), "{seen}");
    }

    // The rep's own email: visible to it on every path, hidden from the other rep.
    let own = app.post("/api/v1/emails", &rep, json!({"contact_id": ADA, "subject": "Angebot für Sie", "body_html": "<p>Rep offer</p>"})).await;
    assert_eq!(own.status, StatusCode::ACCEPTED, "{}", own.body);
    let (own_email, own_activity) = (own.body["email"]["id"].clone(), own.body["activity"]["id"].clone());
    assert_eq!(app.get(&format!("/api/v1/emails/{own_email}"), &rep).await.status, StatusCode::OK);
    assert_eq!(app.get(&format!("/api/v1/activities/{own_activity}"), &rep).await.status, StatusCode::OK);
    let seen = everything_seen(&app, &rep).await;
    assert!(seen.contains("Angebot für Sie") && !seen.contains("Board salaries"), "{seen}");
    let timeline = app.get(&format!("/api/v1/contacts/{ADA}/timeline"), &rep).await;
    let kinds: Vec<(Value, Value)> = timeline.body["data"].as_array().unwrap().iter().map(|i| (i["kind"].clone(), i["id"].clone())).collect();
    assert_eq!(kinds, vec![(json!("email"), own_email.clone())], "{}", timeline.body);
    assert_eq!(app.get(&format!("/api/v1/emails/{own_email}"), &other).await.status, StatusCode::NOT_FOUND);
    assert!(!everything_seen(&app, &other).await.contains("Angebot"));

    // An email logged by hand as an activity follows the same rule.
    let logged =
        app.post("/api/v1/activities", &other, json!({"type": "email", "subject": "Handwritten mail", "description": "Other's body", "contact_id": ADA})).await;
    assert_eq!(logged.status, StatusCode::CREATED, "{}", logged.body);
    assert_eq!(app.get(&format!("/api/v1/activities/{}", logged.body["id"]), &rep).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/api/v1/activities/{}", logged.body["id"]), &other).await.status, StatusCode::OK);
    assert!(!everything_seen(&app, &rep).await.contains("Handwritten"));
    // Other activity types stay visible to every reader (activities: read all).
    let note = app.post("/api/v1/activities", &other, json!({"type": "note", "subject": "Shared note", "contact_id": ADA})).await;
    assert_eq!(app.get(&format!("/api/v1/activities/{}", note.body["id"]), &rep).await.status, StatusCode::OK);

    // An email whose activity an admin hands to the rep belongs to the rep's records now.
    let handed = app.with_headers(Method::PATCH, &format!("/api/v1/activities/{activity}"), &t.admin, &[], Some(json!({"owner_id": REP}))).await;
    assert_eq!(handed.status, StatusCode::OK, "{}", handed.body);
    assert_eq!(app.get(&format!("/api/v1/emails/{email}"), &rep).await.status, StatusCode::OK);
    assert_eq!(app.get(&format!("/api/v1/activities/{activity}"), &rep).await.status, StatusCode::OK);
    assert!(everything_seen(&app, &rep).await.contains("Board salaries"));
}

#[tokio::test]
async fn system_emails_are_visible_to_admins_only() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let data = json!({"id": 9, "email": "rita@example.com", "first_name": "Rita", "last_name": "Reset", "role": "viewer",
        "reset_token": format!("rst_{}", ulid::Ulid::generate()), "expires_at": Utc::now() + chrono::Duration::hours(1)});
    let event = Envelope::new(USER_PASSWORD_RESET_REQUESTED, &t.id, None, data).expect("envelope");
    app.publish(&event, &event.id).await;
    app.smtp.wait_for("rita@example.com", "reset-password?token=").await;
    crm_testing::wait_until("the reset email's row", WAIT, || async {
        (app.count(&t.id, "email_tracking", "kind = 'password_reset'").await == 1).then_some(())
    })
    .await;
    let id = app.first_id(&t.id, "email_tracking", "kind = 'password_reset'").await;

    let admin = app.get(&format!("/api/v1/emails/{id}"), &t.admin).await;
    assert_eq!(admin.status, StatusCode::OK, "{}", admin.body);
    assert_eq!(admin.body["email_address"], "rita@example.com");
    for (user, role) in [(5, Role::Manager), (VIEWER, Role::Viewer), (REP, Role::SalesRep)] {
        let r = app.get(&format!("/api/v1/emails/{id}"), &app.token(&t, user, role)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{role:?}: {}", r.body);
        assert!(!r.body.to_string().contains("rita@"), "{}", r.body);
    }
}
