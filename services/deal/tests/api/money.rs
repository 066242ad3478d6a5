//! Issue 12, item 8: totals never add different currencies; amounts follow each currency's
//! ISO 4217 minor unit.

use chrono::NaiveDate;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{bad_fields, error_code, spawn_app};

#[tokio::test]
async fn pipeline_totals_are_per_currency() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    // The input: 100 USD, 100 EUR and 100 JPY in `lead`.
    for currency in ["USD", "EUR", "JPY"] {
        app.create_deal(&t.admin, json!({"title": format!("100 {currency}"), "value": 100, "currency": currency})).await;
    }
    let r = app.get("/api/v1/deals/pipeline", &t.admin).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let lead = &r.body["stages"][0];
    assert_eq!(lead["stage"], "lead");
    assert_eq!(lead["deal_count"], 3);
    assert_eq!(lead["total_value_by_currency"], json!({"USD": 100.0, "EUR": 100.0, "JPY": 100.0}));
    assert_eq!(lead["weighted_value_by_currency"], json!({"USD": 10.0, "EUR": 10.0, "JPY": 10.0}));
    assert!(lead["total_value"].is_null() && lead["weighted_value"].is_null(), "never 300: {}", lead);
    let totals = &r.body["totals"];
    assert_eq!(totals["total_deals"], 3);
    assert_eq!(totals["total_value_by_currency"], json!({"USD": 100.0, "EUR": 100.0, "JPY": 100.0}));
    assert!(totals["total_value"].is_null(), "{totals}");
    assert_eq!(r.body["stages"][1]["total_value_by_currency"], json!({}), "an empty stage has no currency");
    assert_eq!(r.body["stages"][1]["total_value"], 0.0);

    // One currency (filter): the single amounts are meaningful again.
    let r = app.get("/api/v1/deals/pipeline?currency=jpy", &t.admin).await;
    assert_eq!(r.body["totals"]["total_value"], 100.0);
    assert_eq!(r.body["totals"]["total_value_by_currency"], json!({"JPY": 100.0}));
    assert_eq!(r.body["stages"][0]["deal_count"], 1);
}

#[tokio::test]
async fn forecast_totals_are_per_currency() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let jan = NaiveDate::from_ymd_opt(2031, 1, 10).unwrap().to_string();
    for (currency, value) in [("USD", json!(100)), ("EUR", json!(100)), ("JPY", json!(100)), ("KWD", json!(1.125))] {
        app.create_deal(&t.admin, json!({"title": currency, "value": value, "currency": currency, "probability": 50, "expected_close_date": jan})).await;
    }
    app.create_deal(&t.admin, json!({"title": "won", "value": 5000, "currency": "KRW", "stage": "closed_won", "actual_close_date": jan})).await;
    app.create_deal(&t.admin, json!({"title": "undated", "value": 7, "currency": "GBP"})).await;

    let r = app.get("/api/v1/deals/forecast", &t.admin).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let period = r.body["periods"].as_array().unwrap().iter().find(|p| p["period"] == "2031-01").cloned().expect("january");
    assert_eq!(period["open_deal_count"], 4);
    assert_eq!(period["won_deal_count"], 1);
    assert_eq!(period["open_value_by_currency"], json!({"USD": 100.0, "EUR": 100.0, "JPY": 100.0, "KWD": 1.125}));
    // Weighted values rounded to each currency's minor unit: 0.5625 KWD -> 0.563 (3 decimals).
    assert_eq!(period["weighted_value_by_currency"], json!({"USD": 50.0, "EUR": 50.0, "JPY": 50.0, "KWD": 0.563}));
    assert_eq!(period["won_value_by_currency"], json!({"KRW": 5000.0}));
    assert!(period["open_value"].is_null(), "several currencies: no single sum");
    assert_eq!(period["won_value"], 5000.0, "one currency: the single sum");
    assert_eq!(r.body["unscheduled"]["open_value_by_currency"], json!({"GBP": 7.0}));
    assert_eq!(r.body["unscheduled"]["open_value"], 7.0);
    let totals = &r.body["totals"];
    assert_eq!(totals["open_value_by_currency"], json!({"USD": 100.0, "EUR": 100.0, "JPY": 100.0, "KWD": 1.125, "GBP": 7.0}));
    assert_eq!(totals["won_value_by_currency"], json!({"KRW": 5000.0}));
    assert!(totals["open_value"].is_null());
}

#[tokio::test]
async fn amounts_follow_their_currency_minor_unit() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    // Accepted: JPY/KRW whole, BHD/KWD 3 decimals, USD/EUR 2.
    for (currency, value) in [("JPY", json!(100)), ("KRW", json!(15000)), ("BHD", json!(1.234)), ("KWD", json!(0.005)), ("EUR", json!(12.3))] {
        let d = app.create_deal(&t.admin, json!({"title": "ok", "value": value, "currency": currency})).await;
        assert_eq!(d["value"].as_f64(), value.as_f64(), "{currency}");
        assert_eq!(d["currency"], currency);
    }
    // Refused, naming `value`.
    for (currency, value) in [("JPY", json!(100.5)), ("KRW", json!(0.1)), ("USD", json!(10.001)), ("EUR", json!(0.005)), ("BHD", json!(1.2345)), ("KWD", json!(0.0001))]
    {
        let r = app.post("/api/v1/deals", &t.admin, json!({"title": "bad", "value": value, "currency": currency})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{currency} {value}: {}", r.body);
        assert_eq!(error_code(&r), "VALIDATION_FAILED");
        assert_eq!(bad_fields(&r), ["value"], "{currency} {value}");
        let message = r.body["details"]["fields"]["value"].as_str().unwrap_or_default();
        assert!(message.contains(currency), "{message}");
    }
    // A currency change re-checks the amount; a JPY deal's weighted value is whole yen.
    let d = app.create_deal(&t.admin, json!({"title": "usd", "value": 10.5, "probability": 33})).await;
    let id = d["id"].as_i64().unwrap();
    let r = app.patch(&format!("/api/v1/deals/{id}"), &t.admin, json!({"currency": "JPY"})).await;
    assert_eq!(bad_fields(&r), ["value"], "10.50 USD cannot become 10.5 JPY: {}", r.body);
    let r = app.patch(&format!("/api/v1/deals/{id}"), &t.admin, json!({"currency": "JPY", "value": 105})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["weighted_value"], 35.0, "105 x 33% = 34.65 -> 35 yen");
    let r = app.patch(&format!("/api/v1/deals/{id}"), &t.admin, json!({"value": 1.5})).await;
    assert_eq!(bad_fields(&r), ["value"], "JPY has no minor unit");
    // Unknown codes and lowercase input.
    let r = app.post("/api/v1/deals", &t.admin, json!({"title": "x", "currency": "ABC"})).await;
    assert_eq!(bad_fields(&r), ["currency"]);
    let d = app.create_deal(&t.admin, json!({"title": "x", "currency": "bhd", "value": 0.001})).await;
    assert_eq!((d["currency"].as_str(), d["value"].as_f64()), (Some("BHD"), Some(0.001)));
    // Filters take the same precision.
    let r = app.get("/api/v1/deals?min_value=1.234&currency=BHD", &t.admin).await;
    assert_eq!(r.body["pagination"]["total_count"], 1, "{}", r.body);
}
