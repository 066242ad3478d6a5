//! Issue 12, bad input on communication-service's endpoints: NUL characters (item 12),
//! control characters in single-line fields (13), unknown sorts (15), a token on another
//! tenant's address (16) and type errors (18). Each: 400 naming the field, nothing written.

use crm_testing::bad_fields;
use crm_web::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

/// Asserts a 400 `VALIDATION_FAILED` naming `field` (exactly, or as the prefix of a nested
/// path like `custom_fields.size`).
#[track_caller]
fn refused(r: &Response, field: &str, what: &str) {
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {}", r.body);
    assert_eq!(error_code(r), "VALIDATION_FAILED", "{what}: {}", r.body);
    let fields = bad_fields(r);
    assert!(fields.iter().any(|f| f == field || f.starts_with(&format!("{field}."))), "{what}: {field} not in {fields:?}");
    assert!(!r.body.to_string().contains('\u{0}'), "the value is not quoted back");
}

/// Every byte but ASCII letters and digits percent-encoded.
fn percent(raw: &str) -> String {
    raw.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

async fn totals(app: &TestApp, t: &Tenant) -> (i64, i64, i64) {
    (app.count(&t.id, "activities", "true").await, app.count(&t.id, "tasks", "true").await, app.count(&t.id, "email_templates", "true").await)
}

#[tokio::test]
async fn nul_characters_in_fields_and_parameters_are_400_naming_them() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let activity = app.post("/api/v1/activities", &t.admin, json!({"type": "note", "subject": "ok", "contact_id": ADA})).await;
    let task = app.post("/api/v1/tasks", &t.admin, json!({"title": "ok"})).await;
    let template = app.post("/api/v1/email-templates", &t.admin, json!({"name": "T", "subject": "S", "body_html": "<p>B</p>"})).await;
    let before = totals(&app, &t).await;
    let cases: Vec<(Method, String, Value, &str)> = vec![
        (Method::POST, "/api/v1/activities".into(), json!({"type": "note", "subject": "a\u{0}b"}), "subject"),
        (Method::POST, "/api/v1/activities".into(), json!({"type": "note", "subject": "x", "description": "Заметка\u{0}"}), "description"),
        (Method::POST, "/api/v1/activities".into(), json!({"type": "call", "subject": "x", "outcome": "\u{0}"}), "outcome"),
        (Method::POST, "/api/v1/activities".into(), json!({"type": "note\u{0}", "subject": "x"}), "type"),
        (Method::POST, "/api/v1/activities".into(), json!({"type": "note", "subject": "x", "custom_fields": {"size": "big\u{0}"}}), "custom_fields"),
        (Method::PATCH, format!("/api/v1/activities/{}", activity.body["id"]), json!({"subject": "\u{0}"}), "subject"),
        (Method::PUT, format!("/api/v1/activities/{}", activity.body["id"]), json!({"type": "note", "subject": "x", "direction": "in\u{0}"}), "direction"),
        (Method::POST, "/api/v1/tasks".into(), json!({"title": "任务\u{0}"}), "title"),
        (Method::POST, "/api/v1/tasks".into(), json!({"title": "x", "priority": "high\u{0}"}), "priority"),
        (Method::PATCH, format!("/api/v1/tasks/{}", task.body["id"]), json!({"description": "a\u{0}"}), "description"),
        (Method::POST, "/api/v1/email-templates".into(), json!({"name": "N\u{0}", "subject": "S", "body_html": "<p>B</p>"}), "name"),
        (Method::POST, "/api/v1/email-templates".into(), json!({"name": "N2", "subject": "S", "body_html": "<p>\u{0}</p>"}), "body_html"),
        (
            Method::PUT,
            format!("/api/v1/email-templates/{}", template.body["id"]),
            json!({"name": "N", "subject": "S", "body_html": "<p>B</p>", "category": "\u{0}"}),
            "category",
        ),
        (Method::POST, format!("/api/v1/email-templates/{}/preview", template.body["id"]), json!({"contact_id": ADA, "deal_id": null, "x\u{0}": 1}), "x%00"),
        (Method::POST, "/api/v1/emails".into(), json!({"contact_id": ADA, "subject": "Hi\u{0}", "body_html": "<p>x</p>"}), "subject"),
        (Method::POST, "/api/v1/emails".into(), json!({"contact_id": ADA, "subject": "Hi", "body_html": "<p>x</p>", "body_text": "\u{0}"}), "body_text"),
    ];
    for (method, path, body, field) in cases {
        let r = app.with_headers(method.clone(), &path, &t.admin, &[], Some(body.clone())).await;
        if field == "x%00" {
            // An unknown key holding a NUL: refused (400) whatever it is named.
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{method} {path} {body}: {}", r.body);
            continue;
        }
        refused(&r, field, &format!("{method} {path} {body}"));
    }
    for (path, field) in [
        ("/api/v1/email-templates?search=ab%00".to_owned(), "search"),
        ("/api/v1/email-templates?category=%00".to_owned(), "category"),
        ("/api/v1/activities?type=%00".to_owned(), "type"),
        ("/api/v1/activities?from=2026-01-01%00".to_owned(), "from"),
        ("/api/v1/tasks?status=open%00".to_owned(), "status"),
        ("/api/v1/tasks/mine?due_before=%00".to_owned(), "due_before"),
        (format!("/api/v1/contacts/{ADA}/timeline?type=call%00"), "type"),
        ("/api/v1/reports/activities?owner_id=1%00".to_owned(), "owner_id"),
        ("/api/v1/activities?cursor=%00".to_owned(), "cursor"),
        ("/api/v1/email-templates?sort=name%00".to_owned(), "sort"),
    ] {
        refused(&app.get(&path, &t.admin).await, field, &path);
    }
    for path in ["/api/v1/activities/1%00", "/api/v1/tasks/%00", "/api/v1/email-templates/%001", "/api/v1/emails/1%00"] {
        let r = app.get(path, &t.admin).await;
        assert!(r.status == StatusCode::BAD_REQUEST || r.status == StatusCode::NOT_FOUND, "{path}: {}", r.body);
    }
    assert_eq!(totals(&app, &t).await, before, "nothing written");
}

#[tokio::test]
async fn single_line_fields_refuse_line_breaks_and_bodies_keep_them() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let before = totals(&app, &t).await;
    let injected = ["Call\r\nBcc: x@y.example", "Звонок\nBcc: x@y.example", "电话\r备注", "tab\there", "esc\u{1b}[31m", "bell\u{7}"];
    for bad in injected {
        refused(&app.post("/api/v1/activities", &t.admin, json!({"type": "call", "subject": bad})).await, "subject", bad);
        refused(&app.post("/api/v1/activities", &t.admin, json!({"type": "call", "subject": "ok", "outcome": bad})).await, "outcome", bad);
        refused(&app.post("/api/v1/activities", &t.admin, json!({"type": "note", "subject": "ok", "custom_fields": {bad: 1}})).await, "custom_fields", bad);
        refused(&app.post("/api/v1/tasks", &t.admin, json!({"title": bad})).await, "title", bad);
        let template = app.post("/api/v1/email-templates", &t.admin, json!({"name": bad, "subject": bad, "body_html": "<p>x</p>", "category": bad})).await;
        for field in ["name", "subject", "category"] {
            refused(&template, field, bad);
        }
        refused(&app.post("/api/v1/emails", &t.admin, json!({"contact_id": ADA, "subject": bad, "body_html": "<p>x</p>"})).await, "subject", bad);
        refused(&app.get(&format!("/api/v1/email-templates?search={}", percent(bad)), &t.admin).await, "search", bad);
    }
    assert_eq!(totals(&app, &t).await, before, "nothing written");
    assert_eq!(app.smtp.count_to("ada@example.com"), 0);

    // The same edit through PATCH and PUT.
    let a = app.post("/api/v1/activities", &t.admin, json!({"type": "note", "subject": "Íñigo Núñez 王小明", "contact_id": ADA})).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    assert_eq!(a.body["subject"], "Íñigo Núñez 王小明");
    refused(&app.patch(&format!("/api/v1/activities/{}", a.body["id"]), &t.admin, json!({"subject": "x\ny"})).await, "subject", "patch");
    refused(&app.put(&format!("/api/v1/activities/{}", a.body["id"]), &t.admin, json!({"type": "note", "subject": "x\ny"})).await, "subject", "put");
    let task = app.post("/api/v1/tasks", &t.admin, json!({"title": "ok"})).await;
    refused(&app.patch(&format!("/api/v1/tasks/{}", task.body["id"]), &t.admin, json!({"title": "x\r\ny"})).await, "title", "patch");

    // Bodies and descriptions are multi-line.
    let multi = "Line 1\r\nLine 2\n\tindented";
    let a = app.post("/api/v1/activities", &t.admin, json!({"type": "note", "subject": "Notes", "description": multi, "contact_id": ADA})).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    assert_eq!(a.body["description"], multi);
    let task = app.post("/api/v1/tasks", &t.admin, json!({"title": "Agenda", "description": multi})).await;
    assert_eq!(task.status, StatusCode::CREATED, "{}", task.body);
    let template =
        app.post("/api/v1/email-templates", &t.admin, json!({"name": "Multi", "subject": "Hi", "body_html": "<p>a</p>\n<p>b</p>", "body_text": multi})).await;
    assert_eq!(template.status, StatusCode::CREATED, "{}", template.body);
    // Other control characters are refused in bodies too.
    refused(&app.post("/api/v1/tasks", &t.admin, json!({"title": "x", "description": "bell\u{7}"})).await, "description", "bell");
}

#[tokio::test]
async fn every_list_refuses_a_sort_it_does_not_support() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let refused_sorts = [
        "/api/v1/email-templates?sort=password_hash".to_owned(),
        "/api/v1/email-templates?sort=-name".to_owned(),
        "/api/v1/email-templates?sort=name;DROP%20TABLE%20email_templates".to_owned(),
        "/api/v1/activities?sort=password_hash".to_owned(),
        "/api/v1/activities?sort=subject".to_owned(),
        "/api/v1/tasks?sort=assigned_to".to_owned(),
        "/api/v1/tasks/mine?sort=--due_date".to_owned(),
        format!("/api/v1/contacts/{ADA}/timeline?sort=password_hash"),
        format!("/api/v1/contacts/{ADA}/timeline?sort=occurred_at"),
        format!("/api/v1/contacts/{ADA}/timeline?sort=%E5%90%8D%E5%89%8D"),
    ];
    for path in refused_sorts {
        let r = app.get(&path, &t.admin).await;
        refused(&r, "sort", &path);
    }
    for path in [
        "/api/v1/email-templates?sort=name".to_owned(),
        "/api/v1/email-templates".to_owned(),
        "/api/v1/activities?sort=-created_at".to_owned(),
        "/api/v1/activities?sort=occurred_at".to_owned(),
        "/api/v1/tasks?sort=-due_date".to_owned(),
        "/api/v1/tasks/mine?sort=created_at".to_owned(),
        format!("/api/v1/contacts/{ADA}/timeline?sort=-occurred_at"),
    ] {
        assert_eq!(app.get(&path, &t.admin).await.status, StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn a_token_of_another_tenant_is_refused_on_this_tenants_address() {
    let app = spawn_app().await;
    let a = app.tenant().await;
    let b = app.tenant().await;
    let on = |t: &Tenant| format!("t-{}.{}", t.id.to_string().to_ascii_lowercase(), crm_testing::TEST_BASE_DOMAIN);
    let a_host = on(&a);
    let rep_b = app.token(&b, REP, Role::SalesRep);
    for (method, path, body) in [
        (Method::GET, "/api/v1/activities", None),
        (Method::GET, "/api/v1/email-templates", None),
        (Method::GET, "/api/v1/tasks/mine", None),
        (Method::POST, "/api/v1/tasks", Some(json!({"title": "sneaky"}))),
        (Method::GET, "/api/v1/reports/activities", None),
    ] {
        for token in [&b.admin, &rep_b] {
            let r = app.with_headers(method.clone(), path, token, &[("Host", &a_host)], body.clone()).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} {path}: {}", r.body);
            assert_eq!(error_code(&r), "TENANT_MISMATCH");
        }
    }
    assert_eq!(app.count(&a.id, "tasks", "true").await + app.count(&b.id, "tasks", "true").await, 0);
    // Each token on its own address is fine.
    let own = app.with_headers(Method::GET, "/api/v1/activities", &b.admin, &[("Host", &on(&b))], None).await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.body);
    let own = app.with_headers(Method::GET, "/api/v1/activities", &a.admin, &[("Host", &a_host)], None).await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.body);
}

#[tokio::test]
async fn type_errors_are_validation_failures_naming_each_field() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let task = app.post("/api/v1/tasks", &t.admin, json!({"title": "ok"})).await;
    let activity = app.post("/api/v1/activities", &t.admin, json!({"type": "note", "subject": "ok", "contact_id": ADA})).await;
    let before = totals(&app, &t).await;
    let cases: Vec<(Method, String, Value, &str)> = vec![
        (Method::POST, "/api/v1/tasks".into(), json!({"title": "Call back", "due_date": "2026-11-30"}), "due_date"),
        (Method::POST, "/api/v1/tasks".into(), json!({"title": "Call back", "reminder_at": "30.11.2026 10:00"}), "reminder_at"),
        (Method::POST, "/api/v1/tasks".into(), json!({"title": "Call back", "assigned_to": "2"}), "assigned_to"),
        (Method::POST, "/api/v1/tasks".into(), json!({"title": 12}), "title"),
        (Method::PATCH, format!("/api/v1/tasks/{}", task.body["id"]), json!({"due_date": "2026-11-30"}), "due_date"),
        (Method::PUT, format!("/api/v1/tasks/{}", task.body["id"]), json!({"title": "x", "due_date": 20261130}), "due_date"),
        (Method::POST, "/api/v1/activities".into(), json!({"type": "call", "subject": "x", "scheduled_at": "tomorrow"}), "scheduled_at"),
        (Method::POST, "/api/v1/activities".into(), json!({"type": "call", "subject": "x", "duration_minutes": "25"}), "duration_minutes"),
        (Method::POST, "/api/v1/activities".into(), json!({"type": "call", "subject": "x", "duration_minutes": 12.30}), "duration_minutes"),
        (Method::POST, "/api/v1/activities".into(), json!({"type": "call", "subject": "x", "contact_id": "zehn"}), "contact_id"),
        (Method::POST, "/api/v1/activities".into(), json!({"type": "call", "subject": "x", "custom_fields": ["a"]}), "custom_fields"),
        (Method::PATCH, format!("/api/v1/activities/{}", activity.body["id"]), json!({"completed_at": "2026-11-30"}), "completed_at"),
        (Method::POST, "/api/v1/email-templates".into(), json!({"name": "N", "subject": "S", "body_html": "B", "is_active": "yes"}), "is_active"),
        (Method::POST, "/api/v1/emails".into(), json!({"contact_id": "10", "subject": "S", "body_html": "B"}), "contact_id"),
        (Method::POST, "/api/v1/emails".into(), json!({"contact_id": ADA, "deal_id": [1], "subject": "S", "body_html": "B"}), "deal_id"),
    ];
    for (method, path, body, field) in cases {
        let r = app.with_headers(method.clone(), &path, &t.admin, &[], Some(body.clone())).await;
        refused(&r, field, &format!("{method} {path} {body}"));
        assert!(!r.body["details"].is_null());
    }
    for (path, field) in [
        ("/api/v1/tasks?due_before=2026-11-30", "due_before"),
        ("/api/v1/tasks?overdue=maybe", "overdue"),
        ("/api/v1/activities?limit=abc", "limit"),
        ("/api/v1/activities?contact_id=ten", "contact_id"),
        ("/api/v1/email-templates?is_active=yes", "is_active"),
        ("/api/v1/reports/activities?from=yesterday", "from"),
    ] {
        refused(&app.get(path, &t.admin).await, field, path);
    }
    assert_eq!(totals(&app, &t).await, before, "nothing written");
    // The right value is accepted.
    let ok = app.post("/api/v1/tasks", &t.admin, json!({"title": "Call back", "due_date": "2026-11-30T09:00:00Z"})).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
}
