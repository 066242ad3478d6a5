use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What other services show of a deal (seed 004): activities linked to deals, reporting.
/// `value` is 0 when the deal has no value yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DealBasicInfo {
    pub id: i32,
    pub title: String,
    /// The stage key, e.g. `proposal`.
    pub stage: String,
    pub value: f64,
}

/// Payload of `deal.trashed` ([`crate::subjects::DEAL_TRASHED`], issue 16): the deal's basic
/// info (flattened), who moved it to the trash (auth-service user id) and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DealTrashed {
    #[serde(flatten)]
    pub deal: DealBasicInfo,
    pub deleted_by: Option<i32>,
    pub deleted_at: DateTime<Utc>,
}

/// A deal as the API shows it (seed 004 DealResponse, plus `currency`, `close_reason`,
/// `custom_fields` and, on `GET /deals/{id}`, `stage_history`).
///
/// Enriched names are `null` when there is no such reference and also when the owning
/// service could not be reached in time (the response degrades instead of failing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DealResponse {
    pub id: i32,
    pub title: String,
    /// Exact to the currency's minor unit (ISO 4217: none for JPY, 2 for USD, 3 for BHD);
    /// `null` when unknown.
    pub value: Option<f64>,
    /// ISO 4217, e.g. `USD`.
    pub currency: String,
    /// 0-100; the stage's default unless set.
    pub probability: i32,
    /// The stage key.
    pub stage: String,
    pub primary_contact_id: Option<i32>,
    pub company_id: Option<i32>,
    pub owner_id: Option<i32>,
    pub expected_close_date: Option<NaiveDate>,
    /// Set when the deal enters a won or lost stage.
    pub actual_close_date: Option<NaiveDate>,
    pub deal_source: Option<String>,
    pub description: Option<String>,
    /// Why a lost deal was lost.
    pub close_reason: Option<String>,
    #[schema(value_type = Object)]
    pub custom_fields: serde_json::Map<String, serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: Option<i32>,

    // Enriched (contact-service, auth-service).
    pub primary_contact_name: Option<String>,
    pub company_name: Option<String>,
    pub owner_name: Option<String>,

    // Calculated.
    /// Whole days since creation.
    pub deal_age_days: i32,
    /// Days from today to `expected_close_date` (negative when overdue); `null` without a
    /// date or once the deal is closed.
    pub days_until_close: Option<i32>,
    /// `value x probability / 100`, rounded to the currency's minor unit.
    pub weighted_value: Option<f64>,

    /// Only on `GET /deals/{id}`: every stage change, oldest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage_history: Option<Vec<StageHistoryEntry>>,
}

impl DealResponse {
    pub fn basic(&self) -> DealBasicInfo {
        DealBasicInfo { id: self.id, title: self.title.clone(), stage: self.stage.clone(), value: self.value.unwrap_or(0.0) }
    }
}

/// One stage change of a deal: from (`null` at creation), to, who, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StageHistoryEntry {
    pub from_stage: Option<String>,
    pub to_stage: String,
    pub changed_by: Option<i32>,
    pub changed_at: DateTime<Utc>,
}

/// What a stage means for the deals in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StageKind {
    Open,
    Won,
    Lost,
}

impl StageKind {
    pub const ALL: [StageKind; 3] = [Self::Open, Self::Won, Self::Lost];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Won => "won",
            Self::Lost => "lost",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }

    /// Won and lost deals are closed: they move only when explicitly reopened.
    pub fn is_closed(&self) -> bool {
        !matches!(self, Self::Open)
    }
}

/// One configured stage of a tenant's pipeline (`/pipeline/stages`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PipelineStageInfo {
    /// Stable identifier deals refer to: `[a-z][a-z0-9_]*`, at most 50 characters.
    pub key: String,
    pub name: String,
    pub position: i32,
    /// Default probability (0-100) of deals entering the stage.
    pub probability: i32,
    pub kind: StageKind,
}

/// `GET /deals/pipeline` (seed 004 PipelineViewResponse).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PipelineViewResponse {
    /// Every configured stage in order, also the empty ones.
    pub stages: Vec<PipelineStage>,
    pub totals: PipelineTotals,
}

/// Amounts by ISO 4217 currency code, e.g. `{"USD": 100.0, "EUR": 100.0, "JPY": 100}`:
/// amounts in different currencies are never added together (no conversion). Each amount is
/// exact to its currency's minor unit; a currency appears only when it has deals in the group.
pub type ByCurrency = BTreeMap<String, f64>;

/// The single amount of a per-currency map: `0` for no deals, the amount when every deal
/// shares one currency, `null` when there are several (see the `_by_currency` field).
pub fn single_currency(by: &ByCurrency) -> Option<f64> {
    match by.len() {
        0 => Some(0.0),
        1 => by.values().next().copied(),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PipelineStage {
    /// The stage key.
    pub stage: String,
    pub name: String,
    pub kind: StageKind,
    pub position: i32,
    pub probability: i32,
    pub deal_count: i64,
    /// The stage's total when its deals share one currency (0 without deals); `null` when
    /// they are in several currencies: `total_value_by_currency` has the totals.
    pub total_value: Option<f64>,
    /// As `total_value`, weighted by each deal's probability.
    pub weighted_value: Option<f64>,
    /// Total value per currency.
    #[schema(value_type = BTreeMap<String, f64>)]
    pub total_value_by_currency: ByCurrency,
    /// Weighted value per currency.
    #[schema(value_type = BTreeMap<String, f64>)]
    pub weighted_value_by_currency: ByCurrency,
    /// The most recently updated deals of the stage, at most `per_stage`.
    pub deals: Vec<DealResponse>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PipelineTotals {
    pub total_deals: i64,
    /// Over all stages when every deal shares one currency (0 without deals); `null` with
    /// several currencies: see `total_value_by_currency`.
    pub total_value: Option<f64>,
    pub total_weighted_value: Option<f64>,
    #[schema(value_type = BTreeMap<String, f64>)]
    pub total_value_by_currency: ByCurrency,
    #[schema(value_type = BTreeMap<String, f64>)]
    pub total_weighted_value_by_currency: ByCurrency,
}

/// `GET /deals/forecast`: open deals by expected close period, won deals by actual close
/// period. Amounts are summed per currency (`*_by_currency`, no conversion); each single
/// amount is that sum when only one currency is involved and `null` with several.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ForecastResponse {
    /// `month` or `quarter`.
    pub group_by: String,
    /// Periods with open or won deals, in order.
    pub periods: Vec<ForecastPeriod>,
    /// Open deals without an expected close date.
    pub unscheduled: Unscheduled,
    pub totals: ForecastTotals,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ForecastPeriod {
    /// `2026-03` (month) or `2026-Q1` (quarter).
    pub period: String,
    /// First day of the period.
    pub start: NaiveDate,
    pub open_deal_count: i64,
    pub open_value: Option<f64>,
    pub weighted_value: Option<f64>,
    pub won_deal_count: i64,
    pub won_value: Option<f64>,
    #[schema(value_type = BTreeMap<String, f64>)]
    pub open_value_by_currency: ByCurrency,
    #[schema(value_type = BTreeMap<String, f64>)]
    pub weighted_value_by_currency: ByCurrency,
    #[schema(value_type = BTreeMap<String, f64>)]
    pub won_value_by_currency: ByCurrency,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Unscheduled {
    pub open_deal_count: i64,
    pub open_value: Option<f64>,
    pub weighted_value: Option<f64>,
    #[schema(value_type = BTreeMap<String, f64>)]
    pub open_value_by_currency: ByCurrency,
    #[schema(value_type = BTreeMap<String, f64>)]
    pub weighted_value_by_currency: ByCurrency,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ForecastTotals {
    pub open_value: Option<f64>,
    pub weighted_value: Option<f64>,
    pub won_value: Option<f64>,
    #[schema(value_type = BTreeMap<String, f64>)]
    pub open_value_by_currency: ByCurrency,
    #[schema(value_type = BTreeMap<String, f64>)]
    pub weighted_value_by_currency: ByCurrency,
    #[schema(value_type = BTreeMap<String, f64>)]
    pub won_value_by_currency: ByCurrency,
}

/// A contact on a deal with its role (decision_maker, influencer, user, other).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DealContactInfo {
    pub deal_id: i32,
    pub contact_id: i32,
    pub role: String,
    /// Enriched from contact-service; `null` when it could not be reached.
    pub contact_name: Option<String>,
    pub contact_email: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// `{"data": [...]}` of `GET /deals/basic?ids=`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DealBatch {
    pub data: Vec<DealBasicInfo>,
}

/// Payload of `deal.stage_changed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DealStageChangedEvent {
    #[serde(flatten)]
    pub deal: DealBasicInfo,
    pub from_stage: String,
    pub to_stage: String,
}

/// Payload of `deal.closed_won` and `deal.closed_lost`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DealClosedEvent {
    #[serde(flatten)]
    pub deal: DealBasicInfo,
    pub owner_id: Option<i32>,
    pub company_id: Option<i32>,
    pub primary_contact_id: Option<i32>,
    pub actual_close_date: NaiveDate,
    pub close_reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_info_has_the_seed_shape() {
        let d = DealBasicInfo { id: 3, title: "Big one".into(), stage: "proposal".into(), value: 1234.5 };
        assert_eq!(
            serde_json::to_value(&d).unwrap(),
            serde_json::json!({"id": 3, "title": "Big one", "stage": "proposal", "value": 1234.5})
        );
    }

    #[test]
    fn event_payloads_flatten_the_basic_info() {
        let e = DealClosedEvent {
            deal: DealBasicInfo { id: 1, title: "T".into(), stage: "closed_won".into(), value: 10.0 },
            owner_id: Some(2),
            company_id: None,
            primary_contact_id: Some(4),
            actual_close_date: NaiveDate::from_ymd_opt(2026, 1, 31).unwrap(),
            close_reason: None,
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["id"], 1);
        assert_eq!(v["stage"], "closed_won");
        assert_eq!(v["actual_close_date"], "2026-01-31");
        assert_eq!(serde_json::from_value::<DealClosedEvent>(v).unwrap(), e);
    }

    #[test]
    fn stage_kinds_round_trip() {
        for k in StageKind::ALL {
            assert_eq!(StageKind::parse(k.as_str()), Some(k));
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        assert!(StageKind::Won.is_closed() && StageKind::Lost.is_closed() && !StageKind::Open.is_closed());
    }
}
