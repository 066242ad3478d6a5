//! The migration runner against the real test database.

use std::collections::HashSet;

use crm_database::migrate::{self, FleetOptions, MigrationSet};
use crm_database::schema::TENANT_SETS;
use crm_database::Pool;
use crm_tenant::TenantId;
use crm_testing::{provision_tenant, test_pool};
use refinery::{Migration, Runner};

async fn table_names(pool: &Pool, schema: &str) -> HashSet<String> {
    let client = pool.get().await.unwrap();
    client
        .query("SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1", &[&schema])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

async fn registry_versions(pool: &Pool, schema: &str) -> Vec<(String, i32)> {
    let client = pool.get().await.unwrap();
    client
        .query(
            "SELECT migration_set, version FROM platform.schema_versions WHERE schema_name = $1 ORDER BY 1",
            &[&schema],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[tokio::test]
async fn provisioning_applies_every_tenant_set_with_its_own_history() {
    let pool = test_pool().await;
    let tenant = provision_tenant(&pool).await;
    let schema = tenant.schema();
    let tables = table_names(&pool, schema.as_str()).await;
    for set in TENANT_SETS {
        assert!(tables.contains(&format!("{}_schema_history", set.name)), "history of {} in {tables:?}", set.name);
    }
    assert!(tables.contains("outbox") && tables.contains("processed_events"), "{tables:?}");
    let expected: Vec<(String, i32)> = {
        let mut v: Vec<_> = TENANT_SETS.iter().map(|s| (s.name.to_owned(), s.latest_version())).collect();
        v.sort();
        v
    };
    assert_eq!(registry_versions(&pool, schema.as_str()).await, expected);

    let status = migrate::fleet_status(&pool, TENANT_SETS).await.unwrap();
    assert!(!status.behind.contains(&schema.as_str().to_owned()), "a provisioned tenant is current");
}

#[tokio::test]
async fn a_failed_provisioning_leaves_nothing_behind() {
    let pool = test_pool().await;
    let id = TenantId::new();
    let schema = id.schema();
    {
        let mut client = pool.get().await.unwrap();
        let tx = client.transaction().await.unwrap();
        migrate::provision_schema(tx.client(), schema.as_str()).await.unwrap();
        // Something after the schema fails: the transaction is dropped uncommitted.
        assert!(tx.execute("SELECT 1/0", &[]).await.is_err());
    }
    assert!(table_names(&pool, schema.as_str()).await.is_empty());
    assert!(registry_versions(&pool, schema.as_str()).await.is_empty());
}

#[tokio::test]
async fn schema_names_outside_the_pattern_are_refused() {
    let pool = test_pool().await;
    let mut client = pool.get().await.unwrap();
    let tx = client.transaction().await.unwrap();
    for bad in ["public", "platform", "tenant_x\"; DROP SCHEMA platform CASCADE; --", "TENANT_01HZX3V5K8Q9R2S4T6W8Y0A1B2"] {
        let err = migrate::provision_schema(tx.client(), bad).await.unwrap_err();
        assert!(matches!(err, migrate::MigrateError::BadSchema(_)), "{bad}: {err}");
    }
}

/// Empty tenant schemas (as if created before any set existed): behind on every set.
async fn create_empty_schemas(pool: &Pool, n: usize) -> Vec<String> {
    let client = pool.get().await.unwrap();
    let mut names = Vec::with_capacity(n);
    for _ in 0..n {
        let schema = TenantId::new().schema();
        client.batch_execute(&format!("CREATE SCHEMA {}", schema.quoted())).await.unwrap();
        names.push(schema.as_str().to_owned());
    }
    names
}

// Sets used only by these tests: other tests' fleet runs (with the real sets) touch our
// schemas too, so assertions look at these sets alone.
fn resume_set() -> Runner {
    Runner::new(&[
        Migration::unapplied("V1__a", "CREATE TABLE resume_a (id SERIAL PRIMARY KEY)").unwrap(),
        Migration::unapplied("V2__b", "CREATE TABLE resume_b (id SERIAL PRIMARY KEY)").unwrap(),
    ])
}
const RESUME: [MigrationSet; 1] = [MigrationSet::new("test_resume", resume_set)];

async fn state_of(pool: &Pool, schema: &str) -> (bool, bool) {
    let tables = table_names(pool, schema).await;
    let recorded = registry_versions(pool, schema).await.iter().any(|(set, _)| set == "test_resume");
    let complete = tables.contains("resume_a") && tables.contains("resume_b") && tables.contains("test_resume_schema_history");
    let untouched = !tables.contains("resume_a") && !tables.contains("resume_b") && !tables.contains("test_resume_schema_history");
    (complete && recorded, untouched && !recorded)
}

#[tokio::test]
async fn fleet_migration_resumes_after_being_killed_midway() {
    let pool = test_pool().await;
    let ours = create_empty_schemas(&pool, 40).await;

    // Kill the run as soon as a few tenants are through.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<usize>();
    let run_pool = pool.clone();
    let run = tokio::spawn(async move {
        migrate::migrate_all(&run_pool, &RESUME, FleetOptions { concurrency: 2 }, move |done, _| {
            let _ = tx.send(done);
        })
        .await
    });
    while let Some(done) = rx.recv().await {
        if done >= 5 {
            break;
        }
    }
    run.abort();
    let _ = run.await;

    // The fleet (every tenant schema in the test database) was cut midway...
    let status = migrate::fleet_status(&pool, &RESUME).await.unwrap();
    assert!(!status.behind.is_empty(), "the run was interrupted before the end");
    // ...and every schema is either fully migrated or untouched: never half.
    for schema in &ours {
        let (complete, untouched) = state_of(&pool, schema).await;
        assert!(complete || untouched, "{schema} half-migrated");
    }

    let summary = migrate::migrate_all(&pool, &RESUME, FleetOptions::default(), |_, _| {}).await.unwrap();
    assert!(summary.failed.is_empty(), "{:?}", summary.failed);
    for schema in &ours {
        assert_eq!(state_of(&pool, schema).await, (true, false), "{schema} after the re-run");
    }
}

async fn fully_migrated(pool: &Pool, schema: &str) -> bool {
    table_names(pool, schema).await.contains("outbox")
        && registry_versions(pool, schema).await.iter().filter(|(set, _)| TENANT_SETS.iter().any(|s| s.name == set)).count()
            == TENANT_SETS.len()
}

#[tokio::test]
async fn two_instances_migrating_together_do_not_collide() {
    // Both instances migrate every schema of the shared test database; one waits on the
    // other's per-schema lock while that schema is migrated, which after new migrations sets
    // on a database full of older test schemas takes longer than the pool's default 30 s
    // statement timeout (a wait, not a collision).
    let mut config = crm_testing::test_db_config();
    config.query_timeout = std::time::Duration::from_secs(300);
    let pool = crm_testing::test_pool_with(config).await;
    let ours = create_empty_schemas(&pool, 20).await;
    let (a, b) = tokio::join!(
        migrate::migrate_all(&pool, TENANT_SETS, FleetOptions { concurrency: 4 }, |_, _| {}),
        migrate::migrate_all(&pool, TENANT_SETS, FleetOptions { concurrency: 4 }, |_, _| {}),
    );
    assert!(a.unwrap().failed.is_empty());
    assert!(b.unwrap().failed.is_empty());
    for schema in &ours {
        assert!(fully_migrated(&pool, schema).await, "{schema}");
    }
}

// A set with an added migration, to exercise "a new migration across the fleet".
fn bench_set_v1() -> Runner {
    Runner::new(&[Migration::unapplied("V1__memos", "CREATE TABLE test_memos (id SERIAL PRIMARY KEY, body TEXT)").unwrap()])
}
fn bench_set_v2() -> Runner {
    Runner::new(&[
        Migration::unapplied("V1__memos", "CREATE TABLE test_memos (id SERIAL PRIMARY KEY, body TEXT)").unwrap(),
        Migration::unapplied("V2__memos_pinned", "ALTER TABLE test_memos ADD COLUMN pinned BOOLEAN NOT NULL DEFAULT false").unwrap(),
    ])
}

#[tokio::test]
async fn a_new_migration_reaches_every_schema_and_then_the_check_is_a_no_op() {
    let pool = test_pool().await;
    let v1 = [MigrationSet::new("test_memos", bench_set_v1)];
    let v2 = [MigrationSet::new("test_memos", bench_set_v2)];
    let ours = create_empty_schemas(&pool, 10).await;
    let first = migrate::migrate_all(&pool, &v1, FleetOptions::default(), |_, _| {}).await.unwrap();
    assert!(first.failed.is_empty(), "{:?}", first.failed);

    let status = migrate::fleet_status(&pool, &v2).await.unwrap();
    for schema in &ours {
        assert!(status.behind.contains(schema));
    }
    let second = migrate::migrate_all(&pool, &v2, FleetOptions::default(), |_, _| {}).await.unwrap();
    assert!(second.failed.is_empty(), "{:?}", second.failed);
    let client = pool.get().await.unwrap();
    for schema in &ours {
        let row = client
            .query_one(
                "SELECT count(*) FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'test_memos' AND column_name = 'pinned'",
                &[schema],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, i64>(0), 1, "{schema}");
    }
    let status = migrate::fleet_status(&pool, &v2).await.unwrap();
    for schema in &ours {
        assert!(!status.behind.contains(schema), "{schema} current after the run");
    }
}

fn failing_set() -> Runner {
    Runner::new(&[Migration::unapplied(
        "V1__broken",
        "CREATE TABLE broken_ok (id SERIAL PRIMARY KEY);\n-- a comment; with a semicolon\nINSERT INTO broken_ok (id)\n    SELECT id FROM broken_missing;",
    )
    .unwrap()])
}

/// A failing migration is reported in PostgreSQL's words (issue 18 item 7: it used to say only
/// "db error"): the set, the schema, the migration, SQLSTATE, message and the statement's line.
#[tokio::test]
async fn a_failing_migration_names_postgres_message_and_the_statement() {
    let pool = test_pool().await;
    let schema = TenantId::new().schema();
    let mut client = pool.get().await.unwrap();
    let tx = client.transaction().await.unwrap();
    let err = migrate::provision_schema_with(tx.client(), schema.as_str(), &[MigrationSet::new("test_broken", failing_set)])
        .await
        .unwrap_err()
        .to_string();
    for expected in [
        "test_broken",
        schema.as_str(),
        "V1__broken",
        "SQLSTATE 42P01",
        "relation \"broken_missing\" does not exist",
        "at line 2, column 20 of the statement: SELECT id FROM broken_missing",
    ] {
        assert!(err.contains(expected), "{expected:?} missing from: {err}");
    }
    assert!(!err.contains("db error: db error"), "{err}");
}
