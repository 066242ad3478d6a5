//! `/email-templates`: CRUD with variables checked at save time, and a rendered preview for
//! a contact and/or deal.

use axum::extract::State;
use crm_client_communication::{EmailTemplateDetails, EmailTemplateInfo};
use crm_web::{Action, ApiError, AppJson, AppPath, AppQuery, AuthUser, Created, FieldErrors, NoContent, Page, Resource, parse_limit};
use serde::Deserialize;
use tokio_postgres::error::SqlState;
use utoipa::{IntoParams, ToSchema};

use super::{Forward, Params, path_id};
use crate::AppState;
use crate::compose::{self, Content, Rendered};
use crate::domain::{MAX_BODY, MAX_CATEGORY, MAX_SUBJECT, optional_text, positive_id, required_text};
use crate::repo::{self, NameCursor, TemplateFilter, TemplateWrite};

/// Body of `POST /email-templates` and `PUT /email-templates/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateRequest {
    pub name: String,
    /// May use variables, e.g. `Proposal for {{contact.company_name}}`.
    pub subject: String,
    /// Values are HTML-escaped when rendered.
    pub body_html: String,
    /// Derived from the HTML body when absent.
    #[serde(default)]
    pub body_text: Option<String>,
    /// welcome, follow_up, proposal, ...
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub is_active: Option<bool>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct TemplateListParams {
    pub category: Option<String>,
    pub is_active: Option<bool>,
    /// Part of the name (case-insensitive).
    pub search: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    pub count: Option<bool>,
}

/// Body of `POST /email-templates/{id}/preview`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    #[serde(default)]
    pub contact_id: Option<i32>,
    #[serde(default)]
    pub deal_id: Option<i32>,
}

fn check(req: TemplateRequest) -> Result<TemplateWrite, ApiError> {
    let mut errors = FieldErrors::new();
    let name = required_text(&mut errors, "name", &req.name, 255);
    let subject = required_text(&mut errors, "subject", &req.subject, MAX_SUBJECT);
    let body_html = required_text(&mut errors, "body_html", &req.body_html, MAX_BODY);
    let body_text = optional_text(&mut errors, "body_text", req.body_text.as_deref(), MAX_BODY);
    let category = optional_text(&mut errors, "category", req.category.as_deref(), MAX_CATEGORY).map(|c| c.to_lowercase());
    errors.into_result()?;
    let variables = compose::check_variables(&Content { subject: subject.clone(), body_html: body_html.clone(), body_text: body_text.clone() })?;
    Ok(TemplateWrite { name, subject, body_html, body_text, category, variables, is_active: req.is_active.unwrap_or(true) })
}

fn name_taken(e: tokio_postgres::Error) -> ApiError {
    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        ApiError::conflict("TEMPLATE_NAME_TAKEN", "a template with this name exists already")
    } else {
        e.into()
    }
}

#[utoipa::path(post, path = "/api/v1/email-templates", request_body = TemplateRequest, tag = "email-templates",
    responses((status = 201, body = EmailTemplateDetails), (status = 400), (status = 403), (status = 409), (status = 422)))]
pub async fn create(State(state): State<AppState>, user: AuthUser, AppJson(req): AppJson<TemplateRequest>) -> Result<Created<EmailTemplateDetails>, ApiError> {
    user.require(Resource::EmailTemplates, Action::Write)?;
    let write = check(req)?;
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let template = repo::insert_template(&tx, &write, user.user_id).await.map_err(name_taken)?;
    tx.commit().await?;
    Ok(Created(template))
}

#[utoipa::path(get, path = "/api/v1/email-templates", params(TemplateListParams), tag = "email-templates",
    responses((status = 200, body = Page<EmailTemplateInfo>), (status = 400), (status = 403)))]
pub async fn list(State(state): State<AppState>, user: AuthUser, AppQuery(params): AppQuery<Params>) -> Result<AppJson<Page<EmailTemplateInfo>>, ApiError> {
    user.require(Resource::EmailTemplates, Action::Read)?;
    let mut errors = FieldErrors::new();
    let filter = TemplateFilter {
        category: params.one("category").map(|c| c.trim().to_lowercase()),
        is_active: params.flag(&mut errors, "is_active"),
        search: optional_text(&mut errors, "search", params.one("search"), 255),
    };
    let limit = parse_limit(params.one("limit")).unwrap_or_else(|_| {
        errors.add("limit", "must be an integer between 1 and 100");
        0
    });
    errors.into_result()?;
    let after: Option<NameCursor> = crm_web::pagination::parse_cursor(&state.cursors, params.one("cursor"))?;
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let rows = repo::list_templates(&tx, &filter, after.as_ref(), limit).await?;
    let total = if params.count() { Some(repo::count_templates(&tx, &filter).await?) } else { None };
    tx.commit().await?;
    let page = Page::from_overfetch(rows, limit, total, |last| {
        state.cursors.encode(&NameCursor { name: last.template.name.to_lowercase(), id: last.template.id })
    });
    Ok(AppJson(Page { data: page.data.into_iter().map(|t| t.template).collect(), pagination: page.pagination }))
}

#[utoipa::path(get, path = "/api/v1/email-templates/{id}", tag = "email-templates",
    responses((status = 200, body = EmailTemplateDetails), (status = 403), (status = 404)))]
pub async fn get(State(state): State<AppState>, user: AuthUser, AppPath(id): AppPath<String>) -> Result<AppJson<EmailTemplateDetails>, ApiError> {
    user.require(Resource::EmailTemplates, Action::Read)?;
    let id = path_id(&id, "email template")?;
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let template = repo::template_by_id(&tx, id).await?.ok_or_else(|| ApiError::not_found("email template"))?;
    tx.commit().await?;
    Ok(AppJson(template))
}

#[utoipa::path(put, path = "/api/v1/email-templates/{id}", request_body = TemplateRequest, tag = "email-templates",
    responses((status = 200, body = EmailTemplateDetails), (status = 400), (status = 403), (status = 404), (status = 409), (status = 422)))]
pub async fn replace(
    State(state): State<AppState>,
    user: AuthUser,
    AppPath(id): AppPath<String>,
    AppJson(req): AppJson<TemplateRequest>,
) -> Result<AppJson<EmailTemplateDetails>, ApiError> {
    user.require(Resource::EmailTemplates, Action::Write)?;
    let id = path_id(&id, "email template")?;
    let write = check(req)?;
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let template = repo::update_template(&tx, id, &write).await.map_err(name_taken)?.ok_or_else(|| ApiError::not_found("email template"))?;
    tx.commit().await?;
    Ok(AppJson(template))
}

#[utoipa::path(delete, path = "/api/v1/email-templates/{id}", tag = "email-templates",
    responses((status = 204), (status = 403), (status = 404)))]
pub async fn delete(State(state): State<AppState>, user: AuthUser, AppPath(id): AppPath<String>) -> Result<NoContent, ApiError> {
    user.require(Resource::EmailTemplates, Action::Delete)?;
    let id = path_id(&id, "email template")?;
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    if !repo::delete_template(&tx, id).await? {
        return Err(ApiError::not_found("email template"));
    }
    tx.commit().await?;
    Ok(NoContent)
}

/// The template rendered for a contact and/or deal, as it would be sent (without tracking).
#[utoipa::path(post, path = "/api/v1/email-templates/{id}/preview", request_body = PreviewRequest, tag = "email-templates",
    responses((status = 200, body = Rendered), (status = 400), (status = 403), (status = 404), (status = 422), (status = 503)))]
pub async fn preview(
    State(state): State<AppState>,
    user: AuthUser,
    ctx: Forward,
    AppPath(id): AppPath<String>,
    AppJson(req): AppJson<PreviewRequest>,
) -> Result<AppJson<Rendered>, ApiError> {
    user.require(Resource::EmailTemplates, Action::Read)?;
    let id = path_id(&id, "email template")?;
    let mut errors = FieldErrors::new();
    let contact_id = positive_id(&mut errors, "contact_id", req.contact_id);
    let deal_id = positive_id(&mut errors, "deal_id", req.deal_id);
    errors.into_result()?;
    let mut conn = state.db.connect().await?;
    let tx = conn.tenant(&user.tenant_id).await?;
    let template = repo::template_by_id(&tx, id).await?.ok_or_else(|| ApiError::not_found("email template"))?;
    tx.commit().await?;
    drop(conn);
    let context = compose::gather(&state.clients, &ctx.0, &user, contact_id, deal_id).await?;
    let content = Content { subject: template.template.subject, body_html: template.body_html, body_text: Some(template.body_text).filter(|t| !t.is_empty()) };
    Ok(AppJson(compose::render_content(&content, &context.values)?))
}
