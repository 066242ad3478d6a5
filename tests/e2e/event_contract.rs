//! `docs/asyncapi.yaml` against what the services actually publish: the walkthrough runs on
//! a nats-server of this test's own, then every event in its `CRM` stream must be a documented
//! message whose `data` has every required property with the documented JSON type.

use std::collections::BTreeSet;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::DeliverPolicy};
use crm_events::Envelope;
use futures::StreamExt;
use serde_json::Value;

use crate::harness::*;

fn contract() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/asyncapi.yaml");
    let text = std::fs::read_to_string(path).expect("docs/asyncapi.yaml");
    serde_yaml_ng::from_str(&text).expect("docs/asyncapi.yaml is YAML")
}

/// `#/components/schemas/X` -> the schema.
fn resolve<'a>(doc: &'a Value, reference: &str) -> &'a Value {
    let name = reference.rsplit('/').next().unwrap_or_default();
    doc["components"]["schemas"].get(name).unwrap_or_else(|| panic!("no schema {reference}"))
}

/// The `data` schema of the message documented for `event_type`.
fn data_schema<'a>(doc: &'a Value, event_type: &str) -> Option<&'a Value> {
    let messages = doc["components"]["messages"].as_object()?;
    let message = messages.values().find(|m| m["name"] == event_type)?;
    let parts = message["payload"]["allOf"].as_array()?;
    let data_ref = parts.iter().find_map(|p| p["properties"]["data"]["$ref"].as_str())?;
    Some(resolve(doc, data_ref))
}

fn has_type(value: &Value, allowed: &Value) -> bool {
    let names: Vec<&str> = match allowed {
        Value::String(s) => vec![s.as_str()],
        Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
        _ => return true,
    };
    names.iter().any(|name| match *name {
        "null" => value.is_null(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        _ => false,
    })
}

/// Every violation of `event` against the contract (empty: conforms).
fn violations(doc: &Value, event: &Envelope) -> Vec<String> {
    let Some(schema) = data_schema(doc, &event.r#type) else {
        return vec![format!("{} is not documented", event.r#type)];
    };
    let mut problems = Vec::new();
    for required in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        match event.data.get(required) {
            None => problems.push(format!("{}: data.{required} missing", event.r#type)),
            Some(value) => {
                if !has_type(value, &schema["properties"][required]["type"]) {
                    problems.push(format!("{}: data.{required} = {value} has the wrong type", event.r#type));
                }
            }
        }
    }
    problems
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_events_match_the_asyncapi_document() {
    let doc = contract();
    let (crm, _db, nats) = Crm::start().await;
    let api = crm.api();
    let admin = signup_admin(&api, "Contract Inc", "contract").await;
    close_a_deal(&api, &admin, "Contract").await;

    let client = async_nats::connect(nats.url()).await.expect("the test's nats-server");
    let stream = jetstream::new(client).get_stream(crm_events::STREAM_NAME).await.expect("the CRM stream");
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig { deliver_policy: DeliverPolicy::All, ..Default::default() })
        .await
        .expect("ordered consumer");
    let mut messages = consumer.messages().await.expect("messages");
    let expected = [
        "tenant.created",
        "tenant.user_invited",
        "tenant.user_joined",
        "user.created",
        "user.login",
        "company.created",
        "contact.created",
        "deal.created",
        "deal.closed_won",
        "activity.logged",
    ];
    let mut seen = BTreeSet::new();
    let mut problems = Vec::new();
    // Until every expected type arrived (the activity is relayed last), then until quiet.
    loop {
        let wait = if expected.iter().all(|t| seen.contains(*t)) { Duration::from_millis(500) } else { Duration::from_secs(15) };
        match tokio::time::timeout(wait, messages.next()).await {
            Ok(Some(Ok(message))) => match serde_json::from_slice::<Envelope>(&message.payload) {
                Ok(event) => {
                    problems.extend(violations(&doc, &event));
                    seen.insert(event.r#type.clone());
                }
                Err(e) => problems.push(format!("{}: not an envelope: {e}", message.subject)),
            },
            _ => break,
        }
    }
    for event_type in expected {
        assert!(seen.contains(event_type), "{event_type} was not published; seen {seen:?}\n{}", crm.log_tail());
    }
    assert!(problems.is_empty(), "events that break docs/asyncapi.yaml:\n{}", problems.join("\n"));
}
