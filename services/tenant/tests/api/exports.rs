//! Issue 16, tenant export: `POST /tenants/{id}/export` -> a job the worker turns into an
//! archive -> download -> `import_archive` into a fresh installation (another database)
//! reproduces every row of every table; permissions; a damaged or conflicting archive is
//! refused with nothing written.

use std::path::Path;

use crm_database::{create_pool, migrate};
use crm_tenant::{TenantDb, TenantId};
use crm_web::Role;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use reqwest::StatusCode;
use serde_json::json;
use tenant_service::Settings;
use tenant_service::service::archive::{ImportOptions, import_archive};
use tenant_service::service::exports::run_one;

use crate::helpers::*;

/// Rows with what breaks naive dumps: line breaks, quotes, backslashes, non-ASCII, arrays,
/// JSON, exact decimals, time zones, NULLs, and ids with gaps.
async fn seed(db: &TenantDb, files: &dyn ObjectStore, tenant: &TenantId) {
    let key = format!("{tenant}/01JFILE0000000000000000000");
    files.put(&StorePath::from(key.as_str()), PutPayload::from(FILE_BYTES.to_vec())).await.expect("store a file");
    // An earlier export of the tenant: not part of the next archive.
    files.put(&StorePath::from(format!("{tenant}/exports/old.tar.gz")), PutPayload::from_static(b"old")).await.expect("store");
    let tx = db.tenant(tenant).await.expect("tenant tx");
    let sql = "INSERT INTO attachments (file_name, content_type, size_bytes, sha256, storage_key, uploaded_by, contact_id)
               VALUES ('notes.bin', 'application/octet-stream', 4, repeat('a', 64), $1, 1, 3)";
    for sql in [
        "INSERT INTO users (email, password_hash, first_name, last_name, role) VALUES ('ada@example.com', '$2b$12$abcdefghijklmnopqrstuv', 'Ada', 'Lovelace', 'admin')",
        "INSERT INTO companies (id, name, created_by) VALUES (7, 'Ümlaut \"Quoted\" GmbH', 1)",
        "INSERT INTO contacts (id, first_name, last_name, created_by, company_id, tags, notes) VALUES
            (3, 'Zoë', 'O''Brien', 1, 7, ARRAY['vip', 'a,b', 'quote\"d'], E'line one\\nline two\\\\ and a backslash\\ttab'),
            (40, '名前', 'テスト', 1, NULL, '{}', NULL)",
        "INSERT INTO deals (id, title, stage_key, probability, value, currency, primary_contact_id, company_id, custom_fields) VALUES
            (5, 'Big 🚀 deal', 'qualified', 20, 12345.67, 'EUR', 3, 7, '{\"tier\": \"gold\", \"nested\": {\"a\": [1, 2.5, null]}}')",
    ] {
        tx.execute(sql, &[]).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    tx.execute(sql, &[&key]).await.expect("attachment row");
    tx.commit().await.expect("commit");
}

const FILE_BYTES: &[u8] = b"\x00\x01binary\xffbytes";

async fn stored(files: &dyn ObjectStore, key: &str) -> Option<Vec<u8>> {
    let got = files.get(&StorePath::from(key)).await.ok()?;
    Some(got.bytes().await.expect("read").to_vec())
}

/// Every carried table of `tenant` as one canonical JSON text per table.
async fn snapshot(db: &TenantDb, tenant: &TenantId) -> Vec<(String, String)> {
    let tx = db.tenant(tenant).await.expect("tenant tx");
    let schema = tx.schema().as_str().to_owned();
    let tables: Vec<String> = tx
        .query("SELECT relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND relkind = 'r' ORDER BY 1", &[&schema])
        .await
        .expect("tables")
        .iter()
        .map(|r| r.get(0))
        .filter(|t: &String| !t.ends_with("_schema_history") && !["outbox", "processed_events", "dead_letters", "refresh_tokens", "password_reset_tokens"].contains(&t.as_str()))
        .collect();
    let mut out = Vec::new();
    for table in tables {
        let sql = format!("SELECT coalesce(json_agg(j ORDER BY j), '[]')::text FROM (SELECT row_to_json(t)::text AS j FROM \"{table}\" t) s");
        out.push((table, tx.query_one(sql.as_str(), &[]).await.expect("rows").get(0)));
    }
    out
}

/// A fresh installation: a new database with the platform schema; dropped by [`Fresh::drop_db`].
struct Fresh {
    db: TenantDb,
    admin: crm_database::Pool,
    name: String,
}

impl Fresh {
    async fn create(base: &crm_database::Pool) -> Self {
        let name = format!("crm_import_{}", ulid::Ulid::generate().to_string().to_lowercase());
        let admin_client = base.get().await.expect("connection");
        // What an earlier run that failed midway left (only this test makes these databases).
        let leftovers = admin_client.query("SELECT datname::text FROM pg_database WHERE datname LIKE 'crm\\_import\\_%'", &[]).await.expect("databases");
        for row in leftovers {
            let old: String = row.get(0);
            admin_client.batch_execute(&format!("DROP DATABASE IF EXISTS \"{old}\" WITH (FORCE)")).await.expect("drop a leftover");
        }
        admin_client.batch_execute(&format!("CREATE DATABASE \"{name}\"")).await.expect("create database");
        let mut config = crm_testing::test_db_config();
        let (prefix, _) = config.url.rsplit_once('/').expect("database url with a name");
        config.url = format!("{prefix}/{name}");
        let pool = create_pool(&config).expect("pool");
        pool.get().await.expect("connection").batch_execute("CREATE EXTENSION IF NOT EXISTS pg_trgm; CREATE EXTENSION IF NOT EXISTS unaccent").await.expect("extensions");
        migrate::migrate_platform(&pool).await.expect("platform schema");
        Self { db: TenantDb::new(pool), admin: base.clone(), name }
    }

    async fn drop_db(self) {
        drop(self.db);
        let client = self.admin.get().await.expect("connection");
        client.batch_execute(&format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name)).await.expect("drop database");
    }
}

async fn download(app: &TestApp, url: &str, bearer: &str, to: &Path) -> reqwest::Response {
    let r = app.http.get(format!("{}{url}", app.url)).bearer_auth(bearer).send().await.expect("download");
    if r.status() == StatusCode::OK {
        let bytes = r.bytes().await.expect("body");
        std::fs::write(to, &bytes).expect("write archive");
        app.http.get(format!("{}{url}", app.url)).bearer_auth(bearer).send().await.expect("download again")
    } else {
        r
    }
}

#[tokio::test]
async fn export_then_import_into_a_fresh_installation_reproduces_every_record() {
    let store = tempfile::tempdir().expect("tempdir");
    let files = tempfile::tempdir().expect("tempdir");
    let settings = Settings {
        exports_url: format!("file://{}", store.path().display()),
        attachments_url: format!("file://{}", files.path().display()),
        ..Settings::default()
    };
    let app = spawn_app_with(settings).await;
    let a = app.signup().await;
    seed(&app.platform.db, app.state.exports.files.as_ref(), &a.id).await;
    let admin = app.token(&a.id, Role::Admin);

    let r = app.post(&format!("/api/v1/tenants/{}/export", a.id), Some(&admin), json!({})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.body["status"], "pending");
    let export_id = r.body["id"].as_str().expect("export id").to_owned();
    // Asked again while unfinished: the same job.
    let again = app.post(&format!("/api/v1/tenants/{}/export", a.id), Some(&admin), json!({})).await;
    assert_eq!(again.body["id"], export_id.as_str());
    let status_path = format!("/api/v1/tenants/{}/exports/{export_id}", a.id);
    // Not done yet: the archive is not there to download.
    let early = app.get(&format!("{status_path}/archive"), Some(&admin)).await;
    assert_eq!(early.status, StatusCode::CONFLICT, "{}", early.body);

    // The worker (run here once instead of as a background task).
    while run_one(&app.platform.db, app.state.exports.store.as_ref(), app.state.exports.files.as_ref(), 7).await.expect("worker") {}
    let done = app.get(&status_path, Some(&admin)).await;
    assert_eq!((done.status, done.body["status"].as_str()), (StatusCode::OK, Some("done")), "{}", done.body);
    let url = done.body["download_url"].as_str().expect("download_url").to_owned();
    let work = tempfile::tempdir().expect("tempdir");
    let file = work.path().join("export.tar.gz");
    let r = download(&app, &url, &admin, &file).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/gzip");
    assert!(r.headers()["content-disposition"].to_str().unwrap_or_default().starts_with("attachment; filename=\"crm-tenant-"));
    assert_eq!(std::fs::metadata(&file).expect("archive").len() as i64, done.body["size_bytes"].as_i64().expect("size"));

    // Import into another installation: every table as it was, ids included.
    let fresh = Fresh::create(&app.platform.pool).await;
    let fresh_files_dir = tempfile::tempdir().expect("tempdir");
    let fresh_files = tenant_service::service::exports::open_store(&format!("file://{}", fresh_files_dir.path().display())).expect("store");
    let imported = import_archive(&fresh.db, fresh_files.as_ref(), &file, &ImportOptions::default()).await.expect("import");
    assert_eq!(imported.id, a.id.to_string());
    assert_eq!(imported.subdomain, a.subdomain);
    let before = snapshot(&app.platform.db, &a.id).await;
    let after = snapshot(&fresh.db, &a.id).await;
    assert_eq!(before.len(), after.len());
    for ((table, rows), (_, imported_rows)) in before.iter().zip(&after) {
        assert_eq!(rows, imported_rows, "table {table}");
    }
    assert!(before.iter().any(|(t, rows)| t == "contacts" && rows.contains("line one") && rows.contains("名前")), "the seed is in the archive");
    // Sequences moved past the imported ids: a new contact does not collide.
    let tx = fresh.db.tenant(&a.id).await.expect("tx");
    let id: i32 = tx.query_one("INSERT INTO contacts (first_name, last_name, created_by) VALUES ('New', 'One', 1) RETURNING id", &[]).await.expect("insert").get(0);
    assert!(id > 40, "next id {id}");
    tx.rollback().await.expect("rollback");

    // The same archive again: its id and subdomain are taken now -> refused, nothing written.
    // The file came along (and the old export did not).
    assert_eq!(stored(fresh_files.as_ref(), &format!("{}/01JFILE0000000000000000000", a.id)).await.as_deref(), Some(FILE_BYTES));
    assert_eq!(stored(fresh_files.as_ref(), &format!("{}/exports/old.tar.gz", a.id)).await, None);

    let err = import_archive(&fresh.db, fresh_files.as_ref(), &file, &ImportOptions::default()).await.expect_err("taken");
    assert!(err.to_string().contains("exists here"), "{err}");
    let err = import_archive(&fresh.db, fresh_files.as_ref(), &file, &ImportOptions { new_id: true, subdomain: None }).await.expect_err("subdomain taken");
    assert!(err.to_string().contains("subdomain"), "{err}");
    // A copy with a new id and subdomain works.
    let copy = import_archive(&fresh.db, fresh_files.as_ref(), &file, &ImportOptions { new_id: true, subdomain: Some(unique_subdomain()) }).await.expect("copy");
    let copy_id: TenantId = copy.id.parse().expect("id");
    // The same rows, but the file's key under the copy's own prefix (where its file now is).
    let new_key = format!("{copy_id}/01JFILE0000000000000000000");
    let moved: Vec<(String, String)> = after.iter().map(|(t, rows)| (t.clone(), rows.replace(&a.id.to_string(), &copy_id.to_string()))).collect();
    assert_eq!(snapshot(&fresh.db, &copy_id).await, moved);
    assert_eq!(stored(fresh_files.as_ref(), &new_key).await.as_deref(), Some(FILE_BYTES));
    fresh.drop_db().await;
}

#[tokio::test]
async fn a_damaged_archive_is_refused_and_leaves_nothing_behind() {
    let app = spawn_app().await;
    let a = app.signup().await;
    let work = tempfile::tempdir().expect("tempdir");
    let file = work.path().join("a.tar.gz");
    tenant_service::service::archive::write_archive(&app.platform.db, app.state.exports.files.as_ref(), &a.id, &file).await.expect("export");
    // Unpack, make the manifest claim a row the file does not have, pack again.
    let dir = work.path().join("x");
    tar::Archive::new(flate2::read::GzDecoder::new(std::fs::File::open(&file).expect("open"))).unpack(&dir).expect("unpack");
    let mut manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).expect("manifest")).expect("json");
    let tables = manifest["tables"].as_array_mut().expect("tables");
    let contacts = tables.iter_mut().find(|t| t["name"] == "contacts").expect("contacts table");
    contacts["rows"] = json!(1);
    std::fs::write(dir.join("manifest.json"), serde_json::to_vec(&manifest).expect("json")).expect("write");
    let broken = work.path().join("broken.tar.gz");
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(std::fs::File::create(&broken).expect("create"), flate2::Compression::fast()));
    tar.append_dir_all(".", &dir).expect("pack");
    tar.into_inner().expect("tar").finish().expect("gzip");

    let subdomain = unique_subdomain();
    let err = import_archive(&app.platform.db, app.state.exports.files.as_ref(), &broken, &ImportOptions { new_id: true, subdomain: Some(subdomain.clone()) }).await.expect_err("refused");
    assert!(err.to_string().contains("contacts"), "{err}");
    let tenants = app.platform.db.platform().await.expect("tx");
    let left = tenants.query_opt("SELECT id FROM platform.tenants WHERE subdomain = $1", &[&subdomain]).await.expect("query");
    assert!(left.is_none(), "a failed import left its tenant row");

    // Not an archive at all.
    std::fs::write(work.path().join("junk.tar.gz"), b"not gzip").expect("write");
    assert!(import_archive(&app.platform.db, app.state.exports.files.as_ref(), &work.path().join("junk.tar.gz"), &ImportOptions::default()).await.is_err());
}

#[tokio::test]
async fn only_the_tenants_admins_export() {
    let app = spawn_app().await;
    let a = app.signup().await;
    let b = app.signup().await;
    let start = format!("/api/v1/tenants/{}/export", a.id);
    let status = format!("/api/v1/tenants/{}/exports/01HZX3V5K8Q9R2S4T6W8Y0A1B2", a.id);
    let admin = app.token(&a.id, Role::Admin);
    assert_eq!(app.get(&status, Some(&admin)).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("{status}/archive"), Some(&admin)).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.post(&start, Some(&app.token(&a.id, Role::Manager)), json!({})).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.post(&start, Some(&app.token(&b.id, Role::Admin)), json!({})).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&status, None).await.status, StatusCode::UNAUTHORIZED);
    // B's admin cannot see A's export.
    let r = app.post(&start, Some(&admin), json!({})).await;
    let own = format!("/api/v1/tenants/{}/exports/{}", a.id, r.body["id"].as_str().expect("id"));
    assert_eq!(app.get(&own, Some(&app.token(&b.id, Role::Admin))).await.status, StatusCode::NOT_FOUND);
}
