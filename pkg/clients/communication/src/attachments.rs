//! Attachment shapes of communication-service (issue 16): a file uploaded about a contact, a
//! company, a deal and/or an activity, and the payload of the `attachment.*` events. The
//! bytes are downloaded from `GET /api/v1/attachments/{id}/content`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A file's metadata as the API shows it (and as the `attachment.created` /
/// `attachment.deleted` events carry it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Attachment {
    pub id: i32,
    /// The name it was uploaded with (1-255 bytes of UTF-8, no path separators or control
    /// characters); the download offers it as the file name.
    pub file_name: String,
    /// Sniffed from the first bytes of the content (the client's claim is ignored):
    /// `image/png`, `application/pdf`, ..., `text/plain` for valid UTF-8 text without NUL
    /// bytes, `application/octet-stream` when unknown.
    pub content_type: String,
    /// Size of the content in bytes.
    pub size_bytes: i64,
    /// Lower-case hex SHA-256 of the content (also the download's `ETag`).
    pub sha256: String,
    /// The user who uploaded it (never changes).
    pub uploaded_by: i32,
    pub contact_id: Option<i32>,
    pub company_id: Option<i32>,
    pub deal_id: Option<i32>,
    pub activity_id: Option<i32>,
    /// Attachments never change after the upload: the `ETag` is made from this.
    pub created_at: DateTime<Utc>,
}
