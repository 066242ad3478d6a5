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
    pub notes: u64,
    /// Attachments deleted (their objects queued for removal).
    pub attachments: u64,
    pub unlinked: u64,
}

/// Erases a contact's data: every email to it (address, subject, bodies, tracking), every
/// activity and task written about it by people (free text about the person), and the
/// reference of what the platform generated from other records' events (a won deal's note
/// and follow-up task keep the deal, lose the person). Every note linked to the contact goes
/// too, even one also linked to a company or deal: its body is free text about the person.
/// So does every file linked to the contact or to an activity about it that is deleted here
/// (files about a person are personal data); their objects are queued for removal.
pub async fn erase_contact(tx: &TenantTx, id: i32) -> Result<Erased, DbError> {
    let emails = tx.prepare_cached("DELETE FROM email_tracking WHERE contact_id = $1").await?;
    let activities = tx.prepare_cached("DELETE FROM activities WHERE contact_id = $1 AND source_event_id IS NULL").await?;
    let tasks = tx.prepare_cached("DELETE FROM tasks WHERE contact_id = $1 AND source_event_id IS NULL").await?;
    let unlink_activities = tx.prepare_cached("UPDATE activities SET contact_id = NULL, updated_at = now() WHERE contact_id = $1").await?;
    let unlink_tasks = tx.prepare_cached("UPDATE tasks SET contact_id = NULL, updated_at = now() WHERE contact_id = $1").await?;
    let mut erased = Erased {
        // Before the activities: the files of the activities deleted below go too.
        attachments: super::attachments::erase_contact(tx, id).await?,
        emails: tx.execute(&emails, &[&id]).await?,
        activities: tx.execute(&activities, &[&id]).await?,
        tasks: tx.execute(&tasks, &[&id]).await?,
        notes: delete_notes_of(tx, "contact_id", id).await?,
        unlinked: 0,
    };
    erased.unlinked = tx.execute(&unlink_activities, &[&id]).await? + tx.execute(&unlink_tasks, &[&id]).await?;
    Ok(erased)
}

/// Drops the references to a deleted company (activities and notes; tasks and emails have
/// none). A note or a file about nothing else is deleted with it.
pub async fn drop_company(tx: &TenantTx, id: i32) -> Result<u64, DbError> {
    let stmt = tx.prepare_cached("UPDATE activities SET company_id = NULL, updated_at = now() WHERE company_id = $1").await?;
    let (files_deleted, files_unlinked) = super::attachments::drop_record(tx, "company_id", id).await?;
    Ok(tx.execute(&stmt, &[&id]).await? + drop_notes_link(tx, "company_id", id).await? + files_deleted + files_unlinked)
}

/// Drops the references to a deleted deal (activities, tasks, emails, notes, files; a note or
/// a file about nothing else is deleted with it).
pub async fn drop_deal(tx: &TenantTx, id: i32) -> Result<u64, DbError> {
    let activities = tx.prepare_cached("UPDATE activities SET deal_id = NULL, updated_at = now() WHERE deal_id = $1").await?;
    let tasks = tx.prepare_cached("UPDATE tasks SET deal_id = NULL, updated_at = now() WHERE deal_id = $1").await?;
    let emails = tx.prepare_cached("UPDATE email_tracking SET deal_id = NULL WHERE deal_id = $1").await?;
    let files = super::attachments::drop_record(tx, "deal_id", id).await?;
    Ok(tx.execute(&activities, &[&id]).await?
        + tx.execute(&tasks, &[&id]).await?
        + tx.execute(&emails, &[&id]).await?
        + drop_notes_link(tx, "deal_id", id).await?
        + files.0
        + files.1)
}

/// Deletes every note whose `column` (a link column, from the code) is `id`.
async fn delete_notes_of(tx: &TenantTx, column: &'static str, id: i32) -> Result<u64, DbError> {
    debug_assert!(matches!(column, "contact_id" | "company_id" | "deal_id"));
    let stmt = tx.prepare_cached(&format!("DELETE FROM notes WHERE {column} = $1")).await?;
    tx.execute(&stmt, &[&id]).await
}

/// A record's notes when it is gone for good: those linked only to it are deleted (a note is
/// always about something), the others lose the link. Returns the notes changed or deleted.
async fn drop_notes_link(tx: &TenantTx, column: &'static str, id: i32) -> Result<u64, DbError> {
    debug_assert!(matches!(column, "company_id" | "deal_id"));
    let others = if column == "company_id" { "contact_id IS NULL AND deal_id IS NULL" } else { "contact_id IS NULL AND company_id IS NULL" };
    let delete = tx.prepare_cached(&format!("DELETE FROM notes WHERE {column} = $1 AND {others}")).await?;
    let unlink = tx.prepare_cached(&format!("UPDATE notes SET {column} = NULL, updated_at = now() WHERE {column} = $1")).await?;
    Ok(tx.execute(&delete, &[&id]).await? + tx.execute(&unlink, &[&id]).await?)
}

/// What a merge moved (for the log and the tests).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Moved {
    /// Rows now pointing at the survivor.
    pub rows: u64,
    /// Open rows closed instead of moved, because the survivor already has one where only one
    /// may be open (an inactive-lead follow-up task; an active enrollment in a sequence).
    pub closed: u64,
}

/// Issue 16, `contact.merged`: every reference to a contact among `merged` now points at
/// `survivor`: activities, tasks, emails, unsubscribes, sequence enrollments, notes. Where
/// only one open row per contact may exist, a merged contact's open row that would be a
/// second one is closed (an inactive-lead follow-up task `cancelled`, see
/// `tasks_one_open_inactive_follow_up`; an active enrollment in the same sequence `stopped`
/// as `unenrolled`) and the survivor's (else the oldest) is kept. Idempotent: a second run
/// finds nothing to move.
pub async fn move_contact(tx: &TenantTx, survivor: i32, merged: &[i32]) -> Result<Moved, DbError> {
    let close_tasks = tx
        .prepare_cached(
            "UPDATE tasks t SET status = 'cancelled', updated_at = now()
             WHERE t.contact_id = ANY($2)
               AND t.type = 'follow_up' AND t.status IN ('pending', 'in_progress') AND (t.custom_fields->>'reason') = 'inactive_lead'
               AND EXISTS (SELECT 1 FROM tasks o
                           WHERE (o.contact_id = $1 OR (o.contact_id = ANY($2) AND o.id < t.id))
                             AND o.type = 'follow_up' AND o.status IN ('pending', 'in_progress')
                             AND (o.custom_fields->>'reason') = 'inactive_lead')",
        )
        .await?;
    let stop_enrollments = tx
        .prepare_cached(
            "UPDATE sequence_enrollments e SET status = 'stopped', stop_reason = 'unenrolled', stopped_at = now(), updated_at = now()
             WHERE e.contact_id = ANY($2) AND e.status = 'active'
               AND EXISTS (SELECT 1 FROM sequence_enrollments o
                           WHERE o.sequence_id = e.sequence_id AND o.status = 'active'
                             AND (o.contact_id = $1 OR (o.contact_id = ANY($2) AND o.id < e.id)))",
        )
        .await?;
    let mut moved = Moved {
        closed: tx.execute(&close_tasks, &[&survivor, &merged]).await? + tx.execute(&stop_enrollments, &[&survivor, &merged]).await?,
        rows: 0,
    };
    for sql in [
        "UPDATE activities SET contact_id = $1, updated_at = now() WHERE contact_id = ANY($2)",
        "UPDATE tasks SET contact_id = $1, updated_at = now() WHERE contact_id = ANY($2)",
        "UPDATE email_tracking SET contact_id = $1 WHERE contact_id = ANY($2)",
        "UPDATE unsubscribes SET contact_id = $1 WHERE contact_id = ANY($2)",
        "UPDATE sequence_enrollments SET contact_id = $1, updated_at = now() WHERE contact_id = ANY($2)",
        "UPDATE notes SET contact_id = $1, updated_at = now() WHERE contact_id = ANY($2)",
        "UPDATE attachments SET contact_id = $1 WHERE contact_id = ANY($2)",
    ] {
        let stmt = tx.prepare_cached(sql).await?;
        moved.rows += tx.execute(&stmt, &[&survivor, &merged]).await?;
    }
    Ok(moved)
}

/// Issue 16, `company.merged`: activities and notes of a company among `merged` now point at
/// `survivor` (tasks and emails have no company). Idempotent.
pub async fn move_company(tx: &TenantTx, survivor: i32, merged: &[i32]) -> Result<Moved, DbError> {
    let mut moved = Moved::default();
    for sql in [
        "UPDATE activities SET company_id = $1, updated_at = now() WHERE company_id = ANY($2)",
        "UPDATE notes SET company_id = $1, updated_at = now() WHERE company_id = ANY($2)",
        "UPDATE attachments SET company_id = $1 WHERE company_id = ANY($2)",
    ] {
        let stmt = tx.prepare_cached(sql).await?;
        moved.rows += tx.execute(&stmt, &[&survivor, &merged]).await?;
    }
    Ok(moved)
}
