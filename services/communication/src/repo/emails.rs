//! Email tracking rows: CRM emails (queued, then sent by the delivery consumer) and system
//! emails (invitation, reset), with their opens and clicks.

use chrono::{DateTime, Utc};
use crm_client_communication::EmailStatus;
use crm_tenant::{DbError, TenantTx};
use tokio_postgres::Row;

use super::{EmailVisibility, email_visible};

const EMAIL_COLUMNS: &str = "id, activity_id, template_id, contact_id, deal_id, sender_id, email_address, subject, status, \
     message_id, sent_at, delivered_at, opened_at, clicked_at, open_count, click_count, created_at";

fn email_from(row: &Row) -> EmailStatus {
    EmailStatus {
        id: row.get(0),
        activity_id: row.get(1),
        template_id: row.get(2),
        contact_id: row.get(3),
        deal_id: row.get(4),
        sender_id: row.get(5),
        email_address: row.get(6),
        subject: row.get(7),
        status: row.get(8),
        message_id: row.get(9),
        sent_at: row.get(10),
        delivered_at: row.get(11),
        opened_at: row.get(12),
        clicked_at: row.get(13),
        open_count: row.get(14),
        click_count: row.get(15),
        created_at: row.get(16),
    }
}

/// A new tracking row. CRM emails keep their rendered bodies (delivered later by the
/// delivery consumer); system emails (invitation, reset) are recorded after sending, without
/// bodies (they hold secrets).
pub struct EmailWrite<'a> {
    pub kind: &'a str,
    pub status: &'a str,
    pub activity_id: Option<i32>,
    pub template_id: Option<i32>,
    pub contact_id: Option<i32>,
    pub deal_id: Option<i32>,
    pub sender_id: Option<i32>,
    pub email_address: &'a str,
    pub subject: &'a str,
    pub body_html: Option<&'a str>,
    pub body_text: Option<&'a str>,
    pub message_id: &'a str,
    pub sent_at: Option<DateTime<Utc>>,
    pub source_event_id: Option<&'a str>,
    /// A marketing email (sequence step, rule email): delivered with the one-click
    /// unsubscribe (RFC 8058).
    pub marketing: bool,
}

/// `None` when a row for the same source event exists already.
pub async fn insert(tx: &TenantTx, e: &EmailWrite<'_>) -> Result<Option<EmailStatus>, DbError> {
    let stmt = tx
        .prepare_cached(&format!(
            "INSERT INTO email_tracking (kind, status, activity_id, template_id, contact_id, deal_id, sender_id, email_address, \
             subject, body_html, body_text, message_id, sent_at, delivered_at, source_event_id, marketing) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $14, $15) \
             ON CONFLICT (source_event_id) DO NOTHING RETURNING {EMAIL_COLUMNS}"
        ))
        .await?;
    let row = tx
        .query_opt(
            &stmt,
            &[
                &e.kind,
                &e.status,
                &e.activity_id,
                &e.template_id,
                &e.contact_id,
                &e.deal_id,
                &e.sender_id,
                &e.email_address,
                &e.subject,
                &e.body_html,
                &e.body_text,
                &e.message_id,
                &e.sent_at,
                &e.source_event_id,
                &e.marketing,
            ],
        )
        .await?;
    Ok(row.as_ref().map(email_from))
}

/// Links a queued email to the activity that logs it.
pub async fn link_activity(tx: &TenantTx, id: i32, activity_id: i32) -> Result<(), DbError> {
    let stmt = tx.prepare_cached("UPDATE email_tracking SET activity_id = $2 WHERE id = $1").await?;
    tx.execute(&stmt, &[&id, &activity_id]).await?;
    Ok(())
}

/// The email, if it exists and `vis` lets the caller see it.
pub async fn by_id(tx: &TenantTx, id: i32, vis: &EmailVisibility) -> Result<Option<EmailStatus>, DbError> {
    let stmt =
        tx.prepare_cached(&format!("SELECT {EMAIL_COLUMNS} FROM email_tracking e WHERE id = $1 AND {}", email_visible("e", 2, 3, 4))).await?;
    Ok(tx.query_opt(&stmt, &[&id, &vis.all, &vis.user, &vis.system]).await?.as_ref().map(email_from))
}

/// A queued CRM email with its bodies, locked for delivery.
pub struct QueuedEmail {
    pub email: EmailStatus,
    pub body_html: Option<String>,
    pub body_text: String,
    pub marketing: bool,
}

pub async fn queued_for_update(tx: &TenantTx, id: i32) -> Result<Option<QueuedEmail>, DbError> {
    let stmt = tx
        .prepare_cached(&format!(
            "SELECT {EMAIL_COLUMNS}, body_html, coalesce(body_text, ''), marketing FROM email_tracking WHERE id = $1 AND status = 'queued' FOR UPDATE"
        ))
        .await?;
    Ok(tx.query_opt(&stmt, &[&id]).await?.map(|r| QueuedEmail { email: email_from(&r), body_html: r.get(17), body_text: r.get(18), marketing: r.get(19) }))
}

pub async fn mark_sent(tx: &TenantTx, id: i32, at: DateTime<Utc>) -> Result<EmailStatus, DbError> {
    let stmt = tx
        .prepare_cached(&format!(
            "UPDATE email_tracking SET status = 'sent', sent_at = $2, delivered_at = $2 WHERE id = $1 RETURNING {EMAIL_COLUMNS}"
        ))
        .await?;
    Ok(email_from(&tx.query_one(&stmt, &[&id, &at]).await?))
}

/// Counts an open; the bool tells whether it was the first. `None`: no such email.
pub async fn record_open(tx: &TenantTx, id: i32) -> Result<Option<(EmailStatus, bool)>, DbError> {
    let stmt = tx
        .prepare_cached(&format!(
            "UPDATE email_tracking e SET open_count = e.open_count + 1, opened_at = coalesce(e.opened_at, now()), \
             status = CASE WHEN e.status IN ('queued', 'sent') THEN 'opened' ELSE e.status END \
             FROM (SELECT id, opened_at IS NULL AS first FROM email_tracking WHERE id = $1 FOR UPDATE) old \
             WHERE e.id = old.id RETURNING {cols}, old.first",
            cols = EMAIL_COLUMNS.split(", ").map(|c| format!("e.{c}")).collect::<Vec<_>>().join(", ")
        ))
        .await?;
    Ok(tx.query_opt(&stmt, &[&id]).await?.map(|r| (email_from(&r), r.get(17))))
}

/// Counts a click (a click implies an open); the bool tells whether it was the first click.
pub async fn record_click(tx: &TenantTx, id: i32) -> Result<Option<(EmailStatus, bool)>, DbError> {
    let stmt = tx
        .prepare_cached(&format!(
            "UPDATE email_tracking e SET click_count = e.click_count + 1, clicked_at = coalesce(e.clicked_at, now()), \
             opened_at = coalesce(e.opened_at, now()), status = 'clicked' \
             FROM (SELECT id, clicked_at IS NULL AS first FROM email_tracking WHERE id = $1 FOR UPDATE) old \
             WHERE e.id = old.id RETURNING {cols}, old.first",
            cols = EMAIL_COLUMNS.split(", ").map(|c| format!("e.{c}")).collect::<Vec<_>>().join(", ")
        ))
        .await?;
    Ok(tx.query_opt(&stmt, &[&id]).await?.map(|r| (email_from(&r), r.get(17))))
}
