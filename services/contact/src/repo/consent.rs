//! Marketing consent: the current state on `contacts` and every change in
//! `contact_consent_history` (V4).

use chrono::{DateTime, Utc};
use crm_client_contact::{ConsentChange, MarketingConsent};
use crm_tenant::TenantTx;
use tokio_postgres::Row;

use super::DbResult;

/// History entries a consent record shows (newest first).
pub const HISTORY_LIMIT: i64 = 100;

fn consent(raw: &str) -> MarketingConsent {
    // The CHECK constraints admit only the three values.
    MarketingConsent::parse(raw).unwrap_or_default()
}

/// The current consent of a contact: (status, updated_at, source); `None` if no such contact.
/// `lock` takes the contact row (a change reads, decides and writes under it).
pub async fn current(tx: &TenantTx, contact_id: i32, lock: bool) -> DbResult<Option<(MarketingConsent, Option<DateTime<Utc>>, Option<String>)>> {
    let sql = format!(
        "SELECT marketing_consent, consent_updated_at, consent_source FROM contacts WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let stmt = tx.prepare_cached(&sql).await?;
    Ok(tx.query_opt(&stmt, &[&contact_id]).await?.map(|r| (consent(r.get(0)), r.get(1), r.get(2))))
}

/// Records a change: the contact's current consent, its `updated_at` (the contact's
/// representation changed: its version moves) and a history row; returns the time written.
pub async fn record(
    tx: &TenantTx,
    contact_id: i32,
    status: MarketingConsent,
    previous: MarketingConsent,
    source: &str,
    changed_by: Option<i32>,
    event_id: Option<&str>,
) -> DbResult<DateTime<Utc>> {
    let stmt = tx
        .prepare_cached(
            "WITH h AS (
                 INSERT INTO contact_consent_history (contact_id, status, previous, source, changed_by, event_id, changed_at)
                 VALUES ($1, $2, $3, $4, $5, $6, clock_timestamp()) RETURNING changed_at)
             UPDATE contacts SET marketing_consent = $2, consent_source = $4, consent_updated_at = h.changed_at,
                 updated_at = greatest(h.changed_at, contacts.updated_at + interval '1 microsecond')
             FROM h WHERE contacts.id = $1 RETURNING h.changed_at",
        )
        .await?;
    let row = tx.query_one(&stmt, &[&contact_id, &status.as_str(), &previous.as_str(), &source, &changed_by, &event_id]).await?;
    Ok(row.get(0))
}

fn change_from(row: &Row) -> ConsentChange {
    ConsentChange {
        status: consent(row.get(0)),
        previous: consent(row.get(1)),
        source: row.get(2),
        changed_by: row.get(3),
        changed_at: row.get(4),
    }
}

/// The latest [`HISTORY_LIMIT`] changes, newest first.
pub async fn history(tx: &TenantTx, contact_id: i32) -> DbResult<Vec<ConsentChange>> {
    let stmt = tx
        .prepare_cached(
            "SELECT status, previous, source, changed_by, changed_at FROM contact_consent_history
             WHERE contact_id = $1 ORDER BY changed_at DESC, id DESC LIMIT $2",
        )
        .await?;
    Ok(tx.query(&stmt, &[&contact_id, &HISTORY_LIMIT]).await?.iter().map(change_from).collect())
}

/// The contact with this email (case-insensitively; unique among live contacts). A live one
/// first; else a trashed one (issue 16: a withdrawal still reaches a contact in the trash,
/// so that restoring it does not bring back a consent its person withdrew).
pub async fn contact_by_email(tx: &TenantTx, email: &str) -> DbResult<Option<i32>> {
    let stmt = tx
        .prepare_cached("SELECT id FROM contacts WHERE lower(email) = lower($1) ORDER BY deleted_at DESC NULLS FIRST, id DESC LIMIT 1")
        .await?;
    Ok(tx.query_opt(&stmt, &[&email]).await?.map(|r| r.get(0)))
}
