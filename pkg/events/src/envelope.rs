use chrono::{DateTime, Utc};
use crm_tenant::{InvalidTenantId, TenantId};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use ulid::{Generator, Ulid};

/// Monotonic within the process: events enqueued in one transaction share `created_at`
/// (the transaction's time), so the outbox's `ORDER BY created_at, id` keeps their order only
/// if their ids increase.
static IDS: std::sync::Mutex<Generator> = std::sync::Mutex::new(Generator::new());

tokio::task_local! {
    /// The id of the HTTP request whose work is running on this task (set by
    /// `crm_web::request_id::scope`, which every request passes through).
    static REQUEST_ID: String;
}

/// Runs `fut` with `id` as the request id stamped on the events it builds
/// ([`Envelope::request_id`]). `crm_web` calls this for every request; background work may
/// call it to attribute its events to the request that caused them.
pub async fn with_request_id<F: std::future::Future>(id: String, fut: F) -> F::Output {
    REQUEST_ID.scope(id, fut).await
}

/// The request id events built on this task are stamped with, if any.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

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
    /// The `X-Request-ID` of the HTTP request that caused the event (absent for events of
    /// background jobs and consumers, and in events from before it existed): the audit log
    /// links each change to the request that made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
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
            request_id: current_request_id(),
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

/// The `changes` object of `*.updated` payloads: `{field: {"old": .., "new": ..}}` for every
/// top-level field whose JSON value differs between `old` and `new` (both serialize to
/// objects; a field present on one side only has `null` on the other), leaving out `skip`
/// (bookkeeping such as `updated_at`). The producer computes it in the transaction that
/// writes the change, from the row it locked, so it is exact whatever the order consumers
/// see events in (a consumer diffing snapshots would diff against the wrong state when two
/// updates arrive swapped or one is redelivered late).
pub fn changes(old: &impl Serialize, new: &impl Serialize, skip: &[&str]) -> Result<serde_json::Value, serde_json::Error> {
    let (old, new) = (serde_json::to_value(old)?, serde_json::to_value(new)?);
    let empty = serde_json::Map::new();
    let (old, new) = (old.as_object().unwrap_or(&empty), new.as_object().unwrap_or(&empty));
    let mut out = serde_json::Map::new();
    for key in new.keys().chain(old.keys().filter(|k| !new.contains_key(*k))) {
        if skip.contains(&key.as_str()) {
            continue;
        }
        let (before, after) = (old.get(key).unwrap_or(&serde_json::Value::Null), new.get(key).unwrap_or(&serde_json::Value::Null));
        if before != after {
            out.insert(key.clone(), serde_json::json!({"old": before, "new": after}));
        }
    }
    Ok(serde_json::Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_lists_differing_fields_only() {
        let old = serde_json::json!({"name": "A", "phone": null, "updated_at": 1, "gone": 3});
        let new = serde_json::json!({"name": "B", "phone": null, "updated_at": 2, "tags": ["x"]});
        let diff = changes(&old, &new, &["updated_at"]).unwrap();
        assert_eq!(
            diff,
            serde_json::json!({"name": {"old": "A", "new": "B"}, "tags": {"old": null, "new": ["x"]}, "gone": {"old": 3, "new": null}})
        );
    }

    #[tokio::test]
    async fn events_carry_the_current_request_id() {
        let tenant = TenantId::new();
        let outside = Envelope::new("deal.created", &tenant, None, 1).unwrap();
        assert_eq!(outside.request_id, None);
        assert!(serde_json::to_value(&outside).unwrap().get("request_id").is_none(), "absent, not null");
        let inside = with_request_id("req-1".into(), async { Envelope::new("deal.created", &tenant, None, 1).unwrap() }).await;
        assert_eq!(inside.request_id.as_deref(), Some("req-1"));
        let back: Envelope = serde_json::from_value(serde_json::to_value(&inside).unwrap()).unwrap();
        assert_eq!(back.request_id.as_deref(), Some("req-1"));
    }

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
