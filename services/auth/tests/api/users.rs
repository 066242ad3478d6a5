//! /users: list, detail, basic lookups, PATCH rules, audit trail.

use crm_client_auth::subjects;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn admins_and_managers_list_users_with_filters_and_pages() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    let manager = app.user(&tenant, "manager").await;
    let rep = app.user(&tenant, "sales_rep").await;
    let viewer = app.user(&tenant, "viewer").await;

    let (status, page) = app.get("/api/v1/users", tenant.admin.access()).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["pagination"]["total_count"], 4);
    assert_eq!(page["data"].as_array().unwrap().len(), 4);
    assert!(page["data"][0].get("password_hash").is_none());
    assert_eq!(app.get("/api/v1/users", manager.access()).await.0, StatusCode::OK);
    for forbidden in [&rep, &viewer] {
        let (status, body) = app.get("/api/v1/users", forbidden.access()).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(body["code"], "FORBIDDEN");
    }

    let (_, reps) = app.get("/api/v1/users?role=sales_rep", tenant.admin.access()).await;
    assert_eq!(reps["data"].as_array().unwrap().len(), 1);
    assert_eq!(reps["data"][0]["id"], rep.id());
    let local = rep.email.split('@').next().unwrap().to_uppercase();
    let (_, found) = app.get(&format!("/api/v1/users?search={local}"), tenant.admin.access()).await;
    assert_eq!(found["data"][0]["id"], rep.id(), "{found}");
    let (_, none) = app.get("/api/v1/users?search=%25%27%20OR%201=1--", tenant.admin.access()).await;
    assert_eq!(none["data"].as_array().unwrap().len(), 0);

    // Keyset pages in every sort, each user exactly once.
    for sort in ["id", "-id", "email", "-email", "last_name", "-created_at"] {
        let mut seen = Vec::new();
        let mut cursor = String::new();
        loop {
            let (status, page) = app.get(&format!("/api/v1/users?limit=1&sort={sort}&cursor={cursor}"), tenant.admin.access()).await;
            assert_eq!(status, StatusCode::OK, "{sort}: {page}");
            seen.extend(page["data"].as_array().unwrap().iter().map(|u| u["id"].as_i64().unwrap()));
            match page["pagination"]["next_cursor"].as_str() {
                Some(next) => cursor = next.to_owned(),
                None => break,
            }
        }
        let mut unique = seen.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!((seen.len(), unique.len()), (4, 4), "{sort}: {seen:?}");
    }

    for bad in ["?limit=0", "?limit=abc", "?sort=password_hash", "?role=root", "?status=gone", "?cursor=forged"] {
        let (status, body) = app.get(&format!("/api/v1/users{bad}"), tenant.admin.access()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    // A cursor of one sort is not accepted for another.
    let (_, page) = app.get("/api/v1/users?limit=1&sort=email", tenant.admin.access()).await;
    let cursor = page["pagination"]["next_cursor"].as_str().unwrap();
    let (status, _) = app.get(&format!("/api/v1/users?limit=1&sort=id&cursor={cursor}"), tenant.admin.access()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn detail_and_basic_lookups_stay_in_the_tenant() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    let rep = app.user(&tenant, "sales_rep").await;
    let other = app.tenant().await;
    let extra = app.user(&other, "viewer").await; // id 2 in the other tenant

    let (status, user) = app.get(&format!("/api/v1/users/{}", rep.id()), tenant.admin.access()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(user["email"], rep.email);
    assert_eq!(user["status"], "active");
    let (status, basic) = app.get(&format!("/api/v1/users/{}/basic", rep.id()), rep.access()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(basic, json!({"id": rep.id(), "email": rep.email, "first_name": "Ann", "last_name": "Lee", "role": "sales_rep"}));

    // A service token of the tenant reads the lookups too.
    let service = app.platform.token(&tenant.id, 0, crm_web::Role::Service);
    let (status, batch) = app.get(&format!("/api/v1/users/basic?ids={},{},999", rep.id(), tenant.admin.id()), &service).await;
    assert_eq!(status, StatusCode::OK, "{batch}");
    assert_eq!(batch["data"].as_array().unwrap().len(), 2);

    for (path, expected) in [
        ("/api/v1/users/999", StatusCode::NOT_FOUND),
        ("/api/v1/users/abc", StatusCode::NOT_FOUND),
        ("/api/v1/users/-1/basic", StatusCode::NOT_FOUND),
        ("/api/v1/users/basic", StatusCode::BAD_REQUEST),
        ("/api/v1/users/basic?ids=1,x", StatusCode::BAD_REQUEST),
    ] {
        assert_eq!(app.get(path, tenant.admin.access()).await.0, expected, "{path}");
    }
    let too_many = (1..=501).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
    assert_eq!(app.get(&format!("/api/v1/users/basic?ids={too_many}"), tenant.admin.access()).await.0, StatusCode::BAD_REQUEST);

    // The other tenant's user 2 is not visible from here: this tenant's user 2 is rep.
    assert_eq!(rep.id(), extra.id());
    let (_, seen) = app.get(&format!("/api/v1/users/{}", extra.id()), tenant.admin.access()).await;
    assert_eq!(seen["email"], rep.email);
    let (_, batch) = app.get(&format!("/api/v1/users/basic?ids={}", extra.id()), &app.platform.token(&other.id, 0, crm_web::Role::Service)).await;
    assert_eq!(batch["data"][0]["email"], extra.email);
    assert_eq!(app.get("/api/v1/users/3", other.admin.access()).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn patch_rules_and_audit_trail() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    let rep = app.user(&tenant, "sales_rep").await;
    let manager = app.user(&tenant, "manager").await;
    let path = format!("/api/v1/users/{}", rep.id());

    // Self: names.
    let (status, user) = app.patch(&path, rep.access(), json!({"first_name": " Bea ", "last_name": "Kay"})).await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!((user["first_name"].as_str(), user["last_name"].as_str()), (Some("Bea"), Some("Kay")));
    // Not someone else's names, not one's own role.
    assert_eq!(app.patch(&path, manager.access(), json!({"first_name": "X"})).await.0, StatusCode::FORBIDDEN);
    assert_eq!(app.patch(&path, rep.access(), json!({"role": "admin"})).await.0, StatusCode::FORBIDDEN);
    assert_eq!(app.patch(&path, manager.access(), json!({"status": "inactive"})).await.0, StatusCode::FORBIDDEN);
    // Validation.
    let (status, body) = app.patch(&path, tenant.admin.access(), json!({"role": "root", "status": "deleted", "first_name": ""})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let fields = &body["details"]["fields"];
    assert!(fields["role"].is_string() && fields["status"].is_string() && fields["first_name"].is_string(), "{body}");
    assert_eq!(app.patch(&path, tenant.admin.access(), json!({})).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(app.patch(&path, tenant.admin.access(), json!({"password_hash": "x"})).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(app.patch(&path, tenant.admin.access(), json!({"role": "service"})).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(app.patch("/api/v1/users/999", tenant.admin.access(), json!({"role": "viewer"})).await.0, StatusCode::NOT_FOUND);

    // Admin: role.
    let mut updated = app.platform.events(subjects::USER_UPDATED).await;
    let (status, user) = app.patch(&path, tenant.admin.access(), json!({"role": "manager"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(user["role"], "manager");
    // Same value again: nothing to record.
    assert_eq!(app.patch(&path, tenant.admin.access(), json!({"role": "manager"})).await.0, StatusCode::OK);
    let event = updated.wait_for(&tenant.id, subjects::USER_UPDATED, std::time::Duration::from_secs(10)).await;
    assert_eq!(event.data["id"], rep.id());
    // One event for the names, one for the role, none for the no-op.
    assert_eq!(updated.count_within(&tenant.id, subjects::USER_UPDATED, std::time::Duration::from_secs(2)).await, 2);

    let (status, audit) = app.get(&format!("{path}/audit"), tenant.admin.access()).await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    let entries: Vec<(String, String, String, i64)> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["field"] != "user")
        .map(|e| {
            (e["field"].as_str().unwrap().into(), e["old_value"].as_str().unwrap().into(), e["new_value"].as_str().unwrap().into(), e["actor_id"].as_i64().unwrap())
        })
        .collect();
    let admin = i64::from(tenant.admin.id());
    let me = i64::from(rep.id());
    assert_eq!(
        entries,
        vec![
            ("role".into(), "sales_rep".into(), "manager".into(), admin),
            ("last_name".into(), "Lee".into(), "Kay".into(), me),
            ("first_name".into(), "Ann".into(), "Bea".into(), me),
        ]
    );
    assert!(audit["data"][0]["changed_at"].is_string());
    assert_eq!(app.get(&format!("{path}/audit"), manager.access()).await.0, StatusCode::FORBIDDEN);
    assert_eq!(app.get("/api/v1/users/999/audit", tenant.admin.access()).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_last_active_admin_stays() {
    let app = spawn_app().await;
    let tenant = app.tenant().await;
    let path = format!("/api/v1/users/{}", tenant.admin.id());
    for change in [json!({"role": "manager"}), json!({"status": "inactive"})] {
        let (status, body) = app.patch(&path, tenant.admin.access(), change).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["code"], "LAST_ADMIN");
    }
    // With a second admin, either may step down, but not both.
    let second = app.user(&tenant, "admin").await;
    let (status, _) = app.patch(&path, tenant.admin.access(), json!({"role": "viewer"})).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app.patch(&format!("/api/v1/users/{}", second.id()), second.access(), json!({"status": "inactive"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}
