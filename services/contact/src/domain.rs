//! Types of the API that are not in the client crate: write inputs (`NewX` to create or
//! replace, `XPatch` for partial updates), their validation (every bad field at once), the
//! service's own responses, and the pure parts of fuzzy search (tokenizing, matching a query
//! word against the tenant's vocabulary).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use crm_client_contact::{Address, CompanyDetails, ContactDetails, ContactStatus, CustomFields};
use crm_web::FieldErrors;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

/// Largest `custom_fields` object, serialized.
pub const MAX_CUSTOM_FIELDS_BYTES: usize = 16 * 1024;
pub const MAX_CUSTOM_FIELDS_KEYS: usize = 100;
pub const MAX_TAGS: usize = 20;
pub const MAX_TAG_LEN: usize = 50;
pub const MAX_NOTES_LEN: usize = 10_000;
pub const MAX_SEARCH_LEN: usize = 200;
/// Words of a search query used for matching (the rest are ignored).
pub const MAX_SEARCH_WORDS: usize = 8;

/// `Option<Option<T>>` for PATCH bodies: absent = keep, `null` = clear, value = set.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Address as accepted in requests: every part optional.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AddressInput {
    pub street: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub country: Option<String>,
    pub postal_code: Option<String>,
}

/// Body of `POST /companies` and `PUT /companies/{id}` (PUT replaces every field).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCompany {
    pub name: String,
    pub domain: Option<String>,
    pub industry: Option<String>,
    pub size_category: Option<String>,
    pub parent_company_id: Option<i32>,
    pub address: Option<AddressInput>,
    pub phone: Option<String>,
    pub website: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub custom_fields: Option<serde_json::Value>,
    pub tags: Option<Vec<String>>,
}

/// Body of `PATCH /companies/{id}`: only the fields given change; `null` clears.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CompanyPatch {
    pub name: Option<String>,
    #[serde(deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub domain: Option<Option<String>>,
    #[serde(deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub industry: Option<Option<String>>,
    #[serde(deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub size_category: Option<Option<String>>,
    #[serde(deserialize_with = "nullable")]
    #[schema(value_type = Option<i32>)]
    pub parent_company_id: Option<Option<i32>>,
    #[serde(deserialize_with = "nullable")]
    #[schema(value_type = Option<AddressInput>)]
    pub address: Option<Option<AddressInput>>,
    #[serde(deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<Option<String>>,
    #[serde(deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub website: Option<Option<String>>,
    #[serde(deserialize_with = "nullable")]
    #[schema(value_type = Option<Object>)]
    pub custom_fields: Option<Option<serde_json::Value>>,
    #[serde(deserialize_with = "nullable")]
    #[schema(value_type = Option<Vec<String>>)]
    pub tags: Option<Option<Vec<String>>>,
}

/// A validated company, as written to the database (empty strings are `None`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CompanyWrite {
    pub name: String,
    pub domain: Option<String>,
    pub industry: Option<String>,
    pub size_category: Option<String>,
    pub parent_company_id: Option<i32>,
    pub address: AddressWrite,
    pub phone: Option<String>,
    pub website: Option<String>,
    pub custom_fields: CustomFields,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AddressWrite {
    pub street: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub country: Option<String>,
    pub postal_code: Option<String>,
}

/// Body of `POST /contacts` and `PUT /contacts/{id}` (PUT replaces every field).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewContact {
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub job_title: Option<String>,
    pub company_id: Option<i32>,
    /// Defaults to the caller.
    pub owner_id: Option<i32>,
    /// lead (default), prospect, customer, churned, archived
    pub status: Option<String>,
    /// Recorded in the status history when `status` changes.
    pub status_reason: Option<String>,
    pub source: Option<String>,
    pub address: Option<AddressInput>,
    #[schema(value_type = Option<Object>)]
    pub custom_fields: Option<serde_json::Value>,
    pub notes: Option<String>,
    pub tags: Option<Vec<String>>,
}

/// Body of `PATCH /contacts/{id}`: only the fields given change; `null` clears.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ContactPatch {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    #[serde(deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    #[serde(deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<Option<String>>,
    #[serde(deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub job_title: Option<Option<String>>,
    #[serde(deserialize_with = "nullable")]
    #[schema(value_type = Option<i32>)]
    pub company_id: Option<Option<i32>>,
    #[serde(deserialize_with = "nullable")]
    #[schema(value_type = Option<i32>)]
    pub owner_id: Option<Option<i32>>,
    pub status: Option<String>,
    pub status_reason: Option<String>,
    #[serde(deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub source: Option<Option<String>>,
    #[serde(deserialize_with = "nullable")]
    #[schema(value_type = Option<AddressInput>)]
    pub address: Option<Option<AddressInput>>,
    #[serde(deserialize_with = "nullable")]
    #[schema(value_type = Option<Object>)]
    pub custom_fields: Option<Option<serde_json::Value>>,
    #[serde(deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub notes: Option<Option<String>>,
    #[serde(deserialize_with = "nullable")]
    #[schema(value_type = Option<Vec<String>>)]
    pub tags: Option<Option<Vec<String>>>,
}

/// A validated contact, as written to the database.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactWrite {
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub job_title: Option<String>,
    pub company_id: Option<i32>,
    pub owner_id: Option<i32>,
    pub status: ContactStatus,
    pub source: Option<String>,
    pub address: AddressWrite,
    pub custom_fields: CustomFields,
    pub notes: Option<String>,
    pub tags: Vec<String>,
}

// ---------------------------------------------------------------------------------------
// Field checks

/// A single-line field (names, titles, phone, source, address parts, ...): trimmed, `None`
/// when empty; an error when longer than `max` characters or when it holds any control
/// character (CR/LF would forge email headers, CSV rows or log lines; NUL is refused by
/// PostgreSQL).
pub fn opt_text(errors: &mut FieldErrors, field: &str, value: Option<&str>, max: usize) -> Option<String> {
    crm_web::validate::line(errors, field, value, max)
}

/// Multi-line text (notes): trimmed, `None` when empty; line breaks and tabs are fine, other
/// control characters are not.
pub fn opt_multiline(errors: &mut FieldErrors, field: &str, value: Option<&str>, max: usize) -> Option<String> {
    let v = value.map(str::trim).filter(|v| !v.is_empty())?;
    crm_web::validate::multiline(errors, field, v, max);
    Some(v.to_owned())
}

/// Whether a JSON value holds a NUL character in a key or string (PostgreSQL's jsonb refuses
/// `\u0000`).
fn has_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(has_nul),
        serde_json::Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

pub fn required_text(errors: &mut FieldErrors, field: &str, value: &str, max: usize) -> String {
    let v = opt_text(errors, field, Some(value), max);
    if v.is_none() {
        errors.add(field, "required");
    }
    v.unwrap_or_default()
}

/// A plausible address: one `@`, a non-empty local part, a dotted domain, no spaces.
pub fn is_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else { return false };
    !local.is_empty()
        && local.len() <= 64
        && domain.len() >= 3
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !domain.contains('@')
        && email.chars().all(|c| !c.is_whitespace() && !c.is_control() && c != ',' && c != ';' && c != '<' && c != '>')
}

pub fn opt_email(errors: &mut FieldErrors, field: &str, value: Option<&str>) -> Option<String> {
    let email = opt_text(errors, field, value, 254)?;
    if !is_email(&email) {
        errors.add(field, "invalid email format");
    }
    Some(email)
}

fn is_hostname(v: &str) -> bool {
    v.len() <= 253
        && v.contains('.')
        && v.split('.').all(|l| {
            !l.is_empty() && l.len() <= 63 && !l.starts_with('-') && !l.ends_with('-') && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
}

pub fn opt_domain(errors: &mut FieldErrors, value: Option<&str>) -> Option<String> {
    let d = opt_text(errors, "domain", value, 253)?.to_lowercase();
    if !is_hostname(&d) {
        errors.add("domain", "must be a domain name such as example.com");
    }
    Some(d)
}

pub fn opt_website(errors: &mut FieldErrors, value: Option<&str>) -> Option<String> {
    let w = opt_text(errors, "website", value, 255)?;
    let host = w.strip_prefix("https://").or_else(|| w.strip_prefix("http://")).unwrap_or(&w);
    let host = host.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit_once(':').map_or(host, |(h, port)| if port.chars().all(|c| c.is_ascii_digit()) { h } else { host });
    if !is_hostname(&host.to_lowercase()) {
        errors.add("website", "must be a URL such as https://example.com");
    }
    Some(w)
}

pub fn opt_phone(errors: &mut FieldErrors, value: Option<&str>) -> Option<String> {
    let p = opt_text(errors, "phone", value, 50)?;
    if !p.chars().all(|c| c.is_ascii_digit() || " +-().x/".contains(c)) || !p.chars().any(|c| c.is_ascii_digit()) {
        errors.add("phone", "may contain digits, spaces and + - ( ) . x / only");
    }
    Some(p)
}

/// Must be a JSON object of at most [`MAX_CUSTOM_FIELDS_KEYS`] keys and
/// [`MAX_CUSTOM_FIELDS_BYTES`] serialized.
pub fn custom_fields(errors: &mut FieldErrors, value: Option<serde_json::Value>) -> CustomFields {
    match value {
        None | Some(serde_json::Value::Null) => CustomFields::new(),
        Some(serde_json::Value::Object(map)) => {
            let size = serde_json::to_vec(&map).map(|v| v.len()).unwrap_or(usize::MAX);
            if map.len() > MAX_CUSTOM_FIELDS_KEYS {
                errors.add("custom_fields", format!("at most {MAX_CUSTOM_FIELDS_KEYS} keys"));
            } else if size > MAX_CUSTOM_FIELDS_BYTES {
                errors.add("custom_fields", format!("at most {MAX_CUSTOM_FIELDS_BYTES} bytes of JSON"));
            } else if map.keys().any(|k| k.trim().is_empty() || k.chars().count() > 100 || !crm_web::validate::is_single_line(k)) {
                errors.add("custom_fields", "keys must have 1 to 100 characters on one line, without control characters");
            } else if has_nul(&serde_json::Value::Object(map.clone())) {
                errors.add("custom_fields", "values must not contain NUL characters");
            }
            map
        }
        Some(_) => {
            errors.add("custom_fields", "must be a JSON object");
            CustomFields::new()
        }
    }
}

/// Lowercase, trimmed, deduplicated and sorted; each 1-50 characters without commas.
pub fn tags(errors: &mut FieldErrors, value: Option<Vec<String>>) -> Vec<String> {
    let mut tags: Vec<String> = value.unwrap_or_default().iter().map(|t| t.trim().to_lowercase()).collect();
    tags.sort();
    tags.dedup();
    if tags.len() > MAX_TAGS {
        errors.add("tags", format!("at most {MAX_TAGS} tags"));
    } else if tags.iter().any(|t| t.is_empty() || t.chars().count() > MAX_TAG_LEN || t.contains(',') || t.chars().any(char::is_control)) {
        errors.add("tags", format!("each tag must have 1 to {MAX_TAG_LEN} characters and no comma"));
    }
    tags
}

pub fn status(errors: &mut FieldErrors, value: Option<&str>, default: ContactStatus) -> ContactStatus {
    match value {
        None => default,
        Some(raw) => ContactStatus::parse(raw.trim()).unwrap_or_else(|| {
            errors.add("status", "must be one of: lead, prospect, customer, churned, archived");
            default
        }),
    }
}

fn positive_id(errors: &mut FieldErrors, field: &str, id: Option<i32>) -> Option<i32> {
    if id.is_some_and(|id| id <= 0) {
        errors.add(field, "must be a positive id");
    }
    id
}

pub fn address(errors: &mut FieldErrors, a: Option<&AddressInput>) -> AddressWrite {
    let Some(a) = a else { return AddressWrite::default() };
    AddressWrite {
        street: opt_text(errors, "address.street", a.street.as_deref(), 255),
        city: opt_text(errors, "address.city", a.city.as_deref(), 100),
        state: opt_text(errors, "address.state", a.state.as_deref(), 100),
        country: opt_text(errors, "address.country", a.country.as_deref(), 100),
        postal_code: opt_text(errors, "address.postal_code", a.postal_code.as_deref(), 20),
    }
}

impl NewCompany {
    pub fn validate(self, errors: &mut FieldErrors) -> CompanyWrite {
        CompanyWrite {
            name: required_text(errors, "name", &self.name, 255),
            domain: opt_domain(errors, self.domain.as_deref()),
            industry: opt_text(errors, "industry", self.industry.as_deref(), 100),
            size_category: opt_text(errors, "size_category", self.size_category.as_deref(), 50),
            parent_company_id: positive_id(errors, "parent_company_id", self.parent_company_id),
            address: address(errors, self.address.as_ref()),
            phone: opt_phone(errors, self.phone.as_deref()),
            website: opt_website(errors, self.website.as_deref()),
            custom_fields: custom_fields(errors, self.custom_fields),
            tags: tags(errors, self.tags),
        }
    }
}

fn address_input(a: &Address) -> AddressInput {
    let s = |v: &str| (!v.is_empty()).then(|| v.to_owned());
    AddressInput { street: s(&a.street), city: s(&a.city), state: s(&a.state), country: s(&a.country), postal_code: s(&a.postal_code) }
}

fn non_empty(v: &str) -> Option<String> {
    (!v.is_empty()).then(|| v.to_owned())
}

impl CompanyPatch {
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.domain.is_none()
            && self.industry.is_none()
            && self.size_category.is_none()
            && self.parent_company_id.is_none()
            && self.address.is_none()
            && self.phone.is_none()
            && self.website.is_none()
            && self.custom_fields.is_none()
            && self.tags.is_none()
    }

    /// The current company with this patch applied, as a full input to validate.
    pub fn apply(self, current: &CompanyDetails) -> NewCompany {
        NewCompany {
            name: self.name.unwrap_or_else(|| current.name.clone()),
            domain: self.domain.unwrap_or_else(|| non_empty(&current.domain)),
            industry: self.industry.unwrap_or_else(|| non_empty(&current.industry)),
            size_category: self.size_category.unwrap_or_else(|| non_empty(&current.size_category)),
            parent_company_id: self.parent_company_id.unwrap_or(current.parent_company_id),
            address: self.address.unwrap_or_else(|| Some(address_input(&current.address))),
            phone: self.phone.unwrap_or_else(|| non_empty(&current.phone)),
            website: self.website.unwrap_or_else(|| non_empty(&current.website)),
            custom_fields: self.custom_fields.unwrap_or_else(|| Some(serde_json::Value::Object(current.custom_fields.clone()))),
            tags: self.tags.unwrap_or_else(|| Some(current.tags.clone())),
        }
    }
}

impl NewContact {
    /// `default_status` applies when `status` is absent (lead at creation, the current
    /// status on PUT).
    pub fn validate(self, errors: &mut FieldErrors, default_status: ContactStatus) -> ContactWrite {
        if let Some(reason) = &self.status_reason {
            crm_web::validate::multiline(errors, "status_reason", reason, 500);
        }
        ContactWrite {
            first_name: required_text(errors, "first_name", &self.first_name, 100),
            last_name: opt_text(errors, "last_name", Some(&self.last_name), 100).unwrap_or_default(),
            email: opt_email(errors, "email", self.email.as_deref()),
            phone: opt_phone(errors, self.phone.as_deref()),
            job_title: opt_text(errors, "job_title", self.job_title.as_deref(), 100),
            company_id: positive_id(errors, "company_id", self.company_id),
            owner_id: positive_id(errors, "owner_id", self.owner_id),
            status: status(errors, self.status.as_deref(), default_status),
            source: opt_text(errors, "source", self.source.as_deref(), 100),
            address: address(errors, self.address.as_ref()),
            custom_fields: custom_fields(errors, self.custom_fields),
            notes: opt_multiline(errors, "notes", self.notes.as_deref(), MAX_NOTES_LEN),
            tags: tags(errors, self.tags),
        }
    }
}

impl ContactPatch {
    pub fn is_empty(&self) -> bool {
        self.first_name.is_none()
            && self.last_name.is_none()
            && self.email.is_none()
            && self.phone.is_none()
            && self.job_title.is_none()
            && self.company_id.is_none()
            && self.owner_id.is_none()
            && self.status.is_none()
            && self.source.is_none()
            && self.address.is_none()
            && self.custom_fields.is_none()
            && self.notes.is_none()
            && self.tags.is_none()
    }

    pub fn apply(self, current: &ContactDetails) -> NewContact {
        NewContact {
            first_name: self.first_name.unwrap_or_else(|| current.first_name.clone()),
            last_name: self.last_name.unwrap_or_else(|| current.last_name.clone()),
            email: self.email.unwrap_or_else(|| non_empty(&current.email)),
            phone: self.phone.unwrap_or_else(|| non_empty(&current.phone)),
            job_title: self.job_title.unwrap_or_else(|| non_empty(&current.job_title)),
            company_id: self.company_id.unwrap_or(current.company_id),
            owner_id: self.owner_id.unwrap_or(current.owner_id),
            status: Some(self.status.unwrap_or_else(|| current.status.as_str().to_owned())),
            status_reason: self.status_reason,
            source: self.source.unwrap_or_else(|| non_empty(&current.source)),
            address: self.address.unwrap_or_else(|| Some(address_input(&current.address))),
            custom_fields: self.custom_fields.unwrap_or_else(|| Some(serde_json::Value::Object(current.custom_fields.clone()))),
            notes: self.notes.unwrap_or_else(|| non_empty(&current.notes)),
            tags: self.tags.unwrap_or_else(|| Some(current.tags.clone())),
        }
    }
}


// ---------------------------------------------------------------------------------------
// Responses

/// One entry of `GET /contacts/{id}/status-history`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StatusHistoryEntry {
    pub id: i64,
    pub contact_id: i32,
    /// `null` for the status a contact was created with.
    pub from_status: Option<String>,
    pub to_status: String,
    pub reason: Option<String>,
    pub changed_by: i32,
    pub changed_at: DateTime<Utc>,
}

/// One tag of `GET /tags` with how many contacts and companies carry it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TagCount {
    pub tag: String,
    pub contacts: i64,
    pub companies: i64,
}


/// `GET /tags`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TagList {
    pub data: Vec<TagCount>,
}

/// `GET /contacts/stats`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ContactStats {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Current number of contacts per status (every status listed).
    pub by_status: BTreeMap<String, i64>,
    /// Changes lead/prospect -> customer within the period.
    pub conversions: i64,
    /// Contacts that became lead or prospect within the period (created so or moved there).
    pub new_leads: i64,
    /// conversions / new_leads (0 when there were none).
    pub conversion_rate: f64,
}

// ---------------------------------------------------------------------------------------
// Fuzzy search

/// Chinese, Japanese and Korean letters (Han, kana, Hangul): written without spaces, every
/// one is a search word of its own (the `contact_search_words` migration uses the same ranges).
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x11ff | 0x3040..=0x30ff | 0x3130..=0x318f | 0x3400..=0x4dbf | 0x4e00..=0x9fff | 0xa960..=0xa97f
        | 0xac00..=0xd7af | 0xf900..=0xfaff | 0xff66..=0xff9f | 0x20000..=0x3134f)
}

/// The words of a text roughly as the database indexes them (`contact_search_words` in the
/// migrations, which also folds accents with `unaccent`): lowercase runs of letters at least
/// two long, and every CJK character alone. The service only uses it to decide whether a
/// query has a word at all; the database tokenizes the query itself.
pub fn search_words(text: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    let mut push = |w: String| {
        if !words.contains(&w) {
            words.push(w);
        }
    };
    for run in text.split(|c: char| !c.is_alphabetic()) {
        let mut latin = String::new();
        for c in run.chars() {
            if is_cjk(c) {
                if latin.chars().count() >= 2 {
                    push(std::mem::take(&mut latin));
                }
                latin.clear();
                push(c.to_string());
            } else {
                latin.extend(c.to_lowercase());
            }
        }
        if latin.chars().count() >= 2 {
            push(latin);
        }
    }
    words
}

/// Optimal string alignment distance (Levenshtein plus adjacent transpositions), so
/// "smtih" is one edit from "smith".
pub fn osa_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let (n, m) = (a.len(), b.len());
    let mut d = vec![vec![0usize; m + 1]; n + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, v) in d[0].iter_mut().enumerate() {
        *v = j;
    }
    for i in 1..=n {
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[n][m]
}

/// How well a vocabulary `term` matches a query `word` (0 = not at all). Exact > prefix >
/// within the typo budget (1 edit up to 5 letters, 2 beyond) > trigram-similar.
pub fn term_score(word: &str, term: &str, trigram_similarity: f32) -> f32 {
    if word == term {
        return 1.0;
    }
    let (wl, tl) = (word.chars().count(), term.chars().count());
    if wl >= 3 && term.starts_with(word) {
        return 0.9 - 0.01 * (tl - wl).min(20) as f32;
    }
    let budget = if wl <= 2 { 0 } else if wl <= 5 { 1 } else { 2 };
    let distance = osa_distance(word, term);
    if distance <= budget {
        return 0.8 - 0.1 * distance as f32;
    }
    if trigram_similarity >= 0.45 { 0.5 * trigram_similarity } else { 0.0 }
}

/// The best vocabulary matches of `word` among `candidates` (term, trigram similarity):
/// at most `keep`, best first.
pub fn best_terms(word: &str, candidates: &[(String, f32)], keep: usize) -> Vec<String> {
    let mut scored: Vec<(f32, &str)> =
        candidates.iter().map(|(t, sim)| (term_score(word, t, *sim), t.as_str())).filter(|(s, _)| *s > 0.0).collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    scored.into_iter().take(keep).map(|(_, t)| t.to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        for ok in ["a@b.co", "john.smith+x@mail.example.com", "ÄÖ@exämple.de"] {
            assert!(is_email(ok), "{ok}");
        }
        for bad in ["", "a", "a@", "@b.co", "a@b", "a b@c.de", "a@b..de", "a@.b.de", "a@b.de.", "a@@b.de", "a,b@c.de"] {
            assert!(!is_email(bad), "{bad}");
        }
    }

    #[test]
    fn words_match_the_database_tokenizer() {
        assert_eq!(search_words("Jon Smtih"), vec!["jon", "smtih"]);
        assert_eq!(search_words("john.smith42@gmail.com"), vec!["john", "smith", "gmail", "com"]);
        assert_eq!(search_words("O'Neil & Co"), vec!["neil", "co"]);
        assert!(search_words("' OR 1=1; --").iter().all(|w| w.chars().all(char::is_alphabetic)));
        assert_eq!(search_words("王小明"), vec!["王", "小", "明"]);
        assert_eq!(search_words("김민준 Kim"), vec!["김", "민", "준", "kim"]);
        assert_eq!(search_words("山田タロウ"), vec!["山", "田", "タ", "ロ", "ウ"]);
        assert!(search_words("a 1").is_empty());
    }

    #[test]
    fn typos_are_within_budget() {
        assert_eq!(osa_distance("smtih", "smith"), 1);
        assert_eq!(osa_distance("jon", "john"), 1);
        assert_eq!(osa_distance("kitten", "sitting"), 3);
        let candidates: Vec<(String, f32)> =
            [("smith", 0.2), ("small", 0.2), ("smart", 0.2), ("smythe", 0.2), ("smit", 0.3)].iter().map(|(t, s)| (t.to_string(), *s)).collect();
        let best = best_terms("smtih", &candidates, 8);
        assert_eq!(best.first().map(String::as_str), Some("smith"));
        assert!(!best.contains(&"small".to_owned()));
        assert_eq!(best_terms("joh", &[("john".into(), 0.3), ("johnson".into(), 0.2)], 8), vec!["john", "johnson"]);
    }

    #[test]
    fn custom_fields_must_be_small_objects() {
        let mut e = FieldErrors::new();
        custom_fields(&mut e, Some(serde_json::json!([1, 2])));
        assert!(!e.is_empty());
        let mut e = FieldErrors::new();
        custom_fields(&mut e, Some(serde_json::json!({"big": "x".repeat(MAX_CUSTOM_FIELDS_BYTES)})));
        assert!(!e.is_empty());
        let mut e = FieldErrors::new();
        assert_eq!(custom_fields(&mut e, Some(serde_json::json!({"tier": "gold"})))["tier"], "gold");
        assert!(e.is_empty());
    }

    #[test]
    fn tags_are_normalized() {
        let mut e = FieldErrors::new();
        assert_eq!(tags(&mut e, Some(vec!["VIP".into(), " vip ".into(), "Beta".into()])), vec!["beta", "vip"]);
        assert!(e.is_empty());
        tags(&mut e, Some(vec!["a,b".into()]));
        assert!(!e.is_empty());
    }
}
