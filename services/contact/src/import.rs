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
    /// Header names that map to no field (or give way to a better column of their field).
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
    #[error("the header has two columns for the same field: {first:?} and {column:?} (remove or rename one)")]
    DuplicateColumn { column: String, first: String },
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
            Malformed::DuplicateColumn { .. } => "duplicate_column",
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
        let details = match &m {
            Malformed::DuplicateColumn { column, first } => serde_json::json!({ "reason": reason, "column": column, "columns": [first, column] }),
            Malformed::Binary(line) | Malformed::Encoding(line) | Malformed::LineTooLong { line, .. } | Malformed::Csv { line, .. } => {
                serde_json::json!({ "reason": reason, "line": line })
            }
            _ => serde_json::json!({ "reason": reason }),
        };
        ApiError::new(status, code, format!("{m}; nothing was imported")).with_details(details)
    }
}

// ---------------------------------------------------------------------------------------
// Columns

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
    /// HubSpot's lifecycle stage: a status when the row has none (unknown stages are left out).
    Lifecycle,
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

/// How a header maps: the field, its rank among the columns of that field (0 = the field
/// itself; a row takes the first non-empty cell in rank order, e.g. Outlook's Business
/// Phone before Mobile Phone), and whether it is a weak alias, dropped when the file has
/// another column for the field (Outlook's `Title` is a salutation beside `Job Title`;
/// Salesforce's `Title` is the job title).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mapped {
    column: Column,
    rank: u8,
    weak: bool,
}

/// A header name as the mapper compares it: letters and digits only, lowercase ("E-mail 1 -
/// Value" -> "email1value").
fn header_key(header: &str) -> String {
    header.trim().trim_start_matches('\u{feff}').chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

/// The alias table (documented in docs/API.md, "CSV import columns"): the platform's own
/// export, Google Contacts (both CSV formats), Outlook, HubSpot, Salesforce and Pipedrive
/// (whose `Person - ` prefix is dropped first).
fn alias(key: &str) -> Option<(Column, u8)> {
    use Column::*;
    Some(match key {
        "firstname" | "first" | "givenname" | "forename" => (FirstName, 0),
        "lastname" | "last" | "surname" | "familyname" => (LastName, 0),
        "name" | "fullname" | "contactname" | "displayname" => (FullName, 0),
        "email" | "emailaddress" | "mail" | "email1value" | "emailwork" => (Email, 0),
        "email2value" | "email2address" | "emailhome" => (Email, 1),
        "email3value" | "email3address" | "emailother" => (Email, 2),
        "phone" | "phonenumber" | "telephone" | "tel" | "phone1value" | "primaryphone" | "phonework" => (Phone, 0),
        "businessphone" | "phone2value" => (Phone, 1),
        "mobile" | "mobilephone" | "mobilephonenumber" | "cellphone" | "phonemobile" | "phone3value" => (Phone, 2),
        "homephone" | "phonehome" => (Phone, 3),
        "otherphone" | "phoneother" | "companymainphone" => (Phone, 4),
        "jobtitle" | "position" | "organizationtitle" | "organization1title" => (JobTitle, 0),
        "title" => (JobTitle, 1),
        "company" | "companyname" | "organization" | "organisation" | "account" | "accountname" | "organization1name" => (Company, 0),
        "organizationname" => (Company, 1),
        "companyid" => (CompanyId, 0),
        "ownerid" => (OwnerId, 0),
        "status" => (Status, 0),
        "lifecyclestage" => (Lifecycle, 0),
        "source" | "leadsource" => (Source, 0),
        "originalsource" => (Source, 1),
        "street" | "address" | "streetaddress" | "address1" | "addressstreet" | "address1street" | "mailingstreet" | "businessstreet"
        | "postaladdressstreetroadname" => (Street, 0),
        "homestreet" => (Street, 1),
        "otherstreet" => (Street, 2),
        "city" | "addresscity" | "address1city" | "mailingcity" | "businesscity" | "postaladdresscitytownvillagelocality" => (City, 0),
        "homecity" => (City, 1),
        "othercity" => (City, 2),
        "state" | "region" | "province" | "addressstate" | "address1region" | "mailingstateprovince" | "stateregion" | "businessstate"
        | "postaladdressstatecounty" => (State, 0),
        "homestate" => (State, 1),
        "otherstate" => (State, 2),
        "country" | "addresscountry" | "address1country" | "mailingcountry" | "countryregion" | "businesscountryregion"
        | "postaladdresscountry" => (Country, 0),
        "homecountryregion" => (Country, 1),
        "othercountryregion" => (Country, 2),
        "postalcode" | "zip" | "zipcode" | "postcode" | "addresspostalcode" | "address1postalcode" | "mailingzippostalcode"
        | "businesspostalcode" | "postaladdresszippostalcode" => (PostalCode, 0),
        "homepostalcode" => (PostalCode, 1),
        "otherpostalcode" => (PostalCode, 2),
        "notes" | "note" | "comments" | "description" => (Notes, 0),
        "tags" | "labels" | "groupmembership" | "categories" => (Tags, 0),
        "customfields" => (CustomFields, 0),
        _ => return None,
    })
}

/// Header mapping: case, spaces and punctuation do not matter; the aliases of [`alias`].
fn column_for(header: &str) -> Option<Mapped> {
    let raw = header.trim().trim_start_matches('\u{feff}').trim();
    for prefix in ["custom.", "custom_fields.", "cf_", "cf."] {
        if let Some(key) = raw.get(..prefix.len()).filter(|p| p.eq_ignore_ascii_case(prefix)).map(|_| &raw[prefix.len()..])
            && !key.trim().is_empty()
        {
            return Some(Mapped { column: Column::Custom(key.trim().to_owned()), rank: 0, weak: false });
        }
    }
    let key = header_key(raw);
    let (column, rank) = alias(&key).or_else(|| key.strip_prefix("person").and_then(alias))?;
    Some(Mapped { weak: key == "title", column, rank })
}

/// The columns of a file: for each field, the indexes of its columns in rank order.
#[derive(Debug, Default)]
struct Mapping {
    fields: Vec<(Column, Vec<usize>)>,
    width: usize,
}

/// A leading apostrophe that the export put before a value a spreadsheet would run as a
/// formula (`'=`, `'+`, `'-`, `'@`), or before a value starting with an apostrophe and one of
/// those, is removed: `'@SUM(1+1)` imports as `@SUM(1+1)`.
pub fn unguard(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\'']) => rest,
        _ => cell,
    }
}

/// HubSpot lifecycle stages as statuses.
fn lifecycle_status(value: &str) -> Option<&'static str> {
    Some(match header_key(value).as_str() {
        "subscriber" | "lead" | "marketingqualifiedlead" | "salesqualifiedlead" => "lead",
        "opportunity" => "prospect",
        "customer" | "evangelist" => "customer",
        _ => return None,
    })
}

/// Tags of a cell: separated by `,`, `;` or ` ::: ` (Google); Google's system groups
/// (`* myContacts`) lose their star.
fn tag_cells(cell: &str) -> Vec<String> {
    cell.split(":::")
        .flat_map(|part| part.split([',', ';']))
        .map(|t| t.trim().trim_start_matches("* ").trim())
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// One data row, validated as far as it can be without the database.
#[derive(Debug)]
pub struct ImportRow {
    pub line: u64,
    /// The cells as an API input (empty cells are absent).
    pub input: NewContact,
    pub write: ContactWrite,
    /// The `company` cell (a name). With a `company_id` too (the platform's export), the id
    /// is kept when it names that company in this tenant, else the name decides.
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

fn parse_row(line: u64, mapping: &Mapping, cells: &[&str]) -> Parsed {
    let mut input = NewContact::default();
    let mut address = AddressInput::default();
    let mut custom = serde_json::Map::new();
    let mut company_name = None;
    let mut lifecycle = None;
    let mut errors = FieldErrors::new();
    for (column, indexes) in &mapping.fields {
        // The first non-empty cell among the field's columns, in rank order.
        let Some(cell) = indexes.iter().filter_map(|&i| cells.get(i)).map(|c| unguard(c.trim())).find(|c| !c.is_empty()) else { continue };
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
            Column::Company => company_name = crm_web::validate::line(&mut errors, "company", Some(cell), 255),
            Column::CompanyId => match cell.parse::<i32>() {
                Ok(id) => input.company_id = Some(id),
                Err(_) => errors.add("company_id", "must be a positive integer id"),
            },
            Column::OwnerId => match cell.parse::<i32>() {
                Ok(id) => input.owner_id = Some(id),
                Err(_) => errors.add("owner_id", "must be a positive integer id"),
            },
            Column::Status => input.status = Some(cell.to_lowercase()),
            Column::Lifecycle => lifecycle = lifecycle_status(cell),
            Column::Source => input.source = v,
            Column::Street => address.street = v,
            Column::City => address.city = v,
            Column::State => address.state = v,
            Column::Country => address.country = v,
            Column::PostalCode => address.postal_code = v,
            Column::Notes => input.notes = v,
            Column::Tags => input.tags = Some(tag_cells(cell)),
            Column::CustomFields => match serde_json::from_str::<serde_json::Value>(cell) {
                Ok(serde_json::Value::Object(map)) => custom.extend(map),
                _ => errors.add("custom_fields", "must be a JSON object"),
            },
            Column::Custom(key) => {
                custom.insert(key.clone(), serde_json::Value::String(cell.to_owned()));
            }
        }
    }
    if input.status.is_none() {
        input.status = lifecycle.map(str::to_owned);
    }
    if address.street.is_some() || address.city.is_some() || address.state.is_some() || address.country.is_some() || address.postal_code.is_some() {
        input.address = Some(address);
    }
    if !custom.is_empty() {
        input.custom_fields = Some(serde_json::Value::Object(custom));
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
/// lines as it goes. A CRLF line end outside quotes is passed on as LF: the CSV parser then
/// numbers records as physical lines whatever the line ends (with CRLF it would start each
/// record on the previous line's LF). Line breaks inside quoted values are kept as sent.
struct ChannelReader {
    rx: mpsc::Receiver<Result<Bytes, Malformed>>,
    buf: Bytes,
    /// Physical line of the next byte (the header is line 1).
    line: u64,
    line_len: usize,
    max_line: usize,
    in_quotes: bool,
    /// A CR outside quotes, held back until the next byte tells whether it ends a line.
    pending_cr: bool,
}

fn io_error(m: Malformed) -> io::Error {
    io::Error::other(m)
}

impl ChannelReader {
    fn new(rx: mpsc::Receiver<Result<Bytes, Malformed>>, max_line: usize) -> Self {
        Self { rx, buf: Bytes::new(), line: 1, line_len: 0, max_line, in_quotes: false, pending_cr: false }
    }

    /// Counts one byte passed on; refuses NUL in the header (a UTF-16 or binary file; NUL in
    /// a data cell is that row's error) and lines over the limit.
    fn count(&mut self, b: u8) -> io::Result<()> {
        match b {
            0 if self.line == 1 => return Err(io_error(Malformed::Binary(self.line))),
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
        if b == b'"' {
            self.in_quotes = !self.in_quotes;
        }
        Ok(())
    }
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        let mut n = 0;
        loop {
            while self.buf.is_empty() {
                match self.rx.blocking_recv() {
                    Some(Ok(chunk)) => self.buf = chunk,
                    Some(Err(m)) => return Err(io_error(m)),
                    None => {
                        if self.pending_cr && n < out.len() {
                            self.pending_cr = false;
                            self.count(b'\r')?;
                            out[n] = b'\r';
                            n += 1;
                        }
                        return Ok(n);
                    }
                }
            }
            let mut used = 0;
            let buf = self.buf.clone();
            for &b in buf.iter() {
                // Room for a held-back CR and this byte.
                if n + 1 + usize::from(self.pending_cr) > out.len() {
                    break;
                }
                used += 1;
                if self.pending_cr {
                    self.pending_cr = false;
                    if b != b'\n' {
                        self.count(b'\r')?;
                        out[n] = b'\r';
                        n += 1;
                    }
                }
                if b == b'\r' && !self.in_quotes {
                    self.pending_cr = true;
                    continue;
                }
                self.count(b)?;
                out[n] = b;
                n += 1;
            }
            self.buf = self.buf.slice(used..);
            if n > 0 {
                return Ok(n);
            }
            if used == 0 {
                // `out` has room for one byte only and a CR is held: pass the CR on alone.
                self.pending_cr = false;
                self.count(b'\r')?;
                out[0] = b'\r';
                return Ok(1);
            }
        }
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

/// The header row: the columns of each field, and the names that map to none (or lose to a
/// better column). Two columns for the same field and rank (`email,E-mail`, or the same
/// name twice) are refused: which one should win is the user's call, not ours.
fn read_header(record: &csv::ByteRecord) -> Result<(Mapping, Vec<String>), Malformed> {
    let mut mapped: Vec<(usize, Mapped)> = Vec::new();
    let mut ignored = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for (i, raw) in record.iter().enumerate() {
        let name = std::str::from_utf8(raw).map_err(|_| Malformed::Encoding(1))?;
        let name = if i == 0 { name.trim_start_matches('\u{feff}') } else { name };
        let shown: String = name.trim().chars().take(100).collect();
        names.push(shown.clone());
        match column_for(name) {
            Some(m) => {
                if let Some((first, _)) = mapped.iter().find(|(_, o)| o.column == m.column && o.rank == m.rank) {
                    return Err(Malformed::DuplicateColumn { column: shown, first: names[*first].clone() });
                }
                mapped.push((i, m));
            }
            None if !shown.is_empty() => ignored.push(shown),
            None => {}
        }
    }
    // A weak alias gives way to any other column of its field.
    let strong: Vec<Column> = mapped.iter().filter(|(_, m)| !m.weak).map(|(_, m)| m.column.clone()).collect();
    mapped.retain(|(i, m)| {
        let keep = !m.weak || !strong.contains(&m.column);
        if !keep {
            ignored.push(names[*i].clone());
        }
        keep
    });
    // Updating by email needs no name column; creating rows without a name fails per row.
    if !mapped.iter().any(|(_, m)| matches!(m.column, Column::FirstName | Column::FullName | Column::Email)) {
        let seen: Vec<String> = record.iter().take(5).map(|f| String::from_utf8_lossy(f).chars().take(40).collect()).collect();
        return Err(Malformed::Header(format!("no first_name, name or email column among {seen:?}")));
    }
    mapped.sort_by(|a, b| (&a.1.column, a.1.rank).cmp(&(&b.1.column, b.1.rank)));
    let mut mapping = Mapping { fields: Vec::new(), width: record.len() };
    for (i, m) in mapped {
        match mapping.fields.last_mut() {
            Some((column, indexes)) if *column == m.column => indexes.push(i),
            _ => mapping.fields.push((m.column, vec![i])),
        }
    }
    Ok((mapping, ignored))
}

/// The blocking side: parses and validates, sends batches; returns the ignored columns.
fn parse(reader: ChannelReader, batch_size: usize, out: mpsc::Sender<Vec<Parsed>>) -> Result<Vec<String>, Malformed> {
    let mut csv = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(reader);
    let mut record = csv::ByteRecord::new();
    if !csv.read_byte_record(&mut record).map_err(csv_error)? {
        return Err(Malformed::Empty);
    }
    let (mapping, ignored) = read_header(&record)?;
    let mut batch = Vec::with_capacity(batch_size);
    let mut rows = 0u64;
    while csv.read_byte_record(&mut record).map_err(csv_error)? {
        let line = record.position().map_or(0, csv::Position::line);
        if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
            continue;
        }
        let cells: Vec<&str> = record.iter().map(std::str::from_utf8).collect::<Result<_, _>>().map_err(|_| Malformed::Encoding(line))?;
        rows += 1;
        let parsed = if cells.len() > mapping.width {
            Err(vec![RowError { row: line, field: "row".into(), message: format!("{} cells, the header has {}", cells.len(), mapping.width) }])
        } else {
            parse_row(line, &mapping, &cells)
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
        let reader = ChannelReader::new(chunk_rx, settings.import_max_line_bytes);
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

    fn header(names: &[&str]) -> Result<(Mapping, Vec<String>), Malformed> {
        read_header(&csv::ByteRecord::from(names.to_vec()))
    }

    fn mapping(names: &[&str]) -> Mapping {
        header(names).unwrap().0
    }

    /// Every row of a whole file through the streaming reader (chunks of `chunk` bytes).
    fn parse_file(bytes: &[u8], chunk: usize) -> (Vec<Parsed>, Result<Vec<String>, Malformed>) {
        let (tx, rx) = mpsc::channel(bytes.len() / chunk + 2);
        for part in bytes.chunks(chunk) {
            tx.try_send(Ok(Bytes::copy_from_slice(part))).unwrap();
        }
        drop(tx);
        let (out, mut batches) = mpsc::channel(1000);
        let result = parse(ChannelReader::new(rx, 64), 1, out);
        let mut rows = Vec::new();
        while let Ok(batch) = batches.try_recv() {
            rows.extend(batch);
        }
        (rows, result)
    }

    fn lines(rows: &[Parsed]) -> Vec<u64> {
        rows.iter().map(|r| match r {
            Ok(row) => row.line,
            Err(e) => e[0].row,
        }).collect()
    }

    #[test]
    fn headers_map_with_aliases() {
        let col = |h: &str| column_for(h).map(|m| (m.column, m.rank));
        assert_eq!(col("First Name"), Some((Column::FirstName, 0)));
        assert_eq!(col("E-Mail"), Some((Column::Email, 0)));
        assert_eq!(col("ZIP"), Some((Column::PostalCode, 0)));
        assert_eq!(col("custom.Tier"), Some((Column::Custom("Tier".into()), 0)));
        assert_eq!(col("favourite colour"), None);
        // Google Contacts, Outlook, HubSpot, Salesforce, Pipedrive.
        assert_eq!(col("E-mail 1 - Value"), Some((Column::Email, 0)));
        assert_eq!(col("Given Name"), Some((Column::FirstName, 0)));
        assert_eq!(col("Family Name"), Some((Column::LastName, 0)));
        assert_eq!(col("Organization 1 - Name"), Some((Column::Company, 0)));
        assert_eq!(col("Business Country/Region"), Some((Column::Country, 0)));
        assert_eq!(col("Mobile Phone Number"), Some((Column::Phone, 2)));
        assert_eq!(col("Mailing Zip/Postal Code"), Some((Column::PostalCode, 0)));
        assert_eq!(col("Person - Email - Work"), Some((Column::Email, 0)));
        assert_eq!(col("Person - Organization"), Some((Column::Company, 0)));
    }

    #[test]
    fn duplicate_columns_compare_as_the_mapper_does() {
        for names in [&["first_name", "email", "email"][..], &["first_name", "Email", "E-mail"], &["name", "custom.tier", "cf_tier"], &["Name", "E-Mail Address", "email"]] {
            let err = header(names).unwrap_err();
            assert!(matches!(err, Malformed::DuplicateColumn { .. }), "{names:?}: {err:?}");
        }
        // Fallbacks of one field are not duplicates; a weak alias gives way.
        let (m, ignored) = header(&["First Name", "Title", "Job Title", "Business Phone", "Mobile Phone", "Birthday"]).unwrap();
        assert_eq!(ignored, ["Birthday", "Title"]);
        let row = parse_row(2, &m, &["Ann", "Ms.", "", "", "+1 555 0100", "1990-01-01"]).unwrap();
        assert_eq!(row.write.job_title, None);
        assert_eq!(row.write.phone.as_deref(), Some("+1 555 0100"));
    }

    #[test]
    fn rows_validate_every_field() {
        let columns = mapping(&["name", "email", "status", "owner_id", "zzz"]);
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
        // Control characters in single-line cells, NUL anywhere: row errors.
        let columns = mapping(&["first_name", "company", "notes", "custom.x"]);
        for (cells, field) in [
            (["Bob\r\nBcc: x@y.example", "", "", ""], "first_name"),
            (["Bob", "Ac\u{0}me", "", ""], "company"),
            (["Bob", "", "a\u{0}b", ""], "notes"),
            (["Bob", "", "", "a\u{0}"], "custom_fields"),
        ] {
            let bad = parse_row(6, &columns, &cells).unwrap_err();
            assert_eq!(bad[0].field, field, "{cells:?}");
        }
        assert_eq!(parse_row(7, &columns, &["Bob", "", "line 1\nline 2", ""]).unwrap().write.notes.as_deref(), Some("line 1\nline 2"));
    }

    #[test]
    fn line_numbers_are_physical_lines_whatever_the_line_ends() {
        for chunk in [1, 2, 3, 7, 4096] {
            let lf = parse_file(b"first_name,last_name,email\nA,B,a@x.example\nC,D,not-an-email\n", chunk);
            let crlf = parse_file(b"first_name,last_name,email\r\nA,B,a@x.example\r\nC,D,not-an-email\r\n", chunk);
            assert_eq!(lines(&lf.0), [2, 3], "chunk {chunk}");
            assert_eq!(lines(&crlf.0), [2, 3], "chunk {chunk}");
            // A quoted value over two lines keeps its CRLF; the next row is line 4.
            let (rows, _) = parse_file(b"first_name,notes\r\nA,\"one\r\ntwo\"\r\nB,x\r\n", chunk);
            assert_eq!(lines(&rows), [2, 4], "chunk {chunk}");
            assert_eq!(rows[0].as_ref().unwrap().write.notes.as_deref(), Some("one\r\ntwo"));
            // Whole-file errors name the same line with either line end.
            for (file, line) in [
                (&b"first_name\r\nA\r\nB\xff\r\n"[..], 3u64),
                (b"first_name\nA\nB\xff\n", 3),
                (b"first_name\r\nA\r\n\xff\r\n", 3),
            ] {
                match parse_file(file, chunk).1 {
                    Err(Malformed::Encoding(l)) => assert_eq!(l, line, "{file:?} chunk {chunk}"),
                    other => panic!("{other:?}"),
                }
            }
            let long = format!("first_name\r\nA\r\n{}\r\n", "x".repeat(100));
            match parse_file(long.as_bytes(), chunk).1 {
                Err(Malformed::LineTooLong { line, .. }) => assert_eq!(line, 3),
                other => panic!("{other:?}"),
            }
            // NUL: in the header the file is binary; in a cell, that row's error.
            assert!(matches!(parse_file(b"f\x00i\x00r\x00s\x00t\x00\n", chunk).1, Err(Malformed::Binary(1))));
            let (rows, result) = parse_file(b"first_name\r\nA\x00B\r\nC\r\n", chunk);
            assert!(result.is_ok());
            assert_eq!(rows[0].as_ref().unwrap_err()[0].field, "first_name");
            assert_eq!(rows[0].as_ref().unwrap_err()[0].row, 2);
            assert!(rows[1].is_ok());
        }
    }

    #[test]
    fn merging_keeps_values_of_empty_cells() {
        let m = mapping(&["first_name", "phone", "tags"]);
        let base = parse_row(2, &m, &["Ann", "123", "a"]).unwrap().write;
        let row = parse_row(3, &m, &["Anna", "", "b"]).unwrap().input;
        let merged = merge(&base, &row).unwrap();
        assert_eq!(merged.first_name, "Anna");
        assert_eq!(merged.phone.as_deref(), Some("123"));
        assert_eq!(merged.tags, vec!["a", "b"]);
    }
}
