//! What an operator is told when the database cannot be used (against the local test server:
//! `DATABASE_URL`, default postgres://postgres@127.0.0.1:5432/crm_test).

use crm_database::{DbConfig, DbProblem, DbProblemKind, create_database_if_missing, create_pool};

fn server_url() -> String {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/crm_test".into());
    let url = url.split('?').next().unwrap_or_default().to_owned();
    url[..url.rfind('/').expect("DATABASE_URL has a database")].to_owned()
}

/// `url` with a password added to its user (the tests check it never shows).
fn with_password(url: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
    match rest.split_once('@') {
        Some((userinfo, host)) => format!("{scheme}://{}:{password}@{host}", userinfo.split(':').next().unwrap_or_default()),
        None => format!("{scheme}://postgres:{password}@{rest}"),
    }
}

async fn problem_of(url: &str) -> DbProblem {
    let config = DbConfig { url: url.to_owned(), ..DbConfig::default() };
    let pool = create_pool(&config).expect("pool");
    let Err(err) = pool.get().await else { panic!("connecting to {url} must fail") };
    DbProblem::new(&config, &err)
}

#[tokio::test]
async fn a_missing_database_is_named_with_a_hint_and_not_retried() {
    let database = format!("crm_missing_{}", std::process::id());
    let url = with_password(&format!("{}/{database}", server_url()), "hunter2");
    let problem = problem_of(&url).await;
    let text = problem.to_string();
    eprintln!("{text}");
    assert_eq!(problem.kind, DbProblemKind::MissingDatabase, "{text}");
    assert!(!problem.retryable());
    assert!(text.contains(&format!("\"{database}\"")) && text.contains("does not exist"), "{text}");
    assert!(text.contains("--create-database") && text.contains("scripts/deps.sh"), "{text}");
    assert!(!text.contains("hunter2"), "the password must never show: {text}");
}

#[tokio::test]
async fn an_unknown_user_is_refused_and_not_retried() {
    let url = server_url();
    let (scheme, rest) = url.split_once("://").unwrap();
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let url = format!("{scheme}://no_such_role_{}:pw-secret@{host}/postgres", std::process::id());
    let problem = problem_of(&url).await;
    let text = problem.to_string();
    eprintln!("{text}");
    assert_eq!(problem.kind, DbProblemKind::Refused, "{text}");
    assert!(!problem.retryable());
    assert!(text.contains("no_such_role_") && !text.contains("pw-secret"), "{text}");
}

#[tokio::test]
async fn create_database_creates_it_once() {
    let database = format!("crm_created_{}", std::process::id());
    let config = DbConfig { url: format!("{}/{database}", server_url()), ..DbConfig::default() };
    assert!(create_database_if_missing(&config).await.expect("created"));
    assert!(!create_database_if_missing(&config).await.expect("exists"));
    let pool = create_pool(&config).expect("pool");
    let client = pool.get().await.expect("the new database accepts connections");
    let trgm: i64 = client.query_one("SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'", &[]).await.unwrap().get(0);
    assert_eq!(trgm, 1);
    drop(client);
    drop(pool);
    let (admin, connection) = tokio_postgres::connect(&format!("{}/postgres", server_url()), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    admin.batch_execute(&format!("DROP DATABASE \"{database}\" WITH (FORCE)")).await.unwrap();
}
