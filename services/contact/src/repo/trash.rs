//! The trash of contacts and companies (issue 16): moving a row in and out (`deleted_at`,
//! `deleted_by`, contact V7), the trash listing, the purge of rows past the tenant's
//! retention, and the retention itself (`platform.tenant_settings.trash_retention_days`).
//!
//! Every other query of this crate hides trashed rows (`deleted_at IS NULL`); only the
//! functions here (and the erase, `contacts::delete_contact` / `companies::delete_company`)
//! see them.

use chrono::{DateTime, Utc};
use crm_client_contact::{CompanyBasicInfo, ContactBasicInfo, MarketingConsent};
use crm_tenant::{DbError, PlatformTx, TenantId, TenantTx};
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;

use super::DbResult;

/// Retention when a tenant never changed its settings (tenant-service's default, global V8).
pub const DEFAULT_RETENTION_DAYS: i32 = 30;

/// A contact or company as the trash shows it.
#[derive(Debug, Clone)]
pub struct TrashRow {
    /// `contact` or `company`.
    pub kind: &'static str,
    pub id: i32,
    /// The contact's full name, or the company's name.
    pub name: String,
    /// Contacts only (`None` without one, and for companies).
    pub email: Option<String>,
    pub deleted_at: DateTime<Utc>,
    pub deleted_by: Option<i32>,
    pub owner_id: Option<i32>,
    pub created_by: i32,
    /// The survivor a merged record went into (contact V8), `None` for a plain deletion.
    pub merged_into: Option<i32>,
}

/// Keyset position in the trash listing (newest deletion first): the last row's deletion
/// time, kind and id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrashCursor {
    pub at: DateTime<Utc>,
    pub kind: String,
    pub id: i32,
}

/// What a listing may include: `None` leaves the kind out; `Some(None)` every row of it;
/// `Some(Some(user))` the rows that user deleted, owns or created (a sales rep's scope).
#[derive(Debug, Clone, Copy, Default)]
pub struct TrashScope {
    pub contacts: Option<Option<i32>>,
    pub companies: Option<Option<i32>>,
}

fn trash_row(r: &Row) -> TrashRow {
    let kind: &str = r.get(0);
    TrashRow {
        kind: if kind == "company" { "company" } else { "contact" },
        id: r.get(1),
        name: r.get(2),
        email: r.get(3),
        deleted_at: r.get(4),
        deleted_by: r.get(5),
        owner_id: r.get(6),
        created_by: r.get(7),
        merged_into: r.get(8),
    }
}

/// One page of the trash (`limit + 1` rows), newest deletion first, then kind and id
/// descending (both branches answer from their partial `(deleted_at, id)` index).
pub async fn list(tx: &TenantTx, scope: TrashScope, after: Option<&TrashCursor>, limit: i64) -> DbResult<Vec<TrashRow>> {
    // One statement whatever the scope (cached): $1..$3 the cursor (NULLs without one), $4
    // the limit; per kind a switch ($5, $7) and the own-scope user ($6, $8; NULL: all).
    let stmt = tx
        .prepare_cached(
            "SELECT * FROM (
                 SELECT 'contact'::text AS kind, c.id, trim(c.first_name || ' ' || c.last_name) AS name, c.email::text AS email,
                        c.deleted_at, c.deleted_by, c.owner_id, c.created_by, c.merged_into
                 FROM contacts c
                 WHERE $5::bool AND c.deleted_at IS NOT NULL
                   AND ($6::int4 IS NULL OR c.deleted_by = $6 OR c.owner_id = $6 OR c.created_by = $6)
                 UNION ALL
                 SELECT 'company'::text, c.id, c.name::text, NULL::text, c.deleted_at, c.deleted_by, NULL::int4, c.created_by, c.merged_into
                 FROM companies c
                 WHERE $7::bool AND c.deleted_at IS NOT NULL AND ($8::int4 IS NULL OR c.deleted_by = $8 OR c.created_by = $8)) t
             WHERE $1::timestamptz IS NULL OR (t.deleted_at, t.kind, t.id) < ($1::timestamptz, $2::text, $3::int4)
             ORDER BY t.deleted_at DESC, t.kind DESC, t.id DESC LIMIT $4",
        )
        .await?;
    let (at, kind, id) = match after {
        Some(c) => (Some(c.at), Some(c.kind.clone()), Some(c.id)),
        None => (None, None, None),
    };
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 8] = [
        &at,
        &kind,
        &id,
        &(limit + 1),
        &scope.contacts.is_some(),
        &scope.contacts.flatten(),
        &scope.companies.is_some(),
        &scope.companies.flatten(),
    ];
    Ok(tx.query(&stmt, &params).await?.iter().map(trash_row).collect())
}

/// A contact's row as the trash paths need it, whatever its state, locked.
#[derive(Debug, Clone)]
pub struct ContactState {
    pub basic: ContactBasicInfo,
    pub owner_id: Option<i32>,
    pub created_by: i32,
    pub deleted_at: Option<DateTime<Utc>>,
    pub deleted_by: Option<i32>,
}

/// The contact, trashed or not, locked for the rest of the transaction.
pub async fn contact_state_for_update(tx: &TenantTx, id: i32) -> DbResult<Option<ContactState>> {
    let stmt = tx
        .prepare_cached(
            "SELECT id, first_name, last_name, coalesce(email, ''), marketing_consent, owner_id, created_by, deleted_at, deleted_by
             FROM contacts WHERE id = $1 FOR UPDATE",
        )
        .await?;
    Ok(tx.query_opt(&stmt, &[&id]).await?.map(|r| ContactState {
        basic: ContactBasicInfo {
            id: r.get(0),
            first_name: r.get(1),
            last_name: r.get(2),
            email: r.get(3),
            marketing_consent: MarketingConsent::parse(r.get(4)).unwrap_or_default(),
        },
        owner_id: r.get(5),
        created_by: r.get(6),
        deleted_at: r.get(7),
        deleted_by: r.get(8),
    }))
}

/// Moves a live contact to the trash; returns the deletion time (`None`: not live).
/// `updated_at` stays: the record itself did not change (its ETag still matches on restore).
pub async fn trash_contact(tx: &TenantTx, id: i32, by: Option<i32>) -> DbResult<Option<DateTime<Utc>>> {
    let stmt = tx
        .prepare_cached("UPDATE contacts SET deleted_at = now(), deleted_by = $2 WHERE id = $1 AND deleted_at IS NULL RETURNING deleted_at")
        .await?;
    Ok(tx.query_opt(&stmt, &[&id, &by]).await?.map(|r| r.get(0)))
}

/// Brings a trashed contact back (and forgets a merge it was part of). A unique violation
/// on `contacts_email_key` means a live contact took its email meanwhile.
pub async fn restore_contact(tx: &TenantTx, id: i32) -> DbResult<bool> {
    let stmt = tx
        .prepare_cached(
            "UPDATE contacts SET deleted_at = NULL, deleted_by = NULL, merged_into = NULL, updated_at = now()
             WHERE id = $1 AND deleted_at IS NOT NULL",
        )
        .await?;
    Ok(tx.execute(&stmt, &[&id]).await? == 1)
}

/// A company's row as the trash paths need it, whatever its state, locked.
#[derive(Debug, Clone)]
pub struct CompanyState {
    pub basic: CompanyBasicInfo,
    pub created_by: i32,
    pub deleted_at: Option<DateTime<Utc>>,
    pub deleted_by: Option<i32>,
}

/// The company, trashed or not, locked for the rest of the transaction.
pub async fn company_state_for_update(tx: &TenantTx, id: i32) -> DbResult<Option<CompanyState>> {
    let stmt = tx.prepare_cached("SELECT id, name, created_by, deleted_at, deleted_by FROM companies WHERE id = $1 FOR UPDATE").await?;
    Ok(tx.query_opt(&stmt, &[&id]).await?.map(|r| CompanyState {
        basic: CompanyBasicInfo { id: r.get(0), name: r.get(1) },
        created_by: r.get(2),
        deleted_at: r.get(3),
        deleted_by: r.get(4),
    }))
}

/// Moves a live company to the trash; returns the deletion time (`None`: not live).
pub async fn trash_company(tx: &TenantTx, id: i32, by: Option<i32>) -> DbResult<Option<DateTime<Utc>>> {
    let stmt = tx
        .prepare_cached("UPDATE companies SET deleted_at = now(), deleted_by = $2 WHERE id = $1 AND deleted_at IS NULL RETURNING deleted_at")
        .await?;
    Ok(tx.query_opt(&stmt, &[&id, &by]).await?.map(|r| r.get(0)))
}

/// Brings a trashed company back (and forgets a merge it was part of).
pub async fn restore_company(tx: &TenantTx, id: i32) -> DbResult<bool> {
    let stmt = tx
        .prepare_cached(
            "UPDATE companies SET deleted_at = NULL, deleted_by = NULL, merged_into = NULL, updated_at = now()
             WHERE id = $1 AND deleted_at IS NOT NULL",
        )
        .await?;
    Ok(tx.execute(&stmt, &[&id]).await? == 1)
}

/// Erases up to `limit` contacts trashed at or before `cutoff`, oldest first, and returns
/// them. Rows another purge holds are skipped (`SKIP LOCKED`): that one erases them, so two
/// replicas never erase (and announce) the same row.
pub async fn purge_contacts(tx: &TenantTx, cutoff: DateTime<Utc>, limit: i64) -> DbResult<Vec<ContactBasicInfo>> {
    let stmt = tx
        .prepare_cached(
            "WITH due AS (
                 SELECT id FROM contacts WHERE deleted_at <= $1 ORDER BY deleted_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)
             DELETE FROM contacts c USING due WHERE c.id = due.id
             RETURNING c.id, c.first_name, c.last_name, coalesce(c.email, ''), c.marketing_consent",
        )
        .await?;
    let mut rows: Vec<ContactBasicInfo> = tx
        .query(&stmt, &[&cutoff, &limit])
        .await?
        .iter()
        .map(|r| ContactBasicInfo {
            id: r.get(0),
            first_name: r.get(1),
            last_name: r.get(2),
            email: r.get(3),
            marketing_consent: MarketingConsent::parse(r.get(4)).unwrap_or_default(),
        })
        .collect();
    rows.sort_by_key(|c| c.id);
    Ok(rows)
}

/// Erases up to `limit` companies trashed at or before `cutoff` (like [`purge_contacts`]);
/// their contacts and subsidiaries lose the reference (ON DELETE SET NULL).
pub async fn purge_companies(tx: &TenantTx, cutoff: DateTime<Utc>, limit: i64) -> DbResult<Vec<CompanyBasicInfo>> {
    let stmt = tx
        .prepare_cached(
            "WITH due AS (
                 SELECT id FROM companies WHERE deleted_at <= $1 ORDER BY deleted_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)
             DELETE FROM companies c USING due WHERE c.id = due.id RETURNING c.id, c.name",
        )
        .await?;
    let mut rows: Vec<CompanyBasicInfo> =
        tx.query(&stmt, &[&cutoff, &limit]).await?.iter().map(|r| CompanyBasicInfo { id: r.get(0), name: r.get(1) }).collect();
    rows.sort_by_key(|c| c.id);
    Ok(rows)
}

/// The tenant's `trash_retention_days` (tenant-service's setting; the default without a
/// settings row). `None` when the tenant does not exist.
pub async fn retention_days(tx: &PlatformTx, tenant: &TenantId) -> DbResult<Option<i32>> {
    let row = tx
        .query_opt(
            "SELECT coalesce(s.trash_retention_days, $2) FROM platform.tenants t
             LEFT JOIN platform.tenant_settings s ON s.tenant_id = t.id WHERE t.id = $1",
            &[&tenant.to_string(), &DEFAULT_RETENTION_DAYS],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// Every tenant with its retention (one query per sweep, however many tenants).
pub async fn tenants_with_retention(tx: &PlatformTx) -> DbResult<Vec<(TenantId, i32)>> {
    let rows = tx
        .query(
            "SELECT t.id, coalesce(s.trash_retention_days, $1) FROM platform.tenants t
             LEFT JOIN platform.tenant_settings s ON s.tenant_id = t.id ORDER BY t.id",
            &[&DEFAULT_RETENTION_DAYS],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let id: &str = r.get(0);
            let tenant = TenantId::parse(id).map_err(|_| DbError::Refused("a tenants row has an invalid id"))?;
            Ok((tenant, r.get(1)))
        })
        .collect()
}
