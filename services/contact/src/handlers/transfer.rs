//! `POST /contacts/import` (CSV, streamed) and `GET /contacts/export` (CSV, streamed).

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crm_web::{ApiError, AppJson, AppQuery, Can, QueryParams, codes, perm};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::AppState;
use crate::import::{ImportReport, OnDuplicate};
use crate::service::transfer::{self as service, CsvUpload};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// skip (default), update or create; a duplicate is a row whose email (case-insensitively)
    /// is already used.
    pub on_duplicate: Option<OnDuplicate>,
}

/// The form of a `multipart/form-data` import (documentation): the CSV as a file field.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ImportForm {
    /// The CSV file.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

/// The request of an import: `?on_duplicate=` (400 when unknown), the declared length and
/// the CSV, unread: either the body itself (a CSV content type) or the first file of a
/// `multipart/form-data` form (a browser form, `curl -F file=@contacts.csv`), streamed the
/// same way. Any other content type is 415.
pub struct CsvRequest(pub CsvUpload);

impl<S: Send + Sync> FromRequest<S> for CsvRequest {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let (mut parts, body) = req.into_parts();
        let AppQuery(params) = AppQuery::<QueryParams>::from_request_parts(&mut parts, state).await?;
        let on_duplicate = OnDuplicate::from_query(&params)?;
        let declared_len = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
        let body = match upload_kind(&parts.headers)? {
            UploadKind::Csv => body,
            UploadKind::Multipart(boundary) => multipart_file(body, boundary).await?,
        };
        Ok(Self(CsvUpload { on_duplicate, declared_len, body }))
    }
}

enum UploadKind {
    Csv,
    /// `multipart/form-data` with this boundary.
    Multipart(String),
}

fn upload_kind(headers: &HeaderMap) -> Result<UploadKind, ApiError> {
    let raw = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mime = raw.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if ["text/csv", "application/csv", "text/plain", "application/vnd.ms-excel", "application/octet-stream", ""].contains(&mime.as_str()) {
        return Ok(UploadKind::Csv);
    }
    if mime == "multipart/form-data" {
        return multer::parse_boundary(raw)
            .map(UploadKind::Multipart)
            .map_err(|_| ApiError::validation([("Content-Type", "multipart/form-data needs a boundary")]));
    }
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        codes::UNSUPPORTED_MEDIA_TYPE,
        "send the CSV file as the request body (Content-Type: text/csv) or as the file of a multipart/form-data form",
    ))
}

/// The first file part of a form (a part with a file name, or the part named `file`), as a
/// body streamed from the request: nothing is buffered beyond the parser's chunks. Parts
/// before it (form fields) are skipped.
async fn multipart_file(body: Body, boundary: String) -> Result<Body, ApiError> {
    let bad = |e: multer::Error| ApiError::validation([("file", format!("unreadable multipart form: {e}"))]);
    let mut form = multer::Multipart::new(body.into_data_stream(), boundary);
    while let Some(mut part) = form.next_field().await.map_err(bad)? {
        if part.file_name().is_some() || part.name() == Some("file") {
            return Ok(Body::from_stream(part));
        }
        while part.chunk().await.map_err(bad)?.is_some() {}
    }
    Err(ApiError::validation([("file", "the form has no file: send the CSV as a file field (e.g. curl -F file=@contacts.csv)")]))
}

/// Imports contacts from a CSV file (header row; columns by name with the aliases of Google
/// Contacts, Outlook, HubSpot, Salesforce and Pipedrive exports, documented in docs/API.md
/// "CSV import columns"; two columns for one field are 400 `INVALID_CSV`). Row errors name
/// the line of the file (the header is line 1, whatever the line ends).
/// One transaction: a malformed file imports nothing; invalid rows are skipped and listed.
/// The file is the body itself (`text/csv`) or the file of a `multipart/form-data` form.
#[utoipa::path(post, path = "/api/v1/contacts/import", params(ImportQuery), tag = "contacts",
    request_body(content(
        (String = "text/csv"),
        (ImportForm = "multipart/form-data"),
    )),
    responses((status = 200, body = ImportReport), (status = 400), (status = 403), (status = 413), (status = 415), (status = 503)))]
pub async fn import_contacts(State(state): State<AppState>, can: Can<perm::ContactsWrite>, CsvRequest(upload): CsvRequest) -> Result<AppJson<ImportReport>, ApiError> {
    Ok(AppJson(service::import(&state, &can, upload).await?))
}

/// Every contact of the tenant as CSV (columns as the import reads them), streamed page by
/// page in id order. Each page is read in its own transaction: rows changed during a long
/// export appear as they are when their page is read.
#[utoipa::path(get, path = "/api/v1/contacts/export", params(crate::handlers::contacts::FixedOrderQuery), tag = "contacts",
    responses((status = 200, content_type = "text/csv", body = String), (status = 400), (status = 403)))]
pub async fn export_contacts(State(state): State<AppState>, can: Can<perm::ContactsRead>, AppQuery(params): AppQuery<QueryParams>) -> Result<Response, ApiError> {
    let stream = service::export(&state, &can, &params).await?;
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"contacts.csv\""));
    Ok(response)
}
