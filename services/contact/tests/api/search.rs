use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

fn names(page: &Value) -> Vec<String> {
    page["data"].as_array().expect("data").iter().map(|c| format!("{} {}", c["first_name"].as_str().unwrap(), c["last_name"].as_str().unwrap())).collect()
}

async fn seed(app: &TestApp, t: &Tenant) {
    let globex = app.create_company(&t.admin, "Globex Corporation").await["id"].as_i64().unwrap();
    for (first, last, email, company) in [
        ("John", "Smith", "john.smith@example.com", None),
        ("Jane", "Smithers", "jane@smithers.example", None),
        ("Johnny", "Appleseed", "apples@example.com", None),
        ("Jon", "Snow", "jon@wall.example", None),
        ("Hank", "Scorpio", "hank@globex.example", Some(globex)),
        ("Maria", "Garcia", "maria.garcia@example.com", None),
        ("Mario", "Rossi", "m.rossi@example.it", None),
        ("Ann", "Smith", "ann.smith@example.com", None),
    ] {
        app.create_contact(&t.admin, json!({"first_name": first, "last_name": last, "email": email, "company_id": company})).await;
    }
}

#[tokio::test]
async fn typos_still_find_the_contact_first() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    seed(&app, &t).await;
    let r = app.get("/api/v1/contacts?search=Jon%20Smtih", &t.viewer).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(names(&r.body).first().map(String::as_str), Some("John Smith"), "{}", r.body);
    assert!(!names(&r.body).contains(&"Maria Garcia".to_owned()));

    for (query, expected) in [
        ("smith", "John Smith"),
        ("Gracia", "Maria Garcia"),
        ("maria.garcia@example.com", "Maria Garcia"),
        ("globex", "Hank Scorpio"),
        ("Globx Corp", "Hank Scorpio"),
        ("appleseed", "Johnny Appleseed"),
        ("rossi mario", "Mario Rossi"),
    ] {
        let r = app.get(&format!("/api/v1/contacts?search={query}"), &t.viewer).await;
        assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.body);
        assert!(names(&r.body).contains(&expected.to_owned()), "{query}: {:?}", names(&r.body));
    }
    let r = app.get("/api/v1/contacts?search=smith", &t.viewer).await;
    let found = names(&r.body);
    assert!(found.starts_with(&["Ann Smith".to_owned(), "John Smith".to_owned()]) || found.starts_with(&["John Smith".to_owned(), "Ann Smith".to_owned()]), "{found:?}");
    assert_eq!(r.body["pagination"]["total_count"].as_i64(), Some(found.len() as i64));

    let r = app.get("/api/v1/contacts?search=zzzyyyxxx", &t.viewer).await;
    assert_eq!(r.body["data"], json!([]));
    assert_eq!(r.body["pagination"]["total_count"], 0);
    // SQL-looking input is just text.
    let r = app.get("/api/v1/contacts?search=%27%20OR%201%3D1%3B%20DROP%20TABLE%20contacts%3B%20--", &t.viewer).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(app.count(&t.id, "contacts").await, 8);
}

#[tokio::test]
async fn search_combines_with_filters_and_pages_by_relevance() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    seed(&app, &t).await;
    let r = app.get("/api/v1/contacts?search=jon&limit=1", &t.viewer).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["pagination"]["total_count"], 2, "jon and john (one typo) match: {}", r.body);
    let mut all = names(&r.body);
    let cursor = r.body["pagination"]["next_cursor"].as_str().expect("a second page").to_owned();
    let r2 = app.get(&format!("/api/v1/contacts?search=jon&limit=1&cursor={cursor}"), &t.viewer).await;
    assert_eq!(r2.status, StatusCode::OK, "{}", r2.body);
    all.extend(names(&r2.body));
    assert_eq!(all.first().map(String::as_str), Some("Jon Snow"));
    assert!(all.contains(&"John Smith".to_owned()));
    let unique: std::collections::BTreeSet<_> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "no row twice across pages");

    app.patch(&format!("/api/v1/contacts/{}", r.body["data"][0]["id"]), &t.admin, json!({"status": "customer"})).await;
    let r = app.get("/api/v1/contacts?search=jon&status=customer", &t.viewer).await;
    assert_eq!(names(&r.body), ["Jon Snow"]);
    // A list cursor is not a search cursor.
    let list = app.get("/api/v1/contacts?limit=1", &t.viewer).await;
    let cursor = list.body["pagination"]["next_cursor"].as_str().unwrap().to_owned();
    assert_eq!(app.get(&format!("/api/v1/contacts?search=jon&cursor={cursor}"), &t.viewer).await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn renaming_a_company_updates_search() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let co = app.create_company(&t.admin, "Initrode").await["id"].as_i64().unwrap();
    app.create_contact(&t.admin, json!({"first_name": "Bill", "last_name": "Lumbergh", "company_id": co})).await;
    assert_eq!(names(&app.get("/api/v1/contacts?search=initrode", &t.viewer).await.body), ["Bill Lumbergh"]);
    app.patch(&format!("/api/v1/companies/{co}"), &t.admin, json!({"name": "Penetrode"})).await;
    assert_eq!(app.get("/api/v1/contacts?search=initrode", &t.viewer).await.body["data"], json!([]));
    assert_eq!(names(&app.get("/api/v1/contacts?search=penetrode", &t.viewer).await.body), ["Bill Lumbergh"]);
}
