//! Input rules and calculations of deal-service: parse, don't validate.

use chrono::{DateTime, NaiveDate, Utc};
use crm_client_deal::{PipelineStageInfo, StageKind};
use crm_web::{ApiError, FieldErrors, codes};
use serde::{Deserialize, Deserializer};

/// An amount of money, exact to 4 decimal places (stored NUMERIC(17,4), at most 13 integer
/// digits), counted in ten-thousandths of the currency's main unit: every ISO 4217 minor
/// unit fits (JPY and KRW have none, USD 2, BHD and KWD 3, CLF 4). Never negative. Whether
/// an amount fits its currency is [`Money::fits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(i64);

impl Money {
    /// Decimal places of the stored amount (the most any ISO 4217 currency has).
    pub const DECIMALS: u16 = 4;
    /// Units per main unit.
    pub const SCALE: i64 = 10_000;
    /// Largest NUMERIC(17,4): 9,999,999,999,999.9999.
    pub const MAX_UNITS: i64 = 99_999_999_999_999_999;

    /// From ten-thousandths.
    pub fn from_units(units: i64) -> Self {
        Self(units)
    }

    /// In ten-thousandths (what crosses to SQL as `$n::int8::numeric / 10000`).
    pub fn units(self) -> i64 {
        self.0
    }

    /// A JSON number >= 0 with at most 4 decimals and less than 10^13, exactly: the number is
    /// read as the shortest decimal that round-trips (what the client wrote: `0.07` is 0.07,
    /// not the nearest double times 10^4).
    pub fn parse(amount: f64) -> Result<Self, &'static str> {
        if !amount.is_finite() || amount < 0.0 {
            return Err("must be a number >= 0");
        }
        // Rust prints finite doubles without an exponent, as the shortest round-trip decimal.
        let mut text = format!("{amount}");
        if text.split_once('.').is_some_and(|(_, frac)| frac.len() > usize::from(Self::DECIMALS)) {
            // Binary floating point noise from a client's arithmetic (0.1 + 0.2 =
            // 0.30000000000000004) is not a fifth decimal: round it away, refuse real ones.
            let rounded = format!("{amount:.4}");
            let noise = (rounded.parse::<f64>().unwrap_or(f64::NAN) - amount).abs();
            if noise.is_nan() || noise > 1e-9 * amount.abs().max(1.0) {
                return Err("must have at most 4 decimal places (and no more than its currency's minor unit)");
            }
            text = rounded;
        }
        let (int, frac) = text.split_once('.').unwrap_or((text.as_str(), ""));
        if int.len() > 13 {
            return Err("must be less than 10^13");
        }
        let int: i64 = int.parse().map_err(|_| "must be a number >= 0")?;
        let frac: i64 = if frac.is_empty() { 0 } else { format!("{frac:0<4}").parse().map_err(|_| "must be a number >= 0")? };
        Ok(Self(int * Self::SCALE + frac))
    }

    /// Whether the amount has no more decimals than `minor_units` (ISO 4217 exponent).
    pub fn fits(self, minor_units: u16) -> bool {
        minor_units >= Self::DECIMALS || self.0 % Self::step(minor_units) == 0
    }

    /// Ten-thousandths per minor unit of a currency with `minor_units` decimals.
    fn step(minor_units: u16) -> i64 {
        10_i64.pow(u32::from(Self::DECIMALS - minor_units.min(Self::DECIMALS)))
    }

    /// The JSON number: the double nearest to the exact decimal.
    pub fn as_f64(self) -> f64 {
        format!("{}.{:04}", self.0 / Self::SCALE, self.0 % Self::SCALE).parse().unwrap_or(f64::NAN)
    }

    /// `self x probability / 100`, rounded half up to the currency's minor unit, as
    /// Postgres' `round(value * probability / 100.0, minor_units)` does for the stored
    /// `weighted_value` the totals sum (they agree to the minor unit).
    pub fn weighted(self, probability: i32, minor_units: u16) -> Self {
        let p = i128::from(probability.clamp(0, 100));
        let step = i128::from(Self::step(minor_units));
        let scaled = i128::from(self.0) * p;
        let rounded = (scaled + 50 * step) / (100 * step) * step;
        Self(i64::try_from(rounded).unwrap_or(i64::MAX))
    }
}

pub const DEFAULT_CURRENCY: &str = "USD";

/// The ISO 4217 minor units (decimal places) of `code`, from the `iso_currency` table:
/// `None` for a code it does not know. Codes without a minor unit (gold, SDR) take the
/// stored precision, 4.
pub fn currency_minor_units(code: &str) -> Option<u16> {
    let currency = iso_currency::Currency::from_code(code)?;
    Some(currency.exponent().unwrap_or(Money::DECIMALS).min(Money::DECIMALS))
}

/// Minor units of a stored (hence known) currency; 2 for anything else.
pub fn minor_units(code: &str) -> u16 {
    currency_minor_units(code).unwrap_or(2)
}

/// ISO 4217 code (the `iso_currency` table), case-insensitive on input, stored uppercase.
pub fn check_currency(errors: &mut FieldErrors, raw: &str) -> String {
    let code = raw.trim().to_ascii_uppercase();
    if !code.bytes().all(|b| b.is_ascii_uppercase()) || currency_minor_units(&code).is_none() {
        errors.add("currency", "must be an ISO 4217 currency code (e.g. USD, EUR, JPY)");
    }
    code
}

/// An amount's fit to its currency: `Err` names the rule (400 on `value`).
pub fn check_amount_fits(errors: &mut FieldErrors, field: &str, value: Option<Money>, currency: &str) {
    let Some(value) = value else { return };
    let minor = minor_units(currency);
    if !value.fits(minor) {
        let rule = match minor {
            0 => format!("must be a whole number: {currency} has no minor unit"),
            1 => format!("must have at most 1 decimal place ({currency})"),
            n => format!("must have at most {n} decimal places ({currency})"),
        };
        errors.add(field, rule);
    }
}

/// The title: required, one line (no control characters), at most 255 characters.
pub fn check_title(errors: &mut FieldErrors, raw: &str) -> String {
    crm_web::validate::text(errors, "title", raw, 255)
}

/// An optional single-line value (`deal_source`, `close_reason`, ...): trimmed, empty means
/// none, at most `max` characters, no control characters (CR/LF included).
pub fn check_line(errors: &mut FieldErrors, field: &str, raw: Option<&str>, max: usize) -> Option<String> {
    crm_web::validate::line(errors, field, raw, max)
}

/// Optional multi-line text (`description`): trimmed, empty means none, at most `max`
/// characters; line breaks and tabs are kept, other control characters refused.
pub fn check_multiline(errors: &mut FieldErrors, field: &str, raw: Option<&str>, max: usize) -> Option<String> {
    let text = raw.map(str::trim).filter(|s| !s.is_empty())?;
    crm_web::validate::multiline(errors, field, text, max);
    Some(text.to_owned())
}

pub fn check_money(errors: &mut FieldErrors, field: &str, raw: Option<f64>) -> Option<Money> {
    raw.and_then(|v| Money::parse(v).map_err(|m| errors.add(field, m)).ok())
}

/// A whole number 0-100 (JSON numbers like `25.0` are accepted).
pub fn check_probability(errors: &mut FieldErrors, raw: Option<f64>) -> Option<i32> {
    let p = raw?;
    if p.is_finite() && (0.0..=100.0).contains(&p) && p.fract() == 0.0 {
        Some(p as i32)
    } else {
        errors.add("probability", "must be a whole number between 0 and 100");
        None
    }
}

pub fn check_id(errors: &mut FieldErrors, field: &str, raw: Option<i64>) -> Option<i32> {
    let id = raw?;
    match i32::try_from(id) {
        Ok(id) if id > 0 => Some(id),
        _ => {
            errors.add(field, "must be a positive id");
            None
        }
    }
}

/// `YYYY-MM-DD`.
pub fn check_date(errors: &mut FieldErrors, field: &str, raw: Option<&str>) -> Option<NaiveDate> {
    let raw = raw?;
    match NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d") {
        Ok(d) if (1900..=9999).contains(&chrono::Datelike::year(&d)) => Some(d),
        _ => {
            errors.add(field, "must be a date YYYY-MM-DD");
            None
        }
    }
}

pub fn check_custom_fields(errors: &mut FieldErrors, raw: Option<serde_json::Value>) -> serde_json::Map<String, serde_json::Value> {
    match raw {
        None | Some(serde_json::Value::Null) => serde_json::Map::new(),
        Some(serde_json::Value::Object(map)) => {
            if map.keys().any(|k| k.trim().is_empty() || k.chars().count() > 100 || !crm_web::validate::is_single_line(k)) {
                errors.add("custom_fields", "keys must be single lines of 1-100 characters");
            }
            if serde_json::to_vec(&map).map(|b| b.len()).unwrap_or(usize::MAX) > 16 * 1024 {
                errors.add("custom_fields", "must be at most 16 KiB of JSON");
            }
            map
        }
        Some(_) => {
            errors.add("custom_fields", "must be a JSON object");
            serde_json::Map::new()
        }
    }
}

/// Roles of a contact on a deal.
pub const CONTACT_ROLES: &[&str] = &["decision_maker", "influencer", "user", "other"];

pub fn check_contact_role(errors: &mut FieldErrors, raw: Option<&str>) -> String {
    let role = raw.map(str::trim).filter(|s| !s.is_empty()).unwrap_or("other").to_ascii_lowercase();
    if !CONTACT_ROLES.contains(&role.as_str()) {
        errors.add("role", "must be one of: decision_maker, influencer, user, other");
    }
    role
}

/// Stage keys: `[a-z][a-z0-9_]*`, at most 50 characters (the table's CHECK).
pub fn check_stage_key(errors: &mut FieldErrors, field: &str, raw: &str) -> String {
    let key = raw.trim().to_owned();
    let ok = (1..=50).contains(&key.len())
        && key.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !ok {
        errors.add(field, "must be 1-50 characters of a-z, 0-9 and _, starting with a letter");
    }
    key
}

pub fn check_stage_kind(errors: &mut FieldErrors, raw: &str) -> StageKind {
    StageKind::parse(raw.trim()).unwrap_or_else(|| {
        errors.add("kind", "must be one of: open, won, lost");
        StageKind::Open
    })
}

/// The configured stages of a tenant, in pipeline order.
pub struct Stages(pub Vec<PipelineStageInfo>);

impl Stages {
    pub fn get(&self, key: &str) -> Option<&PipelineStageInfo> {
        self.0.iter().find(|s| s.key == key)
    }

    /// An existing stage, or 422 `UNKNOWN_STAGE`.
    pub fn require(&self, key: &str) -> Result<&PipelineStageInfo, ApiError> {
        self.get(key).ok_or_else(|| {
            ApiError::unprocessable(codes::UNKNOWN_STAGE, format!("stage {key:?} is not configured"))
                .with_details(serde_json::json!({ "fields": { "stage": "unknown stage" }, "stages": self.keys() }))
        })
    }

    /// Where new deals start: the first open stage.
    pub fn initial(&self) -> Result<&PipelineStageInfo, ApiError> {
        self.0
            .iter()
            .find(|s| s.kind == StageKind::Open)
            .ok_or_else(|| ApiError::unprocessable(codes::UNKNOWN_STAGE, "the pipeline has no open stage"))
    }

    pub fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|s| s.key.as_str()).collect()
    }
}

/// The stage-related fields a write asks for.
#[derive(Debug, Default)]
pub struct StageInput {
    pub probability: Option<i32>,
    /// `Some(None)`: explicitly cleared.
    pub actual_close_date: Option<Option<NaiveDate>>,
    pub close_reason: Option<Option<String>>,
    pub reopen: bool,
}

/// The stage-related fields of a deal before a write (`None` for a new deal).
pub struct CurrentStage<'a> {
    pub stage: &'a PipelineStageInfo,
    pub probability: i32,
    pub actual_close_date: Option<NaiveDate>,
    pub close_reason: Option<String>,
}

/// Stage-related fields after a write.
#[derive(Debug, PartialEq, Eq)]
pub struct StageOutcome {
    pub probability: i32,
    pub actual_close_date: Option<NaiveDate>,
    pub close_reason: Option<String>,
    /// The deal changes stage (always for a new deal).
    pub changed: bool,
    /// The deal enters a won/lost stage with this write.
    pub closes: Option<StageKind>,
}

/// The stage rules of API.md:
/// * a closed (won/lost) deal moves to another stage only with `reopen: true`;
/// * entering a won/lost stage sets `actual_close_date` (today unless given);
/// * `close_reason` belongs to lost deals, `actual_close_date` to closed deals; reopening
///   clears both;
/// * `probability` defaults to the new stage's when the stage changes and none is given.
pub fn apply_stage_rules(
    current: Option<CurrentStage<'_>>,
    target: &PipelineStageInfo,
    input: StageInput,
    today: NaiveDate,
) -> Result<StageOutcome, ApiError> {
    let changed = current.as_ref().is_none_or(|c| c.stage.key != target.key);
    if let Some(c) = &current
        && changed
        && c.stage.kind.is_closed()
        && !input.reopen
    {
        return Err(ApiError::unprocessable(
            codes::DEAL_CLOSED,
            format!("the deal is {} ({}): send \"reopen\": true to move it", c.stage.kind.as_str(), c.stage.key),
        ));
    }
    let mut errors = FieldErrors::new();
    let probability = match input.probability {
        Some(p) => p,
        None if changed => target.probability,
        None => current.as_ref().map_or(target.probability, |c| c.probability),
    };
    let kept = |c: &CurrentStage<'_>| !changed && c.stage.kind.is_closed();
    let actual_close_date = match (target.kind, input.actual_close_date) {
        (StageKind::Open, Some(Some(_))) => {
            errors.add("actual_close_date", "only a won or lost deal has a close date");
            None
        }
        (StageKind::Open, _) => None,
        (_, Some(Some(date))) => Some(date),
        (_, Some(None)) => {
            errors.add("actual_close_date", "a won or lost deal has a close date");
            None
        }
        (_, None) => current.as_ref().filter(|c| kept(c)).and_then(|c| c.actual_close_date).or(Some(today)),
    };
    let close_reason = match (target.kind, input.close_reason) {
        (StageKind::Lost, Some(reason)) => reason,
        (StageKind::Lost, None) => current.as_ref().filter(|c| kept(c)).and_then(|c| c.close_reason.clone()),
        (_, Some(Some(_))) => {
            errors.add("close_reason", "only a lost deal has a close reason");
            None
        }
        (_, _) => None,
    };
    errors.into_result()?;
    let closes = (changed && target.kind.is_closed()).then_some(target.kind);
    Ok(StageOutcome { probability, actual_close_date, close_reason, changed, closes })
}

/// Whole days since `created_at`.
pub fn deal_age_days(created_at: DateTime<Utc>, now: DateTime<Utc>) -> i32 {
    i32::try_from((now - created_at).num_days().max(0)).unwrap_or(i32::MAX)
}

/// Days until the expected close of an open deal (negative when overdue).
pub fn days_until_close(expected: Option<NaiveDate>, actual: Option<NaiveDate>, today: NaiveDate) -> Option<i32> {
    match (expected, actual) {
        (Some(expected), None) => i32::try_from((expected - today).num_days()).ok(),
        _ => None,
    }
}

/// For PATCH bodies: tells "absent" (`None`) from "null" (`Some(None)`).
pub fn double_option<'de, T, D>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(de).map(Some)
}

/// `LIKE` pattern matching `needle` anywhere, with `%`, `_` and `\` taken literally.
pub fn like_pattern(needle: &str) -> String {
    let mut pattern = String::with_capacity(needle.len() + 2);
    pattern.push('%');
    for c in needle.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(key: &str, kind: StageKind, probability: i32) -> PipelineStageInfo {
        PipelineStageInfo { key: key.into(), name: key.into(), position: 0, probability, kind }
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, 15).unwrap()
    }

    #[test]
    fn money_is_exact_to_the_minor_unit() {
        assert_eq!(Money::parse(1234.56).unwrap().units(), 12_345_600);
        assert_eq!(Money::parse(0.07).unwrap().units(), 700);
        assert_eq!(Money::parse(0.0).unwrap().units(), 0);
        assert_eq!(Money::parse(1.234).unwrap().units(), 12_340);
        assert_eq!(Money::parse(9_999_999_999_999.99).unwrap().units(), 99_999_999_999_999_900);
        assert_eq!(Money::parse(9_999_999_999_999.99).unwrap().as_f64(), 9_999_999_999_999.99);
        assert_eq!(Money::from_units(12_345_000).as_f64().to_string(), "1234.5");
        assert_eq!(serde_json::to_string(&Money::from_units(199_900).as_f64()).unwrap(), "19.99");
        assert_eq!(Money::parse(0.1 + 0.2).unwrap().units(), 3_000, "float noise is not a decimal");
        assert_eq!(Money::parse(123.45 + 0.01).unwrap().as_f64(), 123.46);
        for bad in [-1.0, 0.00001, 19.99999, 1e13, f64::NAN, f64::INFINITY] {
            assert!(Money::parse(bad).is_err(), "{bad}");
        }
        // Weighted values round half up to the currency's minor unit.
        assert_eq!(Money::parse(100.01).unwrap().weighted(50, 2).as_f64(), 50.01, "half a cent rounds up");
        assert_eq!(Money::parse(3.33).unwrap().weighted(33, 2).as_f64(), 1.10);
        assert_eq!(Money::parse(1.0).unwrap().weighted(0, 2).as_f64(), 0.0);
        assert_eq!(Money::parse(105.0).unwrap().weighted(10, 0).as_f64(), 11.0, "JPY: 10.5 yen rounds to 11");
        assert_eq!(Money::parse(1.005).unwrap().weighted(50, 3).as_f64(), 0.503, "BHD: 3 decimals");
        assert_eq!(Money::parse(9_999_999_999_999.99).unwrap().weighted(100, 2).as_f64(), 9_999_999_999_999.99, "no overflow");
    }

    #[test]
    fn amounts_fit_their_currency_minor_units() {
        let fits = |amount: f64, currency: &str| {
            let mut e = FieldErrors::new();
            check_amount_fits(&mut e, "value", Some(Money::parse(amount).unwrap()), currency);
            e.is_empty()
        };
        assert_eq!(currency_minor_units("JPY"), Some(0));
        assert_eq!(currency_minor_units("KRW"), Some(0));
        assert_eq!(currency_minor_units("USD"), Some(2));
        assert_eq!(currency_minor_units("BHD"), Some(3));
        assert_eq!(currency_minor_units("KWD"), Some(3));
        assert_eq!(currency_minor_units("CLF"), Some(4));
        assert_eq!(currency_minor_units("XYZ"), None);
        assert!(fits(100.0, "JPY") && !fits(100.5, "JPY") && !fits(0.01, "KRW"));
        assert!(fits(12.3, "USD") && fits(12.34, "EUR") && !fits(12.345, "USD"));
        assert!(fits(1.234, "BHD") && fits(1.234, "KWD") && !fits(1.2345, "KWD"));
        assert!(fits(1.2345, "CLF"));
    }

    #[test]
    fn currencies_and_keys() {
        let mut e = FieldErrors::new();
        assert_eq!(check_currency(&mut e, " eur "), "EUR");
        assert!(e.is_empty());
        assert_eq!(check_currency(&mut e, "jpy"), "JPY");
        assert!(e.is_empty());
        for bad in ["US", "USDX", "ABC", "", "12€", "U\nS", "ÜSD"] {
            let mut e = FieldErrors::new();
            check_currency(&mut e, bad);
            assert!(!e.is_empty(), "{bad}");
        }
        for ok in ["lead", "closed_won", "stage2"] {
            let mut e = FieldErrors::new();
            check_stage_key(&mut e, "key", ok);
            assert!(e.is_empty(), "{ok}");
        }
        for bad in ["", "Lead", "2nd", "a-b", "a b", &"a".repeat(51), "x'; drop table deals; --"] {
            let mut e = FieldErrors::new();
            check_stage_key(&mut e, "key", bad);
            assert!(!e.is_empty(), "{bad}");
        }
    }

    #[test]
    fn probabilities_and_ids() {
        let mut e = FieldErrors::new();
        assert_eq!(check_probability(&mut e, Some(25.0)), Some(25));
        assert_eq!(check_id(&mut e, "owner_id", Some(7)), Some(7));
        assert!(e.is_empty());
        for bad in [-1.0, 101.0, 33.5, f64::NAN] {
            let mut e = FieldErrors::new();
            check_probability(&mut e, Some(bad));
            assert!(!e.is_empty(), "{bad}");
        }
        for bad in [0, -3, i64::from(i32::MAX) + 1] {
            let mut e = FieldErrors::new();
            check_id(&mut e, "company_id", Some(bad));
            assert!(!e.is_empty(), "{bad}");
        }
    }

    #[test]
    fn new_deals_take_the_stage_probability_and_close_when_created_closed() {
        let lead = stage("lead", StageKind::Open, 10);
        let out = apply_stage_rules(None, &lead, StageInput::default(), today()).unwrap();
        assert_eq!(out, StageOutcome { probability: 10, actual_close_date: None, close_reason: None, changed: true, closes: None });
        let won = stage("closed_won", StageKind::Won, 100);
        let out = apply_stage_rules(None, &won, StageInput::default(), today()).unwrap();
        assert_eq!(out.actual_close_date, Some(today()));
        assert_eq!(out.closes, Some(StageKind::Won));
    }

    #[test]
    fn moving_sets_defaults_and_closing_sets_the_date() {
        let (lead, proposal) = (stage("lead", StageKind::Open, 10), stage("proposal", StageKind::Open, 50));
        let lost = stage("closed_lost", StageKind::Lost, 0);
        let current = || CurrentStage { stage: &lead, probability: 30, actual_close_date: None, close_reason: None };
        let out = apply_stage_rules(Some(current()), &proposal, StageInput::default(), today()).unwrap();
        assert_eq!((out.probability, out.changed, out.closes), (50, true, None));
        let out = apply_stage_rules(Some(current()), &lead, StageInput::default(), today()).unwrap();
        assert_eq!((out.probability, out.changed), (30, false), "same stage keeps the probability");
        let input = StageInput { close_reason: Some(Some("price".into())), ..Default::default() };
        let out = apply_stage_rules(Some(current()), &lost, input, today()).unwrap();
        assert_eq!(out.close_reason.as_deref(), Some("price"));
        assert_eq!(out.actual_close_date, Some(today()));
        assert_eq!(out.closes, Some(StageKind::Lost));
        let given = NaiveDate::from_ymd_opt(2026, 1, 2).unwrap();
        let input = StageInput { actual_close_date: Some(Some(given)), ..Default::default() };
        assert_eq!(apply_stage_rules(Some(current()), &lost, input, today()).unwrap().actual_close_date, Some(given));
    }

    #[test]
    fn closed_deals_move_only_when_reopened() {
        let (won, lead) = (stage("closed_won", StageKind::Won, 100), stage("lead", StageKind::Open, 10));
        let date = NaiveDate::from_ymd_opt(2026, 1, 2);
        let current = || CurrentStage { stage: &won, probability: 100, actual_close_date: date, close_reason: None };
        let err = apply_stage_rules(Some(current()), &lead, StageInput::default(), today()).unwrap_err();
        assert_eq!(err.status(), axum::http::StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(err.code(), codes::DEAL_CLOSED);
        let out = apply_stage_rules(Some(current()), &lead, StageInput { reopen: true, ..Default::default() }, today()).unwrap();
        assert_eq!((out.actual_close_date, out.probability, out.changed), (None, 10, true));
        // Staying in the closed stage keeps the close date and needs no reopen.
        let out = apply_stage_rules(Some(current()), &won, StageInput::default(), today()).unwrap();
        assert_eq!((out.actual_close_date, out.changed, out.closes), (date, false, None));
    }

    #[test]
    fn close_fields_belong_to_closed_deals() {
        let (lead, won) = (stage("lead", StageKind::Open, 10), stage("closed_won", StageKind::Won, 100));
        let input = StageInput { close_reason: Some(Some("x".into())), ..Default::default() };
        assert_eq!(apply_stage_rules(None, &won, input, today()).unwrap_err().code(), codes::VALIDATION_FAILED);
        let input = StageInput { actual_close_date: Some(Some(today())), ..Default::default() };
        assert_eq!(apply_stage_rules(None, &lead, input, today()).unwrap_err().code(), codes::VALIDATION_FAILED);
    }

    #[test]
    fn calculated_fields() {
        let now = Utc::now();
        assert_eq!(deal_age_days(now - chrono::Duration::hours(49), now), 2);
        assert_eq!(deal_age_days(now, now), 0);
        let t = today();
        assert_eq!(days_until_close(Some(t + chrono::Duration::days(10)), None, t), Some(10));
        assert_eq!(days_until_close(Some(t - chrono::Duration::days(3)), None, t), Some(-3));
        assert_eq!(days_until_close(Some(t), Some(t), t), None, "closed");
        assert_eq!(days_until_close(None, None, t), None);
    }

    #[test]
    fn like_patterns_are_literal() {
        assert_eq!(like_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }
}
