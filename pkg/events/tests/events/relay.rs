use std::time::Duration;

use crm_events::{RelayConfig, drain_schema, enqueue};
use crm_tenant::TenantDb;

use crate::helpers::*;

#[tokio::test]
async fn committed_events_are_published_once_with_their_id_as_msg_id() {
    let pool = test_pool().await;
    let tenant = provision_tenant(&pool).await;
    let js = jetstream_at(&nats_url()).await;
    let subject = unique_type("deal");
    // A long sweep interval: only the NOTIFY can wake the relay in time.
    let relay = RunningRelay::start(&pool, &js, RelayConfig { sweep_interval: Duration::from_secs(3600), ..relay_config(&[&tenant]) });

    // The first sweep runs at start; these arrive later, through LISTEN.
    let ids = enqueue_committed(&pool, &tenant, &subject, 3).await;
    wait_all_published(&pool, &tenant, &subject, 3).await;
    assert_stored_once(&js, &subject, &tenant, &ids).await;
    let stored = stored_on(&js, &subject).await;
    assert_eq!(stored.iter().map(|s| s.envelope.id.clone()).collect::<Vec<_>>(), ids, "outbox order is kept");
    assert_eq!(stored[0].envelope.data["n"], 0);
    relay.stop().await;

    // A row whose ack was lost is published again: JetStream drops the duplicate.
    let client = pool.get().await.unwrap();
    let sql = format!("UPDATE {}.outbox SET published_at = NULL WHERE id = $1", tenant.schema().quoted());
    assert_eq!(client.execute(&sql, &[&ids[1]]).await.unwrap(), 1);
    let published = drain_schema(&pool, &js, tenant.schema().as_str(), &RelayConfig::default()).await.unwrap();
    assert_eq!(published, 1);
    wait_all_published(&pool, &tenant, &subject, 3).await;
    assert_stored_once(&js, &subject, &tenant, &ids).await;
}

#[tokio::test]
async fn rolled_back_events_are_never_published() {
    let pool = test_pool().await;
    let tenant = provision_tenant(&pool).await;
    let js = jetstream_at(&nats_url()).await;
    let subject = unique_type("contact");

    let db = TenantDb::new(pool.clone());
    let tx = db.tenant(&tenant).await.unwrap();
    enqueue(&tx, &event(&tenant, &subject, 0)).await.unwrap();
    tx.rollback().await.unwrap();
    // Written after the rolled-back one: once it is out, the relay has passed that point.
    let sentinel = enqueue_committed(&pool, &tenant, &subject, 1).await;

    let relay = RunningRelay::start(&pool, &js, relay_config(&[&tenant]));
    wait_all_published(&pool, &tenant, &subject, 1).await;
    relay.stop().await;
    assert_eq!(drain_schema(&pool, &js, tenant.schema().as_str(), &RelayConfig::default()).await.unwrap(), 0);
    assert_stored_once(&js, &subject, &tenant, &sentinel).await;
}

#[tokio::test]
async fn platform_events_carry_the_tenant_of_their_payload() {
    let pool = test_pool().await;
    let js = jetstream_at(&nats_url()).await;
    let tenant = crm_tenant::TenantId::new();
    let subject = unique_type("tenant");
    let e = event(&tenant, &subject, 0);

    let db = TenantDb::new(pool.clone());
    let tx = db.platform().await.unwrap();
    enqueue(&tx, &e).await.unwrap();
    tx.commit().await.unwrap();

    // Other tests may drain `platform` concurrently, and rows of theirs may fail: either way
    // this one ends up published once.
    let _ = drain_schema(&pool, &js, "platform", &RelayConfig::default()).await;
    let client = pool.get().await.unwrap();
    let published: bool = client
        .query_one("SELECT published_at IS NOT NULL FROM platform.outbox WHERE id = $1", &[&e.id])
        .await
        .unwrap()
        .get(0);
    assert!(published);
    assert_stored_once(&js, &subject, &tenant, std::slice::from_ref(&e.id)).await;
}

#[tokio::test]
async fn invalid_and_deleted_schemas_are_handled() {
    let pool = test_pool().await;
    let js = jetstream_at(&nats_url()).await;
    for bad in ["public", "tenant_x", "platform; drop schema platform"] {
        assert!(matches!(
            drain_schema(&pool, &js, bad, &RelayConfig::default()).await,
            Err(crm_events::RelayError::InvalidSchema(_))
        ));
    }
    // A marker left by a tenant whose schema was dropped is cleared, silently.
    let gone = crm_tenant::TenantId::new();
    let client = pool.get().await.unwrap();
    client
        .execute("INSERT INTO platform.outbox_pending (schema_name) VALUES ($1)", &[&gone.schema().as_str()])
        .await
        .unwrap();
    assert_eq!(drain_schema(&pool, &js, gone.schema().as_str(), &RelayConfig::default()).await.unwrap(), 0);
    let left: i64 = client
        .query_one("SELECT count(*) FROM platform.outbox_pending WHERE schema_name = $1", &[&gone.schema().as_str()])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
}

/// NATS stopped while events are written: nothing is lost, nothing is published twice.
#[tokio::test]
async fn events_written_while_nats_is_down_are_published_once_it_returns() {
    let pool = test_pool().await;
    let tenant = provision_tenant(&pool).await;
    let mut nats = NatsServer::start().await;
    let js = jetstream_at(&nats.url()).await;
    let subject = unique_type("activity");
    let relay = RunningRelay::start(
        &pool,
        &js,
        RelayConfig { ack_timeout: Duration::from_millis(500), max_backoff: Duration::from_secs(1), ..relay_config(&[&tenant]) },
    );

    let mut ids = enqueue_committed(&pool, &tenant, &subject, 5).await;
    wait_all_published(&pool, &tenant, &subject, 5).await;

    nats.kill();
    wait_until("the client to notice NATS is gone", WAIT, || async {
        (js.client().connection_state() != async_nats::connection::State::Connected).then_some(())
    })
    .await;
    for _ in 0..4 {
        ids.extend(enqueue_committed(&pool, &tenant, &subject, 3).await);
    }
    // A drain meanwhile fails, records the attempt, and keeps the rows and the pending marker.
    let failed = drain_schema(&pool, &js, tenant.schema().as_str(), &RelayConfig { ack_timeout: Duration::from_millis(200), ..RelayConfig::default() }).await;
    assert!(matches!(failed, Err(crm_events::RelayError::Publish { .. })), "{failed:?}");
    let rows = outbox_rows(&pool, &tenant, &subject).await;
    assert_eq!(rows.len(), 17);
    assert!(rows[5..].iter().all(|r| !r.1 && r.2 >= 1), "unpublished, attempt recorded: {rows:?}");
    let client = pool.get().await.unwrap();
    let marked: i64 = client
        .query_one("SELECT count(*) FROM platform.outbox_pending WHERE schema_name = $1", &[&tenant.schema().as_str()])
        .await
        .unwrap()
        .get(0);
    assert_eq!(marked, 1, "the schema stays marked for the relay");

    nats.restart().await;
    wait_all_published(&pool, &tenant, &subject, 17).await;
    relay.stop().await;
    assert_stored_once(&js, &subject, &tenant, &ids).await;

    // And a consumer sees each of them exactly once.
    let seen = crate::consumer::consume_all(&pool, &js, &subject, ids.len()).await;
    let mut seen_sorted = seen.clone();
    seen_sorted.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(seen_sorted, expected, "each event applied exactly once");
}

/// A commit in this process wakes the relay at once (no sweep for an hour): the wake-up is
/// sent after the commit, never from inside the transaction (no NOTIFY, issue 18).
#[tokio::test]
async fn a_commit_wakes_the_relay_without_a_sweep() {
    let pool = test_pool().await;
    let tenant = provision_tenant(&pool).await;
    let js = jetstream_at(&nats_url()).await;
    let subject = unique_type("company");
    let config = RelayConfig { sweep_interval: Duration::from_secs(3600), ..relay_config(&[&tenant]) };
    let relay = RunningRelay::start(&pool, &js, config);
    // The first sweep (at start) finds nothing of this tenant.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let started = std::time::Instant::now();
    let ids = enqueue_committed(&pool, &tenant, &subject, 2).await;
    wait_all_published(&pool, &tenant, &subject, 2).await;
    assert!(started.elapsed() < Duration::from_secs(5), "woken, not swept: {:?}", started.elapsed());
    relay.stop().await;
    assert_stored_once(&js, &subject, &tenant, &ids).await;
}

/// Events committed by another instance (here: rows and marker written directly, as a
/// process without a relay would) are drained when that instance's wake-up arrives on
/// `crm.outbox.pending`, without waiting for the sweep.
#[tokio::test]
async fn a_wake_up_from_another_instance_drains_at_once() {
    let pool = test_pool().await;
    let tenant = provision_tenant(&pool).await;
    let js = jetstream_at(&nats_url()).await;
    let subject = unique_type("company");
    let config = RelayConfig { sweep_interval: Duration::from_secs(3600), ..relay_config(&[&tenant]) };
    let relay = RunningRelay::start(&pool, &js, config);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let schema = tenant.schema();
    let e = event(&tenant, &subject, 0);
    let mut client = pool.get().await.unwrap();
    let tx = client.transaction().await.unwrap();
    tx.execute(
        &format!("INSERT INTO {}.outbox (id, subject, payload) VALUES ($1, $2, $3)", schema.quoted()),
        &[&e.id, &e.r#type, &tokio_postgres::types::Json(&e)],
    )
    .await
    .unwrap();
    tx.execute("INSERT INTO platform.outbox_pending (schema_name) VALUES ($1)", &[&schema.as_str()]).await.unwrap();
    tx.commit().await.unwrap();
    // Nothing wakes the relay yet: the row waits (the sweep is an hour away).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!outbox_rows(&pool, &tenant, &subject).await[0].1, "published before any wake-up");

    js.client().publish(crm_events::OUTBOX_WAKEUP_SUBJECT, schema.as_str().to_owned().into()).await.unwrap();
    wait_all_published(&pool, &tenant, &subject, 1).await;
    relay.stop().await;
    assert_stored_once(&js, &subject, &tenant, &[e.id]).await;
}

#[tokio::test]
async fn concurrent_relays_publish_each_event_once() {
    let pool = test_pool().await;
    let tenant = provision_tenant(&pool).await;
    let js = jetstream_at(&nats_url()).await;
    let subject = unique_type("deal");
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.extend(enqueue_committed(&pool, &tenant, &subject, 30).await);
    }
    let config = RelayConfig { batch_size: 20, ..RelayConfig::default() };
    let schema = tenant.schema();
    let (a, b, c) = tokio::join!(
        drain_schema(&pool, &js, schema.as_str(), &config),
        drain_schema(&pool, &js, schema.as_str(), &config),
        drain_schema(&pool, &js, schema.as_str(), &config),
    );
    assert_eq!(a.unwrap() + b.unwrap() + c.unwrap(), 300, "each row published by exactly one relay");
    wait_all_published(&pool, &tenant, &subject, 300).await;
    assert_stored_once(&js, &subject, &tenant, &ids).await;
}
