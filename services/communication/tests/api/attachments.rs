//! Issue 16, files: `POST /attachments` (multipart, streamed to the filesystem store), the
//! metadata, the download, the list, delete, permissions, other tenants, a restart of the
//! service, and the erasure of the record a file is about.

use communication_service::service::attachments::{remove_deleted_tenants, remove_due};
use communication_service::service::storage::Location;
use crm_client_communication::subjects::{ATTACHMENT_CREATED, ATTACHMENT_DELETED};
use crm_client_contact::subjects::{COMPANY_DELETED, CONTACT_DELETED};
use crm_client_contact::{CompanyBasicInfo, ContactBasicInfo};
use crm_events::Envelope;
use crm_testing::wait_until;
use crm_web::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::*;

const BOUNDARY: &str = "crm-test-boundary-7MA4YWxkTrZu0gW";

/// One part of a multipart body: name, file name (for the file part), bytes.
type Part<'a> = (&'a str, Option<&'a str>, &'a [u8]);

fn multipart(parts: &[Part<'_>]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, file_name, bytes) in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match file_name {
            // The client's content type is a lie on purpose: it must be ignored.
            Some(f) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/x-lie\r\n\r\n").as_bytes(),
            ),
            None => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn upload(app: &TestApp, token: &str, parts: &[Part<'_>]) -> Response {
    let req = app
        .client
        .builder(Method::POST, "/api/v1/attachments", Some(token))
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(multipart(parts));
    app.client.send(req).await
}

/// The raw download: status, headers, bytes.
async fn download(app: &TestApp, token: &str, id: &Value) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let resp = app.client.builder(Method::GET, &format!("/api/v1/attachments/{id}/content"), Some(token)).send().await.expect("download");
    let (status, headers) = (resp.status(), resp.headers().clone());
    (status, headers, resp.bytes().await.expect("bytes").to_vec())
}

/// Bytes that are not text (and not any known format): a repeating non-UTF-8 pattern.
fn binary(len: usize) -> Vec<u8> {
    (0..len).map(|i| [0xffu8, 0x00, 0x13, 0x37, (i % 251) as u8][i % 5]).collect()
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

async fn storage_key(app: &TestApp, tenant: &crm_tenant::TenantId, id: i64) -> String {
    let client = app.platform.pool.get().await.expect("connection");
    let sql = format!("SELECT storage_key FROM {}.attachments WHERE id = $1", tenant.schema().quoted());
    client.query_one(&sql, &[&(id as i32)]).await.expect("storage key").get(0)
}

async fn object_exists(app: &TestApp, key: &str) -> bool {
    app.state.settings.attachments.store.exists(key).await.expect("store")
}

/// The tenant has no file in the store at all: no object, and (the test store is a local
/// directory) no staging file of an unfinished upload either.
async fn no_objects(app: &TestApp, tenant: &crm_tenant::TenantId) -> bool {
    let Location::Local(root) = app.state.settings.attachments.store.location() else { panic!("the tests use a local store") };
    fn files(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir).map(|entries| entries.flatten().map(|e| if e.path().is_dir() { files(&e.path()) } else { 1 }).sum()).unwrap_or(0)
    }
    files(&root.join(tenant.to_string())) == 0
}

#[tokio::test]
async fn upload_metadata_download_round_trip() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let rep = app.token(&t, REP, Role::SalesRep);
    let mut created = app.platform.events(ATTACHMENT_CREATED).await;
    // Several chunks and more than one part of the store's buffer.
    let bytes = binary(6 * 1024 * 1024 + 12_345);
    let r = upload(&app, &rep, &[("contact_id", None, ADA.to_string().as_bytes()), ("deal_id", None, b"20"), ("file", Some("Q3 report.bin"), &bytes)]).await;
    let body = r.expect(StatusCode::CREATED);
    assert_eq!(body["file_name"], "Q3 report.bin");
    assert_eq!(body["content_type"], "application/octet-stream");
    assert_eq!(body["size_bytes"], bytes.len());
    assert_eq!(body["sha256"], sha256(&bytes));
    assert_eq!((body["uploaded_by"].as_i64(), body["contact_id"].as_i64(), body["deal_id"].as_i64()), (Some(REP as i64), Some(ADA as i64), Some(BIG_DEAL as i64)));
    assert!(body["company_id"].is_null() && body["activity_id"].is_null());
    let id = body["id"].clone();
    let event = created.wait_for(&t.id, ATTACHMENT_CREATED, WAIT).await;
    assert_eq!((event.data["id"].clone(), event.data["sha256"].clone(), event.actor.clone()), (id.clone(), body["sha256"].clone(), Some(REP.to_string())));
    // No upload left queued for removal.
    assert_eq!(app.count(&t.id, "attachment_removals", "true").await, 0);

    let meta = app.get(&format!("/api/v1/attachments/{id}"), &rep).await;
    assert!(meta.headers.contains_key("etag"));
    assert_eq!(meta.expect(StatusCode::OK), body);

    let (status, headers, got) = download(&app, &rep, &id).await;
    assert_eq!(status, StatusCode::OK);
    assert!(got == bytes, "downloaded bytes differ ({} vs {} bytes)", got.len(), bytes.len());
    assert_eq!(headers["content-type"], "application/octet-stream");
    assert_eq!(headers["content-length"], bytes.len().to_string().as_str());
    assert_eq!(headers["content-disposition"], "attachment; filename=\"Q3 report.bin\"; filename*=UTF-8''Q3%20report.bin");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["etag"], format!("\"{}\"", sha256(&bytes)).as_str());

    // Listed on its contact and its deal, not on another record.
    let on_contact = app.get(&format!("/api/v1/attachments?contact_id={ADA}&count=true"), &rep).await.expect(StatusCode::OK);
    assert_eq!((on_contact["data"][0]["id"].clone(), on_contact["pagination"]["total_count"].as_i64()), (id.clone(), Some(1)));
    let on_deal = app.get(&format!("/api/v1/attachments?deal_id={BIG_DEAL}"), &rep).await.expect(StatusCode::OK);
    assert_eq!(on_deal["data"].as_array().map(Vec::len), Some(1));
    let elsewhere = app.get(&format!("/api/v1/attachments?company_id={ACME}"), &rep).await.expect(StatusCode::OK);
    assert_eq!(elsewhere["data"], json!([]));
}

#[tokio::test]
async fn the_content_type_is_sniffed_not_trusted_and_names_are_encoded() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";
    let r = upload(&app, &t.admin, &[("file", Some("innocent.txt"), png), ("company_id", None, ACME.to_string().as_bytes())]).await;
    let body = r.expect(StatusCode::CREATED);
    assert_eq!(body["content_type"], "image/png");
    let (_, headers, got) = download(&app, &t.admin, &body["id"]).await;
    assert_eq!((headers["content-type"].to_str().unwrap(), got.as_slice()), ("image/png", &png[..]));

    let name = "Résumé 履歴書 (v2).txt";
    let r = upload(&app, &t.admin, &[("contact_id", None, ADA.to_string().as_bytes()), ("file", Some(name), "Grüße, Ada\n".as_bytes())]).await;
    let body = r.expect(StatusCode::CREATED);
    assert_eq!((body["content_type"].as_str(), body["file_name"].as_str()), (Some("text/plain"), Some(name)));
    let (_, headers, _) = download(&app, &t.admin, &body["id"]).await;
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"R_sum_ ___ (v2).txt\"; filename*=UTF-8''R%C3%A9sum%C3%A9%20%E5%B1%A5%E6%AD%B4%E6%9B%B8%20%28v2%29.txt"
    );
}

#[tokio::test]
async fn an_oversized_file_is_refused_with_413_and_leaves_nothing() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let max = app.state.settings.attachments.max_bytes as usize;
    let r = upload(&app, &t.admin, &[("contact_id", None, ADA.to_string().as_bytes()), ("file", Some("huge.bin"), &binary(max + 1))]).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.body);
    assert_eq!(error_code(&r), "PAYLOAD_TOO_LARGE");
    assert_eq!(app.count(&t.id, "attachments", "true").await, 0);
    assert_eq!(app.count(&t.id, "attachment_removals", "true").await, 0);
    assert!(no_objects(&app, &t.id).await);
    // Exactly the limit is fine.
    let r = upload(&app, &t.admin, &[("contact_id", None, ADA.to_string().as_bytes()), ("file", Some("big.bin"), &binary(max))]).await;
    assert_eq!(r.expect(StatusCode::CREATED)["size_bytes"], max);
}

#[tokio::test]
async fn bad_uploads_are_4xx_naming_the_field_and_leave_nothing() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let ada = ADA.to_string();
    let cases: Vec<(Vec<Part<'_>>, StatusCode, &str)> = vec![
        (vec![("contact_id", None, ada.as_bytes())], StatusCode::BAD_REQUEST, "file"),
        (vec![("file", Some("a.txt"), b"hello")], StatusCode::BAD_REQUEST, "contact_id"),
        (vec![("contact_id", None, b"abc"), ("file", Some("a.txt"), b"hello")], StatusCode::BAD_REQUEST, "contact_id"),
        (vec![("deal_id", None, b"-3"), ("file", Some("a.txt"), b"hello")], StatusCode::BAD_REQUEST, "deal_id"),
        (vec![("contact_id", None, ada.as_bytes()), ("file", Some("../etc/passwd"), b"hello")], StatusCode::BAD_REQUEST, "file"),
        (vec![("contact_id", None, ada.as_bytes()), ("file", Some(""), b"hello")], StatusCode::BAD_REQUEST, "file"),
        (vec![("contact_id", None, ada.as_bytes()), ("owner", None, b"1"), ("file", Some("a.txt"), b"hello")], StatusCode::BAD_REQUEST, "owner"),
        (vec![("contact_id", None, ada.as_bytes()), ("file", Some("a.txt"), b"one"), ("file", Some("b.txt"), b"two")], StatusCode::BAD_REQUEST, "file"),
        // References that do not exist: after the file was stored.
        (vec![("file", Some("a.txt"), b"hello"), ("contact_id", None, b"999999")], StatusCode::UNPROCESSABLE_ENTITY, "contact_id"),
        (vec![("file", Some("a.txt"), b"hello"), ("activity_id", None, b"424242")], StatusCode::UNPROCESSABLE_ENTITY, "activity_id"),
    ];
    for (parts, status, field) in cases {
        let r = upload(&app, &t.admin, &parts).await;
        assert_eq!(r.status, status, "{parts:?}: {}", r.body);
        field_error(&r, field);
    }
    // Not multipart at all, and a truncated body.
    let r = app.post("/api/v1/attachments", &t.admin, json!({"contact_id": ADA})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let mut truncated = multipart(&[("contact_id", None, ada.as_bytes()), ("file", Some("a.txt"), b"hello")]);
    truncated.truncate(truncated.len() - 30);
    let req = app
        .client
        .builder(Method::POST, "/api/v1/attachments", Some(&t.admin))
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(truncated);
    let r = app.client.send(req).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);

    assert_eq!(app.count(&t.id, "attachments", "true").await, 0);
    assert_eq!(app.count(&t.id, "attachment_removals", "true").await, 0);
    assert!(no_objects(&app, &t.id).await);
    // Ids that cannot exist, and garbage list parameters.
    for path in ["/api/v1/attachments/0", "/api/v1/attachments/abc", "/api/v1/attachments/99999/content"] {
        assert_eq!(app.get(path, &t.admin).await.status, StatusCode::NOT_FOUND, "{path}");
    }
    for query in ["contact_id=abc", "limit=0", "limit=100000", "sort=file_name", "cursor=garbage"] {
        let r = app.get(&format!("/api/v1/attachments?{query}"), &t.admin).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}: {}", r.body);
    }
}

#[tokio::test]
async fn a_file_survives_a_restart_of_the_service() {
    let bytes = binary(300_000);
    let (tenant, id) = {
        let app = spawn_app().await;
        let t = app.tenant().await;
        let body = upload(&app, &t.admin, &[("file", Some("kept.bin"), &bytes), ("contact_id", None, ADA.to_string().as_bytes())]).await.expect(StatusCode::CREATED);
        (t.id, body["id"].clone())
    };
    // A new instance of the service over the same database and store directory.
    let app = spawn_app().await;
    app.adopt(&tenant);
    let admin = app.platform.token(&tenant, ADMIN, Role::Admin);
    let meta = app.get(&format!("/api/v1/attachments/{id}"), &admin).await.expect(StatusCode::OK);
    assert_eq!(meta["sha256"], sha256(&bytes));
    let (status, _, got) = download(&app, &admin, &id).await;
    assert_eq!(status, StatusCode::OK);
    assert!(got == bytes, "the file changed across the restart");
}

#[tokio::test]
async fn another_tenant_sees_nothing_and_changes_nothing() {
    let app = spawn_app().await;
    let (a, b) = (app.tenant().await, app.tenant().await);
    let body = upload(&app, &a.admin, &[("contact_id", None, ADA.to_string().as_bytes()), ("file", Some("a.txt"), b"tenant a")]).await.expect(StatusCode::CREATED);
    let id = &body["id"];
    assert_eq!(app.get(&format!("/api/v1/attachments/{id}"), &b.admin).await.status, StatusCode::NOT_FOUND);
    assert_eq!(download(&app, &b.admin, id).await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.delete(&format!("/api/v1/attachments/{id}"), &b.admin).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/api/v1/attachments?contact_id={ADA}"), &b.admin).await.expect(StatusCode::OK)["data"], json!([]));
    // Still there for its own tenant.
    assert_eq!(download(&app, &a.admin, id).await.2, b"tenant a");
}

#[tokio::test]
async fn roles_upload_read_and_delete_as_the_matrix_says() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let (rep, other, viewer, manager) =
        (app.token(&t, REP, Role::SalesRep), app.token(&t, OTHER_REP, Role::SalesRep), app.token(&t, VIEWER, Role::Viewer), app.token(&t, 5, Role::Manager));
    let ada = ADA.to_string();
    let r = upload(&app, &viewer, &[("contact_id", None, ada.as_bytes()), ("file", Some("v.txt"), b"viewer")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let first = upload(&app, &rep, &[("contact_id", None, ada.as_bytes()), ("file", Some("r1.txt"), b"one")]).await.expect(StatusCode::CREATED);
    let second = upload(&app, &rep, &[("contact_id", None, ada.as_bytes()), ("file", Some("r2.txt"), b"two")]).await.expect(StatusCode::CREATED);
    // Everyone reads.
    assert_eq!(download(&app, &viewer, &first["id"]).await.2, b"one");
    assert_eq!(app.get(&format!("/api/v1/attachments?contact_id={ADA}"), &other).await.expect(StatusCode::OK)["data"].as_array().map(Vec::len), Some(2));
    // Another sales rep and a viewer may not delete the rep's file; the rep and a manager may.
    let mut deleted = app.platform.events(ATTACHMENT_DELETED).await;
    assert_eq!(app.delete(&format!("/api/v1/attachments/{}", first["id"]), &other).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.delete(&format!("/api/v1/attachments/{}", first["id"]), &viewer).await.status, StatusCode::FORBIDDEN);
    let key = storage_key(&app, &t.id, first["id"].as_i64().unwrap()).await;
    assert!(object_exists(&app, &key).await);
    let stale = app.with_headers(Method::DELETE, &format!("/api/v1/attachments/{}", first["id"]), &rep, &[("If-Match", "\"1\"")], None).await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED, "{}", stale.body);
    assert_eq!(app.delete(&format!("/api/v1/attachments/{}", first["id"]), &rep).await.status, StatusCode::NO_CONTENT);
    // The object is gone with the row, at once.
    assert!(!object_exists(&app, &key).await);
    assert_eq!(app.count(&t.id, "attachment_removals", "true").await, 0);
    assert_eq!(app.get(&format!("/api/v1/attachments/{}", first["id"]), &rep).await.status, StatusCode::NOT_FOUND);
    let event = deleted.wait_for(&t.id, ATTACHMENT_DELETED, WAIT).await;
    assert_eq!((event.data["id"].clone(), event.actor.clone()), (first["id"].clone(), Some(REP.to_string())));
    assert_eq!(app.delete(&format!("/api/v1/attachments/{}", second["id"]), &manager).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.count(&t.id, "attachments", "true").await, 0);
}

async fn publish_gone(app: &TestApp, event: Envelope) {
    app.publish(&event, &event.id).await;
}

#[tokio::test]
async fn erasing_a_record_removes_its_files_rows_and_objects() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    let ada = ADA.to_string();
    let acme = ACME.to_string();
    let on_ada = upload(&app, &t.admin, &[("contact_id", None, ada.as_bytes()), ("company_id", None, acme.as_bytes()), ("file", Some("ada.txt"), b"about Ada")])
        .await
        .expect(StatusCode::CREATED);
    let on_acme = upload(&app, &t.admin, &[("company_id", None, acme.as_bytes()), ("file", Some("acme.txt"), b"about Acme")]).await.expect(StatusCode::CREATED);
    let shared = upload(&app, &t.admin, &[("company_id", None, acme.as_bytes()), ("deal_id", None, b"20"), ("file", Some("deal.txt"), b"about the deal")])
        .await
        .expect(StatusCode::CREATED);
    let keys = [
        storage_key(&app, &t.id, on_ada["id"].as_i64().unwrap()).await,
        storage_key(&app, &t.id, on_acme["id"].as_i64().unwrap()).await,
        storage_key(&app, &t.id, shared["id"].as_i64().unwrap()).await,
    ];

    // The contact is erased: its file goes, even though it is also about the company.
    let data = ContactBasicInfo { id: ADA, first_name: "Ada".into(), last_name: "Lovelace".into(), email: "ada@example.com".into(), marketing_consent: Default::default() };
    publish_gone(&app, Envelope::new(CONTACT_DELETED, &t.id, Some(ADMIN.to_string()), data).expect("envelope")).await;
    wait_until("the contact's file row deleted", WAIT, || async { (app.count(&t.id, "attachments", &format!("id = {}", on_ada["id"])).await == 0).then_some(()) }).await;
    assert_eq!(remove_due(&app.state, &t.id).await.expect("removals"), 1);
    assert!(!object_exists(&app, &keys[0]).await);
    assert!(object_exists(&app, &keys[1]).await && object_exists(&app, &keys[2]).await);

    // The company is deleted for good: the file only about it goes, the one also about the
    // deal stays without the company.
    publish_gone(&app, Envelope::new(COMPANY_DELETED, &t.id, Some(ADMIN.to_string()), CompanyBasicInfo { id: ACME, name: "Acme".into() }).expect("envelope")).await;
    wait_until("the company's file row deleted", WAIT, || async { (app.count(&t.id, "attachments", &format!("id = {}", on_acme["id"])).await == 0).then_some(()) }).await;
    assert_eq!(remove_due(&app.state, &t.id).await.expect("removals"), 1);
    assert!(!object_exists(&app, &keys[1]).await);
    let kept = app.get(&format!("/api/v1/attachments/{}", shared["id"]), &t.admin).await.expect(StatusCode::OK);
    assert_eq!((kept["company_id"].clone(), kept["deal_id"].as_i64()), (Value::Null, Some(BIG_DEAL as i64)));
    assert!(object_exists(&app, &keys[2]).await);
    assert_eq!(app.count(&t.id, "attachment_removals", "true").await, 0);
}

#[tokio::test]
async fn a_deleted_tenants_objects_are_removed() {
    let app = spawn_app().await;
    let t = app.tenant().await;
    upload(&app, &t.admin, &[("contact_id", None, ADA.to_string().as_bytes()), ("file", Some("a.txt"), b"bye")]).await.expect(StatusCode::CREATED);
    let keep = app.tenant().await;
    upload(&app, &keep.admin, &[("contact_id", None, ADA.to_string().as_bytes()), ("file", Some("b.txt"), b"stay")]).await.expect(StatusCode::CREATED);
    assert!(!no_objects(&app, &t.id).await);
    // The tenant is deleted as tenant-service does it: its row and schema dropped.
    let client = app.platform.pool.get().await.expect("connection");
    client.batch_execute(&format!("DROP SCHEMA {} CASCADE; DELETE FROM platform.tenants WHERE id = '{}'", t.id.schema().quoted(), t.id)).await.expect("drop tenant");
    remove_deleted_tenants(&app.state).await.expect("sweep");
    assert!(no_objects(&app, &t.id).await);
    assert!(!no_objects(&app, &keep.id).await);
}
