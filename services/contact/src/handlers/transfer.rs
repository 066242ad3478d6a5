//! `POST /contacts/import` (CSV, streamed) and `GET /contacts/export` (CSV, streamed).

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crm_client_contact::ContactDetails;
use crm_tenant::{TenantDb, TenantId};
use crm_web::{Action, ApiError, AppJson, AppQuery, AuthUser, Resource, codes};
use futures::Stream;
use serde::Deserialize;
use utoipa::IntoParams;

use super::{Forward, Params};
use crate::AppState;
use crate::import::{ImportReport, Importer, OnDuplicate};
use crate::repo;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// skip (default), update or create; a duplicate is a row whose email (case-insensitively)
    /// is already used.
    pub on_duplicate: Option<OnDuplicate>,
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
pub async fn import_contacts(
    State(state): State<AppState>,
    user: AuthUser,
    Forward(ctx): Forward,
    AppQuery(params): AppQuery<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Body,
) -> Result<AppJson<ImportReport>, ApiError> {
    let scope = user.require(Resource::Contacts, Action::Write)?;
    let on_duplicate = match Params(params).one("on_duplicate") {
        None | Some("skip") => OnDuplicate::Skip,
        Some("update") => OnDuplicate::Update,
        Some("create") => OnDuplicate::Create,
        Some(_) => return Err(ApiError::validation([("on_duplicate", "must be one of: skip, update, create")])),
    };
    csv_content_type(&headers)?;
    if let Some(len) = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok())
        && len > state.config.import_max_bytes
    {
        return Err(ApiError::payload_too_large());
    }
    let mut importer = Importer {
        user: &user,
        scope,
        users: state.users.as_ref(),
        ctx: &ctx,
        on_duplicate,
        max_errors: state.config.import_max_errors,
        report: ImportReport::default(),
    };
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    importer.run(&tx, body, &state.config).await?;
    tx.commit().await?;
    let report = importer.report;
    tracing::info!(rows = report.rows, created = report.created, updated = report.updated, skipped = report.skipped, failed = report.failed, "contacts imported");
    Ok(AppJson(report))
}

const EXPORT_PAGE: i64 = 1000;
const EXPORT_HEADER: [&str; 22] = [
    "id", "first_name", "last_name", "email", "phone", "job_title", "company_id", "company", "owner_id", "status", "source",
    "street", "city", "state", "country", "postal_code", "tags", "custom_fields", "notes", "created_at", "created_by", "updated_at",
];

fn csv_chunk(header: bool, rows: &[ContactDetails]) -> Result<Bytes, ApiError> {
    let mut w = csv::Writer::from_writer(Vec::with_capacity(rows.len() * 200));
    let mut write = || -> Result<(), csv::Error> {
        if header {
            w.write_record(EXPORT_HEADER)?;
        }
        for c in rows {
            let custom = serde_json::to_string(&c.custom_fields).unwrap_or_else(|_| "{}".into());
            w.write_record([
                c.id.to_string().as_str(),
                // A leading = + - @ would be a formula in a spreadsheet: neutralized.
                &safe_cell(&c.first_name),
                &safe_cell(&c.last_name),
                &safe_cell(&c.email),
                &safe_cell(&c.phone),
                &safe_cell(&c.job_title),
                &c.company_id.map(|v| v.to_string()).unwrap_or_default(),
                &safe_cell(c.company_name.as_deref().unwrap_or("")),
                &c.owner_id.map(|v| v.to_string()).unwrap_or_default(),
                c.status.as_str(),
                &safe_cell(&c.source),
                &safe_cell(&c.address.street),
                &safe_cell(&c.address.city),
                &safe_cell(&c.address.state),
                &safe_cell(&c.address.country),
                &safe_cell(&c.address.postal_code),
                &safe_cell(&c.tags.join(",")),
                &custom,
                &safe_cell(&c.notes),
                &c.created_at.to_rfc3339(),
                &c.created_by.to_string(),
                &c.updated_at.to_rfc3339(),
            ])?;
        }
        w.flush()?;
        Ok(())
    };
    write().map_err(ApiError::internal)?;
    w.into_inner().map(Bytes::from).map_err(|e| ApiError::internal(e.to_string()))
}

fn safe_cell(v: &str) -> String {
    if v.starts_with(['=', '+', '-', '@']) && !v.chars().all(|c| c.is_ascii_digit() || " +-().x/".contains(c)) {
        format!("'{v}")
    } else {
        v.to_owned()
    }
}

async fn export_page(db: &TenantDb, tenant: &TenantId, after: i32) -> Result<Vec<ContactDetails>, ApiError> {
    let mut conn = db.connect().await?;
    let tx = conn.tenant(tenant).await?;
    let rows = repo::export_page(&tx, after, EXPORT_PAGE).await?;
    tx.commit().await?;
    Ok(rows)
}

/// The stream of CSV chunks: one page of contacts (its own short transaction) per chunk.
fn export_stream(db: TenantDb, tenant: TenantId, first: Vec<ContactDetails>) -> impl Stream<Item = Result<Bytes, ApiError>> + Send {
    futures::stream::try_unfold((Some(first), 0i32, true), move |(page, after, header)| {
        let db = db.clone();
        async move {
            let rows = match page {
                Some(rows) => rows,
                None if after == i32::MAX => return Ok(None),
                None => export_page(&db, &tenant, after).await?,
            };
            if rows.is_empty() && !header {
                return Ok(None);
            }
            let next = if (rows.len() as i64) < EXPORT_PAGE { i32::MAX } else { rows.last().map_or(i32::MAX, |c| c.id) };
            let chunk = csv_chunk(header, &rows)?;
            Ok(Some((chunk, (None, next, false))))
        }
    })
}

/// Every contact of the tenant as CSV (columns as the import reads them), streamed page by
/// page in id order. Each page is read in its own transaction: rows changed during a long
/// export appear as they are when their page is read.
#[utoipa::path(get, path = "/api/v1/contacts/export", tag = "contacts",
    responses((status = 200, content_type = "text/csv", body = String), (status = 403)))]
pub async fn export_contacts(State(state): State<AppState>, user: AuthUser) -> Result<Response, ApiError> {
    user.require(Resource::Contacts, Action::Read)?;
    // The first page is read before answering, so a database error is a proper error response.
    let first = export_page(&state.db, &user.tenant_id, 0).await?;
    let stream = export_stream(state.db.clone(), user.tenant_id, first);
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"contacts.csv\""));
    Ok(response)
}
