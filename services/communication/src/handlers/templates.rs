//! `/email-templates`: create, list, read, replace, delete, preview.

use axum::extract::State;
use crm_client_communication::{EmailTemplateDetails, EmailTemplateInfo};
use crm_web::{ApiError, AppJson, ReplaceJson, AppPath, AppQuery, Can, ETag, IfMatch, NoContent, Page, QueryParams, Tagged, perm};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::AppState;
use crate::compose::Rendered;
use crate::domain::{NewEmailTemplate, PreviewRequest};
use crate::service::{parse_id, templates as service};

/// Query parameters of `GET /email-templates` (all optional).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct TemplateListParams {
    pub category: Option<String>,
    pub is_active: Option<bool>,
    /// Part of the name (case-insensitive).
    pub search: Option<String>,
    /// `name` (the default and only order); anything else is refused.
    pub sort: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    pub count: Option<bool>,
}

/// Creates a template; its variables are checked against the known ones.
#[utoipa::path(post, path = "/api/v1/email-templates", request_body = NewEmailTemplate, tag = "email-templates",
    responses((status = 201, description = "Created", body = EmailTemplateDetails), (status = 400), (status = 401), (status = 403), (status = 409), (status = 422)))]
pub async fn create_email_template(
    State(state): State<AppState>,
    can: Can<perm::EmailTemplatesWrite>,
    AppJson(body): AppJson<NewEmailTemplate>,
) -> Result<Tagged<EmailTemplateDetails>, ApiError> {
    let template = service::create(&state, &can, body).await?;
    Ok(Tagged::created(ETag::of(template.updated_at), template))
}

#[utoipa::path(get, path = "/api/v1/email-templates", params(TemplateListParams), tag = "email-templates",
    responses((status = 200, description = "A page of templates, by name", body = Page<EmailTemplateInfo>), (status = 400), (status = 401), (status = 403)))]
pub async fn list_email_templates(
    State(state): State<AppState>,
    can: Can<perm::EmailTemplatesRead>,
    AppQuery(params): AppQuery<QueryParams>,
) -> Result<AppJson<Page<EmailTemplateInfo>>, ApiError> {
    Ok(AppJson(service::list(&state, &can, &params).await?))
}

#[utoipa::path(get, path = "/api/v1/email-templates/{id}", params(("id" = i32, Path, description = "Template id")), tag = "email-templates",
    responses((status = 200, description = "The template", body = EmailTemplateDetails), (status = 401), (status = 403), (status = 404)))]
pub async fn get_email_template(
    State(state): State<AppState>,
    can: Can<perm::EmailTemplatesRead>,
    AppPath(id): AppPath<String>,
) -> Result<Tagged<EmailTemplateDetails>, ApiError> {
    let id = parse_id(&id, "email template")?;
    let template = service::get(&state, &can, id).await?;
    Ok(Tagged::new(ETag::of(template.updated_at), template))
}

#[utoipa::path(put, path = "/api/v1/email-templates/{id}", params(("id" = i32, Path, description = "Template id")), request_body = NewEmailTemplate, tag = "email-templates",
    responses((status = 200, description = "Replaced", body = EmailTemplateDetails), (status = 400), (status = 401), (status = 403), (status = 404), (status = 409), (status = 422)))]
pub async fn replace_email_template(
    State(state): State<AppState>,
    can: Can<perm::EmailTemplatesWrite>,
    AppPath(id): AppPath<String>,
    if_match: IfMatch,
    ReplaceJson(body, _): ReplaceJson<NewEmailTemplate, EmailTemplateReadOnly>,
) -> Result<Tagged<EmailTemplateDetails>, ApiError> {
    let id = parse_id(&id, "email template")?;
    let template = service::replace(&state, &can, id, &if_match, body).await?;
    Ok(Tagged::new(ETag::of(template.updated_at), template))
}

#[utoipa::path(delete, path = "/api/v1/email-templates/{id}", params(("id" = i32, Path, description = "Template id")), tag = "email-templates",
    responses((status = 204, description = "Deleted"), (status = 401), (status = 403), (status = 404)))]
pub async fn delete_email_template(
    State(state): State<AppState>,
    can: Can<perm::EmailTemplatesDelete>,
    AppPath(id): AppPath<String>,
    if_match: IfMatch,
) -> Result<NoContent, ApiError> {
    let id = parse_id(&id, "email template")?;
    service::delete(&state, &can, id, &if_match).await?;
    Ok(NoContent)
}

/// The template rendered for a contact and/or deal, as it would be sent (without tracking).
#[utoipa::path(post, path = "/api/v1/email-templates/{id}/preview", params(("id" = i32, Path, description = "Template id")), request_body = PreviewRequest, tag = "email-templates",
    responses((status = 200, description = "The rendered email", body = Rendered), (status = 400), (status = 401), (status = 403), (status = 404), (status = 422), (status = 503)))]
pub async fn preview_email_template(
    State(state): State<AppState>,
    can: Can<perm::EmailTemplatesRead>,
    AppPath(id): AppPath<String>,
    AppJson(body): AppJson<PreviewRequest>,
) -> Result<AppJson<Rendered>, ApiError> {
    let id = parse_id(&id, "email template")?;
    Ok(AppJson(service::preview(&state, &can, id, body).await?))
}

/// The fields of an email template only a response carries: dropped from a PUT body, so a record read
/// with GET can be PUT back exactly as read.
pub struct EmailTemplateReadOnly;

impl crm_web::ReadOnlyFields for EmailTemplateReadOnly {
    const READ_ONLY: &'static [&'static str] = &["id", "variables", "created_at", "created_by", "updated_at"];
}
