use chrono::{DateTime, Utc};
use crm_tenant::{InvalidTenantId, TenantId};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use ulid::{Generator, Ulid};

/// Monotonic within the process: events enqueued in one transaction share `created_at`
/// (the transaction's time), so the outbox's `ORDER BY created_at, id` keeps their order only
/// if their ids increase.
static IDS: std::sync::Mutex<Generator> = std::sync::Mutex::new(Generator::new());

fn next_id() -> Ulid {
    let mut ids = IDS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    // Overflow needs 2^80 ids in one millisecond; fall back to a random one.
    ids.generate().unwrap_or_else(|_| Ulid::generate())
}

/// The JSON envelope of every domain event (`API.md`, "Events"). The subject is `type`; `id` is
/// also the `Nats-Msg-Id` header, so a re-published event is dropped by JetStream's
/// de-duplication and recognised by consumers' `processed_events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// ULID, canonical uppercase.
    pub id: String,
    #[serde(rename = "type")]
    pub r#type: String,
    pub tenant_id: String,
    pub timestamp: DateTime<Utc>,
    pub actor: Option<String>,
    pub data: serde_json::Value,
}

impl Envelope {
    /// A new event with a fresh id, stamped now. Fails only if `data` cannot be represented as
    /// JSON (e.g. a map with non-string keys).
    pub fn new(
        event_type: impl Into<String>,
        tenant: &TenantId,
        actor: Option<String>,
        data: impl Serialize,
    ) -> Result<Self, serde_json::Error> {
        Ok(Self {
            id: next_id().to_string(),
            r#type: event_type.into(),
            tenant_id: tenant.to_string(),
            timestamp: Utc::now(),
            actor,
            data: serde_json::to_value(data)?,
        })
    }

    /// The tenant, parsed (the field is a plain string on the wire).
    pub fn tenant(&self) -> Result<TenantId, InvalidTenantId> {
        TenantId::parse(&self.tenant_id)
    }

    /// `data` decoded into the payload type of this event.
    pub fn data_as<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(&self.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_with_the_wire_field_names() {
        let tenant = TenantId::parse("01HZX3V5K8Q9R2S4T6W8Y0A1B2").unwrap();
        let e = Envelope::new("deal.closed_won", &tenant, Some("7".into()), serde_json::json!({"deal_id": 3})).unwrap();
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["type"], "deal.closed_won");
        assert_eq!(v["tenant_id"], "01HZX3V5K8Q9R2S4T6W8Y0A1B2");
        assert_eq!(v["actor"], "7");
        assert_eq!(v["data"]["deal_id"], 3);
        assert!(Ulid::from_string(v["id"].as_str().unwrap()).is_ok());
        assert!(v["timestamp"].as_str().unwrap().parse::<DateTime<Utc>>().is_ok());
        let back: Envelope = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.tenant().unwrap(), tenant);
    }

    #[test]
    fn ids_are_unique_and_data_decodes() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct Payload {
            deal_id: i32,
        }
        let tenant = TenantId::new();
        let a = Envelope::new("deal.created", &tenant, None, Payload { deal_id: 1 }).unwrap();
        let b = Envelope::new("deal.created", &tenant, None, Payload { deal_id: 1 }).unwrap();
        assert!(a.id < b.id, "ids increase within the process");
        assert_eq!(a.data_as::<Payload>().unwrap(), Payload { deal_id: 1 });
        assert!(serde_json::to_value(&a).unwrap()["actor"].is_null());
    }

    #[test]
    fn rejects_envelopes_missing_fields() {
        assert!(serde_json::from_str::<Envelope>(r#"{"id":"x","type":"a.b"}"#).is_err());
    }
}
