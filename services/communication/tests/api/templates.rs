use crm_client_core::ClientError;
use crm_web::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

pub fn proposal() -> serde_json::Value {
    json!({
        "name": "Proposal",
        "subject": "Proposal for {{company.name}}",
        "body_html": "<p>Hi {{ contact.first_name }},</p><p>{{deal.title}}: {{deal.value}} {{deal.currency}}. <a href=\"https://example.com/offer?a=1&amp;b=2\">Offer</a></p><p>{{user.full_name}}</p>",
        "category": "Proposal"
    })
}

#[tokio::test]
async fn crud_with_variables() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let r = app.post("/api/v1/email-templates", &t.admin, proposal()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["category"], "proposal");
    assert_eq!(r.body["is_active"], true);
    assert_eq!(r.body["body_text"], "");
    assert_eq!(
        r.body["variables"],
        json!(["company.name", "contact.first_name", "deal.currency", "deal.title", "deal.value", "user.full_name"])
    );
    let path = format!("/api/v1/email-templates/{}", r.body["id"]);
    assert_eq!(app.get(&path, &t.admin).await.body, r.body);

    let dup = app.post("/api/v1/email-templates", &t.admin, json!({"name": "PROPOSAL", "subject": "s", "body_html": "b"})).await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert_eq!(error_code(&dup), "TEMPLATE_NAME_TAKEN");

    app.post("/api/v1/email-templates", &t.admin, json!({"name": "Welcome", "subject": "Hi", "body_html": "<p>Hi</p>", "category": "welcome", "is_active": false})).await;
    let list = app.get("/api/v1/email-templates", &t.admin).await;
    assert_eq!(list.body["pagination"]["total_count"], 2);
    assert_eq!(list.body["data"][0], json!({"id": r.body["id"], "name": "Proposal", "subject": "Proposal for {{company.name}}", "category": "proposal", "is_active": true}));
    assert_eq!(app.get("/api/v1/email-templates?is_active=false", &t.admin).await.body["data"][0]["name"], "Welcome");
    assert_eq!(app.get("/api/v1/email-templates?search=PROP", &t.admin).await.body["pagination"]["total_count"], 1);
    assert_eq!(app.get("/api/v1/email-templates?category=welcome", &t.admin).await.body["pagination"]["total_count"], 1);
    let page = app.get("/api/v1/email-templates?limit=1", &t.admin).await;
    let cursor = page.body["pagination"]["next_cursor"].as_str().unwrap().to_owned();
    assert_eq!(app.get(&format!("/api/v1/email-templates?limit=1&cursor={cursor}"), &t.admin).await.body["data"][0]["name"], "Welcome");

    let mut changed = proposal();
    changed["subject"] = json!("Updated {{deal.stage}}");
    let put = app.put(&path, &t.admin, changed).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    assert!(put.body["variables"].as_array().unwrap().contains(&json!("deal.stage")));
    assert_eq!(app.delete(&path, &t.admin).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&path, &t.admin).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.put(&path, &t.admin, proposal()).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn unknown_variables_are_refused_at_save_time() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let r = app
        .post("/api/v1/email-templates", &t.admin, json!({"name": "Bad", "subject": "Hi {{contact.password_hash}}", "body_html": "{{ user.ssn }} {{contact.first_name}}"}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(error_code(&r), "UNKNOWN_TEMPLATE_VARIABLE");
    assert_eq!(field_error(&r, "subject"), "unknown variables: contact.password_hash");
    assert_eq!(field_error(&r, "body_html"), "unknown variables: user.ssn");
    assert!(r.body["details"]["allowed"].as_array().unwrap().contains(&json!("contact.first_name")));
    let r = app.post("/api/v1/email-templates", &t.admin, json!({"name": "Bad", "subject": "Hi {{contact.first_name", "body_html": "x"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(&r), "TEMPLATE_SYNTAX_ERROR");
    let r = app.post("/api/v1/email-templates", &t.admin, json!({"name": "", "subject": "", "body_html": ""})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    for f in ["name", "subject", "body_html"] {
        field_error(&r, f);
    }
    assert_eq!(app.count(&t.id, "email_templates", "true").await, 0);
}

#[tokio::test]
async fn preview_renders_with_escaped_values() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let created = app.post("/api/v1/email-templates", &t.admin, proposal()).await;
    let path = format!("/api/v1/email-templates/{}/preview", created.body["id"]);
    let r = app.post(&path, &t.admin, json!({"contact_id": ADA, "deal_id": BIG_DEAL})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["subject"], "Proposal for Acme & Sons");
    let html = r.body["body_html"].as_str().unwrap();
    assert!(html.starts_with("<p>Hi Ada &lt;b&gt;,</p><p>Big deal: 5000.00 EUR."), "{html}");
    assert!(html.contains("<p>Ann Admin</p>"), "{html}");
    assert!(r.body["body_text"].as_str().unwrap().starts_with("Hi Ada <b>, Big deal: 5000.00 EUR. Offer"), "{}", r.body);
    assert_eq!(r.body["missing_variables"], json!([]));

    let no_deal = app.post(&path, &t.admin, json!({"contact_id": ADA})).await;
    assert_eq!(no_deal.body["missing_variables"], json!(["deal.currency", "deal.title", "deal.value"]));
    let unknown = app.post(&path, &t.admin, json!({"contact_id": 999})).await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field_error(&unknown, "contact_id"), "contact 999 does not exist");
    assert_eq!(app.post("/api/v1/email-templates/9999/preview", &t.admin, json!({})).await.status, StatusCode::NOT_FOUND);
    app.fail_all(ClientError::Unavailable("down".into()));
    assert_eq!(app.post(&path, &t.admin, json!({"contact_id": ADA})).await.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn roles_and_tenants() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let rep = app.token(&t, REP, Role::SalesRep);
    assert_eq!(app.post("/api/v1/email-templates", &rep, proposal()).await.status, StatusCode::FORBIDDEN);
    let created = app.post("/api/v1/email-templates", &t.admin, proposal()).await;
    let path = format!("/api/v1/email-templates/{}", created.body["id"]);
    assert_eq!(app.get(&path, &rep).await.status, StatusCode::OK);
    assert_eq!(app.delete(&path, &rep).await.status, StatusCode::FORBIDDEN);
    let manager = app.token(&t, 5, Role::Manager);
    assert_eq!(app.put(&path, &manager, proposal()).await.status, StatusCode::OK);

    let b = app.tenant().await;
    for r in [app.get(&path, &b.admin).await, app.put(&path, &b.admin, proposal()).await, app.delete(&path, &b.admin).await,
        app.post(&format!("{path}/preview"), &b.admin, json!({})).await] {
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    }
    assert_eq!(app.get(&path, &t.admin).await.status, StatusCode::OK);
}
