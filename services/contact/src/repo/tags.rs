//! Tag management across contacts and companies (issue 16): every record carrying one of
//! the `from` tags gets `to` instead (or loses them when `to` is `None`), in one statement per
//! table; its tags stay lowercase, deduplicated and sorted.

use crm_client_contact::{CompanyBasicInfo, ContactBasicInfo, MarketingConsent};
use crm_tenant::TenantTx;

use super::{DbResult, text};

/// The new tags of a row: `from` replaced by `$2` (dropped when NULL), distinct, sorted.
const NEW_TAGS: &str = "(SELECT coalesce(array_agg(DISTINCT y ORDER BY y), '{}') FROM (
        SELECT CASE WHEN x = ANY($1::text[]) THEN $2::text ELSE x END AS y FROM unnest(t.tags) AS x) s
    WHERE y IS NOT NULL)";

/// Rewrites the tags of every contact carrying one of `from`; the changed contacts.
pub async fn replace_on_contacts(tx: &TenantTx, from: &[String], to: Option<&str>) -> DbResult<Vec<ContactBasicInfo>> {
    let stmt = tx
        .prepare_cached(&format!(
            "UPDATE contacts t SET tags = {NEW_TAGS}, updated_at = now() WHERE t.tags && $1::text[]
             RETURNING t.id, t.first_name, t.last_name, t.email, t.marketing_consent"
        ))
        .await?;
    let mut rows: Vec<ContactBasicInfo> = tx
        .query(&stmt, &[&from, &to])
        .await?
        .iter()
        .map(|r| ContactBasicInfo {
            id: r.get(0),
            first_name: r.get(1),
            last_name: r.get(2),
            email: text(r, 3),
            marketing_consent: MarketingConsent::parse(r.get(4)).unwrap_or_default(),
        })
        .collect();
    rows.sort_by_key(|c| c.id);
    Ok(rows)
}

/// Rewrites the tags of every company carrying one of `from`; the changed companies.
pub async fn replace_on_companies(tx: &TenantTx, from: &[String], to: Option<&str>) -> DbResult<Vec<CompanyBasicInfo>> {
    let stmt = tx
        .prepare_cached(&format!("UPDATE companies t SET tags = {NEW_TAGS}, updated_at = now() WHERE t.tags && $1::text[] RETURNING t.id, t.name"))
        .await?;
    let mut rows: Vec<CompanyBasicInfo> = tx.query(&stmt, &[&from, &to]).await?.iter().map(|r| CompanyBasicInfo { id: r.get(0), name: r.get(1) }).collect();
    rows.sort_by_key(|c| c.id);
    Ok(rows)
}
