//! Typed custom fields (issue 16, seed 004): per-tenant definitions (`/custom-fields`), the
//! validation of every contact and company write against them, and the typed list filters
//! (`?cf.<key>=<value>`) and sorts (`sort=cf.<key>`).
//!
//! Values stay in the record's `custom_fields` JSON object. Once an entity has at least one
//! definition, its writes are checked against them: an unknown key is refused (a typo would
//! otherwise create an untyped field nobody can filter), a value of the wrong type is
//! refused, a required field must be present, and `null` removes a field. Every error is named
//! `custom_fields.<key>`. An entity without any definition keeps the untyped bag of before.
//!
//! Value shapes per type (JSON):
//! `text` string (one line, at most 1,000 characters); `number` number; `date` string
//! `YYYY-MM-DD` (ISO 8601 calendar date); `boolean` true/false; `select` one of the options;
//! `multi_select` array of options (deduplicated); `url` `http(s)://` URL; `email` address
//! (stored lowercase); `currency` `{"amount": number, "currency": "EUR"}` (ISO 4217 code).

use chrono::{DateTime, NaiveDate, Utc};
use crm_client_contact::CustomFields;
use crm_events::publish;
use crm_tenant::TenantTx;
use crm_web::{ApiError, Can, ETag, FieldErrors, IfMatch, QueryParams, perm};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use axum::http::StatusCode;
use crm_client_contact::{CompanyDetails, ContactDetails};
use crm_web::Page;

use crate::AppState;
use crate::repo::ListCursor;
use crate::repo::custom_fields as repo;

/// Definitions per entity, at most.
pub const MAX_DEFINITIONS: usize = 100;
/// Options of a select, at most.
pub const MAX_OPTIONS: usize = 200;
/// Longest `text` value.
pub const MAX_TEXT_LEN: usize = 1000;

/// The record type a definition belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Entity {
    Contact,
    Company,
}

impl Entity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Contact => "contact",
            Self::Company => "company",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "contact" => Some(Self::Contact),
            "company" => Some(Self::Company),
            _ => None,
        }
    }
}

/// The type of a custom field (see the module documentation for the value shapes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    Text,
    Number,
    Date,
    Boolean,
    Select,
    MultiSelect,
    Url,
    Email,
    Currency,
}

impl FieldType {
    pub const ALL: [FieldType; 9] = [
        Self::Text,
        Self::Number,
        Self::Date,
        Self::Boolean,
        Self::Select,
        Self::MultiSelect,
        Self::Url,
        Self::Email,
        Self::Currency,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Number => "number",
            Self::Date => "date",
            Self::Boolean => "boolean",
            Self::Select => "select",
            Self::MultiSelect => "multi_select",
            Self::Url => "url",
            Self::Email => "email",
            Self::Currency => "currency",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == raw)
    }

    fn has_options(self) -> bool {
        matches!(self, Self::Select | Self::MultiSelect)
    }
}

/// A custom field definition (`GET /custom-fields`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CustomFieldDefinition {
    pub id: i32,
    pub entity: Entity,
    /// `[a-z][a-z0-9_]*`, at most 64 characters: the key in `custom_fields`, `?cf.<key>=`,
    /// `sort=cf.<key>` and the CSV column `cf.<key>`. Never changes.
    pub key: String,
    pub label: String,
    /// Never changes (stored values would not match another type).
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// The choices of `select` and `multi_select` (empty otherwise).
    pub options: Vec<String>,
    /// Every write of the entity must carry a value.
    pub required: bool,
    /// Display order (then key).
    pub position: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: i32,
}

/// `GET /custom-fields`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CustomFieldList {
    pub data: Vec<CustomFieldDefinition>,
}

/// Body of `POST /custom-fields`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCustomField {
    /// contact, company
    pub entity: String,
    pub key: String,
    pub label: String,
    /// text, number, date, boolean, select, multi_select, url, email, currency
    #[serde(rename = "type")]
    pub field_type: String,
    /// Required (non-empty) for select and multi_select, refused for the other types.
    pub options: Option<Vec<String>>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub position: i32,
}

/// Body of `PATCH /custom-fields/{id}`: label, options, required and position change;
/// entity, key and type do not.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CustomFieldPatch {
    pub label: Option<String>,
    /// Replaces the options; values of records that use a removed option stay until the
    /// record is next written (then they are refused).
    pub options: Option<Vec<String>>,
    pub required: Option<bool>,
    pub position: Option<i32>,
}

/// A validated definition, as written.
#[derive(Debug, Clone, PartialEq)]
pub struct DefinitionWrite {
    pub entity: Entity,
    pub key: String,
    pub label: String,
    pub field_type: FieldType,
    pub options: Vec<String>,
    pub required: bool,
    pub position: i32,
}

/// `[a-z][a-z0-9_]*`, 1 to 64 characters.
pub fn is_key(key: &str) -> bool {
    let mut chars = key.chars();
    key.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn options(errors: &mut FieldErrors, field_type: FieldType, raw: Option<Vec<String>>) -> Vec<String> {
    let Some(raw) = raw else {
        if field_type.has_options() {
            errors.add("options", "required for select and multi_select");
        }
        return Vec::new();
    };
    if !field_type.has_options() {
        if !raw.is_empty() {
            errors.add("options", "only select and multi_select have options");
        }
        return Vec::new();
    }
    let mut out: Vec<String> = Vec::new();
    for (i, o) in raw.iter().enumerate() {
        let Some(v) = crm_web::validate::line(errors, &format!("options[{i}]"), Some(o), 100) else {
            errors.add(format!("options[{i}]"), "must not be empty");
            continue;
        };
        if out.contains(&v) {
            errors.add(format!("options[{i}]"), "duplicate option");
        }
        out.push(v);
    }
    if out.is_empty() {
        errors.add("options", "at least one option");
    } else if out.len() > MAX_OPTIONS {
        errors.add("options", format!("at most {MAX_OPTIONS} options"));
    }
    out
}

impl NewCustomField {
    pub fn validate(self, errors: &mut FieldErrors) -> DefinitionWrite {
        let entity = Entity::parse(self.entity.trim()).unwrap_or_else(|| {
            errors.add("entity", "must be contact or company");
            Entity::Contact
        });
        let key = self.key.trim().to_owned();
        if !is_key(&key) {
            errors.add("key", "1 to 64 characters: a lowercase letter, then lowercase letters, digits or _");
        }
        let field_type = FieldType::parse(self.field_type.trim()).unwrap_or_else(|| {
            errors.add("type", "must be one of: text, number, date, boolean, select, multi_select, url, email, currency");
            FieldType::Text
        });
        let label = crm_web::validate::line(errors, "label", Some(&self.label), 100).unwrap_or_else(|| {
            errors.add("label", "required");
            String::new()
        });
        DefinitionWrite {
            entity,
            key,
            label,
            field_type,
            options: options(errors, field_type, self.options),
            required: self.required,
            position: self.position,
        }
    }
}

impl CustomFieldPatch {
    pub fn is_empty(&self) -> bool {
        self.label.is_none() && self.options.is_none() && self.required.is_none() && self.position.is_none()
    }

    /// The current definition with this patch applied, validated.
    pub fn apply(self, current: &CustomFieldDefinition, errors: &mut FieldErrors) -> DefinitionWrite {
        let label = match self.label {
            Some(l) => crm_web::validate::line(errors, "label", Some(&l), 100).unwrap_or_else(|| {
                errors.add("label", "required");
                String::new()
            }),
            None => current.label.clone(),
        };
        let options = match self.options {
            Some(o) => options(errors, current.field_type, Some(o)),
            None => current.options.clone(),
        };
        DefinitionWrite {
            entity: current.entity,
            key: current.key.clone(),
            label,
            field_type: current.field_type,
            options,
            required: self.required.unwrap_or(current.required),
            position: self.position.unwrap_or(current.position),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Values

/// ISO 4217 currency code: three uppercase letters.
fn is_currency_code(code: &str) -> bool {
    code.len() == 3 && code.chars().all(|c| c.is_ascii_uppercase())
}

fn is_url(v: &str) -> bool {
    let rest = v.strip_prefix("https://").or_else(|| v.strip_prefix("http://"));
    rest.is_some_and(|r| {
        let host = r.split(['/', '?', '#']).next().unwrap_or_default();
        !host.is_empty() && host.contains('.') && !host.chars().any(|c| c.is_whitespace() || c.is_control())
    }) && v.len() <= 2048
        && crm_web::validate::is_single_line(v)
}

/// The value normalized for storage, or the reason it does not fit the definition.
pub fn check_value(def: &CustomFieldDefinition, value: &Value) -> Result<Value, String> {
    let string = || value.as_str().map(str::trim).ok_or_else(|| "must be a string".to_owned());
    match def.field_type {
        FieldType::Text => {
            let s = string()?;
            if s.chars().count() > MAX_TEXT_LEN || !crm_web::validate::is_single_line(s) {
                return Err(format!("one line of at most {MAX_TEXT_LEN} characters"));
            }
            Ok(json!(s))
        }
        FieldType::Number => match value {
            Value::Number(n) if n.as_f64().is_some_and(f64::is_finite) => Ok(value.clone()),
            _ => Err("must be a number".into()),
        },
        FieldType::Date => {
            let s = string()?;
            NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| "must be a date YYYY-MM-DD".to_owned())?;
            if s.len() != 10 {
                return Err("must be a date YYYY-MM-DD".into());
            }
            Ok(json!(s))
        }
        FieldType::Boolean => value.as_bool().map(Value::Bool).ok_or_else(|| "must be true or false".into()),
        FieldType::Select => {
            let s = string()?;
            if def.options.iter().any(|o| o == s) { Ok(json!(s)) } else { Err(format!("must be one of: {}", def.options.join(", "))) }
        }
        FieldType::MultiSelect => {
            let items = value.as_array().ok_or_else(|| "must be an array of options".to_owned())?;
            let mut out: Vec<&str> = Vec::new();
            for item in items {
                let s = item.as_str().map(str::trim).ok_or_else(|| "must be an array of options".to_owned())?;
                if !def.options.iter().any(|o| o == s) {
                    return Err(format!("{s:?} is not one of: {}", def.options.join(", ")));
                }
                if !out.contains(&s) {
                    out.push(s);
                }
            }
            Ok(json!(out))
        }
        FieldType::Url => {
            let s = string()?;
            if is_url(s) { Ok(json!(s)) } else { Err("must be an http(s) URL such as https://example.com".into()) }
        }
        FieldType::Email => {
            let s = string()?;
            if s.len() <= 254 && crate::domain::is_email(s) { Ok(json!(s.to_lowercase())) } else { Err("invalid email format".into()) }
        }
        FieldType::Currency => {
            let obj = value.as_object().ok_or_else(|| "must be {\"amount\": number, \"currency\": \"EUR\"}".to_owned())?;
            let amount = obj.get("amount").filter(|a| a.as_f64().is_some_and(f64::is_finite));
            let code = obj.get("currency").and_then(Value::as_str).map(str::trim).filter(|c| is_currency_code(c));
            match (amount, code, obj.len()) {
                (Some(a), Some(c), 2) => Ok(json!({"amount": a, "currency": c})),
                _ => Err("must be {\"amount\": number, \"currency\": ISO 4217 code such as \"EUR\"}".into()),
            }
        }
    }
}

/// Whether a stored value counts as absent for `required` (null, empty string or array).
fn is_blank(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Checks `fields` against the entity's definitions (none: left as is), normalizing values
/// and dropping `null`s; every bad field is added as `custom_fields.<key>`.
pub fn check_fields(errors: &mut FieldErrors, defs: &[CustomFieldDefinition], fields: &mut CustomFields) {
    if defs.is_empty() {
        return;
    }
    let mut out = CustomFields::new();
    let mut bad: Vec<String> = Vec::new();
    for (key, value) in std::mem::take(fields) {
        let name = format!("custom_fields.{key}");
        let Some(def) = defs.iter().find(|d| d.key == key) else {
            errors.add(name, "no such custom field (see GET /api/v1/custom-fields)");
            continue;
        };
        if is_blank(&value) {
            continue;
        }
        match check_value(def, &value) {
            Ok(v) => {
                out.insert(key, v);
            }
            Err(message) => {
                errors.add(name, message);
                bad.push(key);
            }
        }
    }
    for def in defs.iter().filter(|d| d.required) {
        if !out.contains_key(&def.key) && !bad.contains(&def.key) {
            errors.add(format!("custom_fields.{}", def.key), "required");
        }
    }
    *fields = out;
}

/// Validates a write of `entity` inside the caller's transaction: 422 naming every bad
/// `custom_fields.<key>`.
pub async fn validate_write(tx: &TenantTx, entity: Entity, fields: &mut CustomFields) -> Result<(), ApiError> {
    let defs = repo::definitions(tx, Some(entity)).await?;
    let mut errors = FieldErrors::new();
    check_fields(&mut errors, &defs, fields);
    errors.into_result()
}

// ---------------------------------------------------------------------------------------
// Filters and sorts

/// One `?cf.<key>=<value>` filter: the record's `custom_fields` must contain one of the
/// `any_of` objects (JSON containment: typed equality, a multi_select containing the option).
#[derive(Debug, Clone, PartialEq)]
pub struct CfFilter {
    pub any_of: Vec<Value>,
}

/// `sort=cf.<key>` / `-cf.<key>`: the typed SQL expression of the value (NULL when absent or
/// not of the type) and the SQL type a cursor value is cast to.
#[derive(Debug, Clone, PartialEq)]
pub struct CfSort {
    /// `cf.<key>`: the cursor's sort key.
    pub name: String,
    pub expr: String,
    pub cast: &'static str,
    pub desc: bool,
}

/// The filter value of one query parameter as the stored JSON value, or why not.
fn filter_value(def: &CustomFieldDefinition, raw: &str) -> Result<Value, String> {
    let raw = raw.trim();
    let stored = match def.field_type {
        FieldType::Number => {
            let n: f64 = raw.parse().map_err(|_| "must be a number".to_owned())?;
            return serde_json::Number::from_f64(n).map(|n| json!({ &def.key: n })).ok_or_else(|| "must be a number".into());
        }
        FieldType::Boolean => match raw {
            "true" => json!(true),
            "false" => json!(false),
            _ => return Err("must be true or false".into()),
        },
        FieldType::Currency => {
            let n: f64 = raw.parse().map_err(|_| "must be an amount".to_owned())?;
            let n = serde_json::Number::from_f64(n).ok_or_else(|| "must be an amount".to_owned())?;
            return Ok(json!({ &def.key: {"amount": n} }));
        }
        FieldType::MultiSelect => {
            if !def.options.iter().any(|o| o == raw) {
                return Err(format!("must be one of: {}", def.options.join(", ")));
            }
            return Ok(json!({ &def.key: [raw] }));
        }
        _ => check_value(def, &json!(raw))?,
    };
    Ok(json!({ &def.key: stored }))
}

/// Every `?cf.<key>=` of the query (repeated: any of the values), checked against the
/// entity's definitions; errors named `cf.<key>`.
pub fn parse_filters(errors: &mut FieldErrors, defs: &[CustomFieldDefinition], params: &QueryParams) -> Vec<CfFilter> {
    let mut keys: Vec<&str> = params.0.iter().filter_map(|(k, _)| k.strip_prefix("cf.")).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut out = Vec::new();
    for key in keys {
        let name = format!("cf.{key}");
        let Some(def) = defs.iter().find(|d| d.key == key) else {
            errors.add(name, "no such custom field");
            continue;
        };
        let mut any_of = Vec::new();
        for raw in params.all(&name) {
            match filter_value(def, raw) {
                Ok(v) => any_of.push(v),
                Err(m) => errors.add(name.clone(), m),
            }
        }
        if !any_of.is_empty() {
            out.push(CfFilter { any_of });
        }
    }
    out
}

/// `sort=cf.<key>` or `-cf.<key>` (None for any other sort); multi_select cannot be sorted.
pub fn parse_sort(defs: &[CustomFieldDefinition], raw: Option<&str>, alias: &str) -> Result<Option<CfSort>, ApiError> {
    let Some(raw) = raw.map(str::trim) else { return Ok(None) };
    let (desc, field) = match raw.strip_prefix('-') {
        Some(f) => (true, f),
        None => (false, raw),
    };
    let Some(key) = field.strip_prefix("cf.") else { return Ok(None) };
    let Some(def) = defs.iter().find(|d| d.key == key) else {
        return Err(ApiError::validation([("sort", format!("no such custom field: {key}"))]));
    };
    // The key is a definition's ([a-z][a-z0-9_]*): safe to write into the statement.
    let v = format!("{alias}.custom_fields->'{key}'");
    let (expr, cast) = match def.field_type {
        FieldType::Number => (format!("CASE WHEN jsonb_typeof({v}) = 'number' THEN ({v})::text::numeric END"), "numeric"),
        FieldType::Currency => {
            (format!("CASE WHEN jsonb_typeof({v}->'amount') = 'number' THEN ({v}->>'amount')::numeric END"), "numeric")
        }
        FieldType::Boolean => (format!("CASE WHEN jsonb_typeof({v}) = 'boolean' THEN ({v})::text::boolean END"), "boolean"),
        // ISO dates sort as text; anything else stored before the definition sorts last.
        FieldType::Date => (format!("CASE WHEN {v} #>> '{{}}' ~ '^\\d{{4}}-\\d{{2}}-\\d{{2}}$' THEN {v} #>> '{{}}' END"), "text"),
        FieldType::MultiSelect => return Err(ApiError::validation([("sort", "a multi_select field cannot be sorted")])),
        _ => (format!("CASE WHEN jsonb_typeof({v}) = 'string' THEN {v} #>> '{{}}' END"), "text"),
    };
    Ok(Some(CfSort { name: format!("cf.{key}"), expr, cast, desc }))
}

// ---------------------------------------------------------------------------------------
// Use cases

fn conflict_on_key(e: crm_tenant::DbError) -> ApiError {
    if let crm_tenant::DbError::Query(q) = &e
        && q.as_db_error().is_some_and(|db| db.constraint() == Some("custom_field_definitions_entity_key_key"))
    {
        return ApiError::conflict(crm_web::codes::CONFLICT, "a custom field with this key already exists for the entity")
            .with_details(json!({"fields": {"key": "already defined for this entity"}}));
    }
    e.into()
}

/// `GET /custom-fields[?entity=contact|company]`: in position, then key order.
pub async fn list(state: &AppState, can: &Can<perm::TenantRead>, params: &QueryParams) -> Result<CustomFieldList, ApiError> {
    let mut errors = FieldErrors::new();
    let entity = params.choice(&mut errors, "entity", &["contact", "company"]).and_then(|e| Entity::parse(&e));
    errors.into_result()?;
    let tx = state.db.tenant(&can.tenant_id).await?;
    let data = repo::definitions(&tx, entity).await?;
    tx.commit().await?;
    Ok(CustomFieldList { data })
}

/// `GET /custom-fields/{id}`.
pub async fn get(state: &AppState, can: &Can<perm::TenantRead>, id: i32) -> Result<CustomFieldDefinition, ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    let def = repo::definition(&tx, id, false).await?.ok_or_else(|| ApiError::not_found("custom field"))?;
    tx.commit().await?;
    Ok(def)
}

/// `POST /custom-fields` (admins); publishes `custom_field.created`.
pub async fn create(state: &AppState, can: &Can<perm::TenantWrite>, input: NewCustomField) -> Result<CustomFieldDefinition, ApiError> {
    let mut errors = FieldErrors::new();
    let w = input.validate(&mut errors);
    errors.into_result()?;
    let tx = state.db.tenant(&can.tenant_id).await?;
    if repo::definitions(&tx, Some(w.entity)).await?.len() >= MAX_DEFINITIONS {
        return Err(ApiError::validation([("entity", format!("at most {MAX_DEFINITIONS} custom fields per entity"))]));
    }
    let def = repo::insert(&tx, &w, can.user_id).await.map_err(conflict_on_key)?;
    publish(&tx, Some(can.user_id), CUSTOM_FIELD_CREATED, &def).await?;
    tx.commit().await?;
    Ok(def)
}

/// `PATCH /custom-fields/{id}` (admins, `If-Match`); publishes `custom_field.updated`.
pub async fn patch(
    state: &AppState,
    can: &Can<perm::TenantWrite>,
    id: i32,
    if_match: &IfMatch,
    patch: CustomFieldPatch,
) -> Result<CustomFieldDefinition, ApiError> {
    if patch.is_empty() {
        return Err(ApiError::validation([("body", "nothing to update")]));
    }
    let tx = state.db.tenant(&can.tenant_id).await?;
    let current = repo::definition(&tx, id, true).await?.ok_or_else(|| ApiError::not_found("custom field"))?;
    if_match.check(&ETag::of(current.updated_at))?;
    let mut errors = FieldErrors::new();
    let w = patch.apply(&current, &mut errors);
    errors.into_result()?;
    let def = repo::update(&tx, id, &w).await?;
    publish(&tx, Some(can.user_id), CUSTOM_FIELD_UPDATED, &def).await?;
    tx.commit().await?;
    Ok(def)
}

/// `DELETE /custom-fields/{id}` (admins, `If-Match`): the definition goes; the values stay in
/// the records (untyped again) until removed. Publishes `custom_field.deleted`.
pub async fn delete(state: &AppState, can: &Can<perm::TenantWrite>, id: i32, if_match: &IfMatch) -> Result<(), ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    let current = repo::definition(&tx, id, true).await?.ok_or_else(|| ApiError::not_found("custom field"))?;
    if_match.check(&ETag::of(current.updated_at))?;
    repo::delete(&tx, id).await?;
    publish(&tx, Some(can.user_id), CUSTOM_FIELD_DELETED, &current).await?;
    tx.commit().await?;
    Ok(())
}

use crm_client_contact::subjects::{CUSTOM_FIELD_CREATED, CUSTOM_FIELD_DELETED, CUSTOM_FIELD_UPDATED};

/// `GET /companies?sort=cf.<key>` (and `/companies/{id}/children`), in the caller's
/// transaction: keyset pages on (typed value, id), absent values last.
pub async fn companies_sorted_by_field(
    state: &AppState,
    tx: &TenantTx,
    filter: &crate::repo::companies::CompanyFilter,
    sort: &CfSort,
    params: &QueryParams,
    limit: i64,
) -> Result<Page<CompanyDetails>, ApiError> {
    let after = parse_cf_cursor(state, params, sort)?;
    let rows = repo::list_companies_by_field(tx, filter, sort, after.as_ref(), limit).await?;
    let total = if params.count() { Some(crate::repo::companies::count_companies(tx, filter).await?) } else { None };
    let page = Page::from_overfetch(rows, limit, total, |(last, value)| state.cursors.encode(&cf_cursor(sort, value, last.id)));
    Ok(Page { data: page.data.into_iter().map(|(c, _)| c).collect(), pagination: page.pagination })
}

/// The cursor of a custom-field sort: the value as text (`None`: absent) and the id.
fn cf_cursor(sort: &CfSort, value: &Option<String>, id: i32) -> ListCursor {
    ListCursor { k: sort.name.clone(), desc: sort.desc, t: value.clone(), ts: None, s: None, id }
}

/// `?cursor=`, which must have been made for the same custom-field sort.
fn parse_cf_cursor(state: &AppState, params: &QueryParams, sort: &CfSort) -> Result<Option<ListCursor>, ApiError> {
    let after: Option<ListCursor> = crm_web::pagination::parse_cursor(&state.cursors, params.one("cursor"))?;
    if after.as_ref().is_some_and(|c| c.k != sort.name || c.desc != sort.desc) {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, crm_web::codes::INVALID_CURSOR, "the cursor belongs to another sort order"));
    }
    Ok(after)
}

/// The definitions of `entity` (a read of its own, before a list's transaction: the
/// filters and sort are parsed from them).
pub async fn definitions_of(state: &AppState, tenant_id: &crm_tenant::TenantId, entity: Entity) -> Result<Vec<CustomFieldDefinition>, ApiError> {
    let tx = state.db.tenant(tenant_id).await?;
    let defs = repo::definitions(&tx, Some(entity)).await?;
    tx.commit().await?;
    Ok(defs)
}

/// `GET /contacts?sort=cf.<key>`: keyset pages on (typed value, id), absent values last.
pub async fn contacts_sorted_by_field(
    state: &AppState,
    can: &Can<perm::ContactsRead>,
    filter: &crate::repo::contacts::ContactFilter,
    sort: &CfSort,
    params: &QueryParams,
    limit: i64,
) -> Result<Page<ContactDetails>, ApiError> {
    let after = parse_cf_cursor(state, params, sort)?;
    let tx = state.db.tenant(&can.tenant_id).await?;
    let rows = repo::list_contacts_by_field(&tx, filter, sort, after.as_ref(), limit).await?;
    let total = if params.count() { Some(crate::repo::contacts::count_contacts(&tx, filter).await?) } else { None };
    tx.commit().await?;
    let page = Page::from_overfetch(rows, limit, total, |(last, value)| state.cursors.encode(&cf_cursor(sort, value, last.id)));
    Ok(Page { data: page.data.into_iter().map(|(c, _)| c).collect(), pagination: page.pagination })
}


#[cfg(test)]
mod tests {
    use super::*;

    /// The field names of a validation failure.
    fn names(e: FieldErrors) -> Value {
        e.into_result().unwrap_err().details().cloned().unwrap_or_default()["fields"].clone()
    }

    fn def(key: &str, t: FieldType, options: &[&str], required: bool) -> CustomFieldDefinition {
        CustomFieldDefinition {
            id: 1,
            entity: Entity::Contact,
            key: key.into(),
            label: key.into(),
            field_type: t,
            options: options.iter().map(|s| s.to_string()).collect(),
            required,
            position: 0,
            created_at: Utc::now(),
            updated_at: Utc::now(),
            created_by: 1,
        }
    }

    #[test]
    fn keys() {
        for ok in ["tier", "renewal_date", "a1"] {
            assert!(is_key(ok), "{ok}");
        }
        for bad in ["", "Tier", "1a", "_a", "a-b", "a b", &"a".repeat(65)] {
            assert!(!is_key(bad), "{bad}");
        }
    }

    #[test]
    fn values_are_typed() {
        let tier = def("tier", FieldType::Select, &["gold", "silver"], false);
        assert_eq!(check_value(&tier, &json!("gold")), Ok(json!("gold")));
        assert!(check_value(&tier, &json!("bronze")).is_err());
        let n = def("n", FieldType::Number, &[], false);
        assert!(check_value(&n, &json!(1.5)).is_ok());
        assert!(check_value(&n, &json!("1.5")).is_err());
        let d = def("d", FieldType::Date, &[], false);
        assert!(check_value(&d, &json!("2026-02-28")).is_ok());
        for bad in ["2026-02-30", "28.02.2026", "2026-2-1"] {
            assert!(check_value(&d, &json!(bad)).is_err(), "{bad}");
        }
        let m = def("m", FieldType::MultiSelect, &["a", "b"], false);
        assert_eq!(check_value(&m, &json!(["a", "a", "b"])), Ok(json!(["a", "b"])));
        assert!(check_value(&m, &json!(["c"])).is_err());
        let c = def("c", FieldType::Currency, &[], false);
        assert!(check_value(&c, &json!({"amount": 10, "currency": "EUR"})).is_ok());
        assert!(check_value(&c, &json!({"amount": 10, "currency": "eur"})).is_err());
        assert!(check_value(&c, &json!(10)).is_err());
        let u = def("u", FieldType::Url, &[], false);
        assert!(check_value(&u, &json!("https://example.com/x")).is_ok());
        assert!(check_value(&u, &json!("javascript:alert(1)")).is_err());
        let e = def("e", FieldType::Email, &[], false);
        assert_eq!(check_value(&e, &json!("A@B.co")), Ok(json!("a@b.co")));
        let t = def("t", FieldType::Text, &[], false);
        assert!(check_value(&t, &json!("two\nlines")).is_err());
        let b = def("b", FieldType::Boolean, &[], false);
        assert!(check_value(&b, &json!("true")).is_err());
    }

    #[test]
    fn unknown_missing_and_bad_fields_are_named() {
        let defs = [def("tier", FieldType::Select, &["gold"], true), def("n", FieldType::Number, &[], false)];
        let mut fields: CustomFields = serde_json::from_value(json!({"tierr": "gold", "n": "x"})).unwrap();
        let mut e = FieldErrors::new();
        check_fields(&mut e, &defs, &mut fields);
        let v = names(e);
        for name in ["custom_fields.tierr", "custom_fields.n", "custom_fields.tier"] {
            assert!(v.get(name).is_some(), "{name}: {v}");
        }
        let mut fields: CustomFields = serde_json::from_value(json!({"tier": "gold", "n": null})).unwrap();
        let mut e = FieldErrors::new();
        check_fields(&mut e, &defs, &mut fields);
        assert!(e.is_empty());
        assert_eq!(Value::Object(fields), json!({"tier": "gold"}));
        // Without definitions the bag stays untyped.
        let mut fields: CustomFields = serde_json::from_value(json!({"anything": [1]})).unwrap();
        let mut e = FieldErrors::new();
        check_fields(&mut e, &[], &mut fields);
        assert!(e.is_empty());
    }

    #[test]
    fn filters_are_containment_of_the_stored_shape() {
        let defs = [
            def("tier", FieldType::Select, &["gold"], false),
            def("n", FieldType::Number, &[], false),
            def("m", FieldType::MultiSelect, &["a"], false),
        ];
        let params = QueryParams(vec![("cf.tier".into(), "gold".into()), ("cf.n".into(), "2".into()), ("cf.m".into(), "a".into())]);
        let mut e = FieldErrors::new();
        let f = parse_filters(&mut e, &defs, &params);
        assert!(e.is_empty());
        assert_eq!(f.len(), 3);
        assert!(f.iter().any(|f| f.any_of == vec![json!({"m": ["a"]})]));
        let params = QueryParams(vec![("cf.nope".into(), "x".into()), ("cf.n".into(), "abc".into())]);
        let mut e = FieldErrors::new();
        parse_filters(&mut e, &defs, &params);
        let v = names(e);
        assert!(v.get("cf.nope").is_some() && v.get("cf.n").is_some(), "{v}");
    }

    #[test]
    fn sorts() {
        let defs = [def("n", FieldType::Number, &[], false), def("m", FieldType::MultiSelect, &["a"], false)];
        let s = parse_sort(&defs, Some("-cf.n"), "c").unwrap().unwrap();
        assert!(s.desc && s.cast == "numeric" && s.name == "cf.n");
        assert!(parse_sort(&defs, Some("cf.m"), "c").is_err());
        assert!(parse_sort(&defs, Some("cf.x"), "c").is_err());
        assert_eq!(parse_sort(&defs, Some("created_at"), "c").unwrap(), None);
    }
}
