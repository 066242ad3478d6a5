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

/// The request of an import: `?on_duplicate=` (400 when unknown), a CSV content type (415
/// otherwise), the declared length and the body, unread.
pub struct CsvRequest(pub CsvUpload);

impl<S: Send + Sync> FromRequest<S> for CsvRequest {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let (mut parts, body) = req.into_parts();
        let AppQuery(params) = AppQuery::<QueryParams>::from_request_parts(&mut parts, state).await?;
        let on_duplicate = OnDuplicate::from_query(&params)?;
        csv_content_type(&parts.headers)?;
        let declared_len = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
        Ok(Self(CsvUpload { on_duplicate, declared_len, body }))
    }
}

fn csv_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let mime = ct.split(';').next().unwrap_or("").trim();
    if ["text/csv", "application/csv", "text/plain", "application/vnd.ms-excel", "application/octet-stream", ""].contains(&mime) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            codes::UNSUPPORTED_MEDIA_TYPE,
            "send the CSV file itself as the request body, with Content-Type: text/csv",
        ))
    }
}

/// Imports contacts from a CSV file (header row; columns by name, common aliases accepted:
/// first_name/last_name or name, email, phone, job_title, company (name) or company_id,
/// owner_id, status, source, street, city, state, country, postal_code, notes, tags
/// (comma/semicolon separated), custom_fields (JSON) or `custom.<key>` columns).
/// One transaction: a malformed file imports nothing; invalid rows are skipped and listed.
#[utoipa::path(post, path = "/api/v1/contacts/import", params(ImportQuery), tag = "contacts",
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = ImportReport), (status = 400), (status = 403), (status = 413), (status = 415), (status = 503)))]
pub async fn import_contacts(State(state): State<AppState>, can: Can<perm::ContactsWrite>, CsvRequest(upload): CsvRequest) -> Result<AppJson<ImportReport>, ApiError> {
    Ok(AppJson(service::import(&state, &can, upload).await?))
}

/// Every contact of the tenant as CSV (columns as the import reads them), streamed page by
/// page in id order. Each page is read in its own transaction: rows changed during a long
/// export appear as they are when their page is read.
#[utoipa::path(get, path = "/api/v1/contacts/export", tag = "contacts",
    responses((status = 200, content_type = "text/csv", body = String), (status = 403)))]
pub async fn export_contacts(State(state): State<AppState>, can: Can<perm::ContactsRead>) -> Result<Response, ApiError> {
    let stream = service::export(&state, &can).await?;
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"contacts.csv\""));
    Ok(response)
}
