//! Request bodies and query strings of deal-service, and their parsing into domain values
//! (every invalid field reported at once, 400 `VALIDATION_FAILED`).

use chrono::NaiveDate;
use crm_client_deal::{PipelineStageInfo, StageKind};
use crm_web::pagination::{SortDir, parse_sort};
use crm_web::{ApiError, FieldErrors};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::domain::{
    DEFAULT_CURRENCY, Money, StageInput, check_contact_role, check_currency, check_custom_fields, check_date, check_id,
    check_money, check_probability, check_stage_key, check_stage_kind, check_line, check_multiline, check_title, double_option,
};
use crate::repo::{BoardFilter, DealFilter};

/// `POST /deals` and `PUT /deals/{id}` (PUT replaces every field: absent means empty).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDeal {
    pub title: String,
    pub description: Option<String>,
    /// At most 2 decimals, >= 0.
    pub value: Option<f64>,
    /// ISO 4217, default USD.
    pub currency: Option<String>,
    /// Stage key; POST defaults to the first open stage, PUT requires it.
    pub stage: Option<String>,
    /// 0-100; defaults to the stage's probability.
    pub probability: Option<f64>,
    pub primary_contact_id: Option<i64>,
    pub company_id: Option<i64>,
    /// POST defaults to the caller.
    pub owner_id: Option<i64>,
    /// `YYYY-MM-DD`
    pub expected_close_date: Option<String>,
    /// Only for won/lost stages; default today when entering one.
    pub actual_close_date: Option<String>,
    pub deal_source: Option<String>,
    /// Only for lost stages.
    pub close_reason: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub custom_fields: Option<serde_json::Value>,
    /// Required to move a won/lost deal to another stage.
    pub reopen: Option<bool>,

    // The read-only fields of a deal as read: accepted and ignored, so that a deal read with
    // GET can be PUT back exactly as read (`id`, on PUT, must be the path's).
    #[schema(read_only)]
    pub id: Option<i64>,
    #[schema(read_only)]
    pub created_at: Option<String>,
    #[schema(read_only)]
    pub updated_at: Option<String>,
    #[schema(read_only)]
    pub created_by: Option<i64>,
    #[schema(read_only)]
    pub primary_contact_name: Option<String>,
    #[schema(read_only)]
    pub company_name: Option<String>,
    #[schema(read_only)]
    pub owner_name: Option<String>,
    #[schema(read_only)]
    pub deal_age_days: Option<i64>,
    #[schema(read_only)]
    pub days_until_close: Option<i64>,
    #[schema(read_only)]
    pub weighted_value: Option<f64>,
    #[schema(read_only, value_type = Option<Vec<Object>>)]
    pub stage_history: Option<Vec<serde_json::Value>>,
}

/// `PATCH /deals/{id}`: only the fields present change; `null` clears a field.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DealPatch {
    pub title: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<f64>)]
    pub value: Option<Option<f64>>,
    pub currency: Option<String>,
    /// Stage key. Unknown: 422 `UNKNOWN_STAGE`; leaving won/lost needs `reopen`.
    pub stage: Option<String>,
    pub probability: Option<f64>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub primary_contact_id: Option<Option<i64>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub company_id: Option<Option<i64>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub owner_id: Option<Option<i64>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub expected_close_date: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub actual_close_date: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub deal_source: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub close_reason: Option<Option<String>>,
    #[schema(value_type = Option<Object>)]
    pub custom_fields: Option<serde_json::Value>,
    pub reopen: Option<bool>,
}

/// A parsed write: `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Debug, Default)]
pub struct DealChanges {
    pub title: Option<String>,
    pub description: Option<Option<String>>,
    pub value: Option<Option<Money>>,
    pub currency: Option<String>,
    pub stage: Option<String>,
    pub primary_contact_id: Option<Option<i32>>,
    pub company_id: Option<Option<i32>>,
    pub owner_id: Option<Option<i32>>,
    pub expected_close_date: Option<Option<NaiveDate>>,
    pub source: Option<Option<String>>,
    pub custom_fields: Option<serde_json::Map<String, serde_json::Value>>,
    pub stage_input: StageInput,
}

impl NewDeal {
    /// `put`: the id of the deal a PUT replaces (the stage is required, the owner does not
    /// default to the caller, and a read-only `id` in the body must be this one).
    pub fn parse(self, put: Option<i32>) -> Result<DealChanges, ApiError> {
        let is_put = put.is_some();
        let mut e = FieldErrors::new();
        if is_put && self.stage.is_none() {
            e.add("stage", "required");
        }
        if let (Some(path), Some(body)) = (put, self.id)
            && i64::from(path) != body
        {
            e.add("id", "must be the id of the deal in the path (or absent)");
        }
        let changes = DealChanges {
            title: Some(check_title(&mut e, &self.title)),
            description: Some(check_multiline(&mut e, "description", self.description.as_deref(), 10_000)),
            value: Some(check_money(&mut e, "value", self.value)),
            currency: Some(self.currency.as_deref().map_or_else(|| DEFAULT_CURRENCY.to_owned(), |c| check_currency(&mut e, c))),
            stage: self.stage.map(|s| s.trim().to_owned()),
            primary_contact_id: Some(check_id(&mut e, "primary_contact_id", self.primary_contact_id)),
            company_id: Some(check_id(&mut e, "company_id", self.company_id)),
            owner_id: if is_put || self.owner_id.is_some() { Some(check_id(&mut e, "owner_id", self.owner_id)) } else { None },
            expected_close_date: Some(check_date(&mut e, "expected_close_date", self.expected_close_date.as_deref())),
            source: Some(check_line(&mut e, "deal_source", self.deal_source.as_deref(), 100)),
            custom_fields: Some(check_custom_fields(&mut e, self.custom_fields)),
            stage_input: StageInput {
                probability: check_probability(&mut e, self.probability),
                actual_close_date: self
                    .actual_close_date
                    .as_deref()
                    .map(|d| check_date(&mut e, "actual_close_date", Some(d)))
                    .map(Some)
                    .map(Option::flatten),
                close_reason: self.close_reason.as_deref().map(|r| check_line(&mut e, "close_reason", Some(r), 255)),
                reopen: self.reopen.unwrap_or(false),
            },
        };
        e.into_result()?;
        Ok(changes)
    }
}

impl DealPatch {
    pub fn parse(self) -> Result<DealChanges, ApiError> {
        let mut e = FieldErrors::new();
        let changes = DealChanges {
            title: self.title.as_deref().map(|t| check_title(&mut e, t)),
            description: self.description.map(|d| check_multiline(&mut e, "description", d.as_deref(), 10_000)),
            value: self.value.map(|v| check_money(&mut e, "value", v)),
            currency: self.currency.as_deref().map(|c| check_currency(&mut e, c)),
            stage: self.stage.map(|s| s.trim().to_owned()),
            primary_contact_id: self.primary_contact_id.map(|id| check_id(&mut e, "primary_contact_id", id)),
            company_id: self.company_id.map(|id| check_id(&mut e, "company_id", id)),
            owner_id: self.owner_id.map(|id| check_id(&mut e, "owner_id", id)),
            expected_close_date: self.expected_close_date.map(|d| check_date(&mut e, "expected_close_date", d.as_deref())),
            source: self.deal_source.map(|s| check_line(&mut e, "deal_source", s.as_deref(), 100)),
            custom_fields: self.custom_fields.map(|c| check_custom_fields(&mut e, Some(c))),
            stage_input: StageInput {
                probability: check_probability(&mut e, self.probability),
                actual_close_date: self.actual_close_date.map(|d| check_date(&mut e, "actual_close_date", d.as_deref())),
                close_reason: self.close_reason.map(|r| check_line(&mut e, "close_reason", r.as_deref(), 255)),
                reopen: self.reopen.unwrap_or(false),
            },
        };
        let empty = changes.title.is_none()
            && changes.description.is_none()
            && changes.value.is_none()
            && changes.currency.is_none()
            && changes.stage.is_none()
            && changes.primary_contact_id.is_none()
            && changes.company_id.is_none()
            && changes.owner_id.is_none()
            && changes.expected_close_date.is_none()
            && changes.source.is_none()
            && changes.custom_fields.is_none()
            && changes.stage_input.probability.is_none()
            && changes.stage_input.actual_close_date.is_none()
            && changes.stage_input.close_reason.is_none();
        if empty && e.is_empty() {
            e.add("body", "nothing to update");
        }
        e.into_result()?;
        Ok(changes)
    }
}

/// `GET /deals` query string. Values are parsed by hand so that each bad one is reported
/// by name.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DealListParams {
    /// Stage key.
    pub stage: Option<String>,
    pub owner_id: Option<String>,
    pub company_id: Option<String>,
    /// Primary contact or one of the deal's contacts.
    pub contact_id: Option<String>,
    pub min_value: Option<String>,
    pub max_value: Option<String>,
    /// Inclusive, `YYYY-MM-DD`.
    pub expected_close_after: Option<String>,
    /// Inclusive, `YYYY-MM-DD`.
    pub expected_close_before: Option<String>,
    /// Case-insensitive substring of the title.
    pub search: Option<String>,
    /// ISO 4217.
    pub currency: Option<String>,
    /// `created_at` (default `-created_at`), `updated_at`, `value`, `expected_close_date`,
    /// `title`, `probability`; `-` for descending.
    pub sort: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
    /// `false` omits `total_count`.
    pub count: Option<String>,
}

fn query_id(e: &mut FieldErrors, field: &str, raw: Option<&str>) -> Option<i32> {
    let raw = raw.map(str::trim).filter(|s| !s.is_empty())?;
    match raw.parse::<i32>() {
        Ok(id) if id > 0 => Some(id),
        _ => {
            e.add(field, "must be a positive id");
            None
        }
    }
}

fn query_money(e: &mut FieldErrors, field: &str, raw: Option<&str>) -> Option<Money> {
    let raw = raw.map(str::trim).filter(|s| !s.is_empty())?;
    match raw.parse::<f64>() {
        Ok(v) => check_money(e, field, Some(v)),
        Err(_) => {
            e.add(field, "must be a number");
            None
        }
    }
}

fn query_date(e: &mut FieldErrors, field: &str, raw: Option<&str>) -> Option<NaiveDate> {
    check_date(e, field, raw.map(str::trim).filter(|s| !s.is_empty()))
}

fn query_currency(e: &mut FieldErrors, raw: Option<&str>) -> Option<String> {
    raw.map(str::trim).filter(|s| !s.is_empty()).map(|c| check_currency(e, c))
}

impl DealListParams {
    pub fn filter(&self) -> Result<DealFilter, ApiError> {
        let mut e = FieldErrors::new();
        let search = check_line(&mut e, "search", self.search.as_deref(), 200);
        let filter = DealFilter {
            stage: check_line(&mut e, "stage", self.stage.as_deref(), 50),
            owner_id: query_id(&mut e, "owner_id", self.owner_id.as_deref()),
            company_id: query_id(&mut e, "company_id", self.company_id.as_deref()),
            contact_id: query_id(&mut e, "contact_id", self.contact_id.as_deref()),
            min_value: query_money(&mut e, "min_value", self.min_value.as_deref()),
            max_value: query_money(&mut e, "max_value", self.max_value.as_deref()),
            expected_close_after: query_date(&mut e, "expected_close_after", self.expected_close_after.as_deref()),
            expected_close_before: query_date(&mut e, "expected_close_before", self.expected_close_before.as_deref()),
            search,
            currency: query_currency(&mut e, self.currency.as_deref()),
        };
        e.into_result()?;
        Ok(filter)
    }

    pub fn with_count(&self) -> bool {
        self.count.as_deref() != Some("false")
    }
}

/// `GET /deals/pipeline` query string.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PipelineParams {
    /// Deals shown per stage, 0-100 (default 10).
    pub per_stage: Option<String>,
    pub owner_id: Option<String>,
    pub currency: Option<String>,
    /// Stages are in pipeline order: only `position` is accepted.
    pub sort: Option<String>,
}

pub const DEFAULT_PER_STAGE: i64 = 10;

impl PipelineParams {
    pub fn parse(&self) -> Result<(BoardFilter, i64), ApiError> {
        fixed_sort(self.sort.as_deref(), "position")?;
        let mut e = FieldErrors::new();
        let per_stage = match self.per_stage.as_deref().map(str::trim) {
            None | Some("") => DEFAULT_PER_STAGE,
            Some(raw) => match raw.parse::<i64>() {
                Ok(n) if (0..=100).contains(&n) => n,
                _ => {
                    e.add("per_stage", "must be an integer between 0 and 100");
                    0
                }
            },
        };
        let filter = BoardFilter {
            owner_id: query_id(&mut e, "owner_id", self.owner_id.as_deref()),
            currency: query_currency(&mut e, self.currency.as_deref()),
        };
        e.into_result()?;
        Ok((filter, per_stage))
    }
}

/// `GET /deals/forecast` query string.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ForecastParams {
    /// `month` (default) or `quarter`.
    pub group_by: Option<String>,
    /// Inclusive range on the expected (open deals) and actual (won deals) close dates.
    pub from: Option<String>,
    pub to: Option<String>,
    pub owner_id: Option<String>,
    pub currency: Option<String>,
    /// Periods are in date order: only `period` is accepted.
    pub sort: Option<String>,
}

pub struct Forecast {
    pub unit: &'static str,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub filter: BoardFilter,
}

impl ForecastParams {
    pub fn parse(&self) -> Result<Forecast, ApiError> {
        fixed_sort(self.sort.as_deref(), "period")?;
        let mut e = FieldErrors::new();
        let unit = match self.group_by.as_deref().map(str::trim) {
            None | Some("") | Some("month") => "month",
            Some("quarter") => "quarter",
            Some(_) => {
                e.add("group_by", "must be month or quarter");
                "month"
            }
        };
        let from = query_date(&mut e, "from", self.from.as_deref());
        let to = query_date(&mut e, "to", self.to.as_deref());
        if let (Some(f), Some(t)) = (from, to)
            && f > t
        {
            e.add("to", "must not be before from");
        }
        let filter = BoardFilter {
            owner_id: query_id(&mut e, "owner_id", self.owner_id.as_deref()),
            currency: query_currency(&mut e, self.currency.as_deref()),
        };
        e.into_result()?;
        Ok(Forecast { unit, from, to, filter })
    }
}

/// `GET /deals/basic?ids=1,2,3` (at most 500 ids).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BasicParams {
    pub ids: Option<String>,
    /// Deals come by id: only `id` is accepted.
    pub sort: Option<String>,
}

pub const MAX_BATCH: usize = 500;

impl BasicParams {
    pub fn ids(&self) -> Result<Vec<i32>, ApiError> {
        fixed_sort(self.sort.as_deref(), "id")?;
        let raw = self.ids.as_deref().map(str::trim).unwrap_or_default();
        let bad = |m: &str| ApiError::validation([("ids", m.to_owned())]);
        if raw.is_empty() {
            return Err(bad("required: comma-separated deal ids"));
        }
        let mut ids = Vec::new();
        for part in raw.split(',') {
            match part.trim().parse::<i32>() {
                Ok(id) if id > 0 => ids.push(id),
                _ => return Err(bad("must be comma-separated positive ids")),
            }
            if ids.len() > MAX_BATCH {
                return Err(bad("at most 500 ids"));
            }
        }
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }
}

/// A list in one fixed order accepts `?sort=` only naming that order (ascending): any other
/// value is refused (400 on `sort`), never silently ignored.
pub fn fixed_sort(raw: Option<&str>, only: &'static str) -> Result<(), ApiError> {
    let (_, dir) = parse_sort(raw, &[only], (only, SortDir::Asc))?;
    if dir == SortDir::Desc {
        return Err(ApiError::validation([("sort", format!("must be one of: {only}"))]));
    }
    Ok(())
}

/// `GET /pipeline/stages` (in pipeline order) and `GET /deals/{id}/contacts` (in the order
/// they were added).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StageListParams {
    /// Only `position` (pipeline order).
    pub sort: Option<String>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DealContactListParams {
    /// Only `created_at` (the order they were added).
    pub sort: Option<String>,
}

/// `POST /deals/{id}/contacts`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDealContact {
    pub contact_id: i64,
    /// decision_maker, influencer, user, other (default).
    pub role: Option<String>,
}

impl NewDealContact {
    pub fn parse(&self) -> Result<(i32, String), ApiError> {
        let mut e = FieldErrors::new();
        let id = check_id(&mut e, "contact_id", Some(self.contact_id));
        let role = check_contact_role(&mut e, self.role.as_deref());
        e.into_result()?;
        id.map(|id| (id, role)).ok_or_else(|| ApiError::validation([("contact_id", "must be a positive id")]))
    }
}

/// `POST /pipeline/stages` and `PUT /pipeline/stages/{key}` (PUT may rename the key).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStage {
    /// Required on POST; on PUT a different key renames the stage (deals follow).
    pub key: Option<String>,
    pub name: String,
    /// Order in the pipeline; POST defaults to after the last stage.
    pub position: Option<i64>,
    /// Default probability of deals entering the stage, 0-100.
    pub probability: f64,
    /// open, won, lost
    pub kind: String,
}

impl NewStage {
    /// `current_key`: the stage a PUT replaces; `next_position` for POST without one.
    pub fn parse(&self, current_key: Option<&str>, next_position: i32) -> Result<PipelineStageInfo, ApiError> {
        let mut e = FieldErrors::new();
        let key = match (&self.key, current_key) {
            (Some(k), _) => check_stage_key(&mut e, "key", k),
            (None, Some(current)) => current.to_owned(),
            (None, None) => {
                e.add("key", "required");
                String::new()
            }
        };
        let name = crm_web::validate::text(&mut e, "name", &self.name, 100);
        let position = match self.position {
            None if current_key.is_none() => next_position,
            None => {
                e.add("position", "required");
                0
            }
            Some(p) => i32::try_from(p).ok().filter(|p| (0..=10_000).contains(p)).unwrap_or_else(|| {
                e.add("position", "must be an integer between 0 and 10000");
                0
            }),
        };
        let probability = check_probability(&mut e, Some(self.probability)).unwrap_or(0);
        let kind = check_stage_kind(&mut e, &self.kind);
        e.into_result()?;
        Ok(PipelineStageInfo { key, name, position, probability, kind })
    }
}

/// `DELETE /pipeline/stages/{key}?move_to=<key>`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StageDeleteParams {
    /// Where the stage's deals go (a stage of the same kind); without it a stage holding
    /// deals is not deleted (409).
    pub move_to: Option<String>,
}

/// Kinds a stage's deals may be moved to when it is deleted: the same kind only (an open
/// deal does not become won by a configuration change).
pub fn movable(from: StageKind, to: StageKind) -> bool {
    from == to
}
