use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Free-form custom fields: always a JSON object.
pub type CustomFields = serde_json::Map<String, serde_json::Value>;

/// What other services show of a company (deal and communication enrichment).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CompanyBasicInfo {
    pub id: i32,
    pub name: String,
}

/// Postal address of a company or contact; absent parts are empty strings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct Address {
    pub street: String,
    pub city: String,
    pub state: String,
    pub country: String,
    pub postal_code: String,
}

/// A company as the API shows it (seed 004 CompanyDetails, plus `tags` and `updated_at`).
/// Text fields that were never set are empty strings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CompanyDetails {
    pub id: i32,
    pub name: String,
    pub domain: String,
    pub industry: String,
    pub size_category: String,
    pub parent_company_id: Option<i32>,
    pub address: Address,
    pub phone: String,
    pub website: String,
    #[schema(value_type = Object)]
    pub custom_fields: CustomFields,
    /// Lowercase, deduplicated, sorted.
    #[serde(default)]
    pub tags: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub created_by: i32,
    pub updated_at: DateTime<Utc>,
}

impl CompanyDetails {
    pub fn basic(&self) -> CompanyBasicInfo {
        CompanyBasicInfo { id: self.id, name: self.name.clone() }
    }
}

/// Marketing consent of a contact (GDPR art. 7 / ePrivacy: consent must be recorded, and
/// withdrawable as easily as it was given). `unknown` means nothing was ever recorded; whether
/// marketing may then be sent is the tenant's `marketing_consent_policy` (`opt_in`: no,
/// `opt_out`: yes). Transactional email is never gated by it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MarketingConsent {
    Granted,
    Withdrawn,
    #[default]
    Unknown,
}

impl MarketingConsent {
    pub const ALL: [MarketingConsent; 3] = [Self::Granted, Self::Withdrawn, Self::Unknown];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Granted => "granted",
            Self::Withdrawn => "withdrawn",
            Self::Unknown => "unknown",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// Whether a marketing message may go to a contact with this consent under the tenant's
    /// policy: `opt_in` needs `granted`; `opt_out` sends unless `withdrawn`.
    pub fn allows_marketing(&self, opt_in: bool) -> bool {
        match self {
            Self::Granted => true,
            Self::Withdrawn => false,
            Self::Unknown => !opt_in,
        }
    }
}

impl std::fmt::Display for MarketingConsent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What other services show of a contact. `email` is empty when the contact has none.
/// `marketing_consent` is the contact's current consent (`unknown` from a server that
/// predates it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ContactBasicInfo {
    pub id: i32,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    #[serde(default)]
    pub marketing_consent: MarketingConsent,
}

impl ContactBasicInfo {
    pub fn full_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name).trim().to_owned()
    }
}

/// Lifecycle of a contact (API.md). Moving to `customer` is the conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ContactStatus {
    Lead,
    Prospect,
    Customer,
    Churned,
    Archived,
}

impl ContactStatus {
    pub const ALL: [ContactStatus; 5] = [Self::Lead, Self::Prospect, Self::Customer, Self::Churned, Self::Archived];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Lead => "lead",
            Self::Prospect => "prospect",
            Self::Customer => "customer",
            Self::Churned => "churned",
            Self::Archived => "archived",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

impl std::fmt::Display for ContactStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A contact as the API shows it (seed 004 ContactDetails, plus `tags`, `created_by` and
/// `updated_at`). `company_name` and `owner_name` are enrichments:
/// `null` when there is no company/owner, and `owner_name` also when auth-service could not
/// be reached (the response degrades instead of failing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ContactDetails {
    pub id: i32,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub phone: String,
    pub job_title: String,
    pub company_id: Option<i32>,
    pub company_name: Option<String>,
    pub owner_id: Option<i32>,
    pub owner_name: Option<String>,
    pub status: ContactStatus,
    pub source: String,
    pub address: Address,
    #[schema(value_type = Object)]
    pub custom_fields: CustomFields,
    pub notes: String,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Current marketing consent (set through `PUT /contacts/{id}/consent`, withdrawn by an
    /// unsubscribe); response-only.
    #[serde(default)]
    pub marketing_consent: MarketingConsent,
    /// Latest completed activity or sent email with this contact (`null`: never); response-only.
    #[serde(default)]
    pub last_contacted_at: Option<DateTime<Utc>>,
    /// Lead score: the points of the tenant's scoring rules, kept current from events
    /// (`GET /contacts/{id}/score` explains it); response-only. Issue 16.
    #[serde(default)]
    pub score: i32,
    pub created_at: DateTime<Utc>,
    pub created_by: i32,
    pub updated_at: DateTime<Utc>,
}

impl ContactDetails {
    pub fn basic(&self) -> ContactBasicInfo {
        ContactBasicInfo {
            id: self.id,
            first_name: self.first_name.clone(),
            last_name: self.last_name.clone(),
            email: self.email.clone(),
            marketing_consent: self.marketing_consent,
        }
    }
}

/// Payload of `contact.converted` ([`crate::subjects::CONTACT_CONVERTED`]): the contact
/// (as [`ContactBasicInfo`], flattened), the status it left and the reason given (`"import"`
/// for a CSV import).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ContactConverted {
    #[serde(flatten)]
    pub contact: ContactBasicInfo,
    pub from_status: String,
    pub reason: Option<String>,
}

/// One change of a contact's marketing consent (`history` of [`ConsentRecord`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConsentChange {
    /// `granted` or `withdrawn`.
    pub status: MarketingConsent,
    /// The status before this change.
    pub previous: MarketingConsent,
    /// Where it was given or withdrawn (`web_form`, `import`, `unsubscribe`, ...).
    pub source: String,
    /// The user who recorded it; `null` when the platform did (an unsubscribe link).
    pub changed_by: Option<i32>,
    pub changed_at: DateTime<Utc>,
}

/// A contact's marketing-consent record (`GET/PUT /contacts/{id}/consent`): the current
/// status, when and where it was last set (`null` while `unknown`), and every change, newest
/// first (at most the latest 100).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConsentRecord {
    pub contact_id: i32,
    pub status: MarketingConsent,
    pub updated_at: Option<DateTime<Utc>>,
    pub source: Option<String>,
    pub history: Vec<ConsentChange>,
}

/// Payload of `contact.consent_changed` ([`crate::subjects::CONTACT_CONSENT_CHANGED`]):
/// published when the status changes (PUT, or an unsubscribe withdrawing it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ContactConsentChanged {
    pub contact_id: i32,
    pub status: MarketingConsent,
    pub previous: MarketingConsent,
    pub source: String,
    /// When the change was recorded.
    pub at: DateTime<Utc>,
}

/// Payload of `contact.became_inactive` ([`crate::subjects::CONTACT_BECAME_INACTIVE`]): a
/// lead or prospect with no contact for the tenant's `inactive_lead_days`, published once
/// per inactivity period (a new contact starts a new period).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ContactBecameInactive {
    pub contact_id: i32,
    pub owner_id: Option<i32>,
    pub first_name: String,
    pub last_name: String,
    /// Empty when the contact has none.
    pub email: String,
    /// `lead` or `prospect`.
    pub status: ContactStatus,
    /// `null`: never contacted (inactivity counts from creation).
    pub last_contacted_at: Option<DateTime<Utc>>,
    /// Whole days (24 h) since the last contact, or since creation.
    pub inactive_days: i64,
}

/// Payload of `contact.merged` and `company.merged` ([`crate::subjects::CONTACT_MERGED`],
/// [`crate::subjects::COMPANY_MERGED`], issue 16): the records `merged_ids` were merged into
/// `survivor_id` (they are in the trash with `merged_into` = the survivor). Consumers move
/// every reference to a merged id over to the survivor. `id` repeats `survivor_id` so that
/// the audit log files the merge under the survivor; `merged_by` is the user (auth-service
/// id, like every actor on this platform) who merged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RecordsMerged {
    pub id: i32,
    pub survivor_id: i32,
    /// Never empty, never contains the survivor, sorted.
    pub merged_ids: Vec<i32>,
    pub merged_by: i32,
}

/// Payload of `contact.trashed` ([`crate::subjects::CONTACT_TRASHED`], issue 16): the
/// contact's basic info (flattened: `id`, names, email, consent), who moved it to the trash
/// (auth-service user id; `null` when the platform did) and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ContactTrashed {
    #[serde(flatten)]
    pub contact: ContactBasicInfo,
    pub deleted_by: Option<i32>,
    pub deleted_at: DateTime<Utc>,
}

/// Payload of `company.trashed` ([`crate::subjects::COMPANY_TRASHED`], issue 16): like
/// [`ContactTrashed`], for a company (`id`, `name`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CompanyTrashed {
    #[serde(flatten)]
    pub company: CompanyBasicInfo,
    pub deleted_by: Option<i32>,
    pub deleted_at: DateTime<Utc>,
}

/// `{"data": [...]}` of `GET /companies/basic?ids=`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CompanyBatch {
    pub data: Vec<CompanyBasicInfo>,
}

/// `{"data": [...]}` of `GET /contacts/basic?ids=`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ContactBatch {
    pub data: Vec<ContactBasicInfo>,
}

/// `GET /contacts/basic?ids=..&company_ids=..`: contacts and companies in one answer, so a
/// list enriching both names (a page of deals) costs contact-service one request. A server
/// that does not know `company_ids` omits `companies` (the client then asks separately).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ContactLookup {
    pub data: Vec<ContactBasicInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub companies: Option<Vec<CompanyBasicInfo>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_infos_have_the_seed_shape() {
        let company = serde_json::to_value(CompanyBasicInfo { id: 1, name: "Acme".into() }).unwrap();
        assert_eq!(company, serde_json::json!({"id": 1, "name": "Acme"}));
        let contact = ContactBasicInfo {
            id: 2,
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
            email: "ada@x.io".into(),
            marketing_consent: MarketingConsent::Granted,
        };
        assert_eq!(
            serde_json::to_value(&contact).unwrap(),
            serde_json::json!({"id": 2, "first_name": "Ada", "last_name": "Lovelace", "email": "ada@x.io", "marketing_consent": "granted"})
        );
        // An answer from before the field existed still reads (as unknown).
        let old: ContactBasicInfo = serde_json::from_value(serde_json::json!({"id": 2, "first_name": "Ada", "last_name": "L", "email": ""})).unwrap();
        assert_eq!(old.marketing_consent, MarketingConsent::Unknown);
        assert_eq!(contact.full_name(), "Ada Lovelace");
    }

    #[test]
    fn statuses_round_trip() {
        for s in ContactStatus::ALL {
            assert_eq!(ContactStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(ContactStatus::parse("Lead"), None);
    }

    #[test]
    fn consent_round_trips_and_gates_marketing() {
        for c in MarketingConsent::ALL {
            assert_eq!(MarketingConsent::parse(c.as_str()), Some(c));
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
        assert!(MarketingConsent::Granted.allows_marketing(true));
        assert!(!MarketingConsent::Unknown.allows_marketing(true));
        assert!(MarketingConsent::Unknown.allows_marketing(false));
        assert!(!MarketingConsent::Withdrawn.allows_marketing(false));
    }
}
