//! Automation rules, their runs, and the lineage that tells how deep in a chain of rules an
//! event is.

use chrono::{DateTime, Utc};
use crm_client_communication::{Rule, RuleRun};
use crm_tenant::{DbError, TenantTx};
use tokio_postgres::Row;
use tokio_postgres::types::Json;

/// A rule as written (validated; conditions and actions in their JSON form).
pub struct RuleWrite {
    pub name: String,
    pub description: Option<String>,
    pub enabled: bool,
    pub trigger_event: String,
    pub match_mode: String,
    pub conditions: serde_json::Value,
    pub actions: serde_json::Value,
}

const RULE_COLUMNS: &str =
    "id, name, coalesce(description, ''), enabled, trigger_event, match_mode, conditions, actions, created_by, created_at, updated_at";

fn rule_from(row: &Row) -> Rule {
    let trigger: String = row.get(4);
    Rule {
        id: row.get(0),
        name: row.get(1),
        description: row.get(2),
        enabled: row.get(3),
        trigger: serde_json::json!({ "event": trigger }),
        match_mode: row.get(5),
        conditions: row.get(6),
        actions: row.get(7),
        created_by: row.get(8),
        created_at: row.get(9),
        updated_at: row.get(10),
    }
}

/// `None`: a rule with this `seed_key` exists already.
pub async fn insert(tx: &TenantTx, r: &RuleWrite, created_by: Option<i32>, seed_key: Option<&str>) -> Result<Option<Rule>, DbError> {
    let stmt = tx
        .prepare_cached(&format!(
            "INSERT INTO automation_rules (name, description, enabled, trigger_event, match_mode, conditions, actions, created_by, seed_key) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (seed_key) DO NOTHING RETURNING {RULE_COLUMNS}"
        ))
        .await?;
    let row = tx
        .query_opt(
            &stmt,
            &[&r.name, &r.description, &r.enabled, &r.trigger_event, &r.match_mode, &Json(&r.conditions), &Json(&r.actions), &created_by, &seed_key],
        )
        .await?;
    Ok(row.as_ref().map(rule_from))
}

pub async fn by_id(tx: &TenantTx, id: i32) -> Result<Option<Rule>, DbError> {
    let stmt = tx.prepare_cached(&format!("SELECT {RULE_COLUMNS} FROM automation_rules WHERE id = $1")).await?;
    Ok(tx.query_opt(&stmt, &[&id]).await?.as_ref().map(rule_from))
}

pub async fn for_update(tx: &TenantTx, id: i32) -> Result<Option<Rule>, DbError> {
    let stmt = tx.prepare_cached(&format!("SELECT {RULE_COLUMNS} FROM automation_rules WHERE id = $1 FOR UPDATE")).await?;
    Ok(tx.query_opt(&stmt, &[&id]).await?.as_ref().map(rule_from))
}

pub async fn update(tx: &TenantTx, id: i32, r: &RuleWrite) -> Result<Rule, DbError> {
    let stmt = tx
        .prepare_cached(&format!(
            "UPDATE automation_rules SET name = $2, description = $3, enabled = $4, trigger_event = $5, match_mode = $6, \
             conditions = $7, actions = $8, updated_at = clock_timestamp() WHERE id = $1 RETURNING {RULE_COLUMNS}"
        ))
        .await?;
    let row = tx
        .query_one(&stmt, &[&id, &r.name, &r.description, &r.enabled, &r.trigger_event, &r.match_mode, &Json(&r.conditions), &Json(&r.actions)])
        .await?;
    Ok(rule_from(&row))
}

pub async fn delete(tx: &TenantTx, id: i32) -> Result<bool, DbError> {
    let stmt = tx.prepare_cached("DELETE FROM automation_rules WHERE id = $1").await?;
    Ok(tx.execute(&stmt, &[&id]).await? == 1)
}

/// A page of rules by id.
pub async fn list(tx: &TenantTx, after_id: Option<i32>, limit: i64) -> Result<Vec<Rule>, DbError> {
    let stmt = tx
        .prepare_cached(&format!("SELECT {RULE_COLUMNS} FROM automation_rules WHERE ($1::int IS NULL OR id > $1) ORDER BY id LIMIT $2"))
        .await?;
    Ok(tx.query(&stmt, &[&after_id, &(limit + 1)]).await?.iter().map(rule_from).collect())
}

pub async fn count(tx: &TenantTx) -> Result<i64, DbError> {
    Ok(tx.query_one("SELECT count(*) FROM automation_rules", &[]).await?.get(0))
}

/// The enabled rules triggered by `event_type`.
pub async fn enabled_for(tx: &TenantTx, event_type: &str) -> Result<Vec<Rule>, DbError> {
    let stmt = tx.prepare_cached(&format!("SELECT {RULE_COLUMNS} FROM automation_rules WHERE enabled AND trigger_event = $1 ORDER BY id")).await?;
    Ok(tx.query(&stmt, &[&event_type]).await?.iter().map(rule_from).collect())
}

/// The id of the rule seeded under `seed_key`.
pub async fn by_seed_key(tx: &TenantTx, seed_key: &str) -> Result<Option<Rule>, DbError> {
    let stmt = tx.prepare_cached(&format!("SELECT {RULE_COLUMNS} FROM automation_rules WHERE seed_key = $1")).await?;
    Ok(tx.query_opt(&stmt, &[&seed_key]).await?.as_ref().map(rule_from))
}

// ---- runs ----

const RUN_COLUMNS: &str = "id, rule_id, status, attempts, CASE WHEN status IN ('pending', 'failed') THEN next_attempt_at END, last_error, depth, \
     event, results, created_at, updated_at, finished_at";

fn run_from(row: &Row) -> RuleRun {
    RuleRun {
        id: row.get(0),
        rule_id: row.get(1),
        status: row.get(2),
        attempts: row.get(3),
        next_attempt_at: row.get(4),
        error: row.get(5),
        depth: row.get(6),
        event: row.get(7),
        results: row.get(8),
        created_at: row.get(9),
        updated_at: row.get(10),
        finished_at: row.get(11),
    }
}

/// Records a run of `rule_id` for the event: `pending` (due now) or `loop_stopped`.
/// `None`: this rule already has a run for this event.
pub async fn insert_run(
    tx: &TenantTx,
    rule_id: i32,
    event: &crm_events::Envelope,
    depth: i32,
    status: &str,
    error: Option<&str>,
) -> Result<Option<RuleRun>, DbError> {
    let stmt = tx
        .prepare_cached(&format!(
            "INSERT INTO automation_runs (rule_id, event_id, event_type, event, depth, status, last_error, next_attempt_at, finished_at) \
             VALUES ($1, $2, $3, $4, $5, $6::text, $7, CASE WHEN $6::text = 'pending' THEN clock_timestamp() END, \
                     CASE WHEN $6::text = 'pending' THEN NULL ELSE clock_timestamp() END) \
             ON CONFLICT (rule_id, event_id) DO NOTHING RETURNING {RUN_COLUMNS}"
        ))
        .await?;
    let row = tx.query_opt(&stmt, &[&rule_id, &event.id, &event.r#type, &Json(event), &depth, &status, &error]).await?;
    Ok(row.as_ref().map(run_from))
}

pub async fn run_by_id(tx: &TenantTx, id: i32) -> Result<Option<RuleRun>, DbError> {
    let stmt = tx.prepare_cached(&format!("SELECT {RUN_COLUMNS} FROM automation_runs WHERE id = $1")).await?;
    Ok(tx.query_opt(&stmt, &[&id]).await?.as_ref().map(run_from))
}

/// A page of a rule's runs, newest first, optionally by status.
pub async fn runs(tx: &TenantTx, rule_id: i32, status: Option<&str>, before_id: Option<i32>, limit: i64) -> Result<Vec<RuleRun>, DbError> {
    let stmt = tx
        .prepare_cached(&format!(
            "SELECT {RUN_COLUMNS} FROM automation_runs WHERE rule_id = $1 AND ($2::text IS NULL OR status = $2) \
             AND ($3::int IS NULL OR id < $3) ORDER BY id DESC LIMIT $4"
        ))
        .await?;
    Ok(tx.query(&stmt, &[&rule_id, &status, &before_id, &(limit + 1)]).await?.iter().map(run_from).collect())
}

pub async fn count_runs(tx: &TenantTx, rule_id: i32, status: Option<&str>) -> Result<i64, DbError> {
    let stmt = tx.prepare_cached("SELECT count(*) FROM automation_runs WHERE rule_id = $1 AND ($2::text IS NULL OR status = $2)").await?;
    Ok(tx.query_one(&stmt, &[&rule_id, &status]).await?.get(0))
}

/// A due run, locked by this transaction.
pub struct DueRun {
    pub run: RuleRun,
    pub rule: Rule,
}

/// Claims up to `limit` due runs (`FOR UPDATE SKIP LOCKED`) with their rules.
pub async fn claim_due_runs(tx: &TenantTx, limit: i64) -> Result<Vec<DueRun>, DbError> {
    let stmt = tx
        .prepare_cached(&format!(
            "SELECT {RUN_COLUMNS} FROM automation_runs WHERE status IN ('pending', 'failed') AND next_attempt_at <= now() \
             ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED"
        ))
        .await?;
    let runs: Vec<RuleRun> = tx.query(&stmt, &[&limit]).await?.iter().map(run_from).collect();
    let mut out = Vec::with_capacity(runs.len());
    for run in runs {
        if let Some(rule) = by_id(tx, run.rule_id).await? {
            out.push(DueRun { run, rule });
        }
    }
    Ok(out)
}

/// The outcome of an attempt: `succeeded`, `failed` (retried at `retry_at`) or `parked`.
pub async fn finish_run(
    tx: &TenantTx,
    id: i32,
    status: &str,
    error: Option<&str>,
    results: &serde_json::Value,
    retry_at: Option<DateTime<Utc>>,
) -> Result<(), DbError> {
    let stmt = tx
        .prepare_cached(
            "UPDATE automation_runs SET status = $2::text, last_error = $3, results = $4, attempts = attempts + 1, next_attempt_at = $5, \
             updated_at = clock_timestamp(), finished_at = CASE WHEN $2::text IN ('succeeded', 'parked') THEN clock_timestamp() END \
             WHERE id = $1",
        )
        .await?;
    tx.execute(&stmt, &[&id, &status, &error, &Json(results), &retry_at]).await?;
    Ok(())
}

/// Makes a `failed`, `parked` or `loop_stopped` run `pending` again, due now; `None` when
/// there is no such run, `Some(false)` when it is pending or succeeded.
pub async fn retry_run(tx: &TenantTx, id: i32) -> Result<Option<bool>, DbError> {
    let lock = tx.prepare_cached("SELECT status FROM automation_runs WHERE id = $1 FOR UPDATE").await?;
    let Some(row) = tx.query_opt(&lock, &[&id]).await? else { return Ok(None) };
    let status: String = row.get(0);
    if !matches!(status.as_str(), "failed" | "parked") {
        return Ok(Some(false));
    }
    let stmt = tx
        .prepare_cached(
            "UPDATE automation_runs SET status = 'pending', next_attempt_at = clock_timestamp(), finished_at = NULL, \
             updated_at = clock_timestamp() WHERE id = $1",
        )
        .await?;
    tx.execute(&stmt, &[&id]).await?;
    Ok(Some(true))
}

// ---- lineage ----

/// How deep in a chain of rules the thing under `key` is (`event:<id>` or
/// `<subject>:<record id>`); a `<subject>:` key is taken (deleted) when read.
pub async fn take_depth(tx: &TenantTx, key: &str) -> Result<Option<i32>, DbError> {
    let stmt = tx
        .prepare_cached(
            "DELETE FROM automation_lineage WHERE key = $1 AND expires_at > now() AND key NOT LIKE 'event:%' RETURNING depth",
        )
        .await?;
    if let Some(row) = tx.query_opt(&stmt, &[&key]).await? {
        return Ok(Some(row.get(0)));
    }
    let read = tx.prepare_cached("SELECT depth FROM automation_lineage WHERE key = $1 AND expires_at > now()").await?;
    Ok(tx.query_opt(&read, &[&key]).await?.map(|r| r.get(0)))
}

/// Records `depth` under `key` for an hour (the deepest wins); expired rows are purged on
/// the way.
pub async fn put_depth(tx: &TenantTx, key: &str, depth: i32) -> Result<(), DbError> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO automation_lineage (key, depth, expires_at) VALUES ($1, $2, now() + interval '1 hour') \
             ON CONFLICT (key) DO UPDATE SET depth = greatest(automation_lineage.depth, EXCLUDED.depth), expires_at = EXCLUDED.expires_at",
        )
        .await?;
    tx.execute(&stmt, &[&key, &depth]).await?;
    let purge = tx.prepare_cached("DELETE FROM automation_lineage WHERE expires_at < now() - interval '1 minute'").await?;
    tx.execute(&purge, &[]).await?;
    Ok(())
}
