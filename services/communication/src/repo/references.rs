//! References to other services' records that are gone for good: recorded once
//! (`gone_references`), dropped from every row, and checked before a row is written.

use crm_tenant::{DbError, TenantTx};

/// What kind of record of another service is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gone {
    Contact,
    Company,
    Deal,
}

impl Gone {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Contact => "contact",
            Self::Company => "company",
            Self::Deal => "deal",
        }
    }
}

/// Records that `kind` `id` is gone (idempotent).
pub async fn record(tx: &TenantTx, kind: Gone, id: i32) -> Result<(), DbError> {
    let stmt = tx.prepare_cached("INSERT INTO gone_references (kind, id) VALUES ($1, $2) ON CONFLICT DO NOTHING").await?;
    tx.execute(&stmt, &[&kind.as_str(), &id]).await?;
    Ok(())
}

/// Which of these references are gone: `(contact, company, deal)`.
pub async fn which_gone(tx: &TenantTx, contact: Option<i32>, company: Option<i32>, deal: Option<i32>) -> Result<(bool, bool, bool), DbError> {
    if contact.is_none() && company.is_none() && deal.is_none() {
        return Ok((false, false, false));
    }
    let stmt = tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM gone_references WHERE kind = 'contact' AND id = $1), \
                    EXISTS (SELECT 1 FROM gone_references WHERE kind = 'company' AND id = $2), \
                    EXISTS (SELECT 1 FROM gone_references WHERE kind = 'deal' AND id = $3)",
        )
        .await?;
    let row = tx.query_one(&stmt, &[&contact, &company, &deal]).await?;
    Ok((row.get(0), row.get(1), row.get(2)))
}

/// What an erasure removed or changed (for the log and the tests).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Erased {
    pub emails: u64,
    pub activities: u64,
    pub tasks: u64,
    pub unlinked: u64,
}

/// Erases a contact's data: every email to it (address, subject, bodies, tracking), every
/// activity and task written about it by people (free text about the person), and the
/// reference of what the platform generated from other records' events (a won deal's note
/// and follow-up task keep the deal, lose the person).
pub async fn erase_contact(tx: &TenantTx, id: i32) -> Result<Erased, DbError> {
    let emails = tx.prepare_cached("DELETE FROM email_tracking WHERE contact_id = $1").await?;
    let activities = tx.prepare_cached("DELETE FROM activities WHERE contact_id = $1 AND source_event_id IS NULL").await?;
    let tasks = tx.prepare_cached("DELETE FROM tasks WHERE contact_id = $1 AND source_event_id IS NULL").await?;
    let unlink_activities = tx.prepare_cached("UPDATE activities SET contact_id = NULL, updated_at = now() WHERE contact_id = $1").await?;
    let unlink_tasks = tx.prepare_cached("UPDATE tasks SET contact_id = NULL, updated_at = now() WHERE contact_id = $1").await?;
    let mut erased = Erased {
        emails: tx.execute(&emails, &[&id]).await?,
        activities: tx.execute(&activities, &[&id]).await?,
        tasks: tx.execute(&tasks, &[&id]).await?,
        unlinked: 0,
    };
    erased.unlinked = tx.execute(&unlink_activities, &[&id]).await? + tx.execute(&unlink_tasks, &[&id]).await?;
    Ok(erased)
}

/// Drops the references to a deleted company (activities; tasks and emails have none).
pub async fn drop_company(tx: &TenantTx, id: i32) -> Result<u64, DbError> {
    let stmt = tx.prepare_cached("UPDATE activities SET company_id = NULL, updated_at = now() WHERE company_id = $1").await?;
    tx.execute(&stmt, &[&id]).await
}

/// Drops the references to a deleted deal (activities, tasks, emails).
pub async fn drop_deal(tx: &TenantTx, id: i32) -> Result<u64, DbError> {
    let activities = tx.prepare_cached("UPDATE activities SET deal_id = NULL, updated_at = now() WHERE deal_id = $1").await?;
    let tasks = tx.prepare_cached("UPDATE tasks SET deal_id = NULL, updated_at = now() WHERE deal_id = $1").await?;
    let emails = tx.prepare_cached("UPDATE email_tracking SET deal_id = NULL WHERE deal_id = $1").await?;
    Ok(tx.execute(&activities, &[&id]).await? + tx.execute(&tasks, &[&id]).await? + tx.execute(&emails, &[&id]).await?)
}
