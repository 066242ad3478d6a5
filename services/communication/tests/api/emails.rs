use crm_client_communication::subjects::{EMAIL_OPENED, EMAIL_SENT};
use crm_client_core::ClientError;
use crm_testing::wait_until;
use crm_web::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::templates::proposal;

/// The first `href="..."` of the HTML part pointing at the click endpoint, unescaped.
fn click_link(mail: &str) -> String {
    let start = mail.find("href=\"https://crm.test/api/v1/t/c/").expect("a tracked link") + 6;
    let end = start + mail[start..].find('"').expect("closing quote");
    mail[start..end].replace("&amp;", "&")
}

fn pixel_path(mail: &str) -> String {
    let start = mail.find("https://crm.test/api/v1/t/o/").expect("an open pixel");
    let end = start + mail[start..].find('"').expect("closing quote");
    mail[start..end].replace(PUBLIC_URL, "")
}

async fn sent_status(app: &TestApp, token: &str, id: &Value) -> Value {
    wait_until("the email to be sent", WAIT, || async {
        let r = app.get(&format!("/api/v1/emails/{id}"), token).await;
        (r.body["status"] != "queued").then_some(r.body)
    })
    .await
}

#[tokio::test]
async fn send_a_template_track_opens_and_clicks() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let template = app.post("/api/v1/email-templates", &t.admin, proposal()).await;
    let rep = app.token(&t, REP, Role::SalesRep);
    let mut sent_events = app.platform.events(EMAIL_SENT).await;
    let r = app.post("/api/v1/emails", &rep, json!({"contact_id": ADA, "template_id": template.body["id"], "deal_id": BIG_DEAL})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let (email, activity) = (&r.body["email"], &r.body["activity"]);
    assert_eq!(email["status"], "queued");
    assert_eq!(email["email_address"], "ada@example.com");
    assert_eq!(email["subject"], "Proposal for Acme & Sons");
    assert_eq!(email["sender_id"], REP);
    assert_eq!(email["template_id"], template.body["id"]);
    assert_eq!(activity["type"], "email");
    assert_eq!(activity["direction"], "outbound");
    assert_eq!(activity["owner_id"], REP);
    assert_eq!(activity["company_id"], ACME);
    assert_eq!(activity["deal_title"], "Big deal");
    assert_eq!(email["activity_id"], activity["id"]);

    let mail = app.smtp.wait_for("ada@example.com", "Proposal for Acme & Sons").await;
    let decoded = mail.decoded();
    assert_eq!(mail.from, "no-reply@crm.localhost");
    assert!(decoded.contains("Hi Ada &lt;b&gt;,"), "values are escaped in HTML: {decoded}");
    assert!(decoded.contains("Sam Rep"), "sender variables: {decoded}");
    let status = sent_status(&app, &t.admin, &email["id"]).await;
    assert_eq!(status["status"], "sent");
    assert!(status["sent_at"].is_string() && status["delivered_at"].is_string());
    let event = sent_events.wait_for(&t.id, EMAIL_SENT, WAIT).await;
    assert_eq!(event.data, json!({"email_id": email["id"], "activity_id": activity["id"], "contact_id": ADA,
        "email_address": "ada@example.com", "template_id": template.body["id"]}));

    // Opens: every one counted, the first one recorded and announced once.
    let mut opened_events = app.platform.events(EMAIL_OPENED).await;
    let pixel = pixel_path(&decoded);
    let first = app.request(reqwest::Method::GET, &pixel, None, None).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.headers["content-type"], "image/gif");
    assert_eq!(app.request(reqwest::Method::GET, &pixel, None, None).await.status, StatusCode::OK);
    let after = app.get(&format!("/api/v1/emails/{}", email["id"]), &t.admin).await.body;
    assert_eq!(after["open_count"], 2);
    assert_eq!(after["status"], "opened");
    assert!(after["opened_at"].is_string());
    opened_events.wait_for(&t.id, EMAIL_OPENED, WAIT).await;
    assert_eq!(app.count(&t.id, "outbox", "subject = 'email.opened'").await, 1);

    // Clicks redirect to the signed URL only.
    let link = click_link(&decoded).replace(PUBLIC_URL, "");
    let click = app.request(reqwest::Method::GET, &link, None, None).await;
    assert_eq!(click.status, StatusCode::FOUND, "{}", click.body);
    assert_eq!(click.headers["location"], "https://example.com/offer?a=1&b=2");
    let tampered = link.replace("u=https%3A%2F%2Fexample.com", "u=https%3A%2F%2Fevil.example");
    assert_ne!(tampered, link);
    let refused = app.request(reqwest::Method::GET, &tampered, None, None).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&refused), "INVALID_TRACKING_LINK");
    assert!(refused.headers.get("location").is_none());
    let unsigned = link.split("&s=").next().unwrap().to_owned();
    assert_eq!(app.request(reqwest::Method::GET, &unsigned, None, None).await.status, StatusCode::BAD_REQUEST);
    let forged_sig = format!("{unsigned}&s=AAAAAAAAAAAAAAAAAAAAAA");
    assert_eq!(app.request(reqwest::Method::GET, &forged_sig, None, None).await.status, StatusCode::BAD_REQUEST);
    let other_token = app.tracker.token(&t.id, email["id"].as_i64().unwrap() as i32 + 1);
    let query = link.split('?').nth(1).unwrap();
    let moved = app.request(reqwest::Method::GET, &format!("/api/v1/t/c/{other_token}?{query}"), None, None).await;
    assert_eq!(moved.status, StatusCode::BAD_REQUEST, "a signature is bound to its email");
    let forged = app.request(reqwest::Method::GET, &format!("/api/v1/t/c/forged?{query}"), None, None).await;
    assert_eq!(forged.status, StatusCode::NOT_FOUND);
    assert_eq!(app.request(reqwest::Method::GET, "/api/v1/t/o/forged.gif", None, None).await.status, StatusCode::NOT_FOUND);
    let clicked = app.get(&format!("/api/v1/emails/{}", email["id"]), &t.admin).await.body;
    assert_eq!(clicked["click_count"], 1);
    assert_eq!(clicked["status"], "clicked");

    // Who sees the email.
    let other = app.token(&t, OTHER_REP, Role::SalesRep);
    assert_eq!(app.get(&format!("/api/v1/emails/{}", email["id"]), &other).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/api/v1/emails/{}", email["id"]), &rep).await.status, StatusCode::OK);
    let b = app.tenant().await;
    assert_eq!(app.get(&format!("/api/v1/emails/{}", email["id"]), &b.admin).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/api/v1/emails/abc", &t.admin).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn send_raw_content_and_failures() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let r = app
        .post("/api/v1/emails", &t.admin, json!({"contact_id": ADA, "subject": "Hello {{contact.first_name}}", "body_html": "<p>Plain</p>", "body_text": "Plain text"}))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let mail = app.smtp.wait_for("ada@example.com", "Plain text").await;
    assert!(mail.decoded().contains("Subject: Hello Ada <b>"), "{}", mail.data);

    let cases = [
        (json!({"contact_id": ADA, "subject": "x"}), StatusCode::BAD_REQUEST, "VALIDATION_FAILED"),
        (json!({"contact_id": ADA}), StatusCode::BAD_REQUEST, "VALIDATION_FAILED"),
        (json!({"contact_id": ADA, "template_id": 1, "subject": "x", "body_html": "y"}), StatusCode::BAD_REQUEST, "VALIDATION_FAILED"),
        // A type error in the body names the field (crm-web extractors, eee342a).
        (json!({"contact_id": "ten"}), StatusCode::BAD_REQUEST, "VALIDATION_FAILED"),
        (json!({"contact_id": ADA, "subject": "{{contact.secret}}", "body_html": "y"}), StatusCode::UNPROCESSABLE_ENTITY, "UNKNOWN_TEMPLATE_VARIABLE"),
        (json!({"contact_id": ADA, "template_id": 9999}), StatusCode::UNPROCESSABLE_ENTITY, "REFERENCE_NOT_FOUND"),
        (json!({"contact_id": 999, "subject": "x", "body_html": "y"}), StatusCode::UNPROCESSABLE_ENTITY, "REFERENCE_NOT_FOUND"),
        (json!({"contact_id": NO_EMAIL, "subject": "x", "body_html": "y"}), StatusCode::UNPROCESSABLE_ENTITY, "CONTACT_HAS_NO_EMAIL"),
        (json!({"contact_id": ADA, "deal_id": 999, "subject": "x", "body_html": "y"}), StatusCode::UNPROCESSABLE_ENTITY, "REFERENCE_NOT_FOUND"),
    ];
    for (body, status, code) in cases {
        let r = app.post("/api/v1/emails", &t.admin, body.clone()).await;
        assert_eq!(r.status, status, "{body}: {}", r.body);
        assert_eq!(error_code(&r), code, "{body}");
    }
    let inactive = app.post("/api/v1/email-templates", &t.admin, json!({"name": "Old", "subject": "s", "body_html": "b", "is_active": false})).await;
    let r = app.post("/api/v1/emails", &t.admin, json!({"contact_id": ADA, "template_id": inactive.body["id"]})).await;
    assert_eq!(error_code(&r), "TEMPLATE_INACTIVE");
    let viewer = app.token(&t, VIEWER, Role::Viewer);
    assert_eq!(app.post("/api/v1/emails", &viewer, json!({"contact_id": ADA, "subject": "x", "body_html": "y"})).await.status, StatusCode::FORBIDDEN);
    app.fail_all(ClientError::Unavailable("down".into()));
    let r = app.post("/api/v1/emails", &t.admin, json!({"contact_id": ADA, "subject": "x", "body_html": "y"})).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    // Only the first send wrote anything.
    assert_eq!(app.count(&t.id, "email_tracking", "true").await, 1);
    assert_eq!(app.count(&t.id, "activities", "type = 'email'").await, 1);
}

#[tokio::test]
async fn without_smtp_emails_land_in_the_sink_folder() {
    let dir = std::env::temp_dir().join(format!("crm-comm-sink-{}", ulid::Ulid::generate()));
    let app = spawn_app_with(Options { sink_dir: Some(dir.clone()), ..Options::default() }).await;
    let t = app.tenant().await;
    let r = app.post("/api/v1/emails", &t.admin, json!({"contact_id": ADA, "subject": "To the sink", "body_html": "<p>Hello</p>"})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let eml = wait_until("an .eml file in the sink", WAIT, || async {
        let entries = std::fs::read_dir(&dir).ok()?;
        entries
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
            .find_map(|e| std::fs::read_to_string(e.path()).ok())
    })
    .await;
    assert!(eml.contains("Subject: To the sink"), "{eml}");
    assert!(eml.contains("To: ada@example.com") || eml.contains("To: <ada@example.com>"), "{eml}");
    let status = sent_status(&app, &t.admin, &r.body["email"]["id"]).await;
    assert_eq!(status["status"], "sent");
    assert_eq!(app.smtp.count_to("ada@example.com"), 0);
    let _ = std::fs::remove_dir_all(dir);
}
