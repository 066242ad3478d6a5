//! CSV import, streamed: the request body flows through a bounded channel into a CSV parser
//! on a blocking thread, which validates rows and hands them over in batches; the request's
//! task writes each batch with a few set-based statements. At most a few batches are in
//! memory at any time, whatever the file size.
//!
//! What is atomic: the whole import is ONE transaction, committed after the last row. A
//! malformed file (binary, not UTF-8, a line over the limit, no header, no data rows, over the
//! size limit) fails the request with a 4xx and rolls everything back, even when the problem
//! is found near the end. Rows with invalid fields are skipped and reported with their line
//! number; they never abort the import.

use std::collections::{BTreeSet, HashMap};
use std::io::{self, Read};

use axum::body::{Body, Bytes};
use crm_client_auth::{AuthClient, CallContext};
use crm_client_contact::{ContactDetails, ContactStatus};
use crm_events::Envelope;
use crm_tenant::TenantTx;
use crm_web::{ApiError, AuthUser, FieldErrors, Scope};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use utoipa::ToSchema;

use crate::ContactConfig;
use crate::domain::{AddressInput, ContactInput, ContactWrite};
use crate::handlers::publish;
use crate::owners;
use crate::repo::{self, StatusChange};

/// What to do with a row whose email already belongs to a contact (case-insensitively),
/// in the tenant or earlier in the same file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnDuplicate {
    /// Leave the existing contact alone; the row counts as `skipped`.
    Skip,
    /// Update the existing contact with the row's non-empty cells; counts as `updated`.
    Update,
    /// Create a new contact: impossible for an email already in use (emails are unique per
    /// tenant), so such a row is reported as an error.
    Create,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RowError {
    /// Line of the file (the header is line 1).
    pub row: u64,
    pub field: String,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ImportReport {
    /// Data rows read.
    pub rows: u64,
    pub created: u64,
    pub updated: u64,
    /// Duplicates left alone (`on_duplicate=skip`).
    pub skipped: u64,
    /// Rows rejected (listed in `errors`).
    pub failed: u64,
    /// Companies created for unknown names in the `company` column.
    pub companies_created: u64,
    /// At most 1,000; `errors_truncated` tells when more rows failed.
    pub errors: Vec<RowError>,
    pub errors_truncated: bool,
    /// Header names that map to no field.
    pub ignored_columns: Vec<String>,
}

/// Why a file is refused as a whole.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Malformed {
    #[error("the file is empty")]
    Empty,
    #[error("the file looks binary (NUL byte near line {0})")]
    Binary(u64),
    #[error("line {0} is not valid UTF-8: the file must be UTF-8 encoded")]
    Encoding(u64),
    #[error("line {line} is longer than {max} bytes")]
    LineTooLong { line: u64, max: usize },
    #[error("the first line must be a header naming the columns (first_name or name, email, ...): {0}")]
    Header(String),
    #[error("the file has a header but no data rows")]
    NoRows,
    #[error("the file is larger than {0} bytes")]
    TooLarge(usize),
    #[error("unreadable CSV near line {line}: {message}")]
    Csv { line: u64, message: String },
    #[error("the upload was interrupted: {0}")]
    Body(String),
}

impl From<Malformed> for ApiError {
    fn from(m: Malformed) -> Self {
        let reason = match &m {
            Malformed::Empty => "empty",
            Malformed::Binary(_) => "binary",
            Malformed::Encoding(_) => "encoding",
            Malformed::LineTooLong { .. } => "line_too_long",
            Malformed::Header(_) => "header",
            Malformed::NoRows => "no_rows",
            Malformed::TooLarge(_) => "too_large",
            Malformed::Csv { .. } => "csv",
            Malformed::Body(_) => "body",
        };
        let status = if matches!(m, Malformed::TooLarge(_)) {
            axum::http::StatusCode::PAYLOAD_TOO_LARGE
        } else {
            axum::http::StatusCode::BAD_REQUEST
        };
        let code = if matches!(m, Malformed::TooLarge(_)) { crm_web::codes::PAYLOAD_TOO_LARGE } else { "INVALID_CSV" };
        ApiError::new(status, code, format!("{m}; nothing was imported")).with_details(serde_json::json!({ "reason": reason }))
    }
}

// ---------------------------------------------------------------------------------------
// Columns

#[derive(Debug, Clone, PartialEq, Eq)]
enum Column {
    FirstName,
    LastName,
    /// "Name": first word -> first_name, the rest -> last_name.
    FullName,
    Email,
    Phone,
    JobTitle,
    Company,
    CompanyId,
    OwnerId,
    Status,
    Source,
    Street,
    City,
    State,
    Country,
    PostalCode,
    Notes,
    Tags,
    /// A JSON object.
    CustomFields,
    /// `custom.<key>` / `cf_<key>`: one custom field, as a string.
    Custom(String),
}

/// Header mapping: case, spaces, `_`, `-` and `.` do not matter; common aliases are known.
fn column_for(header: &str) -> Option<Column> {
    let raw = header.trim();
    for prefix in ["custom.", "custom_fields.", "cf_", "cf."] {
        if let Some(key) = raw.get(..prefix.len()).filter(|p| p.eq_ignore_ascii_case(prefix)).map(|_| &raw[prefix.len()..])
            && !key.trim().is_empty()
        {
            return Some(Column::Custom(key.trim().to_owned()));
        }
    }
    let key: String = raw.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect();
    Some(match key.as_str() {
        "firstname" | "first" | "givenname" | "forename" => Column::FirstName,
        "lastname" | "last" | "surname" | "familyname" => Column::LastName,
        "name" | "fullname" | "contactname" => Column::FullName,
        "email" | "emailaddress" | "mail" => Column::Email,
        "phone" | "phonenumber" | "telephone" | "tel" | "mobile" => Column::Phone,
        "jobtitle" | "title" | "position" => Column::JobTitle,
        "company" | "companyname" | "organization" | "organisation" | "account" => Column::Company,
        "companyid" => Column::CompanyId,
        "ownerid" => Column::OwnerId,
        "status" => Column::Status,
        "source" | "leadsource" => Column::Source,
        "street" | "address" | "streetaddress" | "address1" | "addressstreet" => Column::Street,
        "city" | "addresscity" => Column::City,
        "state" | "region" | "province" | "addressstate" => Column::State,
        "country" | "addresscountry" => Column::Country,
        "postalcode" | "zip" | "zipcode" | "postcode" | "addresspostalcode" => Column::PostalCode,
        "notes" | "note" | "comments" => Column::Notes,
        "tags" | "labels" => Column::Tags,
        "customfields" => Column::CustomFields,
        _ => return None,
    })
}

/// One data row, validated as far as it can be without the database.
#[derive(Debug)]
pub struct ImportRow {
    pub line: u64,
    /// The cells as an API input (empty cells are absent).
    pub input: ContactInput,
    pub write: ContactWrite,
    /// The `company` cell (a name), when no `company_id` was given.
    pub company_name: Option<String>,
    /// No first name: fine for updating an existing contact by email, an error for creating.
    pub nameless: bool,
}

type Parsed = Result<ImportRow, Vec<RowError>>;

fn field_errors(line: u64, err: ApiError) -> Vec<RowError> {
    let fields = err.details().and_then(|d| d.get("fields")).and_then(|f| f.as_object()).cloned().unwrap_or_default();
    if fields.is_empty() {
        return vec![RowError { row: line, field: "row".into(), message: err.message().to_owned() }];
    }
    fields
        .into_iter()
        .map(|(field, message)| RowError { row: line, field, message: message.as_str().unwrap_or("invalid").to_owned() })
        .collect()
}

fn parse_row(line: u64, columns: &[Option<Column>], cells: &[&str]) -> Parsed {
    let mut input = ContactInput::default();
    let mut address = AddressInput::default();
    let mut custom = serde_json::Map::new();
    let mut company_name = None;
    let mut errors = FieldErrors::new();
    for (column, cell) in columns.iter().zip(cells) {
        let cell = cell.trim();
        let (Some(column), false) = (column, cell.is_empty()) else { continue };
        let v = Some(cell.to_owned());
        match column {
            Column::FirstName => input.first_name = cell.to_owned(),
            Column::LastName => input.last_name = cell.to_owned(),
            Column::FullName => {
                let (first, last) = cell.split_once(char::is_whitespace).unwrap_or((cell, ""));
                if input.first_name.is_empty() {
                    input.first_name = first.to_owned();
                }
                if input.last_name.is_empty() {
                    input.last_name = last.trim().to_owned();
                }
            }
            Column::Email => input.email = v,
            Column::Phone => input.phone = v,
            Column::JobTitle => input.job_title = v,
            Column::Company => company_name = v,
            Column::CompanyId => match cell.parse::<i32>() {
                Ok(id) => input.company_id = Some(id),
                Err(_) => errors.add("company_id", "must be a positive integer id"),
            },
            Column::OwnerId => match cell.parse::<i32>() {
                Ok(id) => input.owner_id = Some(id),
                Err(_) => errors.add("owner_id", "must be a positive integer id"),
            },
            Column::Status => input.status = Some(cell.to_lowercase()),
            Column::Source => input.source = v,
            Column::Street => address.street = v,
            Column::City => address.city = v,
            Column::State => address.state = v,
            Column::Country => address.country = v,
            Column::PostalCode => address.postal_code = v,
            Column::Notes => input.notes = v,
            Column::Tags => input.tags = Some(cell.split([',', ';']).map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect()),
            Column::CustomFields => match serde_json::from_str::<serde_json::Value>(cell) {
                Ok(serde_json::Value::Object(map)) => custom.extend(map),
                _ => errors.add("custom_fields", "must be a JSON object"),
            },
            Column::Custom(key) => {
                custom.insert(key.clone(), serde_json::Value::String(cell.to_owned()));
            }
        }
    }
    if address.street.is_some() || address.city.is_some() || address.state.is_some() || address.country.is_some() || address.postal_code.is_some() {
        input.address = Some(address);
    }
    if !custom.is_empty() {
        input.custom_fields = Some(serde_json::Value::Object(custom));
    }
    if let Some(name) = &company_name
        && name.chars().count() > 255
    {
        errors.add("company", "at most 255 characters");
    }
    if input.company_id.is_some() {
        company_name = None;
    }
    let nameless = input.first_name.trim().is_empty() && input.email.is_some();
    let mut checked = input.clone();
    if nameless {
        checked.first_name = "-".into();
    }
    let write = checked.validate(&mut errors, ContactStatus::Lead);
    match errors.into_result() {
        Ok(()) => Ok(ImportRow { line, input, write, company_name, nameless }),
        Err(e) => Err(field_errors(line, e)),
    }
}

// ---------------------------------------------------------------------------------------
// Streaming: body -> channel -> blocking CSV parser -> batches

/// A `Read` over the body chunks arriving on a channel, refusing binary data and overlong
/// lines as it goes.
struct ChannelReader {
    rx: mpsc::Receiver<Result<Bytes, Malformed>>,
    buf: Bytes,
    line: u64,
    line_len: usize,
    max_line: usize,
}

fn io_error(m: Malformed) -> io::Error {
    io::Error::other(m)
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.buf.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.buf = chunk,
                Some(Err(m)) => return Err(io_error(m)),
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len());
        for &b in &self.buf[..n] {
            match b {
                0 => return Err(io_error(Malformed::Binary(self.line))),
                b'\n' => {
                    self.line += 1;
                    self.line_len = 0;
                }
                _ => {
                    self.line_len += 1;
                    if self.line_len > self.max_line {
                        return Err(io_error(Malformed::LineTooLong { line: self.line, max: self.max_line }));
                    }
                }
            }
        }
        out[..n].copy_from_slice(&self.buf[..n]);
        self.buf = self.buf.slice(n..);
        Ok(n)
    }
}

/// Feeds the body into the channel, stopping at `max_bytes`.
async fn pump(body: Body, tx: mpsc::Sender<Result<Bytes, Malformed>>, max_bytes: usize) {
    let mut stream = body.into_data_stream();
    let mut total = 0usize;
    while let Some(chunk) = stream.next().await {
        let item = match chunk {
            Ok(bytes) => {
                total += bytes.len();
                if total > max_bytes { Err(Malformed::TooLarge(max_bytes)) } else { Ok(bytes) }
            }
            Err(e) => Err(Malformed::Body(e.to_string())),
        };
        let stop = item.is_err();
        if tx.send(item).await.is_err() || stop {
            return;
        }
    }
}

fn csv_error(e: csv::Error) -> Malformed {
    let line = e.position().map_or(0, csv::Position::line);
    match e.into_kind() {
        csv::ErrorKind::Io(io) => match io.get_ref().and_then(|inner| inner.downcast_ref::<Malformed>()) {
            Some(m) => m.clone(),
            None => Malformed::Body(io.to_string()),
        },
        csv::ErrorKind::Utf8 { pos, .. } => Malformed::Encoding(pos.map_or(line, |p| p.line())),
        other => Malformed::Csv { line, message: format!("{other:?}") },
    }
}

/// The header row: each column's field, and the names that map to none.
fn read_header(record: &csv::ByteRecord) -> Result<(Vec<Option<Column>>, Vec<String>), Malformed> {
    let mut columns = Vec::new();
    let mut ignored = Vec::new();
    for (i, raw) in record.iter().enumerate() {
        let name = std::str::from_utf8(raw).map_err(|_| Malformed::Encoding(1))?;
        let name = if i == 0 { name.trim_start_matches('\u{feff}') } else { name };
        let column = column_for(name);
        if column.is_none() && !name.trim().is_empty() {
            ignored.push(name.trim().chars().take(100).collect());
        }
        columns.push(column);
    }
    // Updating by email needs no name column; creating rows without a name fails per row.
    if !columns.iter().any(|c| matches!(c, Some(Column::FirstName | Column::FullName | Column::Email))) {
        let seen: Vec<String> = record.iter().take(5).map(|f| String::from_utf8_lossy(f).chars().take(40).collect()).collect();
        return Err(Malformed::Header(format!("no first_name, name or email column among {seen:?}")));
    }
    Ok((columns, ignored))
}

/// The blocking side: parses and validates, sends batches; returns the ignored columns.
fn parse(reader: ChannelReader, batch_size: usize, out: mpsc::Sender<Vec<Parsed>>) -> Result<Vec<String>, Malformed> {
    let mut csv = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(reader);
    let mut record = csv::ByteRecord::new();
    if !csv.read_byte_record(&mut record).map_err(csv_error)? {
        return Err(Malformed::Empty);
    }
    let (columns, ignored) = read_header(&record)?;
    let mut batch = Vec::with_capacity(batch_size);
    let mut rows = 0u64;
    while csv.read_byte_record(&mut record).map_err(csv_error)? {
        let line = record.position().map_or(0, csv::Position::line);
        if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
            continue;
        }
        let cells: Vec<&str> = record.iter().map(std::str::from_utf8).collect::<Result<_, _>>().map_err(|_| Malformed::Encoding(line))?;
        rows += 1;
        let parsed = if cells.len() > columns.len() {
            Err(vec![RowError { row: line, field: "row".into(), message: format!("{} cells, the header has {}", cells.len(), columns.len()) }])
        } else {
            parse_row(line, &columns, &cells)
        };
        batch.push(parsed);
        if batch.len() >= batch_size && out.blocking_send(std::mem::replace(&mut batch, Vec::with_capacity(batch_size))).is_err() {
            // The importing side gave up (database error): its error is the answer.
            return Ok(ignored);
        }
    }
    if rows == 0 {
        return Err(Malformed::NoRows);
    }
    if !batch.is_empty() {
        let _ = out.blocking_send(batch);
    }
    Ok(ignored)
}

// ---------------------------------------------------------------------------------------
// Writing

/// Everything one import needs besides the transaction.
pub struct Importer<'a> {
    pub user: &'a AuthUser,
    pub scope: Scope,
    pub users: &'a dyn AuthClient,
    pub ctx: &'a CallContext,
    pub on_duplicate: OnDuplicate,
    pub max_errors: usize,
    pub report: ImportReport,
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

    /// Streams `body` through the parser and writes every batch into `tx`.
    pub async fn run(&mut self, tx: &TenantTx<'_>, body: Body, config: &ContactConfig) -> Result<(), ApiError> {
        let (chunk_tx, chunk_rx) = mpsc::channel(4);
        let (batch_tx, mut batch_rx) = mpsc::channel(2);
        let pump = tokio::spawn(pump(body, chunk_tx, config.import_max_bytes));
        let reader = ChannelReader { rx: chunk_rx, buf: Bytes::new(), line: 1, line_len: 0, max_line: config.import_max_line_bytes };
        let batch_size = config.import_batch;
        let parser = tokio::task::spawn_blocking(move || parse(reader, batch_size, batch_tx));
        let mut outcome = Ok(());
        while let Some(batch) = batch_rx.recv().await {
            if let Err(e) = self.write_batch(tx, batch).await {
                outcome = Err(e);
                break;
            }
        }
        drop(batch_rx);
        let parsed = parser.await.map_err(ApiError::internal);
        pump.abort();
        outcome?;
        self.report.ignored_columns = parsed??;
        self.report.errors.sort_by_key(|e| e.row);
        Ok(())
    }

    async fn write_batch(&mut self, tx: &TenantTx<'_>, batch: Vec<Parsed>) -> Result<(), ApiError> {
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
                    if !self.user.can_touch_any(self.scope, [current.owner_id, Some(current.created_by)]) {
                        self.fail_one(row.line, "email", "belongs to a contact you may not change");
                        continue;
                    }
                    let base = match updating.get(&current.id) {
                        Some(&i) => updates[i].1.clone(),
                        None => write_of(current),
                    };
                    match merge(&base, &row.input) {
                        Ok(w) if self.scope == Scope::Own && w.owner_id != Some(self.user.user_id) => {
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

        let actor = self.user.user_id;
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
            events.push(("contact.created", serde_json::to_value(c.basic()).map_err(ApiError::internal)?));
        }
        for c in &updated {
            if let Some(&from) = before.get(&c.id)
                && from != c.status
                && c.status == ContactStatus::Customer
            {
                let data = serde_json::json!({
                    "id": c.id, "first_name": c.first_name, "last_name": c.last_name, "email": c.email,
                    "from_status": from.as_str(), "reason": "import",
                });
                events.push(("contact.converted", data));
            }
            events.push(("contact.updated", serde_json::to_value(c.basic()).map_err(ApiError::internal)?));
        }
        let actor = Some(self.user.user_id.to_string());
        let envelopes = events
            .into_iter()
            .map(|(kind, data)| Envelope::new(kind, &self.user.tenant_id, actor.clone(), data))
            .collect::<Result<Vec<_>, _>>()
            .map_err(ApiError::internal)?;
        repo::enqueue_many(tx, &envelopes).await?;
        Ok(())
    }

    /// Default owner (the importer); unknown owners and (for sales reps) others' ids are row
    /// errors. One auth-service call per batch.
    async fn check_owners(&mut self, rows: Vec<ImportRow>) -> Result<Vec<ImportRow>, ApiError> {
        let me = self.user.user_id;
        let mut rows: Vec<ImportRow> = rows
            .into_iter()
            .filter_map(|mut r| {
                r.write.owner_id = r.write.owner_id.or(Some(me));
                if self.scope == Scope::Own && r.input.owner_id.is_some_and(|o| o != me) {
                    self.fail_one(r.line, "owner_id", "sales reps cannot assign contacts to someone else");
                    return None;
                }
                Some(r)
            })
            .collect();
        let ids: BTreeSet<i32> = rows.iter().filter_map(|r| r.input.owner_id).collect();
        let unknown = owners::unknown(self.users, self.ctx, me, &ids).await?;
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

    /// `company_id` must exist; `company` names are matched case-insensitively, and created
    /// when unknown.
    async fn resolve_companies(&mut self, tx: &TenantTx<'_>, rows: Vec<ImportRow>) -> Result<Vec<ImportRow>, ApiError> {
        let ids: Vec<i32> = rows.iter().filter_map(|r| r.write.company_id).collect::<BTreeSet<_>>().into_iter().collect();
        let known: BTreeSet<i32> = if ids.is_empty() { BTreeSet::new() } else { repo::existing_company_ids(tx, &ids).await?.into_iter().collect() };
        let mut names: HashMap<String, String> = HashMap::new();
        for r in &rows {
            if let Some(name) = &r.company_name {
                names.entry(name.to_lowercase()).or_insert_with(|| name.clone());
            }
        }
        let mut by_name: HashMap<String, i32> = HashMap::new();
        if !names.is_empty() {
            let lower: Vec<String> = names.keys().cloned().collect();
            by_name.extend(repo::companies_by_names(tx, &lower).await?);
            let missing: Vec<String> = names.iter().filter(|(k, _)| !by_name.contains_key(*k)).map(|(_, v)| v.clone()).collect();
            if !missing.is_empty() {
                for company in repo::insert_companies_named(tx, &missing, self.user.user_id).await? {
                    publish(tx, "company.created", self.user, company.basic()).await?;
                    by_name.insert(company.name.to_lowercase(), company.id);
                    self.report.companies_created += 1;
                }
            }
        }
        let mut out = Vec::with_capacity(rows.len());
        for mut r in rows {
            if let Some(id) = r.write.company_id
                && !known.contains(&id)
            {
                self.fail_one(r.line, "company_id", "no such company in this tenant");
                continue;
            }
            if let Some(name) = &r.company_name {
                r.write.company_id = by_name.get(&name.to_lowercase()).copied();
            }
            out.push(r);
        }
        Ok(out)
    }
}

fn errors_at(line: u64, errors: Vec<RowError>) -> Vec<RowError> {
    errors.into_iter().map(|e| RowError { row: line, ..e }).collect()
}

/// The write form of an existing contact.
fn write_of(c: &ContactDetails) -> ContactWrite {
    let s = |v: &str| (!v.is_empty()).then(|| v.to_owned());
    ContactWrite {
        first_name: c.first_name.clone(),
        last_name: c.last_name.clone(),
        email: s(&c.email),
        phone: s(&c.phone),
        job_title: s(&c.job_title),
        company_id: c.company_id,
        owner_id: c.owner_id,
        status: c.status,
        source: s(&c.source),
        address: crate::domain::AddressWrite {
            street: s(&c.address.street),
            city: s(&c.address.city),
            state: s(&c.address.state),
            country: s(&c.address.country),
            postal_code: s(&c.address.postal_code),
        },
        custom_fields: c.custom_fields.clone(),
        notes: s(&c.notes),
        tags: c.tags.clone(),
    }
}

/// `base` with the row's non-empty cells applied (empty cells never clear a value); custom
/// fields are merged key by key, tags added.
fn merge(base: &ContactWrite, row: &ContactInput) -> Result<ContactWrite, Vec<RowError>> {
    let mut w = base.clone();
    if !row.first_name.is_empty() {
        w.first_name = row.first_name.trim().to_owned();
    }
    if !row.last_name.is_empty() {
        w.last_name = row.last_name.trim().to_owned();
    }
    let mut errors = FieldErrors::new();
    let mut checked = row.clone();
    if checked.first_name.trim().is_empty() {
        checked.first_name = base.first_name.clone();
    }
    let validated = checked.validate(&mut errors, base.status);
    errors.into_result().map_err(|e| field_errors(0, e))?;
    let pick = |new: Option<String>, old: &Option<String>| new.or_else(|| old.clone());
    w.email = pick(validated.email, &w.email);
    w.phone = pick(validated.phone, &w.phone);
    w.job_title = pick(validated.job_title, &w.job_title);
    w.company_id = validated.company_id.or(w.company_id);
    w.owner_id = row.owner_id.or(w.owner_id);
    w.status = validated.status;
    w.source = pick(validated.source, &w.source);
    w.address.street = pick(validated.address.street, &w.address.street);
    w.address.city = pick(validated.address.city, &w.address.city);
    w.address.state = pick(validated.address.state, &w.address.state);
    w.address.country = pick(validated.address.country, &w.address.country);
    w.address.postal_code = pick(validated.address.postal_code, &w.address.postal_code);
    w.custom_fields.extend(validated.custom_fields);
    w.notes = pick(validated.notes, &w.notes);
    for t in validated.tags {
        if !w.tags.contains(&t) {
            w.tags.push(t);
        }
    }
    w.tags.sort();
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_map_with_aliases() {
        assert_eq!(column_for("First Name"), Some(Column::FirstName));
        assert_eq!(column_for("E-Mail"), Some(Column::Email));
        assert_eq!(column_for("ZIP"), Some(Column::PostalCode));
        assert_eq!(column_for("custom.Tier"), Some(Column::Custom("Tier".into())));
        assert_eq!(column_for("favourite colour"), None);
    }

    #[test]
    fn rows_validate_every_field() {
        let columns = vec![Some(Column::FullName), Some(Column::Email), Some(Column::Status), Some(Column::OwnerId), None];
        let ok = parse_row(2, &columns, &["Ada King Lovelace", "ada@x.io", "Customer", "", "zzz"]).unwrap();
        assert_eq!((ok.write.first_name.as_str(), ok.write.last_name.as_str()), ("Ada", "King Lovelace"));
        assert_eq!(ok.write.status, ContactStatus::Customer);
        let bad = parse_row(3, &columns, &["", "not-an-email", "vip", "x"]).unwrap_err();
        let fields: BTreeSet<&str> = bad.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, BTreeSet::from(["email", "owner_id", "status"]));
        assert!(bad.iter().all(|e| e.row == 3));
        // Without a first name a row can still update by email; without email it is an error.
        let nameless = parse_row(4, &columns, &["", "a@b.io", "", ""]).unwrap();
        assert!(nameless.nameless);
        let bad = parse_row(5, &columns, &["", "", "", ""]).unwrap_err();
        assert_eq!(bad[0].field, "first_name");
    }

    #[test]
    fn merging_keeps_values_of_empty_cells() {
        let base = parse_row(2, &[Some(Column::FirstName), Some(Column::Phone), Some(Column::Tags)], &["Ann", "123", "a"]).unwrap().write;
        let row = parse_row(3, &[Some(Column::FirstName), Some(Column::Phone), Some(Column::Tags)], &["Anna", "", "b"]).unwrap().input;
        let merged = merge(&base, &row).unwrap();
        assert_eq!(merged.first_name, "Anna");
        assert_eq!(merged.phone.as_deref(), Some("123"));
        assert_eq!(merged.tags, vec!["a", "b"]);
    }
}
