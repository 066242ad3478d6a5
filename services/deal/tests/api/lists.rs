//! `GET /deals`: filters, sorts, keyset pagination, enrichment batching and degradation.

use std::collections::HashSet;

use chrono::Duration;
use crm_client_core::ClientError;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{bad_fields, error_code, spawn_app, today};

fn titles(body: &Value) -> Vec<String> {
    body["data"].as_array().expect("data").iter().map(|d| d["title"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn filters_narrow_the_list() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    app.add_company(10, "Acme");
    app.add_company(11, "Globex");
    app.add_contact(20, "Grace", "Hopper");
    app.add_contact(21, "Alan", "Turing");
    app.add_user(2, "Bob", "Seller");
    let soon = today() + Duration::days(5);
    let later = today() + Duration::days(60);
    app.create_deal(&t.admin, json!({"title": "Alpha 50% off", "value": 100, "company_id": 10, "primary_contact_id": 20, "expected_close_date": soon.to_string()})).await;
    app.create_deal(&t.admin, json!({"title": "Beta", "value": 5000, "company_id": 11, "owner_id": 2, "stage": "proposal", "expected_close_date": later.to_string(), "currency": "EUR"})).await;
    let gamma = app.create_deal(&t.admin, json!({"title": "Gamma", "stage": "proposal"})).await;
    app.post(&format!("/api/v1/deals/{}/contacts", gamma["id"]), &t.admin, json!({"contact_id": 20, "role": "influencer"})).await;

    let cases = [
        ("stage=proposal", vec!["Beta", "Gamma"]),
        ("owner_id=2", vec!["Beta"]),
        ("company_id=10", vec!["Alpha 50% off"]),
        ("contact_id=20", vec!["Alpha 50% off", "Gamma"]),
        ("contact_id=21", vec![]),
        ("min_value=100.00", vec!["Alpha 50% off", "Beta"]),
        ("max_value=99.99", vec![]),
        ("min_value=101&max_value=5000", vec!["Beta"]),
        (&format!("expected_close_before={}", soon + Duration::days(1)), vec!["Alpha 50% off"]),
        (&format!("expected_close_after={soon}"), vec!["Alpha 50% off", "Beta"]),
        ("search=ALPHA", vec!["Alpha 50% off"]),
        ("search=50%25", vec!["Alpha 50% off"]),
        ("search=%25", vec!["Alpha 50% off"]),
        ("search=_", vec![]),
        ("search=%27%3B%20drop%20table%20deals%3B--", vec![]),
        ("currency=eur", vec!["Beta"]),
        ("stage=unknown", vec![]),
        ("stage=proposal&owner_id=2&company_id=11&min_value=1&currency=EUR", vec!["Beta"]),
    ];
    for (query, expected) in cases {
        let r = app.get(&format!("/api/v1/deals?sort=title&{query}"), &t.admin).await;
        assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.body);
        assert_eq!(titles(&r.body), expected, "{query}");
        assert_eq!(r.body["pagination"]["total_count"], expected.len(), "{query}");
    }
    for (query, field) in [
        ("owner_id=abc", "owner_id"),
        ("company_id=0", "company_id"),
        ("contact_id=1.5", "contact_id"),
        ("min_value=-1", "min_value"),
        ("max_value=ten", "max_value"),
        ("expected_close_after=tomorrow", "expected_close_after"),
        ("currency=DOLLARS", "currency"),
        ("sort=password", "sort"),
        ("sort=title;drop", "sort"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=-5", "limit"),
        ("limit=abc", "limit"),
    ] {
        let r = app.get(&format!("/api/v1/deals?{query}"), &t.admin).await;
        assert_eq!(bad_fields(&r), vec![field], "{query}");
    }
    let r = app.get(&format!("/api/v1/deals?search={}", "x".repeat(201)), &t.admin).await;
    assert_eq!(bad_fields(&r), vec!["search"]);
    let r = app.get("/api/v1/deals?count=false", &t.admin).await;
    assert!(r.body["pagination"].get("total_count").is_none());
}

#[tokio::test]
async fn pages_cover_every_deal_once_in_every_sort() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let mut all = HashSet::new();
    for i in 0..23 {
        // Duplicate sort values and nulls on purpose: the id breaks ties.
        let mut body = json!({"title": format!("Deal {:02}", i % 7), "probability": (i % 4) * 10});
        if i % 3 != 0 {
            body["value"] = json!((i % 5) as f64 * 10.5);
        }
        if i % 2 == 0 {
            body["expected_close_date"] = json!((today() + Duration::days(i % 6)).to_string());
        }
        all.insert(app.create_deal(&t.admin, body).await["id"].as_i64().unwrap());
    }
    for sort in ["created_at", "-created_at", "updated_at", "value", "-value", "expected_close_date", "-expected_close_date", "title", "-title", "probability", "-probability"] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut previous: Option<Value> = None;
        loop {
            let mut path = format!("/api/v1/deals?limit=5&sort={sort}");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let r = app.get(&path, &t.admin).await;
            assert_eq!(r.status, StatusCode::OK, "{sort}: {}", r.body);
            assert_eq!(r.body["pagination"]["total_count"], 23);
            for d in r.body["data"].as_array().unwrap() {
                seen.push(d["id"].as_i64().unwrap());
                let field = sort.trim_start_matches('-');
                if let (Some(prev), "value" | "probability" | "title") = (&previous, field) {
                    let ordered = match field {
                        "title" => prev[field].as_str() <= d[field].as_str(),
                        _ => prev[field].as_f64().unwrap_or(-1.0) <= d[field].as_f64().unwrap_or(-1.0),
                    };
                    assert_eq!(ordered, !sort.starts_with('-') || prev[field] == d[field], "{sort}: {prev} then {d}");
                }
                previous = Some(d.clone());
            }
            if !r.body["pagination"]["has_next"].as_bool().unwrap() {
                assert!(r.body["pagination"]["next_cursor"].is_null());
                break;
            }
            cursor = r.body["pagination"]["next_cursor"].as_str().map(str::to_owned);
        }
        assert_eq!(seen.len(), 23, "{sort}: no duplicates, no gaps");
        assert_eq!(seen.iter().copied().collect::<HashSet<_>>(), all, "{sort}");
    }

    let first = app.get("/api/v1/deals?limit=5&sort=value", &t.admin).await;
    let cursor = first.body["pagination"]["next_cursor"].as_str().unwrap().to_owned();
    let r = app.get(&format!("/api/v1/deals?limit=5&sort=title&cursor={cursor}"), &t.admin).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&r), "INVALID_CURSOR", "a cursor belongs to its sort");
    for garbage in ["abc", "abc.def", "eyJ9.AAAA", &format!("{cursor}x"), &"a".repeat(2000)] {
        let r = app.get(&format!("/api/v1/deals?cursor={garbage}"), &t.admin).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{garbage}");
        assert_eq!(error_code(&r), "INVALID_CURSOR");
    }
}

#[tokio::test]
async fn a_page_of_50_costs_one_call_per_service_and_shows_every_name() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    for i in 1..=50 {
        app.add_company(100 + i, &format!("Company {i}"));
        app.add_contact(200 + i, "Contact", &i.to_string());
        app.add_user(300 + i, "Owner", &i.to_string());
        app.create_deal(&t.admin, json!({"title": format!("D{i}"), "company_id": 100 + i, "primary_contact_id": 200 + i, "owner_id": 300 + i})).await;
    }
    let (contact_calls, user_calls) = (app.contact_calls(), app.user_calls());
    let r = app.get("/api/v1/deals?limit=50", &t.admin).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(app.contact_calls() - contact_calls, 1, "one call to contact-service for 50 deals");
    assert_eq!(app.user_calls() - user_calls, 1, "one call to auth-service for 50 deals");
    let data = r.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 50);
    for d in data {
        let i = d["title"].as_str().unwrap().trim_start_matches('D');
        assert_eq!(d["company_name"], format!("Company {i}"));
        assert_eq!(d["primary_contact_name"], format!("Contact {i}"));
        assert_eq!(d["owner_name"], format!("Owner {i}"));
    }
}

#[tokio::test]
async fn names_degrade_to_null_when_a_service_is_down() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    app.add_company(10, "Acme");
    app.add_contact(20, "Grace", "Hopper");
    app.create_deal(&t.admin, json!({"title": "D", "company_id": 10, "primary_contact_id": 20})).await;
    *app.contacts.fail_with.lock().unwrap() = Some(ClientError::Unavailable("connection refused".into()));
    let r = app.get("/api/v1/deals", &t.admin).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let d = &r.body["data"][0];
    assert!(d["company_name"].is_null() && d["primary_contact_name"].is_null());
    assert_eq!(d["company_id"], 10, "ids are still there");
    assert_eq!(d["owner_name"], "Ada Admin", "auth-service still answers");
    *app.users.fail_with.lock().unwrap() = Some(ClientError::Unavailable("down".into()));
    let r = app.get(&format!("/api/v1/deals/{}", d["id"]), &t.admin).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["owner_name"].is_null());
}
