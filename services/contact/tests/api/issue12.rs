//! Issue 12 (real-world input and security findings) on contact-service: CSV line numbers,
//! duplicate columns, other CRMs' exports, the export/import round trip, multipart uploads,
//! accent- and CJK-aware search, ETag/If-Match, single-line fields, NUL, sort whitelists,
//! tenant addresses and type errors.

use crm_web::codes;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

/// Percent-encodes a query value.
fn enc(v: &str) -> String {
    v.bytes().map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

fn errors(report: &Value) -> Vec<(i64, String)> {
    report["errors"].as_array().expect("errors").iter().map(|e| (e["row"].as_i64().unwrap(), e["field"].as_str().unwrap().to_owned())).collect()
}

async fn search(app: &TestApp, token: &str, path: &str, q: &str) -> Vec<String> {
    let r = app.get(&format!("{path}?search={}", enc(q)), token).await;
    assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.body);
    r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().map(str::to_owned).unwrap_or_else(|| format!("{} {}", c["first_name"].as_str().unwrap(), c["last_name"].as_str().unwrap())))
        .collect()
}

// 1 ---------------------------------------------------------------------------------------

#[tokio::test]
async fn crlf_files_report_the_same_lines_as_lf_files() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    for (file, email) in [
        ("first_name,last_name,email\r\nA,B,a@x.example\r\nC,D,not-an-email\r\n", "a@x.example"),
        ("first_name,last_name,email\nA,B,b@x.example\nC,D,not-an-email\n", "b@x.example"),
        ("first_name,last_name,email\rA,B,c@x.example\rC,D,not-an-email\r", "c@x.example"),
    ] {
        let r = app.import(&t.admin, "", file).await;
        assert_eq!(r.status, StatusCode::OK, "{file:?}: {}", r.body);
        if file.contains('\n') {
            assert_eq!(errors(&r.body), [(3, "email".to_owned())], "{file:?}: {}", r.body);
        }
        assert_eq!(r.body["created"], 1, "{email}");
    }
    // A quoted multi-line cell counts its lines: the bad row is line 4.
    let r = app.import(&t.admin, "", "first_name,notes,email\r\nE,\"one\r\ntwo\",e@x.example\r\nF,,bad\r\n").await;
    assert_eq!(errors(&r.body), [(4, "email".to_owned())], "{}", r.body);
    // Whole-file errors: not UTF-8 on line 3, and a line too long on line 3.
    for (file, reason) in [
        (b"first_name,email\r\nA,g@x.example\r\nJ\xfcrgen,j@x.example\r\n".to_vec(), "encoding"),
        ([b"first_name,notes\r\nA,x\r\nB,".to_vec(), vec![b'x'; 70 * 1024], b"\r\n".to_vec()].concat(), "line_too_long"),
    ] {
        let r = app.import(&t.admin, "", file).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        assert_eq!((r.body["details"]["reason"].as_str(), r.body["details"]["line"].as_i64()), (Some(reason), Some(3)), "{}", r.body);
        assert!(r.body["error"].as_str().unwrap().contains("line 3"), "{}", r.body);
    }
}

// 2 ---------------------------------------------------------------------------------------

#[tokio::test]
async fn duplicate_columns_are_refused_naming_the_column() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    for (file, column) in [
        ("first_name,email,email\r\nDup,one@x.example,two@x.example\r\n", "email"),
        ("First Name,Email,E-mail\nDup,one@x.example,two@x.example\n", "E-mail"),
        ("name,E-Mail Address,email\nDup,one@x.example,two@x.example\n", "email"),
        ("first_name,first name\nA,B\n", "first name"),
        ("first_name,custom.tier,cf_tier\nA,gold,silver\n", "cf_tier"),
    ] {
        let r = app.import(&t.admin, "", file).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{file:?}: {}", r.body);
        assert_eq!(error_code(&r), codes::INVALID_CSV);
        assert_eq!(r.body["details"]["reason"], "duplicate_column");
        assert_eq!(r.body["details"]["column"], column, "{}", r.body);
        assert!(r.body["error"].as_str().unwrap().contains(column), "{}", r.body);
    }
    assert_eq!(app.count(&t.id, "contacts").await, 0);
}

// 3 ---------------------------------------------------------------------------------------

#[tokio::test]
async fn other_crms_exports_keep_every_field_with_a_home() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let files = [
        // Google Contacts (current CSV format).
        ("google", "First Name,Middle Name,Last Name,Nickname,Birthday,Notes,Labels,E-mail 1 - Label,E-mail 1 - Value,E-mail 2 - Label,E-mail 2 - Value,Phone 1 - Label,Phone 1 - Value,Address 1 - Label,Address 1 - Street,Address 1 - City,Address 1 - Region,Address 1 - Postal Code,Address 1 - Country,Organization Name,Organization Title,Organization Department,Website 1 - Value\r\n\
                    Ada,Augusta,Lovelace,Ada,1815-12-10,Poet of science,* myContacts ::: Math,Work,ada@google.example,Home,ada@home.example,Mobile,+44 20 7946 0001,Home,12 St James's Sq,London,England,SW1Y 4JH,United Kingdom,Analytical Engines,Countess,Research,https://ada.example\r\n",
         json!({"first_name": "Ada", "last_name": "Lovelace", "email": "ada@google.example", "phone": "+44 20 7946 0001", "job_title": "Countess",
                "company_name": "Analytical Engines", "notes": "Poet of science", "tags": ["math", "mycontacts"],
                "address": {"street": "12 St James's Sq", "city": "London", "state": "England", "postal_code": "SW1Y 4JH", "country": "United Kingdom"}}),
         &["Middle Name", "Nickname", "Birthday", "E-mail 1 - Label", "E-mail 2 - Label", "Phone 1 - Label", "Address 1 - Label", "Organization Department", "Website 1 - Value"][..]),
        // Google Contacts (older "Given Name / Family Name" format).
        ("google-old", "Name,Given Name,Family Name,Group Membership,E-mail 1 - Type,E-mail 1 - Value,Phone 1 - Type,Phone 1 - Value,Organization 1 - Name,Organization 1 - Title\n\
                        Grace Hopper,Grace,Hopper,* myContacts ::: Navy,* Work,grace@google.example,Work,555-0100,US Navy,Rear Admiral\n",
         json!({"first_name": "Grace", "last_name": "Hopper", "email": "grace@google.example", "phone": "555-0100", "job_title": "Rear Admiral", "company_name": "US Navy", "tags": ["mycontacts", "navy"]}),
         &["E-mail 1 - Type", "Phone 1 - Type"][..]),
        // Outlook: Title is a salutation beside Job Title; phones fall back in rank order.
        ("outlook", "Title,First Name,Middle Name,Last Name,Suffix,Company,Department,Job Title,Business Street,Business City,Business State,Business Postal Code,Business Country/Region,Business Phone,Mobile Phone,E-mail Address,E-mail 2 Address,Notes,Categories\n\
                     Ms.,Katherine,,Johnson,,NASA,Flight Research,Mathematician,1 Langley Blvd,Hampton,VA,23681,United States,,+1 757 555 0101,katherine@outlook.example,kj@home.example,Trajectories,Space;Math\n",
         json!({"first_name": "Katherine", "last_name": "Johnson", "email": "katherine@outlook.example", "phone": "+1 757 555 0101", "job_title": "Mathematician", "company_name": "NASA",
                "notes": "Trajectories", "tags": ["math", "space"],
                "address": {"street": "1 Langley Blvd", "city": "Hampton", "state": "VA", "postal_code": "23681", "country": "United States"}}),
         &["Middle Name", "Suffix", "Department", "Title"][..]),
        // HubSpot.
        ("hubspot", "Record ID,First Name,Last Name,Email,Phone Number,Mobile Phone Number,Job Title,Company Name,Street Address,City,State/Region,Postal Code,Country/Region,Lifecycle Stage,Original Source,Contact owner,Create Date\n\
                     901,Dorothy,Vaughan,dorothy@hubspot.example,,+1 555 0102,Supervisor,West Computers,2 Main St,Hampton,VA,23666,US,opportunity,Offline Sources,Jane Owner,2024-01-02\n",
         json!({"first_name": "Dorothy", "last_name": "Vaughan", "email": "dorothy@hubspot.example", "phone": "+1 555 0102", "job_title": "Supervisor", "company_name": "West Computers",
                "status": "prospect", "source": "Offline Sources",
                "address": {"street": "2 Main St", "city": "Hampton", "state": "VA", "postal_code": "23666", "country": "US"}}),
         &["Record ID", "Contact owner", "Create Date"][..]),
        // Salesforce: Title is the job title here.
        ("salesforce", "Contact ID,First Name,Last Name,Title,Account Name,Email,Phone,Mobile,Mailing Street,Mailing City,Mailing State/Province,Mailing Zip/Postal Code,Mailing Country,Lead Source,Description,Contact Owner\n\
                        003XX,Mary,Jackson,Engineer,NACA,mary@salesforce.example,+1 555 0103,,3 Wind Tunnel Rd,Hampton,VA,23665,USA,Web,First female engineer,Owner Name\n",
         json!({"first_name": "Mary", "last_name": "Jackson", "email": "mary@salesforce.example", "phone": "+1 555 0103", "job_title": "Engineer", "company_name": "NACA",
                "source": "Web", "notes": "First female engineer",
                "address": {"street": "3 Wind Tunnel Rd", "city": "Hampton", "state": "VA", "postal_code": "23665", "country": "USA"}}),
         &["Contact ID", "Contact Owner"][..]),
        // Pipedrive (person export).
        ("pipedrive", "Person - ID,Person - Name,Person - Organization,Person - Email - Work,Person - Email - Home,Person - Phone - Work,Person - Phone - Mobile,Person - Labels,Person - Job title,Person - Owner\n\
                       7,Annie Easley,NASA Lewis,annie@pipedrive.example,,,+1 555 0104,Hot lead,Programmer,Owner Name\n",
         json!({"first_name": "Annie", "last_name": "Easley", "email": "annie@pipedrive.example", "phone": "+1 555 0104", "job_title": "Programmer", "company_name": "NASA Lewis", "tags": ["hot lead"]}),
         &["Person - ID", "Person - Owner"][..]),
    ];
    for (name, file, expected, ignored) in files {
        let r = app.import(&t.admin, "", file).await;
        assert_eq!(r.status, StatusCode::OK, "{name}: {}", r.body);
        assert_eq!((r.body["created"].as_i64(), r.body["failed"].as_i64()), (Some(1), Some(0)), "{name}: {}", r.body);
        let mut got_ignored: Vec<&str> = r.body["ignored_columns"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        let mut want_ignored = ignored.to_vec();
        got_ignored.sort();
        want_ignored.sort();
        assert_eq!(got_ignored, want_ignored, "{name}: {}", r.body);
        let email = expected["email"].as_str().unwrap();
        let page = app.get(&format!("/api/v1/contacts?search={}", enc(email)), &t.admin).await.body;
        let contact = page["data"].as_array().unwrap().iter().find(|c| c["email"] == email).unwrap_or_else(|| panic!("{name}: {page}")).clone();
        for (field, value) in expected.as_object().unwrap() {
            if field == "address" {
                for (part, v) in value.as_object().unwrap() {
                    assert_eq!(&contact["address"][part], v, "{name}: address.{part}");
                }
            } else {
                assert_eq!(&contact[field], value, "{name}: {field}");
            }
        }
    }
}

// 4 ---------------------------------------------------------------------------------------

#[tokio::test]
async fn an_export_imports_unchanged_into_another_tenant() {
    let app = spawn_app().await;
    let a = app.tenant().await;
    let b = app.tenant().await;
    let acme = app.create_company(&a.admin, "Acme Ünited").await;
    let other = app.create_company(&a.admin, "Zeta 株式会社").await;
    let sources = [
        json!({"first_name": "@SUM(1+1)", "last_name": "=HYPERLINK(\"x\")", "email": "formula@a.example", "company_id": acme["id"], "job_title": "-Head", "phone": "+1 555 0100",
               "notes": "line one\nline two\r\nline three", "tags": ["vip", "beta"], "custom_fields": {"tier": "gold", "score": 7, "nested": {"a": [1, "b"]}, "guarded": "=1+1"},
               "status": "customer", "source": "'@handle", "address": {"street": "1 Main St", "city": "Zürich", "country": "Schweiz", "postal_code": "8001"}}),
        json!({"first_name": "王", "last_name": "小明", "email": "wang@a.example", "company_id": other["id"], "status": "prospect"}),
        json!({"first_name": "'tis", "last_name": "O'Neil", "email": "oneil@a.example", "notes": "+ plus note"}),
        json!({"first_name": "No", "last_name": "Company"}),
    ];
    for s in &sources {
        app.create_contact(&a.admin, s.clone()).await;
    }
    let export = app.send(app.builder(Method::GET, "/api/v1/contacts/export", Some(&a.admin))).await;
    assert_eq!(export.status, StatusCode::OK);
    let csv = export.body.as_str().expect("csv").to_owned();
    assert!(csv.contains("'@SUM(1+1)"), "the export guards formulas: {csv}");

    // B has a different company under A's id of Acme, and Acme itself under another case.
    app.create_company(&b.admin, "Unrelated").await;
    app.create_company(&b.admin, "Unrelated 2").await;
    app.create_company(&b.admin, "ACME ÜNITED").await;
    let r = app.import(&b.admin, "", csv.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!((r.body["created"].as_i64(), r.body["failed"].as_i64()), (Some(4), Some(0)), "{}", r.body);
    assert_eq!(r.body["companies_created"], 1, "Acme matched by name, Zeta created: {}", r.body);
    assert_eq!(r.body["ignored_columns"], json!(["id", "created_at", "created_by", "updated_at", "marketing_consent", "last_contacted_at"]));

    let list = |token: String| {
        let app = &app;
        async move { app.get("/api/v1/contacts?sort=first_name&limit=100", &token).await.expect(StatusCode::OK)["data"].as_array().unwrap().clone() }
    };
    let (in_a, in_b) = (list(a.admin.clone()).await, list(b.admin.clone()).await);
    assert_eq!(in_a.len(), 4);
    assert_eq!(in_b.len(), 4);
    for (x, y) in in_a.iter().zip(&in_b) {
        for field in ["first_name", "last_name", "email", "phone", "job_title", "status", "source", "address", "custom_fields", "notes", "tags", "owner_id"] {
            assert_eq!(x[field], y[field], "{field} of {}", x["email"]);
        }
        let lower = |v: &Value| v.as_str().map(str::to_lowercase);
        assert_eq!(lower(&x["company_name"]), lower(&y["company_name"]), "company of {}", x["email"]);
    }
    let b_acme = in_b.iter().find(|c| c["email"] == "formula@a.example").unwrap();
    let b_acme_company = app.get(&format!("/api/v1/companies/{}", b_acme["company_id"]), &b.admin).await.expect(StatusCode::OK);
    assert_eq!(b_acme_company["name"], "ACME ÜNITED", "matched case-insensitively, not by A's id");

    // The same file into A again updates nothing by surprise: every row is a duplicate.
    let r = app.import(&a.admin, "", csv).await;
    assert_eq!((r.body["skipped"].as_i64(), r.body["companies_created"].as_i64()), (Some(3), Some(0)), "{}", r.body);
}

// 5 ---------------------------------------------------------------------------------------

fn multipart(boundary: &str, parts: &[(&str, Option<&str>, &str)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, file, content) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file {
            Some(f) => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: text/csv\r\n\r\n").as_bytes()),
            None => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
        }
        body.extend_from_slice(content.as_bytes());
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}

#[tokio::test]
async fn multipart_form_uploads_import_like_the_raw_body() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let boundary = "------------------------d74496d66958873e";
    let send = |body: Vec<u8>, query: &'static str| {
        let req = app
            .builder(Method::POST, &format!("/api/v1/contacts/import{query}"), Some(&t.admin))
            .header("content-type", format!("multipart/form-data; boundary={boundary}"))
            .body(body);
        app.send(req)
    };
    // As curl -F file=@contacts.csv sends it, after a form field.
    let csv = "first_name,last_name,email\r\nA,B,a@x.example\r\nC,D,not-an-email\r\nÍñigo,Núñez,inigo@x.example\r\n";
    let r = send(multipart(boundary, &[("note", None, "ignored"), ("file", Some("contacts.csv"), csv)]), "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!((r.body["created"].as_i64(), r.body["failed"].as_i64()), (Some(2), Some(1)), "{}", r.body);
    assert_eq!(errors(&r.body), [(3, "email".to_owned())]);
    // The same limits and checks as the raw body: a duplicate column, then on_duplicate.
    let r = send(multipart(boundary, &[("upload", Some("x.csv"), "email,email\na@x.example,b@x.example\n")]), "").await;
    assert_eq!((r.status, r.body["details"]["reason"].as_str()), (StatusCode::BAD_REQUEST, Some("duplicate_column")), "{}", r.body);
    let r = send(multipart(boundary, &[("file", Some("x.csv"), "email,phone\na@x.example,123\n")]), "?on_duplicate=update").await;
    assert_eq!(r.body["updated"], 1, "{}", r.body);
    // A form without a file, a broken form, no boundary.
    let r = send(multipart(boundary, &[("note", None, "no file")]), "").await;
    assert_eq!(bad_fields(&r), ["file"]);
    let r = send(b"--nope\r\ngarbage".to_vec(), "").await;
    assert_eq!(bad_fields(&r), ["file"]);
    let req = app.builder(Method::POST, "/api/v1/contacts/import", Some(&t.admin)).header("content-type", "multipart/form-data").body("x");
    assert_eq!(bad_fields(&app.send(req).await), ["Content-Type"]);
    // Too large: 413 as for the raw body.
    let small = spawn_app_with(contact_service::Settings { import_max_bytes: 1024, ..Default::default() }).await;
    let t2 = small.tenant().await;
    let big = format!("first_name\n{}", "Row\n".repeat(1000));
    let req = small
        .builder(Method::POST, "/api/v1/contacts/import", Some(&t2.admin))
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(multipart(boundary, &[("file", Some("big.csv"), &big)]));
    assert_eq!(small.send(req).await.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(small.count(&t2.id, "contacts").await, 0);
}

// 6, 7 ------------------------------------------------------------------------------------

#[tokio::test]
async fn search_folds_accents_of_every_latin_letter() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let company = app.create_company(&t.admin, "Núñez & Søn Åkerlund").await;
    for (first, last) in [("Íñigo", "Núñez"), ("José", "Müller"), ("Łukasz", "Żółć"), ("Søren", "Ørsted"), ("Ðorđe", "Đoković"), ("Æsa", "Straße"), ("Zoë", "Çelik")] {
        app.create_contact(&t.admin, json!({"first_name": first, "last_name": last})).await;
    }
    app.create_contact(&t.admin, json!({"first_name": "Plain", "last_name": "Person", "company_id": company["id"]})).await;
    for (q, want) in [
        ("Nunez", "Íñigo Núñez"),
        ("Inigo", "Íñigo Núñez"),
        ("INIGO NUNEZ", "Íñigo Núñez"),
        ("íñigo", "Íñigo Núñez"),
        ("Jose Muller", "José Müller"),
        ("lukasz zolc", "Łukasz Żółć"),
        ("soren orsted", "Søren Ørsted"),
        ("djokovic", "Ðorđe Đoković"),
        ("dokovic", "Ðorđe Đoković"),
        ("strasse", "Æsa Straße"),
        ("aesa", "Æsa Straße"),
        ("zoe celik", "Zoë Çelik"),
    ] {
        let found = search(&app, &t.viewer, "/api/v1/contacts", q).await;
        assert_eq!(found.first().map(String::as_str), Some(want), "{q}: {found:?}");
    }
    // The company name is a word of its contacts, and the companies' own search folds too.
    assert!(search(&app, &t.viewer, "/api/v1/contacts", "akerlund").await.contains(&"Plain Person".to_owned()));
    for q in ["nunez", "NUNEZ", "son", "akerl", "Akerlund", "Søn", "nu"] {
        assert_eq!(search(&app, &t.viewer, "/api/v1/companies", q).await, ["Núñez & Søn Åkerlund"], "{q}");
    }
    assert!(search(&app, &t.viewer, "/api/v1/companies", "zz").await.is_empty());
}

#[tokio::test]
async fn cjk_names_are_found_as_people_write_them() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    for (first, last) in [("小明", "王"), ("太郎", "山田"), ("민준", "김"), ("ひろし", "たなか"), ("Xiaoming", "Wang")] {
        app.create_contact(&t.admin, json!({"first_name": first, "last_name": last})).await;
    }
    app.create_contact(&t.admin, json!({"first_name": "明", "last_name": "李"})).await;
    for (q, want) in [
        ("王小明", "小明 王"),
        ("王", "小明 王"),
        ("小明", "小明 王"),
        ("王 小明", "小明 王"),
        ("山田太郎", "太郎 山田"),
        ("山田", "太郎 山田"),
        ("김민준", "민준 김"),
        ("김", "민준 김"),
        ("たなかひろし", "ひろし たなか"),
        ("wang", "Xiaoming Wang"),
    ] {
        let found = search(&app, &t.viewer, "/api/v1/contacts", q).await;
        assert_eq!(found.first().map(String::as_str), Some(want), "{q}: {found:?}");
        assert!(found.iter().all(|f| q.chars().filter(|c| !c.is_whitespace()).all(|c| !crate_is_cjk(c) || f.contains(c))), "{q}: {found:?}");
    }
    // 明 alone finds both people with that character, ranked by similarity.
    let found = search(&app, &t.viewer, "/api/v1/contacts", "明").await;
    assert_eq!(found.len(), 2, "{found:?}");
    // A Latin letter alone is still too short; CJK companies are found by one character.
    assert_eq!(bad_fields(&app.get("/api/v1/contacts?search=a", &t.viewer).await), ["search"]);
    app.create_company(&t.admin, "阿里巴巴集团").await;
    assert_eq!(search(&app, &t.viewer, "/api/v1/companies", "阿里").await, ["阿里巴巴集团"]);
    assert_eq!(search(&app, &t.viewer, "/api/v1/companies", "集").await, ["阿里巴巴集团"]);
    assert_eq!(search(&app, &t.viewer, "/api/v1/companies", "巴巴集团").await, ["阿里巴巴集团"]);
}

fn crate_is_cjk(c: char) -> bool {
    contact_service::domain::is_cjk(c)
}

// 11 --------------------------------------------------------------------------------------

#[tokio::test]
async fn stale_writes_get_412_with_if_match() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    for (path, body, change) in [
        ("/api/v1/contacts", json!({"first_name": "Ann", "email": "ann@x.example"}), json!({"job_title": "CEO"})),
        ("/api/v1/companies", json!({"name": "Acme"}), json!({"industry": "Tools"})),
    ] {
        let created = app.post(path, &t.admin, body.clone()).await;
        assert_eq!(created.status, StatusCode::CREATED);
        let etag = created.header("etag").expect("ETag on 201").to_owned();
        let item = format!("{path}/{}", created.body["id"]);
        let got = app.get(&item, &t.viewer).await;
        assert_eq!(got.header("etag"), Some(etag.as_str()), "GET answers the same version");
        // Someone else changes it.
        let changed = app.patch(&item, &t.admin, change.clone()).await;
        assert_eq!(changed.status, StatusCode::OK);
        let fresh = changed.header("etag").expect("ETag on PATCH").to_owned();
        assert_ne!(fresh, etag);
        // The older copy is refused on PATCH, PUT and DELETE, and changes nothing.
        let stale = |m: Method, body: Option<Value>| {
            let mut req = app.builder(m, &item, Some(&t.admin)).header("if-match", etag.clone());
            if let Some(b) = body {
                req = req.json(&b);
            }
            app.send(req)
        };
        for (m, b) in [(Method::PATCH, Some(json!({"tags": ["x"]}))), (Method::PUT, Some(body.clone())), (Method::DELETE, None)] {
            let r = stale(m.clone(), b).await;
            assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "{m} {item}: {}", r.body);
            assert_eq!(error_code(&r), codes::PRECONDITION_FAILED);
        }
        assert_eq!(app.get(&item, &t.viewer).await.header("etag"), Some(fresh.as_str()));
        // The current tag (or *) passes; PUT answers the new one; without If-Match as before.
        let r = app.send(app.builder(Method::PUT, &item, Some(&t.admin)).header("if-match", fresh.clone()).json(&body)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let after_put = r.header("etag").unwrap().to_owned();
        let r = app.send(app.builder(Method::PATCH, &item, Some(&t.admin)).header("if-match", "*").json(&change)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_ne!(r.header("etag"), Some(after_put.as_str()));
        let r = app.send(app.builder(Method::PATCH, &item, Some(&t.admin)).header("if-match", "not-quoted").json(&change)).await;
        assert_eq!(bad_fields(&r), ["If-Match"]);
        let current = app.get(&item, &t.viewer).await.header("etag").unwrap().to_owned();
        let r = app.send(app.builder(Method::DELETE, &item, Some(&t.admin)).header("if-match", current)).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
        assert_eq!(app.get(&item, &t.viewer).await.status, StatusCode::NOT_FOUND);
    }
}

// 12, 13, 18 ------------------------------------------------------------------------------

#[tokio::test]
async fn control_characters_nul_and_wrong_types_are_400_naming_the_field() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    // 13: CR/LF in single-line fields of contacts and companies.
    let injected = "Bob\r\nBcc: x@y.example";
    for (path, body, field) in [
        ("/api/v1/contacts", json!({"first_name": injected}), "first_name"),
        ("/api/v1/contacts", json!({"first_name": "Bob", "last_name": "Smith\nEvil"}), "last_name"),
        ("/api/v1/contacts", json!({"first_name": "Bob", "job_title": "CE\rO"}), "job_title"),
        ("/api/v1/contacts", json!({"first_name": "Bob", "source": "web\u{85}x"}), "source"),
        ("/api/v1/contacts", json!({"first_name": "Bob", "address": {"city": "Paris\nLyon"}}), "address.city"),
        ("/api/v1/contacts", json!({"first_name": "Bob", "custom_fields": {"key\nX": "v"}}), "custom_fields"),
        ("/api/v1/contacts", json!({"first_name": "Bob", "tags": ["a\tb"]}), "tags"),
        ("/api/v1/contacts", json!({"first_name": "Бо\rб"}), "first_name"),
        ("/api/v1/companies", json!({"name": "Acme\r\nX-Header: y"}), "name"),
        ("/api/v1/companies", json!({"name": "Acme", "industry": "a\nb"}), "industry"),
        ("/api/v1/companies", json!({"name": "Acme", "address": {"street": "1\r\n2"}}), "address.street"),
    ] {
        let r = app.post(path, &t.admin, body.clone()).await;
        assert_eq!(bad_fields(&r), [field], "{body}");
        assert!(!r.body.to_string().contains("Bcc"), "values are not echoed: {}", r.body);
    }
    // Notes stay multi-line.
    let c = app.create_contact(&t.admin, json!({"first_name": "Bob", "notes": "line 1\r\nline 2\tend"})).await;
    assert_eq!(c["notes"], "line 1\r\nline 2\tend");
    let r = app.patch(&format!("/api/v1/contacts/{}", c["id"]), &t.admin, json!({"first_name": injected})).await;
    assert_eq!(bad_fields(&r), ["first_name"]);
    // 12: NUL in bodies and query parameters.
    let r = app.post("/api/v1/companies", &t.admin, json!({"name": "Acme", "custom_fields": {"tier": "go\u{0}ld"}})).await;
    assert_eq!(bad_fields(&r), ["custom_fields.tier"], "{}", r.body);
    let r = app.post("/api/v1/contacts", &t.admin, json!({"first_name": "Bob", "custom_fields": {"a": ["x", {"b": "\u{0}"}]}})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    for path in ["/api/v1/companies?search=ab%00", "/api/v1/contacts?search=ab%00", "/api/v1/contacts?tag=a%00", "/api/v1/companies?industry=x%00", "/api/v1/contacts?status=lead%00"] {
        let r = app.get(path, &t.admin).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {}", r.body);
        assert_eq!(error_code(&r), codes::VALIDATION_FAILED, "{path}");
    }
    // NUL in CSV cells: that row's error, the others imported.
    let r = app.import(&t.admin, "", b"first_name,company,custom.x,notes\r\nA\x00B,,,\r\nC,Ac\x00me,,\r\nD,,x\x00,\r\nE,,,n\x00\r\nOk,,,\r\n".to_vec()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(errors(&r.body), [(2, "first_name".into()), (3, "company".into()), (4, "custom_fields".into()), (5, "notes".into())], "{}", r.body);
    assert_eq!(r.body["created"], 1);
    let r = app.import(&t.admin, "", "first_name,custom_fields\nA,\"{\"\"x\"\": \"\"\\u0000\"\"}\"\n").await;
    assert_eq!(errors(&r.body), [(2, "custom_fields".into())], "{}", r.body);
    // 18: wrong types name each field.
    for (path, body, field) in [
        ("/api/v1/contacts", json!({"first_name": "Bob", "company_id": "12"}), "company_id"),
        ("/api/v1/contacts", json!({"first_name": "Bob", "tags": "vip"}), "tags"),
        ("/api/v1/contacts", json!({"first_name": "Bob", "address": {"city": 5}}), "address.city"),
        ("/api/v1/companies", json!({"name": 5}), "name"),
        ("/api/v1/companies", json!({"name": "Acme", "parent_company_id": 1.5}), "parent_company_id"),
    ] {
        let r = app.post(path, &t.admin, body.clone()).await;
        assert_eq!(bad_fields(&r), [field], "{body}: {}", r.body);
    }
    let r = app.patch(&format!("/api/v1/contacts/{}", c["id"]), &t.admin, json!({"owner_id": "2026-11-30"})).await;
    assert_eq!(bad_fields(&r), ["owner_id"]);
    assert_eq!(bad_fields(&app.get("/api/v1/contacts?limit=abc", &t.admin).await), ["limit"]);
}

// 15 --------------------------------------------------------------------------------------

#[tokio::test]
async fn every_list_refuses_sorts_outside_its_whitelist() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let c = app.create_contact(&t.admin, json!({"first_name": "Ann"})).await;
    let co = app.create_company(&t.admin, "Acme").await;
    let lists = [
        "/api/v1/contacts".to_owned(),
        "/api/v1/companies".to_owned(),
        format!("/api/v1/companies/{}/children", co["id"]),
        format!("/api/v1/contacts/{}/status-history", c["id"]),
        "/api/v1/tags".to_owned(),
        format!("/api/v1/contacts/basic?ids={}", c["id"]),
        format!("/api/v1/companies/basic?ids={}", co["id"]),
        "/api/v1/contacts/export".to_owned(),
    ];
    for list in &lists {
        for bad in ["password_hash", "id;DROP TABLE contacts", "-email", "custom_fields"] {
            let sep = if list.contains('?') { '&' } else { '?' };
            let r = app.get(&format!("{list}{sep}sort={}", enc(bad)), &t.admin).await;
            assert_eq!(bad_fields(&r), ["sort"], "{list} sort={bad}");
        }
    }
    // Their own orders still work.
    for ok in ["/api/v1/contacts?sort=-updated_at", "/api/v1/companies?sort=created_at", "/api/v1/tags?sort=tag", "/api/v1/contacts/export?sort=id"] {
        assert_eq!(app.get(ok, &t.admin).await.status, StatusCode::OK, "{ok}");
    }
    let r = app.get(&format!("/api/v1/contacts/{}/status-history?sort=-changed_at", c["id"]), &t.admin).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

// 16 --------------------------------------------------------------------------------------

#[tokio::test]
async fn a_token_on_another_tenants_address_is_refused() {
    let app = spawn_app().await;
    let a = app.tenant().await;
    let b = app.tenant().await;
    let contact = app.create_contact(&a.admin, json!({"first_name": "Ann"})).await;
    // Test tenants' subdomains are `t-<id>` under the default base domain.
    let host = format!("t-{}.crm.localhost", a.id.to_string().to_ascii_lowercase());
    for (method, path) in [
        (Method::GET, "/api/v1/contacts".to_owned()),
        (Method::GET, format!("/api/v1/contacts/{}", contact["id"])),
        (Method::GET, "/api/v1/companies".to_owned()),
        (Method::GET, "/api/v1/contacts/export".to_owned()),
        (Method::POST, "/api/v1/contacts".to_owned()),
        (Method::DELETE, format!("/api/v1/contacts/{}", contact["id"])),
    ] {
        let r = app.send(app.builder(method.clone(), &path, Some(&b.admin)).header("host", &host).json(&json!({"first_name": "X"}))).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} {path}: {}", r.body);
        assert_eq!(error_code(&r), "TENANT_MISMATCH");
    }
    let r = app.send(app.builder(Method::GET, "/api/v1/contacts", Some(&a.admin)).header("host", &host)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(app.count(&a.id, "contacts").await, 1);
    assert_eq!(app.count(&b.id, "contacts").await, 0);
}

/// Item 9: a contact or company PUT back exactly as read (ids, names, timestamps included)
/// always succeeds; a field that is not the resource's is still refused.
#[tokio::test]
async fn records_put_back_exactly_as_read_succeed() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let company = app.create_company(&t.admin, "Globex").await["id"].as_i64().unwrap();
    for (path, body) in [
        ("/api/v1/contacts", json!({"first_name": "Ann", "email": "ann@x.example", "company_id": company, "tags": ["vip"], "address": {"city": "Köln"}})),
        ("/api/v1/companies", json!({"name": "Initech", "address": {"city": "Austin"}, "custom_fields": {"tier": "gold"}})),
    ] {
        let created = app.post(path, &t.admin, body).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        let item = format!("{path}/{}", created.body["id"]);
        let read = app.get(&item, &t.admin).await;
        let tag = read.header("etag").expect("ETag").to_owned();
        let put = app.send(app.builder(Method::PUT, &item, Some(&t.admin)).header("if-match", tag).json(&read.body)).await;
        assert_eq!(put.status, StatusCode::OK, "{item}: {}", put.body);
        let mut bogus = read.body.clone();
        bogus["bogus"] = json!(1);
        assert_eq!(app.put(&item, &t.admin, bogus).await.status, StatusCode::BAD_REQUEST, "{item}");
    }
}
