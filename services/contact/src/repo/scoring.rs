//! `scoring_rules`, `contact_engagement` and `contacts.score` (issue 16 lead scores).

use chrono::{DateTime, Utc};
use crm_tenant::TenantTx;
use tokio_postgres::Row;
use tokio_postgres::types::Json;

use super::DbResult;
use crate::service::scoring::{RuleKind, RuleWrite, ScoringRule, Signal};

const FIELDS: &str = "id, name, kind, config, points, enabled, created_at, updated_at, created_by";

fn rule_from(r: &Row) -> ScoringRule {
    let kind: String = r.get(2);
    let config: Json<serde_json::Value> = r.get(3);
    ScoringRule {
        id: r.get(0),
        name: r.get(1),
        // The CHECK constraint admits only the four kinds.
        kind: RuleKind::parse(&kind).unwrap_or(RuleKind::FieldValue),
        // Written from a validated RuleConfig; a config the code no longer reads counts as empty.
        config: serde_json::from_value(config.0).unwrap_or_default(),
        points: r.get(4),
        enabled: r.get(5),
        created_at: r.get(6),
        updated_at: r.get(7),
        created_by: r.get(8),
    }
}

/// Every rule, in id order.
pub async fn rules_all(tx: &TenantTx) -> DbResult<Vec<ScoringRule>> {
    let stmt = tx.prepare_cached(&format!("SELECT {FIELDS} FROM scoring_rules ORDER BY id")).await?;
    Ok(tx.query(&stmt, &[]).await?.iter().map(rule_from).collect())
}

/// The enabled rules.
pub async fn rules(tx: &TenantTx) -> DbResult<Vec<ScoringRule>> {
    let stmt = tx.prepare_cached(&format!("SELECT {FIELDS} FROM scoring_rules WHERE enabled ORDER BY id")).await?;
    Ok(tx.query(&stmt, &[]).await?.iter().map(rule_from).collect())
}

/// One rule, locked for update.
pub async fn rule(tx: &TenantTx, id: i32) -> DbResult<Option<ScoringRule>> {
    let stmt = tx.prepare_cached(&format!("SELECT {FIELDS} FROM scoring_rules WHERE id = $1 FOR UPDATE")).await?;
    Ok(tx.query_opt(&stmt, &[&id]).await?.as_ref().map(rule_from))
}

pub async fn insert_rule(tx: &TenantTx, w: &RuleWrite, created_by: i32) -> DbResult<ScoringRule> {
    let stmt = tx
        .prepare_cached(&format!(
            "INSERT INTO scoring_rules (name, kind, config, points, enabled, created_by) VALUES ($1, $2, $3, $4, $5, $6) RETURNING {FIELDS}"
        ))
        .await?;
    let row = tx.query_one(&stmt, &[&w.name, &w.kind.as_str(), &Json(&w.config), &w.points, &w.enabled, &created_by]).await?;
    Ok(rule_from(&row))
}

pub async fn update_rule(tx: &TenantTx, id: i32, w: &RuleWrite) -> DbResult<ScoringRule> {
    let stmt = tx
        .prepare_cached(&format!(
            "UPDATE scoring_rules SET name = $2, kind = $3, config = $4, points = $5, enabled = $6, updated_at = clock_timestamp()
             WHERE id = $1 RETURNING {FIELDS}"
        ))
        .await?;
    let row = tx.query_one(&stmt, &[&id, &w.name, &w.kind.as_str(), &Json(&w.config), &w.points, &w.enabled]).await?;
    Ok(rule_from(&row))
}

pub async fn delete_rule(tx: &TenantTx, id: i32) -> DbResult<bool> {
    Ok(tx.execute("DELETE FROM scoring_rules WHERE id = $1", &[&id]).await? == 1)
}

/// Records one signal; a second row for the same event is ignored.
pub async fn insert_signal(tx: &TenantTx, event_id: &str, contact_id: i32, kind: &str, detail: Option<&str>, at: DateTime<Utc>) -> DbResult<()> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO contact_engagement (event_id, contact_id, kind, detail, occurred_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (event_id) DO NOTHING",
        )
        .await?;
    tx.execute(&stmt, &[&event_id, &contact_id, &kind, &detail, &at]).await?;
    Ok(())
}

/// The contact's signals since `since`.
pub async fn signals(tx: &TenantTx, contact_id: i32, since: DateTime<Utc>) -> DbResult<Vec<Signal>> {
    let stmt = tx
        .prepare_cached("SELECT kind, detail, occurred_at FROM contact_engagement WHERE contact_id = $1 AND occurred_at > $2")
        .await?;
    Ok(tx.query(&stmt, &[&contact_id, &since]).await?.iter().map(|r| Signal { kind: r.get(0), detail: r.get(1), at: r.get(2) }).collect())
}

/// Locks the contact's row as an UPDATE would (`FOR NO KEY UPDATE`: rows referencing the
/// contact can still be inserted meanwhile); false when it does not exist.
pub async fn lock_contact(tx: &TenantTx, contact_id: i32) -> DbResult<bool> {
    let stmt = tx.prepare_cached("SELECT 1 FROM contacts WHERE id = $1 FOR NO KEY UPDATE").await?;
    Ok(tx.query_opt(&stmt, &[&contact_id]).await?.is_some())
}

/// Stores a recomputed score (the contact's `updated_at` stays: a score is not an edit).
pub async fn set_score(tx: &TenantTx, contact_id: i32, score: i32) -> DbResult<()> {
    let stmt = tx.prepare_cached("UPDATE contacts SET score = $2, score_updated_at = now() WHERE id = $1").await?;
    tx.execute(&stmt, &[&contact_id, &score]).await?;
    Ok(())
}

pub async fn stored_score(tx: &TenantTx, contact_id: i32) -> DbResult<Option<i32>> {
    let stmt = tx.prepare_cached("SELECT score FROM contacts WHERE id = $1").await?;
    Ok(tx.query_opt(&stmt, &[&contact_id]).await?.map(|r| r.get(0)))
}
