//! `/attachments`: upload (multipart, streamed), list, metadata, download, delete (issue 16).

use axum::body::Body;
use axum::extract::{Multipart, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use crm_client_communication::Attachment;
use crm_web::{ApiError, AppJson, AppPath, AppQuery, Can, ETag, IfMatch, NoContent, Page, QueryParams, Tagged, perm};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::service::{attachments as service, parse_id};

/// The multipart form of `POST /attachments` (documentation only: the body is streamed).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AttachmentUpload {
    /// The file (its part's `filename` is the attachment's name; its `Content-Type` is ignored).
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
    /// At least one of the four links.
    pub contact_id: Option<i32>,
    pub company_id: Option<i32>,
    pub deal_id: Option<i32>,
    pub activity_id: Option<i32>,
}

/// Query parameters of `GET /attachments` (all optional, combined with AND).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct AttachmentListParams {
    pub contact_id: Option<i32>,
    pub company_id: Option<i32>,
    pub deal_id: Option<i32>,
    pub activity_id: Option<i32>,
    /// `-created_at` (the default, newest first) or `created_at`.
    pub sort: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    pub count: Option<bool>,
}

/// Uploads a file linked to a contact, company, deal and/or activity. The content is streamed
/// to the store; its type is sniffed from its bytes. 413 beyond `ATTACHMENT_MAX_BYTES`.
#[utoipa::path(post, path = "/api/v1/attachments", tag = "attachments",
    request_body(content = AttachmentUpload, content_type = "multipart/form-data"),
    responses((status = 201, description = "Stored", body = Attachment), (status = 400), (status = 401), (status = 403), (status = 413), (status = 422), (status = 503)))]
pub async fn upload_attachment(State(state): State<AppState>, can: Can<perm::ActivitiesWrite>, multipart: Multipart) -> Result<Tagged<Attachment>, ApiError> {
    let attachment = service::upload(&state, &can, multipart).await?;
    Ok(Tagged::created(ETag::of(attachment.created_at), attachment))
}

#[utoipa::path(get, path = "/api/v1/attachments", params(AttachmentListParams), tag = "attachments",
    responses((status = 200, description = "A page of attachments, newest first", body = Page<Attachment>), (status = 400), (status = 401), (status = 403)))]
pub async fn list_attachments(
    State(state): State<AppState>,
    can: Can<perm::ActivitiesRead>,
    AppQuery(params): AppQuery<QueryParams>,
) -> Result<AppJson<Page<Attachment>>, ApiError> {
    Ok(AppJson(service::list(&state, &can, &params).await?))
}

#[utoipa::path(get, path = "/api/v1/attachments/{id}", params(("id" = i32, Path, description = "Attachment id")), tag = "attachments",
    responses((status = 200, description = "The attachment's metadata", body = Attachment), (status = 401), (status = 403), (status = 404)))]
pub async fn get_attachment(State(state): State<AppState>, can: Can<perm::ActivitiesRead>, AppPath(id): AppPath<String>) -> Result<Tagged<Attachment>, ApiError> {
    let id = parse_id(&id, "attachment")?;
    let attachment = service::get(&state, &can, id).await?;
    Ok(Tagged::new(ETag::of(attachment.created_at), attachment))
}

/// The content, streamed, as a download (`Content-Disposition: attachment`) of the sniffed
/// type, never rendered by the browser (`nosniff`, a sandboxing CSP).
#[utoipa::path(get, path = "/api/v1/attachments/{id}/content", params(("id" = i32, Path, description = "Attachment id")), tag = "attachments",
    responses((status = 200, description = "The file's bytes", content_type = "application/octet-stream", body = Vec<u8>,
        headers(("Content-Disposition" = String, description = "attachment; filename=...; filename*=UTF-8''..."), ("ETag" = String, description = "The SHA-256 of the content"))),
        (status = 401), (status = 403), (status = 404)))]
pub async fn download_attachment(State(state): State<AppState>, can: Can<perm::ActivitiesRead>, AppPath(id): AppPath<String>) -> Result<Response, ApiError> {
    let id = parse_id(&id, "attachment")?;
    let (attachment, bytes) = service::content(&state, &can, id).await?;
    let mut response = Body::from_stream(bytes).into_response();
    let headers = response.headers_mut();
    let content_type = HeaderValue::from_str(&attachment.content_type).unwrap_or(HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(attachment.size_bytes));
    let disposition = HeaderValue::from_str(&service::content_disposition(&attachment.file_name)).map_err(ApiError::internal)?;
    headers.insert(header::CONTENT_DISPOSITION, disposition);
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", attachment.sha256)) {
        headers.insert(header::ETAG, etag);
    }
    Ok(response)
}

/// Deletes the attachment and its content (the uploader, managers and admins).
#[utoipa::path(delete, path = "/api/v1/attachments/{id}", params(("id" = i32, Path, description = "Attachment id")), tag = "attachments",
    responses((status = 204, description = "Deleted"), (status = 401), (status = 403), (status = 404), (status = 412)))]
pub async fn delete_attachment(
    State(state): State<AppState>,
    can: Can<perm::ActivitiesDelete>,
    AppPath(id): AppPath<String>,
    if_match: IfMatch,
) -> Result<NoContent, ApiError> {
    let id = parse_id(&id, "attachment")?;
    service::delete(&state, &can, id, &if_match).await?;
    Ok(NoContent)
}
