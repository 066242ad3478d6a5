use crm_client_contact::subjects::CONTACT_CREATED;
use crm_web::codes;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn import_counts_duplicates_and_bad_rows_exactly() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let mut created_events = app.platform.events(CONTACT_CREATED).await;
    app.create_contact(&t.admin, json!({"first_name": "Old", "last_name": "Timer", "email": "old@example.com", "phone": "111"})).await;
    let csv = "\u{feff}First Name,Last Name,E-Mail,Company,Status,Tags,custom.Tier,Favourite Colour\n\
               Ada,Lovelace,ada@example.com,Analytical Engines,lead,math;history,gold,blue\n\
               Old,Timer,OLD@example.com,,customer,,,\n\
               ,Nameless,nameless@example.com,,,,,\n\
               Bad,Email,not-an-email,,,,,\n\
               Grace,Hopper,grace@example.com,analytical engines,prospect,,,\n\
               Ada,Again,Ada@Example.com,,,,,\n\
               Weird,Status,weird@example.com,,vip,,,\n\
               \"Quoted, Name\",\"Multi Line\",quoted@example.com,,,,,\n";
    let r = app.import(&t.manager, "", csv).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let rep = &r.body;
    assert_eq!((rep["rows"].as_i64(), rep["created"].as_i64(), rep["updated"].as_i64(), rep["skipped"].as_i64(), rep["failed"].as_i64()), (Some(8), Some(3), Some(0), Some(2), Some(3)), "{rep}");
    assert_eq!(rep["companies_created"], 1);
    assert_eq!(rep["ignored_columns"], json!(["Favourite Colour"]));
    let errors: Vec<(i64, String)> = rep["errors"].as_array().unwrap().iter().map(|e| (e["row"].as_i64().unwrap(), e["field"].as_str().unwrap().to_owned())).collect();
    assert_eq!(errors, [(4, "first_name".to_owned()), (5, "email".to_owned()), (8, "status".to_owned())]);
    assert_eq!(app.count(&t.id, "contacts").await, 4);

    let ada = app.get("/api/v1/contacts?search=lovelace", &t.viewer).await.body["data"][0].clone();
    assert_eq!(ada["company_name"], "Analytical Engines");
    assert_eq!(ada["tags"], json!(["history", "math"]));
    assert_eq!(ada["custom_fields"], json!({"Tier": "gold"}));
    assert_eq!(ada["owner_id"], MANAGER);
    let grace = app.get("/api/v1/contacts?search=hopper", &t.viewer).await.body["data"][0].clone();
    assert_eq!(grace["company_id"], ada["company_id"], "company names match case-insensitively");
    assert_eq!(grace["status"], "prospect");
    let quoted = app.get("/api/v1/contacts?search=quoted", &t.viewer).await.body["data"][0].clone();
    assert_eq!(quoted["last_name"], "Multi Line");
    // One event per created contact (the probe also sees the contact created before the import).
    assert_eq!(created_events.count_within(&t.id, CONTACT_CREATED, EVENT_TIMEOUT / 5).await, 4);

    // update: duplicates update the existing contact with the non-empty cells.
    let r = app.import(&t.manager, "?on_duplicate=update", "email,phone,status,job_title\nold@example.com,,customer,CEO\nnew@example.com,222,,\n").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!((r.body["created"].as_i64(), r.body["updated"].as_i64(), r.body["failed"].as_i64()), (Some(0), Some(1), Some(1)), "{}", r.body);
    assert_eq!(r.body["errors"][0], json!({"row": 3, "field": "first_name", "message": "required"}));
    let old = app.get("/api/v1/contacts?search=timer", &t.viewer).await.body["data"][0].clone();
    assert_eq!((old["phone"].as_str(), old["status"].as_str(), old["job_title"].as_str()), (Some("111"), Some("customer"), Some("CEO")));
    let history = app.get(&format!("/api/v1/contacts/{}/status-history", old["id"]), &t.viewer).await;
    assert_eq!(history.body["data"][0]["to_status"], "customer");

    // create: a duplicate email is an error, not a second contact.
    let r = app.import(&t.manager, "?on_duplicate=create", "first_name,email\nAda,ada@example.com\nNew,fresh@example.com\nNew2,FRESH@example.com\n").await;
    assert_eq!((r.body["created"].as_i64(), r.body["failed"].as_i64()), (Some(1), Some(2)), "{}", r.body);
    assert_eq!(app.count(&t.id, "contacts").await, 5);
    assert_eq!(bad_fields(&app.import(&t.manager, "?on_duplicate=merge", "first_name\nA\n").await), ["on_duplicate"]);
}

#[tokio::test]
async fn malformed_files_import_nothing() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    // UTF-16 (NUL bytes in the header line) is refused as binary; a NUL in a data cell is
    // that row's error (tests in import_issue12).
    let utf16: Vec<u8> = "first_name,email\nA,a@x.example\n".encode_utf16().flat_map(u16::to_le_bytes).collect();
    let mut late_latin1 = b"first_name,email\n".to_vec();
    for i in 0..3000 {
        late_latin1.extend_from_slice(format!("Row{i},row{i}@example.com\n").as_bytes());
    }
    late_latin1.extend_from_slice(b"J\xfcrgen,juergen@example.com\n");
    let one_line = format!("first_name,notes\nA,{}\n", "x".repeat(10 * 1024 * 1024));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", Vec::new(), "empty"),
        ("header only", b"first_name,last_name,email\n".to_vec(), "no_rows"),
        ("no header", b"John,Smith,john@example.com\nJane,Doe,jane@example.com\n".to_vec(), "header"),
        ("binary", vec![0x89, b'P', b'N', b'G', 0, 0, 0, 13, 1, 2, 3], "binary"),
        ("utf-16", utf16, "binary"),
        ("latin-1", late_latin1, "encoding"),
        ("one 10 MB line", one_line.into_bytes(), "line_too_long"),
    ];
    for (name, body, reason) in cases {
        let r = app.import(&t.admin, "", body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{name}: {}", r.body);
        assert_eq!(error_code(&r), codes::INVALID_CSV, "{name}");
        assert_eq!(r.body["details"]["reason"], reason, "{name}: {}", r.body);
        assert_eq!(app.count(&t.id, "contacts").await, 0, "{name}");
        assert_eq!(app.count(&t.id, "outbox").await, 0, "{name}");
    }
    let r = app.send(app.http.post(format!("{}/api/v1/contacts/import", app.url)).bearer_auth(&t.admin).json(&json!({"first_name": "A"}))).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn oversized_uploads_get_413() {
    let app = spawn_app_with(contact_service::Settings { import_max_bytes: 64 * 1024, ..Default::default() }).await;
    let t = app.tenant().await;
    let mut body = String::from("first_name,email\n");
    for i in 0..5000 {
        body.push_str(&format!("R{i},r{i}@example.com\n"));
    }
    let r = app.import(&t.admin, "", body.clone()).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.body);
    // Streamed without a Content-Length: stopped while reading.
    let stream = futures::stream::iter(body.into_bytes().chunks(4096).map(|c| Ok::<_, std::io::Error>(c.to_vec())).collect::<Vec<_>>());
    let req = app
        .http
        .post(format!("{}/api/v1/contacts/import", app.url))
        .bearer_auth(&t.admin)
        .header("content-type", "text/csv")
        .body(reqwest::Body::wrap_stream(stream));
    let r = app.send(req).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.body);
    assert_eq!(app.count(&t.id, "contacts").await, 0);
}

#[tokio::test]
async fn import_respects_roles_and_owners() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    assert_eq!(app.import(&t.viewer, "", "first_name\nA\n").await.status, StatusCode::FORBIDDEN);
    app.create_contact(&t.manager, json!({"first_name": "Theirs", "email": "theirs@example.com", "owner_id": OTHER_REP})).await;
    let csv = format!("first_name,email,owner_id\nMine,mine@example.com,\nGift,gift@example.com,{OTHER_REP}\nTheirs,theirs@example.com,\n");
    let r = app.import(&t.rep, "?on_duplicate=update", csv).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!((r.body["created"].as_i64(), r.body["updated"].as_i64(), r.body["failed"].as_i64()), (Some(1), Some(0), Some(2)), "{}", r.body);
    let r = app.import(&t.admin, "", "first_name,owner_id,company_id\nA,777,\nB,,999\n").await;
    let fields: Vec<&str> = r.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["owner_id", "company_id"], "{}", r.body);
    assert_eq!(app.count(&t.id, "contacts").await, 2);
}

#[tokio::test]
async fn export_streams_every_contact_and_reimports() {
    let app = spawn_app_with(contact_service::Settings { import_batch: 7, ..Default::default() }).await;
    let t = app.tenant().await;
    let mut csv = String::from("first_name,last_name,email,company,tags\n");
    for i in 0..2500 {
        csv.push_str(&format!("First{i},Last{i},p{i}@example.com,Co {},\"a,b\"\n", i % 3));
    }
    let r = app.import(&t.admin, "", csv).await;
    assert_eq!(r.body["created"], 2500, "{}", r.body);
    assert_eq!(r.body["companies_created"], 3);
    let r = app.send(app.http.get(format!("{}/api/v1/contacts/export", app.url)).bearer_auth(&t.viewer)).await;
    assert_eq!(r.status, StatusCode::OK);
    let mut reader = csv::Reader::from_reader(r.body.as_str().expect("csv body").as_bytes());
    let headers = reader.headers().unwrap().clone();
    assert_eq!(&headers[1], "first_name");
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2500);
    assert_eq!(&rows[0][1], "First0");
    assert_eq!(&rows[0][7], "Co 0");
    assert_eq!(&rows[0][16], "a,b");
    // The export is a valid import: every row is a duplicate now.
    let again = app.import(&t.admin, "", r.body.as_str().expect("csv body").to_owned()).await;
    assert_eq!((again.body["skipped"].as_i64(), again.body["created"].as_i64()), (Some(2500), Some(0)), "{}", again.body);
    let other = app.tenant().await;
    let r = app.send(app.http.get(format!("{}/api/v1/contacts/export", app.url)).bearer_auth(&other.admin)).await;
    assert_eq!(r.body.as_str().expect("csv body").lines().count(), 1, "header only for an empty tenant");
}
