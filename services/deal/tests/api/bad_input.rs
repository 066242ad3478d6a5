//! Issue 12, items 12, 13, 15, 16 and 18 on deal-service: NUL characters, control characters
//! in single-line fields, sort whitelists on every list, a token on another tenant's
//! address, and type errors: 400 `VALIDATION_FAILED` naming the field (403 for the tenant).

use reqwest::Method;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{bad_fields, error_code, spawn_app};

#[tokio::test]
async fn nul_characters_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    // The input: NUL in `description`; then other fields and alphabets.
    for (field, body) in [
        ("description", json!({"title": "x", "description": "a\u{0}b"})),
        ("title", json!({"title": "王小明\u{0}"})),
        ("deal_source", json!({"title": "x", "deal_source": "web\u{0}"})),
        ("close_reason", json!({"title": "x", "stage": "closed_lost", "close_reason": "\u{0}"})),
        ("currency", json!({"title": "x", "currency": "US\u{0}"})),
        ("custom_fields", json!({"title": "x", "custom_fields": {"k": "Íñigo\u{0}"}})),
    ] {
        let r = app.post("/api/v1/deals", &t.admin, body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{field}: {}", r.body);
        assert_eq!(error_code(&r), "VALIDATION_FAILED");
        assert!(bad_fields(&r).iter().any(|f| f.starts_with(field)), "{field}: {:?}", bad_fields(&r));
    }
    let id = app.deal(&t.admin, "ok").await;
    let r = app.patch(&format!("/api/v1/deals/{id}"), &t.admin, json!({"description": "\u{0}"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    for query in ["search=ab%00", "stage=lead%00", "currency=%00"] {
        let r = app.get(&format!("/api/v1/deals?{query}"), &t.admin).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}: {}", r.body);
    }
    let r = app.post("/api/v1/pipeline/stages", &t.admin, json!({"key": "x", "name": "N\u{0}", "probability": 1, "kind": "open"})).await;
    assert_eq!(bad_fields(&r), ["name"]);
    let r = app.get("/api/v1/pipeline/stages/le%00ad", &t.admin).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(app.get("/api/v1/deals", &t.admin).await.body["pagination"]["total_count"], 1, "nothing written");
}

#[tokio::test]
async fn single_line_fields_refuse_line_breaks_and_descriptions_keep_them() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    for (field, body) in [
        ("title", json!({"title": "Bob\r\nBcc: x@y.example"})),
        ("title", json!({"title": "Заказ\nвторая строка"})),
        ("deal_source", json!({"title": "x", "deal_source": "web\r\nX-Injected: 1"})),
        ("close_reason", json!({"title": "x", "stage": "closed_lost", "close_reason": "price\nand more"})),
        ("currency", json!({"title": "x", "currency": "US\nD"})),
        ("custom_fields", json!({"title": "x", "custom_fields": {"line\nbreak": 1}})),
        ("description", json!({"title": "x", "description": "bell \u{7}"})),
    ] {
        let r = app.post("/api/v1/deals", &t.admin, body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{field}: {}", r.body);
        assert_eq!(bad_fields(&r), [field], "{}", r.body);
    }
    let d = app.create_deal(&t.admin, json!({"title": "x", "description": "line 1\r\nline 2\ttab", "deal_source": "  web  "})).await;
    assert_eq!(d["description"], "line 1\r\nline 2\ttab");
    assert_eq!(d["deal_source"], "web");
    let id = d["id"].as_i64().unwrap();
    let r = app.patch(&format!("/api/v1/deals/{id}"), &t.admin, json!({"title": "a\tb"})).await;
    assert_eq!(bad_fields(&r), ["title"]);
    for body in [json!({"key": "x", "name": "Two\nlines", "probability": 1, "kind": "open"}), json!({"key": "x", "name": "Tab\there", "probability": 1, "kind": "open"})] {
        let r = app.post("/api/v1/pipeline/stages", &t.admin, body).await;
        assert_eq!(bad_fields(&r), ["name"]);
    }
    let r = app.put("/api/v1/pipeline/stages/lead", &t.admin, json!({"name": "Lead\r\n", "position": 1, "probability": 10, "kind": "open"})).await;
    assert_eq!(r.status, StatusCode::OK, "trailing whitespace is trimmed: {}", r.body);
    let r = app.put("/api/v1/pipeline/stages/lead", &t.admin, json!({"name": "Le\r\nad", "position": 1, "probability": 10, "kind": "open"})).await;
    assert_eq!(bad_fields(&r), ["name"]);
    let r = app.get("/api/v1/deals?search=a%0Ab", &t.admin).await;
    assert_eq!(bad_fields(&r), ["search"]);
}

#[tokio::test]
async fn every_list_refuses_a_sort_it_does_not_support() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let id = app.deal(&t.admin, "x").await;
    let lists = [
        ("/api/v1/deals", "created_at"),
        (&format!("/api/v1/deals/{id}/contacts") as &str, "created_at"),
        ("/api/v1/pipeline/stages", "position"),
        ("/api/v1/deals/pipeline", "position"),
        ("/api/v1/deals/forecast", "period"),
        (&format!("/api/v1/deals/basic?ids={id}") as &str, "id"),
    ];
    for (path, supported) in lists {
        let sep = if path.contains('?') { '&' } else { '?' };
        for bad in ["password_hash", "title;drop%20table%20deals", "-position%00"] {
            let r = app.get(&format!("{path}{sep}sort={bad}"), &t.admin).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path} sort={bad}: {}", r.body);
            assert_eq!(bad_fields(&r), ["sort"], "{path}");
        }
        let r = app.get(&format!("{path}{sep}sort={supported}"), &t.admin).await;
        assert_eq!(r.status, StatusCode::OK, "{path} sort={supported}: {}", r.body);
    }
    let r = app.get("/api/v1/pipeline/stages?sort=-position", &t.admin).await;
    assert_eq!(bad_fields(&r), ["sort"], "a fixed order has no descending variant");
}

#[tokio::test]
async fn a_token_on_another_tenants_address_is_refused() {
    let app = spawn_app().await;
    let a = app.tenant().await;
    let b = app.tenant().await;
    let id = app.deal(&a.admin, "A's deal").await;
    // Test tenants' subdomains are `t-<id>` (crm_testing::provision_tenant), under the default base.
    let host = format!("t-{}.crm.localhost", a.id.to_string().to_ascii_lowercase());
    // B's token sent to A's address.
    for (method, path) in [(Method::GET, "/api/v1/deals".to_owned()), (Method::GET, format!("/api/v1/deals/{id}")), (Method::GET, "/api/v1/deals/pipeline".to_owned())] {
        let r = app.send_with(method, &path, &b.admin, &[("host", &host)], None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {}", r.body);
        assert_eq!(error_code(&r), "TENANT_MISMATCH");
    }
    let r = app.send_with(Method::POST, "/api/v1/deals", &b.admin, &[("host", &host)], Some(json!({"title": "x"}))).await;
    assert_eq!(error_code(&r), "TENANT_MISMATCH");
    // A's own token on its address works.
    let r = app.send_with(Method::GET, "/api/v1/deals", &a.admin, &[("host", &host)], None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["pagination"]["total_count"], 1);
}

#[tokio::test]
async fn type_errors_name_the_field() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    for (field, body) in [
        ("value", json!({"title": "x", "value": "12.30"})),
        ("expected_close_date", json!({"title": "x", "expected_close_date": "2026-13-40"})),
        ("expected_close_date", json!({"title": "x", "expected_close_date": "2026-02-30"})),
        ("expected_close_date", json!({"title": "x", "expected_close_date": 20261130})),
        ("probability", json!({"title": "x", "probability": "50"})),
        ("company_id", json!({"title": "x", "company_id": "10"})),
        ("custom_fields", json!({"title": "x", "custom_fields": "a"})),
        ("reopen", json!({"title": "x", "reopen": "yes"})),
    ] {
        let r = app.post("/api/v1/deals", &t.admin, body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{field}: {}", r.body);
        assert_eq!(error_code(&r), "VALIDATION_FAILED");
        assert_eq!(bad_fields(&r), [field], "{}", r.body);
        assert!(!r.body.to_string().contains("12.30"), "values are not quoted back");
    }
    let id = app.deal(&t.admin, "x").await;
    let r = app.patch(&format!("/api/v1/deals/{id}"), &t.admin, json!({"value": "12.30"})).await;
    assert_eq!(bad_fields(&r), ["value"]);
    let r = app.post(&format!("/api/v1/deals/{id}/contacts"), &t.admin, json!({"contact_id": "5"})).await;
    assert_eq!(bad_fields(&r), ["contact_id"]);
    let r = app.post("/api/v1/pipeline/stages", &t.admin, json!({"key": "k", "name": "K", "probability": "10", "kind": "open"})).await;
    assert_eq!(bad_fields(&r), ["probability"]);
    for query in ["min_value=12,30", "expected_close_after=2026-13-40", "limit=abc"] {
        let r = app.get(&format!("/api/v1/deals?{query}"), &t.admin).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(bad_fields(&r).len(), 1, "{query}: {}", r.body);
    }
}
