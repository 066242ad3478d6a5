//! The tenant's audit log (issue 16, "History"): every create, update and delete of every
//! service, by a user or by the system (rules, jobs), DERIVED FROM THE DOMAIN EVENTS.
//!
//! * [`record`]: called by the durable consumer of every subject (`crate::consumers`), once
//!   per event (the consumer's `processed_events`, plus the event id as the table's key).
//!   Old values come from the `changes` object the producer puts in `*.updated` payloads,
//!   computed in the transaction that wrote the change from the row it locked
//!   (`crm_events::changes`). That is exact under out-of-order and repeated delivery; a
//!   consumer-side snapshot per record would diff against whatever state arrived last (wrong
//!   when two updates of a record arrive swapped or one is redelivered after a failure).
//! * [`list`]: `GET /audit` (admins), newest first, keyset-paginated.
//! * [`purge_expired`] / [`run_retention`]: rows older than `AUDIT_RETENTION_DAYS` go.

use std::time::Duration;

use chrono::{DateTime, Utc};
use crm_events::Envelope;
use crm_tenant::{TenantId, TenantTx};
use crm_web::pagination::parse_cursor;
use crm_web::{ApiError, Can, FieldErrors, Page, parse_limit, perm};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::input::AuditLogParams;
use crate::repo::DbError;
use crate::repo::audit::{self as repo, AuditFilter, AuditRow, NewAuditRow};

/// Event types that change nothing and are not recorded: sessions (`user.login`,
/// `user.logged_out`), and a reset REQUEST (the reset itself, `user.password_reset`, is).
pub const NOT_AUDITED: &[&str] = &["user.login", "user.logged_out", "user.password_reset_requested"];

/// Keys whose values never reach the log (invitation tokens, secrets, password material),
/// at any depth of a payload: the log is readable by every admin for a year.
fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["token", "secret", "password"].iter().any(|s| key.contains(s))
}

fn redact(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.retain(|k, _| !is_secret_key(k));
            map.values_mut().for_each(redact);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

fn id_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.chars().take(100).collect()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The record an event is about: `data.<resource>_id`, else `data.id`, else
/// `data.<resource>.id` (the payloads that nest the record, e.g. `deal.stage_changed`).
fn resource_id(resource: &str, data: &serde_json::Value) -> Option<String> {
    data.get(format!("{resource}_id"))
        .and_then(id_text)
        .or_else(|| data.get("id").and_then(id_text))
        .or_else(|| data.get(resource).and_then(|r| r.get("id")).and_then(id_text))
}

/// The row recorded for `event` (`None`: not audited, see [`NOT_AUDITED`]). The event type
/// `family.action` gives resource and action; `changes` moves out of the payload.
pub fn entry_of(event: &Envelope) -> Option<NewAuditRow> {
    if NOT_AUDITED.contains(&event.r#type.as_str()) {
        return None;
    }
    let (resource, action) = event.r#type.split_once('.').unwrap_or((event.r#type.as_str(), ""));
    let mut data = event.data.clone();
    let changes = data.as_object_mut().and_then(|d| d.remove("changes")).filter(|c| c.is_object());
    let mut changes = changes;
    if let Some(c) = changes.as_mut() {
        redact(c);
    }
    redact(&mut data);
    let actor: Option<String> = event.actor.as_ref().map(|a| a.chars().take(100).collect());
    Some(NewAuditRow {
        event_id: event.id.clone(),
        event_type: event.r#type.chars().take(100).collect(),
        resource: resource.chars().take(50).collect(),
        action: action.chars().take(50).collect(),
        resource_id: resource_id(resource, &data),
        actor_id: actor.as_deref().and_then(|a| a.parse::<i32>().ok()),
        actor,
        request_id: event.request_id.as_ref().map(|r| r.chars().take(128).collect()),
        occurred_at: event.timestamp,
        changes,
        data,
    })
}

/// Records `event` in the log of its tenant, in the consumer's transaction. Events older
/// than the retention period (a late redelivery) are not recorded: the job would delete
/// them at once.
pub async fn record(tx: &TenantTx, event: &Envelope, retention_days: u32) -> Result<(), DbError> {
    let Some(row) = entry_of(event) else { return Ok(()) };
    if row.occurred_at < Utc::now() - chrono::Duration::days(i64::from(retention_days)) {
        return Ok(());
    }
    repo::insert(tx, &row).await?;
    Ok(())
}

/// One entry of the audit log (`GET /audit`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    /// The event's id (ULID).
    pub id: String,
    /// The event type, e.g. `contact.updated`.
    pub event_type: String,
    /// The kind of record: `contact`, `company`, `deal`, `user`, `tenant`, `activity`, ...
    pub resource: String,
    /// What happened to it: `created`, `updated`, `deleted`, `stage_changed`, ...
    pub action: String,
    /// The record's id as text (integer ids and ULIDs alike); null when the event names none.
    pub resource_id: Option<String>,
    /// Who: a user id, or `signup` / `platform_operator` / a service; null for the system
    /// (automation rules and background jobs).
    pub actor: Option<String>,
    /// `actor` when it is a user id.
    pub actor_id: Option<i32>,
    /// The `X-Request-ID` of the request that made the change (null for background work).
    pub request_id: Option<String>,
    /// When the change happened (the event's time).
    pub occurred_at: DateTime<Utc>,
    /// For updates: `{field: {"old": .., "new": ..}}` of every changed field; null when the
    /// event carries no diff (creates, deletes, and events of older versions).
    #[schema(value_type = Option<Object>)]
    pub changes: Option<serde_json::Value>,
    /// The event's payload (the record's basic fields after the change), secrets removed.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    /// When the log recorded it.
    pub recorded_at: DateTime<Utc>,
}

impl From<AuditRow> for AuditEntry {
    fn from(r: AuditRow) -> Self {
        let AuditRow { row, recorded_at } = r;
        Self {
            id: row.event_id,
            event_type: row.event_type,
            resource: row.resource,
            action: row.action,
            resource_id: row.resource_id,
            actor: row.actor,
            actor_id: row.actor_id,
            request_id: row.request_id,
            occurred_at: row.occurred_at,
            changes: row.changes,
            data: row.data,
            recorded_at,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct AuditLogCursor {
    t: DateTime<Utc>,
    id: String,
}

fn text_filter(errors: &mut FieldErrors, key: &str, raw: Option<&str>, max: usize) -> Option<String> {
    let raw = raw.map(str::trim).filter(|s| !s.is_empty())?;
    if raw.chars().count() > max || raw.chars().any(char::is_control) {
        errors.add(key, format!("must be at most {max} characters, on one line"));
        return None;
    }
    Some(raw.to_owned())
}

fn time_filter(errors: &mut FieldErrors, key: &str, raw: Option<&str>) -> Option<DateTime<Utc>> {
    let raw = raw.map(str::trim).filter(|s| !s.is_empty())?;
    match DateTime::parse_from_rfc3339(raw) {
        Ok(t) => Some(t.with_timezone(&Utc)),
        Err(_) => {
            errors.add(key, "must be an RFC 3339 time, e.g. 2026-01-31T00:00:00Z");
            None
        }
    }
}

/// The filters of `GET /audit`, validated (one 400 naming every bad parameter).
fn filter_of(params: &AuditLogParams) -> Result<AuditFilter, ApiError> {
    let mut errors = FieldErrors::default();
    let resource = text_filter(&mut errors, "resource", params.resource.as_deref(), 50);
    if let Some(r) = &resource
        && !r.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
    {
        errors.add("resource", "must be a record type in lowercase, e.g. contact, company, deal, user");
    }
    let f = AuditFilter {
        resource,
        resource_id: text_filter(&mut errors, "resource_id", params.resource_id.as_deref(), 100),
        actor: text_filter(&mut errors, "actor", params.actor.as_deref(), 100),
        from: time_filter(&mut errors, "from", params.from.as_deref()),
        to: time_filter(&mut errors, "to", params.to.as_deref()),
    };
    if let (Some(from), Some(to)) = (f.from, f.to)
        && from > to
    {
        errors.add("to", "must not be before from");
    }
    errors.into_result()?;
    Ok(f)
}

/// `GET /audit`: the log of the caller's tenant, newest first, filtered; admins only
/// (`audit: read`).
pub async fn list(state: &AppState, can: &Can<perm::AuditRead>, params: &AuditLogParams) -> Result<Page<AuditEntry>, ApiError> {
    let filter = filter_of(params)?;
    let limit = parse_limit(params.limit.as_deref())?;
    let after: Option<AuditLogCursor> = parse_cursor(&state.cursors, params.cursor.as_deref())?;
    let tx = state.db.tenant_read(&can.tenant_id).await?;
    let rows = repo::list(&tx, &filter, after.map(|c| (c.t, c.id)), limit).await?;
    tx.commit().await?;
    let entries: Vec<AuditEntry> = rows.into_iter().map(AuditEntry::from).collect();
    Ok(Page::from_overfetch(entries, limit, None, |last| {
        state.cursors.encode(&AuditLogCursor { t: last.occurred_at, id: last.id.clone() })
    }))
}

/// Rows deleted per statement: bounded transactions on a large backlog.
const PURGE_BATCH: i64 = 5000;

/// Deletes the tenant's entries older than `retention_days` before `now`; returns how many.
pub async fn purge_expired(state: &AppState, tenant: &TenantId, now: DateTime<Utc>, retention_days: u32) -> Result<u64, DbError> {
    let before = now - chrono::Duration::days(i64::from(retention_days));
    let mut total = 0;
    loop {
        let tx = state.db.tenant(tenant).await?;
        let n = repo::delete_older_than(&tx, before, PURGE_BATCH).await?;
        tx.commit().await?;
        total += n;
        if n < PURGE_BATCH as u64 {
            return Ok(total);
        }
    }
}

/// Every tenant (active or suspended: a suspended tenant's log still ages).
async fn tenants(state: &AppState) -> Result<Vec<TenantId>, DbError> {
    let tx = state.db.platform().await?;
    let rows = tx.query("SELECT id FROM tenants ORDER BY id", &[]).await?;
    tx.commit().await?;
    Ok(rows.iter().filter_map(|r| TenantId::parse(r.get::<_, &str>(0)).ok()).collect())
}

/// One sweep of every tenant; a failing tenant is logged and retried at the next sweep.
pub async fn sweep(state: &AppState) -> Result<u64, DbError> {
    let retention = state.settings.audit_retention_days;
    let mut total = 0;
    for tenant in tenants(state).await? {
        match purge_expired(state, &tenant, Utc::now(), retention).await {
            Ok(n) => total += n,
            Err(err) => tracing::warn!(tenant = %tenant, error = %err, "audit retention failed for a tenant; retried next sweep"),
        }
    }
    Ok(total)
}

/// The retention job: a sweep at start and every `interval` until `shutdown`. It keeps no
/// state (the cut-off is computed from the clock), so a restart or a second instance loses
/// or doubles nothing: deleting an already deleted row is a no-op.
pub async fn run_retention(state: AppState, interval: Duration, shutdown: impl std::future::Future<Output = ()>) {
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        match sweep(&state).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "audit log entries past retention deleted"),
            Err(err) => tracing::warn!(error = %err, "audit retention sweep failed; retried next sweep"),
        }
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(kind: &str, actor: Option<&str>, data: serde_json::Value) -> Envelope {
        Envelope::new(kind, &TenantId::new(), actor.map(str::to_owned), data).unwrap()
    }

    #[test]
    fn updates_keep_their_diff_apart_from_the_payload() {
        let e = event("contact.updated", Some("7"), json!({"id": 42, "first_name": "B", "changes": {"first_name": {"old": "A", "new": "B"}}}));
        let row = entry_of(&e).unwrap();
        assert_eq!((row.resource.as_str(), row.action.as_str(), row.resource_id.as_deref()), ("contact", "updated", Some("42")));
        assert_eq!((row.actor.as_deref(), row.actor_id), (Some("7"), Some(7)));
        assert_eq!(row.changes, Some(json!({"first_name": {"old": "A", "new": "B"}})));
        assert_eq!(row.data, json!({"id": 42, "first_name": "B"}));
    }

    #[test]
    fn record_ids_come_from_the_usual_places() {
        assert_eq!(resource_id("contact", &json!({"contact_id": 5, "id": 9})).as_deref(), Some("5"));
        assert_eq!(resource_id("deal", &json!({"deal": {"id": 3}, "from_stage": "a"})).as_deref(), Some("3"));
        assert_eq!(resource_id("tenant", &json!({"id": "01HZX3V5K8Q9R2S4T6W8Y0A1B2"})).as_deref(), Some("01HZX3V5K8Q9R2S4T6W8Y0A1B2"));
        assert_eq!(resource_id("email", &json!({"to": "x"})), None);
    }

    #[test]
    fn secrets_and_session_events_stay_out() {
        let e = event("tenant.user_invited", Some("signup"), json!({"id": "I1", "email": "a@b.c", "token": "s3cret", "nested": {"signing_secret": "x"}}));
        let row = entry_of(&e).unwrap();
        assert_eq!(row.data, json!({"id": "I1", "email": "a@b.c", "nested": {}}));
        assert_eq!((row.actor.as_deref(), row.actor_id), (Some("signup"), None));
        assert!(entry_of(&event("user.login", Some("1"), json!({"id": 1}))).is_none());
        assert!(entry_of(&event("user.password_reset_requested", None, json!({"token": "t"}))).is_none());
    }

    #[test]
    fn filters_are_validated_together() {
        let params = AuditLogParams {
            resource: Some("Contact!".into()),
            from: Some("yesterday".into()),
            to: Some("2026-01-01T00:00:00Z".into()),
            ..AuditLogParams::default()
        };
        let err = filter_of(&params).unwrap_err();
        assert_eq!(err.status(), axum::http::StatusCode::BAD_REQUEST);
        let body = serde_json::to_value(err.details()).unwrap().to_string();
        assert!(body.contains("resource") && body.contains("from"), "{body}");
        let back = AuditLogParams { from: Some("2026-02-01T00:00:00Z".into()), to: Some("2026-01-01T00:00:00Z".into()), ..AuditLogParams::default() };
        assert!(filter_of(&back).is_err());
    }
}
