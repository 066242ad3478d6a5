//! Note shapes of communication-service (issue 16): markdown written by a user about a
//! contact, a company and/or a deal, and the payload of the `note.*` events.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

/// The most characters (Unicode scalar values) a note's body may have.
pub const MAX_NOTE_BODY: usize = 100_000;
/// The most characters of the body an event carries ([`NoteEvent::body`]): a full body is
/// up to 400 kB of UTF-8 and an update's event carries it twice (the `changes`), beyond what
/// one NATS message should hold.
pub const NOTE_EVENT_BODY_CHARS: usize = 4_000;

/// `POST /notes`: the body and at least one of the links. The author and the timestamps are
/// set by the server (sending them is a 400, like any unknown field).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewNote {
    /// Markdown, 1-100000 characters after trimming; line breaks and tabs allowed, other
    /// control characters not. Stored as written (rendering and sanitizing are the reader's).
    pub body: String,
    /// The contact the note is about (must exist in contact-service).
    pub contact_id: Option<i32>,
    /// The company the note is about (must exist in contact-service).
    pub company_id: Option<i32>,
    /// The deal the note is about (must exist in deal-service).
    pub deal_id: Option<i32>,
}

fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// `PATCH /notes/{id}`: only the fields present change; `null` removes a link. The note
/// must keep at least one link.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotePatch {
    /// Markdown, 1-100000 characters.
    pub body: Option<String>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i32>)]
    pub contact_id: Option<Option<i32>>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i32>)]
    pub company_id: Option<Option<i32>>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i32>)]
    pub deal_id: Option<Option<i32>>,
}

/// A note as the API shows it. The names (`author_name`, `contact_name`, `company_name`,
/// `deal_title`) are looked up in the owning services: `null` when there is no such link and
/// also when the service could not be reached in time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Note {
    pub id: i32,
    /// Markdown as written.
    pub body: String,
    /// The user who wrote it (never changes).
    pub author_id: i32,
    pub author_name: Option<String>,
    pub contact_id: Option<i32>,
    pub contact_name: Option<String>,
    pub company_id: Option<i32>,
    pub company_name: Option<String>,
    pub deal_id: Option<i32>,
    pub deal_title: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Changes with every write; the `ETag` is made from it.
    pub updated_at: DateTime<Utc>,
}

/// Payload of `note.created`, `note.updated` (plus `changes`: `{field: {old, new}}`) and
/// `note.deleted` (the note as it was). The body is cut to its first
/// [`NOTE_EVENT_BODY_CHARS`] characters (`body_truncated` says so; `body_length` is the full
/// length in characters); read the note for the rest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NoteEvent {
    pub id: i32,
    pub body: String,
    pub body_length: i64,
    pub body_truncated: bool,
    pub author_id: i32,
    pub contact_id: Option<i32>,
    pub company_id: Option<i32>,
    pub deal_id: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Note {
    /// The event payload of this note (body cut to [`NOTE_EVENT_BODY_CHARS`]).
    pub fn event(&self) -> NoteEvent {
        let length = self.body.chars().count();
        NoteEvent {
            id: self.id,
            body: self.body.chars().take(NOTE_EVENT_BODY_CHARS).collect(),
            body_length: length as i64,
            body_truncated: length > NOTE_EVENT_BODY_CHARS,
            author_id: self.author_id,
            contact_id: self.contact_id,
            company_id: self.company_id,
            deal_id: self.deal_id,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_tells_absent_from_null() {
        let p: NotePatch = serde_json::from_str(r#"{"contact_id": null, "deal_id": 3}"#).unwrap();
        assert_eq!((p.body, p.contact_id, p.company_id, p.deal_id), (None, Some(None), None, Some(Some(3))));
        assert!(serde_json::from_str::<NewNote>(r#"{"body": "x", "author_id": 1}"#).is_err());
    }

    #[test]
    fn events_cut_long_bodies() {
        let now = Utc::now();
        let note = Note {
            id: 1,
            body: "é".repeat(NOTE_EVENT_BODY_CHARS + 1),
            author_id: 2,
            author_name: None,
            contact_id: Some(3),
            contact_name: None,
            company_id: None,
            company_name: None,
            deal_id: None,
            deal_title: None,
            created_at: now,
            updated_at: now,
        };
        let e = note.event();
        assert_eq!((e.body.chars().count(), e.body_length, e.body_truncated), (NOTE_EVENT_BODY_CHARS, NOTE_EVENT_BODY_CHARS as i64 + 1, true));
    }
}
