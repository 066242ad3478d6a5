//! Issue 12 item 11: lost updates. Activities, tasks and email templates answer with an
//! `ETag`; `PUT`/`PATCH`/`DELETE` with a stale `If-Match` get 412 and change nothing; writes
//! without `If-Match` keep working.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

struct Resource {
    path: &'static str,
    create: Value,
    /// A PATCH (or, for templates, a full PUT) body changing one field to `changed`.
    change: fn(&str) -> Value,
    method: Method,
    field: &'static str,
}

fn resources() -> Vec<Resource> {
    vec![
        Resource {
            path: "/api/v1/activities",
            create: json!({"type": "note", "subject": "Erste Notiz", "contact_id": ADA}),
            change: |v| json!({"subject": v}),
            method: Method::PATCH,
            field: "subject",
        },
        Resource {
            path: "/api/v1/tasks",
            create: json!({"title": "Prepare 見積書", "contact_id": ADA}),
            change: |v| json!({"title": v}),
            method: Method::PATCH,
            field: "title",
        },
        Resource {
            path: "/api/v1/email-templates",
            create: json!({"name": "Welcome", "subject": "Hi {{contact.first_name}}", "body_html": "<p>Hello</p>"}),
            change: |v| json!({"name": v, "subject": "Hi {{contact.first_name}}", "body_html": "<p>Hello</p>"}),
            method: Method::PUT,
            field: "name",
        },
    ]
}

#[tokio::test]
async fn a_stale_if_match_is_refused_with_412_on_every_resource() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    for r in resources() {
        let created = app.post(r.path, &t.admin, r.create.clone()).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}: {}", r.path, created.body);
        let tag = created.header("etag").unwrap_or_else(|| panic!("{}: no ETag on 201", r.path)).to_owned();
        let item = format!("{}/{}", r.path, created.body["id"]);
        let got = app.get(&item, &t.admin).await;
        assert_eq!(got.header("etag"), Some(tag.as_str()), "{item}: GET answers the same tag");

        // Alice saves with the tag she read: OK, a new tag.
        let alice = app.with_headers(r.method.clone(), &item, &t.admin, &[("If-Match", &tag)], Some((r.change)("Alice's version"))).await;
        assert_eq!(alice.status, StatusCode::OK, "{item}: {}", alice.body);
        let new_tag = alice.header("etag").expect("ETag on the write").to_owned();
        assert_ne!(new_tag, tag);
        // Bob saves with the tag he read before Alice's save: 412, nothing changed.
        let bob = app.with_headers(r.method.clone(), &item, &t.admin, &[("If-Match", &tag)], Some((r.change)("Bob's version"))).await;
        assert_eq!(bob.status, StatusCode::PRECONDITION_FAILED, "{item}: {}", bob.body);
        assert_eq!(error_code(&bob), "PRECONDITION_FAILED");
        assert_eq!(bob.body["details"]["etag"], new_tag.as_str());
        let now = app.get(&item, &t.admin).await;
        assert_eq!(now.body[r.field], "Alice's version", "{item}");
        // A weak tag or another record's tag never matches; `*` and a list with the current
        // tag do; a malformed header is a 400.
        for stale in [format!("W/{new_tag}"), "\"1\"".to_owned()] {
            let r2 = app.with_headers(r.method.clone(), &item, &t.admin, &[("If-Match", &stale)], Some((r.change)("Mallory"))).await;
            assert_eq!(r2.status, StatusCode::PRECONDITION_FAILED, "{item} {stale}");
        }
        let bad = app.with_headers(r.method.clone(), &item, &t.admin, &[("If-Match", "not-a-tag")], Some((r.change)("Mallory"))).await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{item}: {}", bad.body);
        let list = format!("\"1\", {new_tag}");
        let ok = app.with_headers(r.method.clone(), &item, &t.admin, &[("If-Match", &list)], Some((r.change)("Listed"))).await;
        assert_eq!(ok.status, StatusCode::OK, "{item}: {}", ok.body);
        let star = app.with_headers(r.method.clone(), &item, &t.admin, &[("If-Match", "*")], Some((r.change)("Star"))).await;
        assert_eq!(star.status, StatusCode::OK, "{item}: {}", star.body);
        // Without If-Match: last write wins, as before.
        let plain = app.with_headers(r.method.clone(), &item, &t.admin, &[], Some((r.change)("Plain"))).await;
        assert_eq!(plain.status, StatusCode::OK, "{item}: {}", plain.body);
        let current = plain.header("etag").expect("ETag").to_owned();

        // DELETE: a stale tag keeps the record, the current one deletes it.
        let stale_delete = app.with_headers(Method::DELETE, &item, &t.admin, &[("If-Match", &tag)], None).await;
        assert_eq!(stale_delete.status, StatusCode::PRECONDITION_FAILED, "{item}");
        assert_eq!(app.get(&item, &t.admin).await.status, StatusCode::OK);
        let delete = app.with_headers(Method::DELETE, &item, &t.admin, &[("If-Match", &current)], None).await;
        assert_eq!(delete.status, StatusCode::NO_CONTENT, "{item}: {}", delete.body);
        assert_eq!(app.get(&item, &t.admin).await.status, StatusCode::NOT_FOUND);
        // A write to a record that is gone is 404 whatever the tag.
        let gone = app.with_headers(r.method.clone(), &item, &t.admin, &[("If-Match", &current)], Some((r.change)("Ghost"))).await;
        assert_eq!(gone.status, StatusCode::NOT_FOUND, "{item}");
    }
}

#[tokio::test]
async fn a_put_of_an_activity_with_if_match_and_the_tag_of_another_tenant() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let a = app.post("/api/v1/activities", &t.admin, json!({"type": "call", "subject": "Call", "contact_id": ADA, "outcome": "ok"})).await;
    let tag = a.header("etag").unwrap().to_owned();
    let item = format!("/api/v1/activities/{}", a.body["id"]);
    let body = json!({"type": "call", "subject": "Call (edited)", "contact_id": ADA, "outcome": "ok"});
    let put = app.with_headers(Method::PUT, &item, &t.admin, &[("If-Match", &tag)], Some(body.clone())).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    let again = app.with_headers(Method::PUT, &item, &t.admin, &[("If-Match", &tag)], Some(body.clone())).await;
    assert_eq!(again.status, StatusCode::PRECONDITION_FAILED);
    // Tenant B with A's id and A's current tag: not found, nothing changed.
    let b = app.tenant().await;
    let current = put.header("etag").unwrap().to_owned();
    let cross = app.with_headers(Method::PUT, &item, &b.admin, &[("If-Match", &current)], Some(body)).await;
    assert_eq!(cross.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&item, &t.admin).await.header("etag"), Some(current.as_str()));
}

/// Issue 12 item 9: a record PUT back exactly as read (names, ids and timestamps included)
/// always succeeds, with the read ETag as `If-Match`; a field that is not the resource's is
/// still refused.
#[tokio::test]
async fn every_record_put_back_exactly_as_read_succeeds() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    for r in resources() {
        let created = app.post(r.path, &t.admin, r.create.clone()).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}: {}", r.path, created.body);
        let item = format!("{}/{}", r.path, created.body["id"]);
        let read = app.get(&item, &t.admin).await;
        let tag = read.header("etag").expect("ETag").to_owned();
        let put = app.with_headers(Method::PUT, &item, &t.admin, &[("If-Match", &tag)], Some(read.body.clone())).await;
        assert_eq!(put.status, StatusCode::OK, "{item}: {}", put.body);
        assert_eq!(put.body[r.field], read.body[r.field], "{item}");
        let mut bogus = read.body.clone();
        bogus["bogus"] = json!(1);
        let refused = app.put(&item, &t.admin, bogus).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{item}: {}", refused.body);
    }
}
