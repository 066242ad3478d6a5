//! Two tenants work at the same time; afterwards every attempt of tenant B on tenant A's
//! data is refused (404 for A's ids, 403 for A's `X-Tenant-ID`, 401 for B's credentials on
//! A's login) and nothing of A changed.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tenants_concurrently_and_every_cross_tenant_attempt_is_refused() {
    let (crm, _db, _nats) = Crm::start().await;
    let api = crm.api();

    let run = |name: &'static str, subdomain: &'static str, label: &'static str| {
        let api = api.clone();
        async move {
            let admin = signup_admin(&api, name, subdomain).await;
            let p = close_a_deal(&api, &admin, label).await;
            (admin, p)
        }
    };
    let ((a, pa), (b, pb)) = tokio::join!(run("Acme Inc", "acme", "Alpha"), run("Globex", "globex", "Beta"));
    assert_ne!(a.tenant_id, b.tenant_id);

    // Each sees only its own data.
    for (s, p, other) in [(&a, &pa, &pb), (&b, &pb, &pa)] {
        let contacts = all_pages(&api, "/api/v1/contacts?limit=100", &s.token).await;
        assert_eq!(contacts.len(), 1, "{contacts:?}");
        assert_eq!(contacts[0]["email"], p.contact["email"]);
        let deals = all_pages(&api, "/api/v1/deals?limit=100", &s.token).await;
        assert_eq!(deals.len(), 1);
        assert_eq!(deals[0]["title"], p.deal["title"]);
        assert_ne!(deals[0]["title"], other.deal["title"]);
        let activities = all_pages(&api, "/api/v1/activities?limit=100", &s.token).await;
        assert!(activities.iter().all(|x| x["subject"] == p.activity["subject"]), "{activities:?}");
    }

    let before = snapshot(&api, &a, &pa).await;

    // B's token on A's ids: not found (never "forbidden": that would reveal they exist).
    // Ids are numbered per tenant schema, so the walkthrough's ids exist in B too (as B's own
    // rows): these are ids that exist in A only.
    let only_in_a = [
        ("companies", api.create("/api/v1/companies", &a.token, json!({"name": "A only"})).await["id"].clone()),
        ("contacts", api.create("/api/v1/contacts", &a.token, json!({"first_name": "Only", "last_name": "A"})).await["id"].clone()),
    ];
    let a_user = invite_user(&api, &a, "sam@acme.example", "sales_rep").await;
    for (resource, id) in &only_in_a {
        let path = format!("/api/v1/{resource}/{id}");
        for method in [Method::GET, Method::PATCH, Method::PUT, Method::DELETE] {
            let hijack = match *resource {
                "companies" => json!({"name": "Hijacked"}),
                _ => json!({"first_name": "Hijacked", "last_name": "X"}),
            };
            let body = (method != Method::GET && method != Method::DELETE).then_some(hijack);
            let r = api.call(method.clone(), &path, Some(&b.token), body).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "B: {method} {path}: {}", r.body);
        }
    }
    // A's deal, activity and task ids that B does not have: create more in A.
    let a_deal = api.create("/api/v1/deals", &a.token, json!({"title": "A only deal", "value": 10})).await;
    let a_activity = api.create("/api/v1/activities", &a.token, json!({"type": "note", "subject": "A only note"})).await;
    let a_task = api.create("/api/v1/tasks", &a.token, json!({"title": "A only task"})).await;
    for (resource, id, hijack) in [
        ("deals", &a_deal["id"], json!({"title": "Hijacked"})),
        ("deals", &a_deal["id"], json!({"stage": "closed_lost"})),
        ("activities", &a_activity["id"], json!({"subject": "Hijacked"})),
        ("tasks", &a_task["id"], json!({"title": "Hijacked"})),
    ] {
        let path = format!("/api/v1/{resource}/{id}");
        for method in [Method::GET, Method::PATCH, Method::DELETE] {
            let body = (method == Method::PATCH).then(|| hijack.clone());
            let r = api.call(method.clone(), &path, Some(&b.token), body).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "B: {method} {path}: {}", r.body);
        }
    }
    let r = api.get(&format!("/api/v1/deals/basic?ids={}", a_deal["id"]), &b.token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["data"], json!([]), "batch lookups only see the caller's tenant");
    let r = api.get(&format!("/api/v1/contacts/{}/timeline", only_in_a[1].1), &b.token).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    // A's tenant record: B's admin token is not a member of A.
    let r = api.get(&format!("/api/v1/tenants/{}", a.tenant_id), &b.token).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = api.patch(&format!("/api/v1/tenants/{}", a.tenant_id), &b.token, json!({"name": "Hijacked"})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = api
        .post(&format!("/api/v1/tenants/{}/invitations", a.tenant_id), Some(&b.token), json!({"email": "spy@globex.example", "role": "admin"}))
        .await;
    assert!(matches!(r.status, StatusCode::NOT_FOUND | StatusCode::FORBIDDEN), "{} {}", r.status, r.body);
    let user_path = format!("/api/v1/users/{}", a_user.user_id);
    assert_eq!(api.get(&user_path, &b.token).await.status, StatusCode::NOT_FOUND);
    let r = api.patch(&user_path, &b.token, json!({"role": "admin"})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);

    // B's token with A's X-Tenant-ID: 403 on every port, whatever the endpoint.
    for (service, port, path) in crm.every_port() {
        let path = path.replace("{tenant}", &a.tenant_id);
        let r = crm.api_at(port).try_call(Method::GET, &path, Some(&b.token), &[("X-Tenant-ID", &a.tenant_id)], None).await.unwrap();
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{service}: B's token with A's X-Tenant-ID on {path}: {}", r.body);
        assert_eq!(r.code(), "TENANT_MISMATCH", "{service}: {}", r.body);
    }
    let r = api
        .try_call(Method::POST, "/api/v1/contacts", Some(&b.token), &[("X-Tenant-ID", &a.tenant_id)], Some(json!({"first_name": "Spy", "last_name": "B"})))
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);

    // B's credentials on A's login (subdomain, X-Tenant-ID): unknown there.
    let r = login(&api, &a.subdomain, &b.email, PASSWORD).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    let r = api
        .try_call(Method::POST, "/api/v1/auth/login", None, &[("X-Tenant-ID", &a.tenant_id)], Some(json!({"email": b.email, "password": PASSWORD})))
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    // ... and A's admin email with B's password on A's subdomain.
    assert_eq!(login(&api, &a.subdomain, &a.email, "not the password").await.status, StatusCode::UNAUTHORIZED);

    // Nothing of A changed.
    let after = snapshot(&api, &a, &pa).await;
    assert_eq!(after.items, before.items, "A's records are unchanged");
    for (resource, id) in &only_in_a {
        let r = api.get(&format!("/api/v1/{resource}/{id}"), &a.token).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_ne!(r.body["name"], "Hijacked");
        assert_ne!(r.body["first_name"], "Hijacked");
    }
    for (resource, id, field) in [("deals", &a_deal["id"], "title"), ("activities", &a_activity["id"], "subject"), ("tasks", &a_task["id"], "title")] {
        let r = api.get(&format!("/api/v1/{resource}/{id}"), &a.token).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_ne!(r.body[field], "Hijacked");
    }
    assert_ne!(api.get(&format!("/api/v1/deals/{}", a_deal["id"]), &a.token).await.body["stage"], "closed_lost");
    let contacts = all_pages(&api, "/api/v1/contacts?limit=100", &a.token).await;
    assert_eq!(contacts.len(), 2, "B created nothing in A: {contacts:?}");
    let tenant = api.get(&format!("/api/v1/tenants/{}", a.tenant_id), &a.token).await;
    assert_eq!(tenant.body["name"], "Acme Inc");
    let user = api.get(&user_path, &a.token).await;
    assert_eq!(user.body["role"], "sales_rep", "{}", user.body);
}

struct Snapshot {
    items: Vec<Value>,
}

/// A's walkthrough records as A reads them.
async fn snapshot(api: &Api, a: &Session, p: &Pipeline) -> Snapshot {
    let mut items = Vec::new();
    for (resource, id) in [
        ("companies", &p.company["id"]),
        ("contacts", &p.contact["id"]),
        ("deals", &p.deal["id"]),
        ("activities", &p.activity["id"]),
        ("tasks", &p.task["id"]),
    ] {
        let r = api.get(&format!("/api/v1/{resource}/{id}"), &a.token).await;
        assert_eq!(r.status, StatusCode::OK, "A reads its {resource}/{id}: {}", r.body);
        items.push(r.body);
    }
    Snapshot { items }
}
