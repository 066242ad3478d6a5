//! CSV import and export of contacts. The import streams the upload through the parser
//! ([`crate::import::Upload`]) and writes each batch of rows with a few set-based statements,
//! all in ONE transaction committed after the last row: a malformed file imports nothing.
//! The export streams pages of contacts as CSV, each page read in its own short transaction.

use std::collections::{BTreeSet, HashMap};

use axum::body::{Body, Bytes};
use crm_client_auth::AuthClient;
use crm_client_contact::subjects::{COMPANY_CREATED, CONTACT_CONVERTED, CONTACT_CREATED, CONTACT_UPDATED};
use crm_client_contact::{ContactConverted, ContactDetails, ContactStatus};
use crm_events::publish;
use crm_tenant::{TenantDb, TenantId, TenantTx};
use crm_web::{ApiError, Can, QueryParams, Scope, perm};
use futures::Stream;

use super::owners;
use crate::AppState;
use crate::domain::ContactWrite;
use crate::export::csv_chunk;
use crate::import::{ImportReport, ImportRow, OnDuplicate, Parsed, RowError, Upload, errors_at, merge, write_of};
use crate::repo::contacts::{self as repo, StatusChange};
use crate::repo::companies;

/// A CSV upload as the handler hands it over.
pub struct CsvUpload {
    pub on_duplicate: OnDuplicate,
    /// The `Content-Length` the client declared, if any (checked before reading).
    pub declared_len: Option<usize>,
    pub body: Body,
}

/// `POST /contacts/import`: one transaction; invalid rows are skipped and listed, a
/// malformed file imports nothing. Publishes `contact.created` / `contact.updated` /
/// `contact.converted` per contact and `company.created` per company named but unknown.
pub async fn import(state: &AppState, can: &Can<perm::ContactsWrite>, upload: CsvUpload) -> Result<ImportReport, ApiError> {
    let settings = &state.settings;
    if upload.declared_len.is_some_and(|len| len > settings.import_max_bytes) {
        return Err(ApiError::payload_too_large());
    }
    let mut importer = Importer {
        can,
        users: state.users.as_ref(),
        on_duplicate: upload.on_duplicate,
        max_errors: settings.import_max_errors,
        report: ImportReport::default(),
    };
    let tx = state.db.tenant(&can.tenant_id).await?;
    let mut rows = Upload::start(upload.body, settings);
    let mut outcome = Ok(());
    while let Some(batch) = rows.next().await {
        if let Err(e) = importer.write_batch(&tx, batch).await {
            outcome = Err(e);
            break;
        }
    }
    let ignored = rows.finish().await;
    outcome?;
    importer.report.ignored_columns = ignored?;
    importer.report.errors.sort_by_key(|e| e.row);
    tx.commit().await?;
    let report = importer.report;
    tracing::info!(rows = report.rows, created = report.created, updated = report.updated, skipped = report.skipped, failed = report.failed, "contacts imported");
    Ok(report)
}

/// Everything one import needs besides the transaction.
struct Importer<'a> {
    can: &'a Can<perm::ContactsWrite>,
    users: &'a dyn AuthClient,
    on_duplicate: OnDuplicate,
    max_errors: usize,
    report: ImportReport,
}

impl Importer<'_> {
    fn fail(&mut self, errors: Vec<RowError>) {
        self.report.failed += 1;
        for e in errors {
            if self.report.errors.len() < self.max_errors {
                self.report.errors.push(e);
            } else {
                self.report.errors_truncated = true;
            }
        }
    }

    fn fail_one(&mut self, line: u64, field: &str, message: &str) {
        self.fail(vec![RowError { row: line, field: field.into(), message: message.into() }]);
    }

    async fn write_batch(&mut self, tx: &TenantTx, batch: Vec<Parsed>) -> Result<(), ApiError> {
        self.report.rows += batch.len() as u64;
        let mut rows = Vec::with_capacity(batch.len());
        for parsed in batch {
            match parsed {
                Ok(row) => rows.push(row),
                Err(errors) => self.fail(errors),
            }
        }
        let rows = self.check_owners(rows).await?;
        let rows = self.resolve_companies(tx, rows).await?;

        // Duplicates: existing contacts (locked) and rows earlier in this batch.
        let emails: Vec<String> = rows.iter().filter_map(|r| r.write.email.as_ref().map(|e| e.to_lowercase())).collect();
        let existing: HashMap<String, ContactDetails> =
            repo::contacts_by_emails(tx, &emails).await?.into_iter().map(|c| (c.email.to_lowercase(), c)).collect();
        let mut creates: Vec<ImportRow> = Vec::new();
        let mut pending: HashMap<String, usize> = HashMap::new();
        let mut updates: Vec<(ContactDetails, ContactWrite, u64)> = Vec::new();
        let mut updating: HashMap<i32, usize> = HashMap::new();
        for row in rows {
            let key = row.write.email.as_ref().map(|e| e.to_lowercase());
            let Some(key) = key else {
                creates.push(row);
                continue;
            };
            let duplicate_of_db = existing.get(&key);
            let duplicate_in_batch = pending.get(&key).copied();
            match (self.on_duplicate, duplicate_of_db, duplicate_in_batch) {
                (_, None, None) if row.nameless => self.fail_one(row.line, "first_name", "required"),
                (_, None, None) => {
                    pending.insert(key, creates.len());
                    creates.push(row);
                }
                (OnDuplicate::Skip, _, _) => self.report.skipped += 1,
                (OnDuplicate::Create, _, _) => self.fail_one(row.line, "email", "a contact with this email already exists"),
                (OnDuplicate::Update, _, Some(i)) => {
                    // Same email earlier in this batch: fold the row into the pending create.
                    let merged = merge(&creates[i].write, &row.input);
                    match merged {
                        Ok(w) => {
                            creates[i].write = w;
                            self.report.updated += 1;
                        }
                        Err(errors) => self.fail(errors_at(row.line, errors)),
                    }
                }
                (OnDuplicate::Update, Some(current), None) => {
                    if !self.can.reaches([current.owner_id, Some(current.created_by)]) {
                        self.fail_one(row.line, "email", "belongs to a contact you may not change");
                        continue;
                    }
                    let base = match updating.get(&current.id) {
                        Some(&i) => updates[i].1.clone(),
                        None => write_of(current),
                    };
                    match merge(&base, &row.input) {
                        Ok(w) if self.can.scope == Scope::Own && w.owner_id != Some(self.can.user_id) => {
                            self.fail_one(row.line, "owner_id", "sales reps cannot assign contacts to someone else");
                        }
                        Ok(w) => {
                            match updating.get(&current.id) {
                                Some(&i) => updates[i].1 = w,
                                None => {
                                    updating.insert(current.id, updates.len());
                                    updates.push((current.clone(), w, row.line));
                                }
                            }
                            self.report.updated += 1;
                        }
                        Err(errors) => self.fail(errors_at(row.line, errors)),
                    }
                }
            }
        }

        let actor = self.can.user_id;
        let to_insert: Vec<&ContactWrite> = creates.iter().map(|r| &r.write).collect();
        let created = if to_insert.is_empty() { Vec::new() } else { repo::insert_contacts(tx, &to_insert, actor).await? };
        if created.len() < creates.len() {
            // A concurrent writer took some emails between the lookup and the insert.
            let got: BTreeSet<String> = created.iter().map(|c| c.email.to_lowercase()).collect();
            for row in &creates {
                if let Some(email) = &row.write.email
                    && !got.contains(&email.to_lowercase())
                {
                    self.fail_one(row.line, "email", "a contact with this email was created meanwhile");
                }
            }
        }
        self.report.created += created.len() as u64;
        let update_rows: Vec<(i32, &ContactWrite)> = updates.iter().map(|(c, w, _)| (c.id, w)).collect();
        let updated = if update_rows.is_empty() { Vec::new() } else { repo::update_contacts(tx, &update_rows).await? };

        let mut changes: Vec<StatusChange<'_>> =
            created.iter().map(|c| StatusChange { contact_id: c.id, from: None, to: c.status, reason: Some("import") }).collect();
        let before: HashMap<i32, ContactStatus> = updates.iter().map(|(c, _, _)| (c.id, c.status)).collect();
        for c in &updated {
            if let Some(&from) = before.get(&c.id)
                && from != c.status
            {
                changes.push(StatusChange { contact_id: c.id, from: Some(from), to: c.status, reason: Some("import") });
            }
        }
        repo::record_status_changes(tx, &changes, actor).await?;

        // One event per created or updated contact, written in the import's transaction with
        // one statement per batch.
        let mut events = Vec::with_capacity(created.len() + updated.len());
        for c in &created {
            events.push((CONTACT_CREATED, serde_json::to_value(c.basic()).map_err(ApiError::internal)?));
        }
        for c in &updated {
            if let Some(&from) = before.get(&c.id)
                && from != c.status
                && c.status == ContactStatus::Customer
            {
                let data = ContactConverted { contact: c.basic(), from_status: from.as_str().to_owned(), reason: Some("import".into()) };
                events.push((CONTACT_CONVERTED, serde_json::to_value(data).map_err(ApiError::internal)?));
            }
            events.push((CONTACT_UPDATED, serde_json::to_value(c.basic()).map_err(ApiError::internal)?));
        }
        crm_events::publish_many(tx, Some(self.can.user_id), events).await?;
        Ok(())
    }

    /// Default owner (the importer); unknown owners and (for sales reps) others' ids are row
    /// errors. One auth-service call per batch.
    async fn check_owners(&mut self, rows: Vec<ImportRow>) -> Result<Vec<ImportRow>, ApiError> {
        let me = self.can.user_id;
        let mut rows: Vec<ImportRow> = rows
            .into_iter()
            .filter_map(|mut r| {
                r.write.owner_id = r.write.owner_id.or(Some(me));
                if self.can.scope == Scope::Own && r.input.owner_id.is_some_and(|o| o != me) {
                    self.fail_one(r.line, "owner_id", "sales reps cannot assign contacts to someone else");
                    return None;
                }
                Some(r)
            })
            .collect();
        let ids: BTreeSet<i32> = rows.iter().filter_map(|r| r.input.owner_id).collect();
        let unknown = owners::unknown(self.users, &self.can.ctx, me, &ids).await?;
        if !unknown.is_empty() {
            let (bad, good): (Vec<ImportRow>, Vec<ImportRow>) =
                rows.into_iter().partition(|r| r.input.owner_id.is_some_and(|o| unknown.contains(&o)));
            for r in bad {
                self.fail_one(r.line, "owner_id", "no such user in this tenant");
            }
            rows = good;
        }
        Ok(rows)
    }

    /// Companies: a `company` name is matched case-insensitively (created when unknown); a
    /// `company_id` must exist in this tenant, except beside a `company` name (the
    /// platform's own export): the id is kept when it is that company here, else the name
    /// decides, so an export imports into another tenant unchanged.
    async fn resolve_companies(&mut self, tx: &TenantTx, rows: Vec<ImportRow>) -> Result<Vec<ImportRow>, ApiError> {
        let ids: Vec<i32> = rows.iter().filter_map(|r| r.write.company_id).collect::<BTreeSet<_>>().into_iter().collect();
        let known: HashMap<i32, String> = if ids.is_empty() { HashMap::new() } else { companies::company_names(tx, &ids).await?.into_iter().collect() };
        let by_id = |r: &ImportRow| match (r.write.company_id, &r.company_name) {
            (Some(id), Some(name)) => known.get(&id).is_some_and(|n| *n == name.to_lowercase()),
            _ => false,
        };
        let mut names: HashMap<String, String> = HashMap::new();
        for r in rows.iter().filter(|r| !by_id(r)) {
            if let Some(name) = &r.company_name {
                names.entry(name.to_lowercase()).or_insert_with(|| name.clone());
            }
        }
        let mut by_name: HashMap<String, i32> = HashMap::new();
        if !names.is_empty() {
            let lower: Vec<String> = names.keys().cloned().collect();
            by_name.extend(companies::companies_by_names(tx, &lower).await?);
            let mut missing: Vec<String> = names.iter().filter(|(k, _)| !by_name.contains_key(*k)).map(|(_, v)| v.clone()).collect();
            missing.sort();
            if !missing.is_empty() {
                for company in companies::insert_companies_named(tx, &missing, self.can.user_id).await? {
                    publish(tx, Some(self.can.user_id), COMPANY_CREATED, company.basic()).await?;
                    by_name.insert(company.name.to_lowercase(), company.id);
                    self.report.companies_created += 1;
                }
            }
        }
        let mut out = Vec::with_capacity(rows.len());
        for mut r in rows {
            if by_id(&r) {
                out.push(r);
                continue;
            }
            if let Some(name) = &r.company_name {
                r.write.company_id = by_name.get(&name.to_lowercase()).copied();
            } else if let Some(id) = r.write.company_id
                && !known.contains_key(&id)
            {
                self.fail_one(r.line, "company_id", "no such company in this tenant");
                continue;
            }
            // A row updating an existing contact merges from its input.
            r.input.company_id = r.write.company_id;
            out.push(r);
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------
// Export

const EXPORT_PAGE: i64 = 1000;

async fn export_page(db: &TenantDb, tenant: &TenantId, after: i32) -> Result<Vec<ContactDetails>, ApiError> {
    let tx = db.tenant_read(tenant).await?;
    let rows = repo::export_page(&tx, after, EXPORT_PAGE).await?;
    tx.commit().await?;
    Ok(rows)
}

/// `GET /contacts/export`: every contact of the tenant as CSV chunks, page by page in id
/// order. The first page is read before answering, so a database error is a proper error
/// response; each later page is read in its own transaction when the stream gets there.
pub async fn export(
    state: &AppState,
    can: &Can<perm::ContactsRead>,
    params: &QueryParams,
) -> Result<impl Stream<Item = Result<Bytes, ApiError>> + Send + 'static, ApiError> {
    super::fixed_order(params, "id")?;
    let first = export_page(&state.db, &can.tenant_id, 0).await?;
    let (db, tenant) = (state.db.clone(), can.tenant_id);
    Ok(futures::stream::try_unfold((Some(first), 0i32, true), move |(page, after, header)| {
        let db = db.clone();
        async move {
            let rows = match page {
                Some(rows) => rows,
                None if after == i32::MAX => return Ok(None),
                None => export_page(&db, &tenant, after).await?,
            };
            if rows.is_empty() && !header {
                return Ok(None);
            }
            let next = if (rows.len() as i64) < EXPORT_PAGE { i32::MAX } else { rows.last().map_or(i32::MAX, |c| c.id) };
            let chunk = csv_chunk(header, &rows)?;
            Ok(Some((chunk, (None, next, false))))
        }
    }))
}
