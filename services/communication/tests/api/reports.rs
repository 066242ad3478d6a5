use crm_web::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn timeline_merges_activities_emails_and_tasks_newest_first() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let call = app
        .post("/api/v1/activities", &t.admin, json!({"type": "call", "subject": "Old call", "completed_at": "2026-01-01T09:00:00Z", "contact_id": ADA, "outcome": "ok"}))
        .await;
    assert_eq!(call.status, StatusCode::CREATED);
    app.post("/api/v1/activities", &t.admin, json!({"type": "note", "subject": "Elsewhere", "contact_id": NO_EMAIL})).await;
    let task = app.post("/api/v1/tasks", &t.admin, json!({"title": "Prepare demo", "contact_id": ADA, "due_date": "2026-02-01T09:00:00Z", "assigned_to": REP})).await;
    assert_eq!(task.status, StatusCode::CREATED);
    let email = app.post("/api/v1/emails", &t.admin, json!({"contact_id": ADA, "subject": "Hello", "body_html": "<p>Hi</p>"})).await;
    assert_eq!(email.status, StatusCode::ACCEPTED);

    let r = app.get(&format!("/api/v1/contacts/{ADA}/timeline"), &t.admin).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let items: Vec<(String, String)> = r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["kind"].as_str().unwrap().to_owned(), i["title"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        items,
        [("email".to_owned(), "Hello".to_owned()), ("task".into(), "Prepare demo".into()), ("activity".into(), "Old call".into())],
        "the email's activity shows as the email, newest first"
    );
    assert_eq!(r.body["data"][0]["activity_id"], email.body["activity"]["id"]);
    assert_eq!(r.body["data"][1]["owner_name"], "Sam Rep");

    let calls = app.get(&format!("/api/v1/contacts/{ADA}/timeline?type=call,task"), &t.admin).await;
    assert_eq!(calls.body["data"].as_array().unwrap().len(), 2);
    let page = app.get(&format!("/api/v1/contacts/{ADA}/timeline?limit=1"), &t.admin).await;
    let cursor = page.body["pagination"]["next_cursor"].as_str().unwrap().to_owned();
    let next = app.get(&format!("/api/v1/contacts/{ADA}/timeline?limit=2&cursor={cursor}"), &t.admin).await;
    assert_eq!(next.body["data"][0]["title"], "Prepare demo");
    assert_eq!(next.body["pagination"]["has_next"], false);

    assert_eq!(app.get(&format!("/api/v1/contacts/{ADA}/timeline?type=fax"), &t.admin).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(app.get(&format!("/api/v1/contacts/{ADA}/timeline?cursor=x"), &t.admin).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(app.get("/api/v1/contacts/999/timeline", &t.admin).await.status, StatusCode::NOT_FOUND);
    let b = app.tenant().await;
    let other = app.get(&format!("/api/v1/contacts/{ADA}/timeline"), &b.admin).await;
    assert_eq!(other.body["data"], json!([]), "tenant B sees none of A's history");
    let service = app.token(&t, 0, Role::Service);
    assert_eq!(app.get(&format!("/api/v1/contacts/{ADA}/timeline"), &service).await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn activity_report_counts_by_type_outcome_and_owner() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let rows = [
        ("call", "connected", REP, "2026-03-01T10:00:00Z"),
        ("call", "no_answer", REP, "2026-03-02T10:00:00Z"),
        ("meeting", "connected", OTHER_REP, "2026-03-03T10:00:00Z"),
        ("call", "connected", OTHER_REP, "2026-04-15T10:00:00Z"),
    ];
    for (kind, outcome, owner, at) in rows {
        let r = app
            .post("/api/v1/activities", &t.admin, json!({"type": kind, "subject": "x", "outcome": outcome, "owner_id": owner, "completed_at": at, "contact_id": ADA}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    app.post("/api/v1/tasks", &t.admin, json!({"title": "late", "assigned_to": REP, "due_date": "2020-01-01T00:00:00Z"})).await;

    let r = app.get("/api/v1/reports/activities?from=2026-03-01T00:00:00Z&to=2026-04-01T00:00:00Z", &t.admin).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["total"], 3);
    assert_eq!(r.body["by_type"], json!([{"key": "call", "count": 2}, {"key": "meeting", "count": 1}]));
    assert_eq!(r.body["by_outcome"], json!([{"key": "connected", "count": 2}, {"key": "no_answer", "count": 1}]));
    assert_eq!(r.body["by_owner"][0], json!({"owner_id": REP, "owner_name": "Sam Rep", "count": 2, "completed": 2}));
    assert_eq!(r.body["next_actions"]["overdue_tasks"], 1);

    let rep = app.token(&t, REP, Role::SalesRep);
    let own = app.get("/api/v1/reports/activities?from=2026-01-01T00:00:00Z&to=2026-12-31T00:00:00Z", &rep).await;
    assert_eq!(own.body["owner_id"], REP);
    assert_eq!(own.body["total"], 2);
    assert_eq!(app.get(&format!("/api/v1/reports/activities?owner_id={OTHER_REP}"), &rep).await.status, StatusCode::FORBIDDEN);
    for bad in ["from=yesterday", "from=2026-05-01T00:00:00Z&to=2026-04-01T00:00:00Z", "owner_id=-1"] {
        assert_eq!(app.get(&format!("/api/v1/reports/activities?{bad}"), &t.admin).await.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let b = app.tenant().await;
    assert_eq!(app.get("/api/v1/reports/activities?from=2026-01-01T00:00:00Z", &b.admin).await.body["total"], 0);
}
