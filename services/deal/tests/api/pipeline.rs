//! `GET /deals/pipeline` and `GET /deals/forecast`.

use chrono::NaiveDate;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{bad_fields, spawn_app};

fn cents(v: &serde_json::Value) -> i64 {
    (v.as_f64().unwrap_or(0.0) * 100.0).round() as i64
}

#[tokio::test]
async fn pipeline_shows_every_stage_in_order_with_totals_equal_to_the_deals() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    app.add_company(10, "Acme");
    let r = app.get("/api/v1/deals/pipeline", &t.admin).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let keys: Vec<&str> = r.body["stages"].as_array().unwrap().iter().map(|s| s["stage"].as_str().unwrap()).collect();
    assert_eq!(keys, ["lead", "qualified", "proposal", "negotiation", "closed_won", "closed_lost"]);
    assert_eq!(
        r.body["totals"],
        json!({"total_deals": 0, "total_value": 0.0, "total_weighted_value": 0.0, "total_value_by_currency": {}, "total_weighted_value_by_currency": {}})
    );

    let stages = ["lead", "qualified", "proposal", "negotiation", "closed_won"];
    let mut expected_count = std::collections::HashMap::new();
    for i in 0..37i64 {
        let stage = stages[(i % 5) as usize];
        let mut body = json!({"title": format!("D{i}"), "stage": stage, "company_id": 10});
        if i % 6 != 0 {
            // Odd cents and probabilities so that rounding would show.
            body["value"] = json!(((i * 7919) % 100_000) as f64 / 100.0 + 0.01);
            body["probability"] = json!((i * 13) % 101);
        }
        app.create_deal(&t.admin, body).await;
        *expected_count.entry(stage).or_insert(0) += 1;
    }

    // The sum of the deals, from the list (every deal, all pages).
    let (mut value, mut weighted, mut n) = (0i64, 0i64, 0i64);
    let mut by_stage: std::collections::HashMap<String, (i64, i64)> = Default::default();
    let mut cursor = String::new();
    loop {
        let r = app.get(&format!("/api/v1/deals?limit=100&cursor={cursor}"), &t.admin).await;
        for d in r.body["data"].as_array().unwrap() {
            n += 1;
            value += cents(&d["value"]);
            weighted += cents(&d["weighted_value"]);
            let e = by_stage.entry(d["stage"].as_str().unwrap().to_owned()).or_default();
            e.0 += cents(&d["value"]);
            e.1 += cents(&d["weighted_value"]);
        }
        match r.body["pagination"]["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    assert_eq!(n, 37);

    let r = app.get("/api/v1/deals/pipeline?per_stage=3", &t.admin).await;
    assert_eq!(r.status, StatusCode::OK);
    let totals = &r.body["totals"];
    assert_eq!(totals["total_deals"], 37);
    assert_eq!(cents(&totals["total_value"]), value, "total value = sum of the deals' values");
    assert_eq!(cents(&totals["total_weighted_value"]), weighted, "weighted total = sum of the deals' weighted values");
    for s in r.body["stages"].as_array().unwrap() {
        let key = s["stage"].as_str().unwrap();
        let count = expected_count.get(key).copied().unwrap_or(0);
        assert_eq!(s["deal_count"], count, "{key}");
        let (v, w) = by_stage.get(key).copied().unwrap_or_default();
        assert_eq!(cents(&s["total_value"]), v, "{key}");
        assert_eq!(cents(&s["weighted_value"]), w, "{key}");
        let deals = s["deals"].as_array().unwrap();
        assert_eq!(deals.len(), count.min(3), "{key}: capped per stage");
        assert!(deals.iter().all(|d| d["stage"] == key && d["company_name"] == "Acme"), "{key}");
    }
    assert_eq!(r.body["stages"][5]["deal_count"], 0, "empty stages are listed");
    assert_eq!(r.body["stages"][5]["deals"], json!([]));

    let r = app.get("/api/v1/deals/pipeline?per_stage=0&owner_id=999", &t.admin).await;
    assert_eq!(r.body["totals"]["total_deals"], 0);
    assert_eq!(r.body["stages"].as_array().unwrap().len(), 6);
    for bad in ["per_stage=-1", "per_stage=101", "per_stage=x", "owner_id=x", "currency=ZZZ"] {
        let r = app.get(&format!("/api/v1/deals/pipeline?{bad}"), &t.admin).await;
        assert_eq!(bad_fields(&r).len(), 1, "{bad}");
    }
}

#[tokio::test]
async fn forecast_groups_open_deals_by_expected_month_and_won_deals_by_close_month() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
    app.create_deal(&t.admin, json!({"title": "a", "value": 100, "probability": 50, "expected_close_date": d(2030, 1, 5).to_string()})).await;
    app.create_deal(&t.admin, json!({"title": "b", "value": 200.10, "probability": 25, "expected_close_date": d(2030, 1, 31).to_string()})).await;
    app.create_deal(&t.admin, json!({"title": "c", "value": 300, "stage": "proposal", "expected_close_date": d(2030, 3, 1).to_string()})).await;
    app.create_deal(&t.admin, json!({"title": "no date", "value": 40, "probability": 10})).await;
    app.create_deal(&t.admin, json!({"title": "won", "value": 1000, "stage": "closed_won", "actual_close_date": d(2030, 1, 20).to_string()})).await;
    app.create_deal(&t.admin, json!({"title": "lost", "value": 5000, "stage": "closed_lost", "expected_close_date": d(2030, 1, 2).to_string()})).await;

    let r = app.get("/api/v1/deals/forecast?group_by=month", &t.admin).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["group_by"], "month");
    let periods = r.body["periods"].as_array().unwrap();
    let jan = periods.iter().find(|p| p["period"] == "2030-01").expect("january");
    assert_eq!(jan["start"], "2030-01-01");
    assert_eq!(jan["open_deal_count"], 2);
    assert_eq!(jan["open_value"], 300.10);
    assert_eq!(jan["weighted_value"], 100.03, "50 + 50.025 rounded per deal = 50.03");
    assert_eq!(jan["won_deal_count"], 1);
    assert_eq!(jan["won_value"], 1000.0);
    let mar = periods.iter().find(|p| p["period"] == "2030-03").expect("march");
    assert_eq!((mar["open_value"].as_f64(), mar["weighted_value"].as_f64()), (Some(300.0), Some(150.0)));
    assert!(periods.iter().all(|p| p["period"] != "2030-02"), "no empty periods");
    assert_eq!(
        r.body["unscheduled"],
        json!({"open_deal_count": 1, "open_value": 40.0, "weighted_value": 4.0,
               "open_value_by_currency": {"USD": 40.0}, "weighted_value_by_currency": {"USD": 4.0}})
    );
    assert_eq!(
        r.body["totals"],
        json!({"open_value": 640.1, "weighted_value": 254.03, "won_value": 1000.0,
               "open_value_by_currency": {"USD": 640.1}, "weighted_value_by_currency": {"USD": 254.03}, "won_value_by_currency": {"USD": 1000.0}})
    );

    let r = app.get("/api/v1/deals/forecast?group_by=quarter&from=2030-01-01&to=2030-02-28", &t.admin).await;
    let periods = r.body["periods"].as_array().unwrap();
    assert_eq!(periods.len(), 1);
    assert_eq!(periods[0]["period"], "2030-Q1");
    assert_eq!(periods[0]["open_value"], 300.10, "march is outside the range");
    for bad in ["group_by=week", "from=2030-02-30", "from=2030-02-01&to=2030-01-01", "owner_id=-1"] {
        let r = app.get(&format!("/api/v1/deals/forecast?{bad}"), &t.admin).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }
}
