//! Reading a CSV upload (no database here): the request body flows through a bounded
//! channel into a CSV parser on a blocking thread, which validates rows and hands them over
//! in batches ([`Upload`]); the service layer (`service::transfer`) writes each batch with a
//! few set-based statements. At most a few batches are in memory at any time, whatever the
//! file size.
//!
//! A malformed file (binary, not UTF-8, a line over the limit, no header, no data rows, over
//! the size limit) is a [`Malformed`] error: the import fails with a 4xx and rolls back, even
//! when the problem is found near the end. Rows with invalid fields are [`RowError`]s,
//! reported with their line number; they never abort the import.

use std::io::{self, Read};

use axum::body::{Body, Bytes};
use crm_client_contact::{ContactDetails, ContactStatus};
use crm_web::{ApiError, FieldErrors, QueryParams, codes};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use utoipa::ToSchema;

use crate::Settings;
use crate::domain::{AddressInput, ContactWrite, NewContact};

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

impl OnDuplicate {
    /// `?on_duplicate=` (default `skip`); 400 naming the parameter otherwise.
    pub fn from_query(params: &QueryParams) -> Result<Self, ApiError> {
        match params.one("on_duplicate") {
            None | Some("skip") => Ok(Self::Skip),
            Some("update") => Ok(Self::Update),
            Some("create") => Ok(Self::Create),
            Some(_) => Err(ApiError::validation([("on_duplicate", "must be one of: skip, update, create")])),
        }
    }
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
        let code = if matches!(m, Malformed::TooLarge(_)) { codes::PAYLOAD_TOO_LARGE } else { codes::INVALID_CSV };
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
    pub input: NewContact,
    pub write: ContactWrite,
    /// The `company` cell (a name), when no `company_id` was given.
    pub company_name: Option<String>,
    /// No first name: fine for updating an existing contact by email, an error for creating.
    pub nameless: bool,
}

/// A data row, or why it cannot be imported.
pub type Parsed = Result<ImportRow, Vec<RowError>>;

pub fn field_errors(line: u64, err: ApiError) -> Vec<RowError> {
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
    let mut input = NewContact::default();
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
// The upload as a sequence of batches

/// An upload being read: batches of parsed rows as they come ([`Upload::next`]), then the
/// outcome of the file as a whole ([`Upload::finish`]).
pub struct Upload {
    batches: mpsc::Receiver<Vec<Parsed>>,
    parser: JoinHandle<Result<Vec<String>, Malformed>>,
    pump: JoinHandle<()>,
}

impl Upload {
    /// Starts reading `body` (at most `import_max_bytes`, lines of at most
    /// `import_max_line_bytes`, batches of `import_batch` rows).
    pub fn start(body: Body, settings: &Settings) -> Self {
        let (chunk_tx, chunk_rx) = mpsc::channel(4);
        let (batch_tx, batches) = mpsc::channel(2);
        let pump = tokio::spawn(pump(body, chunk_tx, settings.import_max_bytes));
        let reader = ChannelReader { rx: chunk_rx, buf: Bytes::new(), line: 1, line_len: 0, max_line: settings.import_max_line_bytes };
        let batch_size = settings.import_batch;
        let parser = tokio::task::spawn_blocking(move || parse(reader, batch_size, batch_tx));
        Self { batches, parser, pump }
    }

    /// The next batch; `None` when the file is read (or refused: see [`Upload::finish`]).
    pub async fn next(&mut self) -> Option<Vec<Parsed>> {
        self.batches.recv().await
    }

    /// Stops reading (when the writer gave up) or confirms the end: the header names that
    /// map to no field, or why the file is refused as a whole.
    pub async fn finish(self) -> Result<Vec<String>, ApiError> {
        let Self { batches, parser, pump } = self;
        drop(batches);
        let parsed = parser.await.map_err(ApiError::internal);
        pump.abort();
        Ok(parsed??)
    }
}

// ---------------------------------------------------------------------------------------
// Merging rows into existing contacts

/// Row errors of a merge, at the row's line.
pub fn errors_at(line: u64, errors: Vec<RowError>) -> Vec<RowError> {
    errors.into_iter().map(|e| RowError { row: line, ..e }).collect()
}

/// The write form of an existing contact.
pub fn write_of(c: &ContactDetails) -> ContactWrite {
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
pub fn merge(base: &ContactWrite, row: &NewContact) -> Result<ContactWrite, Vec<RowError>> {
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
    use std::collections::BTreeSet;

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
