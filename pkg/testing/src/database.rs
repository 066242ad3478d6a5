//! Databases of a test's own on a PostgreSQL server: created with `pg_trgm`, dropped when
//! the guard is dropped (best effort).

use tokio_postgres::NoTls;

/// Replaces the database of a `postgres://` URL (dropping any query string).
pub fn with_database(url: &str, database: &str) -> String {
    let url = url.split('?').next().unwrap_or(url);
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    match url[after_scheme..].find('/') {
        Some(slash) => format!("{}/{database}", &url[..after_scheme + slash]),
        None => format!("{url}/{database}"),
    }
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap_or_else(|e| panic!("connect to {url}: {e}"));
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// `CREATE DATABASE` on the server of `admin_url` (a URL of an existing database, e.g.
/// `.../postgres`) plus `CREATE EXTENSION pg_trgm` in it.
pub async fn create_database(admin_url: &str, database: &str) {
    let admin = connect(admin_url).await;
    admin.batch_execute(&format!("CREATE DATABASE \"{database}\"")).await.unwrap_or_else(|e| panic!("create database {database}: {e}"));
    let db = connect(&with_database(admin_url, database)).await;
    db.batch_execute("CREATE EXTENSION IF NOT EXISTS pg_trgm; CREATE EXTENSION IF NOT EXISTS unaccent")
        .await
        .unwrap_or_else(|e| panic!("pg_trgm, unaccent in {database}: {e}"));
}

/// A database of the test's own on the test server (`DATABASE_URL`'s host, default
/// `postgres://postgres@127.0.0.1:5432`), dropped (`WITH (FORCE)`) when this is dropped.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
    admin_url: String,
}

impl TestDatabase {
    /// `<prefix>_<unique>` on the test server.
    pub async fn create(prefix: &str) -> Self {
        let server = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| crate::DEFAULT_TEST_DATABASE_URL.to_owned());
        let name = format!("{prefix}_{}", crate::servers::unique_suffix().replace('-', "_"));
        let admin_url = with_database(&server, "postgres");
        create_database(&admin_url, &name).await;
        Self { url: with_database(&server, &name), name, admin_url }
    }
}

impl Drop for TestDatabase {
    /// `DROP DATABASE .. WITH (FORCE)`, waited for at most [`DROP_WAIT`]: a drop waits for a
    /// checkpoint, which takes minutes when something else writes heavily to the server; the
    /// server finishes the drop on its own once the statement is sent.
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Its own thread and runtime: a drop may run inside (or outside) any runtime.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async move {
                let connect = tokio::time::timeout(DROP_WAIT, tokio_postgres::connect(&admin_url, NoTls));
                if let Ok(Ok((client, connection))) = connect.await {
                    tokio::spawn(async move {
                        let _ = connection.await;
                    });
                    let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                    let _ = tokio::time::timeout(DROP_WAIT, client.batch_execute(&sql)).await;
                }
            });
        })
        .join();
    }
}

const DROP_WAIT: std::time::Duration = std::time::Duration::from_secs(3);
