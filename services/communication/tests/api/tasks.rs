use chrono::{Duration, SecondsFormat, Utc};
use crm_web::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

fn at(offset: Duration) -> String {
    (Utc::now() + offset).to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn titles(r: &Response) -> Vec<String> {
    r.body["data"].as_array().unwrap_or_else(|| panic!("{}", r.body)).iter().map(|t| t["title"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn create_read_and_defaults() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let r = app.post("/api/v1/tasks", &t.admin, json!({"title": "Send the proposal", "contact_id": ADA, "deal_id": BIG_DEAL})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["type"], "task");
    assert_eq!(r.body["status"], "pending");
    assert_eq!(r.body["priority"], "normal");
    assert_eq!(r.body["assigned_to"], ADMIN);
    assert_eq!(r.body["description"], "");
    assert!(r.body["due_date"].is_null());
    assert_eq!(r.body["is_overdue"], false);
    let got = app.get(&format!("/api/v1/tasks/{}", r.body["id"]), &t.admin).await;
    assert_eq!(got.body, r.body);
}

#[tokio::test]
async fn validation_references_roles_and_tenants() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let r = app
        .post("/api/v1/tasks", &t.admin, json!({"title": " ", "type": "chore", "status": "done", "priority": "asap",
              "due_date": "2030-01-01T00:00:00Z", "reminder_at": "2030-02-01T00:00:00Z", "assigned_to": -3}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    for field in ["title", "type", "status", "priority", "reminder_at", "assigned_to"] {
        field_error(&r, field);
    }
    let r = app.post("/api/v1/tasks", &t.admin, json!({"title": "x", "due_date": "tomorrow"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = app.post("/api/v1/tasks", &t.admin, json!({"title": "x", "assigned_to": 77})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field_error(&r, "assigned_to"), "user 77 does not exist");
    assert_eq!(app.count(&t.id, "tasks", "true").await, 0);

    let viewer = app.token(&t, VIEWER, Role::Viewer);
    assert_eq!(app.post("/api/v1/tasks", &viewer, json!({"title": "x"})).await.status, StatusCode::FORBIDDEN);
    let task = app.post("/api/v1/tasks", &t.admin, json!({"title": "Admin's", "assigned_to": OTHER_REP})).await;
    let path = format!("/api/v1/tasks/{}", task.body["id"]);
    let rep = app.token(&t, REP, Role::SalesRep);
    assert_eq!(app.patch(&path, &rep, json!({"status": "completed"})).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.delete(&path, &rep).await.status, StatusCode::FORBIDDEN);
    let other = app.token(&t, OTHER_REP, Role::SalesRep);
    assert_eq!(app.patch(&path, &other, json!({"status": "in_progress"})).await.status, StatusCode::OK, "the assignee may");

    let b = app.tenant().await;
    for r in [app.get(&path, &b.admin).await, app.patch(&path, &b.admin, json!({"title": "B"})).await, app.delete(&path, &b.admin).await] {
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }
    assert_eq!(app.get(&path, &t.admin).await.body["title"], "Admin's");
}

#[tokio::test]
async fn complete_cancel_reopen_and_delete() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let r = app.post("/api/v1/tasks", &t.admin, json!({"title": "Call back", "due_date": at(Duration::hours(-1))})).await;
    assert_eq!(r.body["is_overdue"], true);
    let path = format!("/api/v1/tasks/{}", r.body["id"]);
    let done = app.patch(&path, &t.admin, json!({"status": "completed"})).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(done.body["status"], "completed");
    assert!(done.body["completed_at"].is_string());
    assert_eq!(done.body["is_overdue"], false);
    let again = app.patch(&path, &t.admin, json!({"priority": "high"})).await;
    assert_eq!(again.body["completed_at"], done.body["completed_at"], "completion time kept");
    let reopened = app.patch(&path, &t.admin, json!({"status": "pending", "due_date": null})).await;
    assert!(reopened.body["completed_at"].is_null());
    assert!(reopened.body["due_date"].is_null());
    let cancelled = app.patch(&path, &t.admin, json!({"status": "cancelled"})).await;
    assert_eq!(cancelled.body["status"], "cancelled");
    let replaced = app.put(&path, &t.admin, json!({"title": "Replaced", "type": "reminder"})).await;
    assert_eq!(replaced.status, StatusCode::OK);
    assert_eq!((replaced.body["title"].as_str(), replaced.body["status"].as_str()), (Some("Replaced"), Some("pending")));
    assert_eq!(app.delete(&path, &t.admin).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&path, &t.admin).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn mine_overdue_due_before_and_reminders() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let rep = app.token(&t, REP, Role::SalesRep);
    let tasks = [
        ("overdue", REP, Some(Duration::hours(-2)), None),
        ("reminder soon", REP, Some(Duration::days(3)), Some(Duration::minutes(5))),
        ("later", REP, Some(Duration::days(10)), Some(Duration::days(9))),
        ("no date", REP, None, None),
        ("someone else's", OTHER_REP, Some(Duration::hours(-1)), None),
    ];
    for (title, who, due, reminder) in tasks {
        let body = json!({"title": title, "assigned_to": who, "due_date": due.map(at), "reminder_at": reminder.map(at)});
        let r = app.post("/api/v1/tasks", &t.admin, body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let done = app.post("/api/v1/tasks", &t.admin, json!({"title": "done", "assigned_to": REP, "status": "completed"})).await;
    assert!(done.body["completed_at"].is_string());

    let mine = app.get("/api/v1/tasks/mine", &rep).await;
    assert_eq!(titles(&mine), ["overdue", "reminder soon", "later", "no date"], "open ones, by due date, undated last");
    let mine_done = app.get("/api/v1/tasks/mine?status=completed", &rep).await;
    assert_eq!(titles(&mine_done), ["done"]);
    let overdue = app.get("/api/v1/tasks?overdue=true", &t.admin).await;
    assert_eq!(titles(&overdue), ["overdue", "someone else's"]);
    let due_before = app.get(&format!("/api/v1/tasks?due_before={}&assigned_to={REP}", at(Duration::days(5)).replace('+', "%2B")), &t.admin).await;
    assert_eq!(titles(&due_before), ["overdue", "reminder soon"]);
    let soon = app.get("/api/v1/tasks/mine?due_soon=true", &rep).await;
    assert_eq!(titles(&soon), ["overdue", "reminder soon"], "reminders due within 15 minutes and overdue tasks");
    let page = app.get("/api/v1/tasks/mine?limit=2&sort=-created_at", &rep).await;
    assert_eq!(titles(&page), ["no date", "later"]);
    let cursor = page.body["pagination"]["next_cursor"].as_str().unwrap().to_owned();
    let next = app.get(&format!("/api/v1/tasks/mine?limit=2&sort=-created_at&cursor={cursor}"), &rep).await;
    assert_eq!(titles(&next), ["reminder soon", "overdue"]);
    for bad in ["overdue=perhaps", "due_before=soon", "status=done", "sort=title", "due_soon_minutes=-1", "limit=1000"] {
        let r = app.get(&format!("/api/v1/tasks?{bad}"), &t.admin).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }
}
