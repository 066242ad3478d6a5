//! Email templates: CRUD with variables checked at save time, and a rendered preview for a
//! contact and/or deal.

use crm_client_communication::{EmailTemplateDetails, EmailTemplateInfo};
use crm_tenant::DbError;
use crm_web::{ApiError, Can, ETag, FieldErrors, IfMatch, Page, QueryParams, codes, parse_limit, perm};
use tokio_postgres::error::SqlState;

use crate::AppState;
use crate::compose::{self, Content, Rendered};
use crate::domain::{MAX_BODY, MAX_CATEGORY, MAX_SUBJECT, NewEmailTemplate, PreviewRequest, optional_body, optional_line, positive_id, required_body, required_line};
use crate::repo::templates::{self as repo, NameCursor, TemplateFilter, TemplateWrite};

fn check(input: NewEmailTemplate) -> Result<TemplateWrite, ApiError> {
    let mut errors = FieldErrors::new();
    let name = required_line(&mut errors, "name", &input.name, 255);
    let subject = required_line(&mut errors, "subject", &input.subject, MAX_SUBJECT);
    let body_html = required_body(&mut errors, "body_html", &input.body_html, MAX_BODY);
    let body_text = optional_body(&mut errors, "body_text", input.body_text.as_deref(), MAX_BODY);
    let category = optional_line(&mut errors, "category", input.category.as_deref(), MAX_CATEGORY).map(|c| c.to_lowercase());
    errors.into_result()?;
    let variables = compose::check_variables(&Content { subject: subject.clone(), body_html: body_html.clone(), body_text: body_text.clone() })?;
    Ok(TemplateWrite { name, subject, body_html, body_text, category, variables, is_active: input.is_active.unwrap_or(true) })
}

/// Template names are unique per tenant (case-insensitive): 409 `TEMPLATE_NAME_TAKEN`.
fn name_taken(e: DbError) -> ApiError {
    match &e {
        DbError::Query(q) if q.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            ApiError::conflict(codes::TEMPLATE_NAME_TAKEN, "a template with this name exists already")
        }
        _ => e.into(),
    }
}

pub async fn create(state: &AppState, can: &Can<perm::EmailTemplatesWrite>, input: NewEmailTemplate) -> Result<EmailTemplateDetails, ApiError> {
    let write = check(input)?;
    let tx = state.db.tenant(&can.tenant_id).await?;
    let template = repo::insert(&tx, &write, can.user_id).await.map_err(name_taken)?;
    tx.commit().await?;
    Ok(template)
}

pub async fn list(state: &AppState, can: &Can<perm::EmailTemplatesRead>, params: &QueryParams) -> Result<Page<EmailTemplateInfo>, ApiError> {
    let mut errors = FieldErrors::new();
    let filter = TemplateFilter {
        category: params.one("category").map(|c| c.trim().to_lowercase()),
        is_active: params.flag(&mut errors, "is_active"),
        search: optional_line(&mut errors, "search", params.one("search"), 255),
    };
    let limit = parse_limit(params.one("limit")).unwrap_or_else(|_| {
        errors.add("limit", "must be an integer between 1 and 100");
        0
    });
    // The list has one order (by name); any other `sort` is refused, not ignored.
    super::single_sort(params, &mut errors, "name");
    errors.into_result()?;
    let after: Option<NameCursor> = crm_web::pagination::parse_cursor(&state.cursors, params.one("cursor"))?;
    let tx = state.db.tenant_read(&can.tenant_id).await?;
    let rows = repo::list(&tx, &filter, after.as_ref(), limit).await?;
    let total = if params.count() { Some(repo::count(&tx, &filter).await?) } else { None };
    tx.commit().await?;
    let page = Page::from_overfetch(rows, limit, total, |last| {
        state.cursors.encode(&NameCursor { name: last.template.name.to_lowercase(), id: last.template.id })
    });
    Ok(Page { data: page.data.into_iter().map(|t| t.template).collect(), pagination: page.pagination })
}

pub async fn get(state: &AppState, can: &Can<perm::EmailTemplatesRead>, id: i32) -> Result<EmailTemplateDetails, ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    let template = repo::by_id(&tx, id).await?.ok_or_else(|| ApiError::not_found("email template"))?;
    tx.commit().await?;
    Ok(template)
}

pub async fn replace(
    state: &AppState,
    can: &Can<perm::EmailTemplatesWrite>,
    id: i32,
    if_match: &IfMatch,
    input: NewEmailTemplate,
) -> Result<EmailTemplateDetails, ApiError> {
    let write = check(input)?;
    let tx = state.db.tenant(&can.tenant_id).await?;
    let current = repo::for_update(&tx, id).await?.ok_or_else(|| ApiError::not_found("email template"))?;
    if_match.check(&ETag::of(current.updated_at))?;
    let template = repo::update(&tx, id, &write).await.map_err(name_taken)?.ok_or_else(|| ApiError::not_found("email template"))?;
    tx.commit().await?;
    Ok(template)
}

pub async fn delete(state: &AppState, can: &Can<perm::EmailTemplatesDelete>, id: i32, if_match: &IfMatch) -> Result<(), ApiError> {
    let tx = state.db.tenant(&can.tenant_id).await?;
    let current = repo::for_update(&tx, id).await?.ok_or_else(|| ApiError::not_found("email template"))?;
    if_match.check(&ETag::of(current.updated_at))?;
    if !repo::delete(&tx, id).await? {
        return Err(ApiError::not_found("email template"));
    }
    tx.commit().await?;
    Ok(())
}

/// The template rendered for a contact and/or deal, as it would be sent (without tracking).
pub async fn preview(state: &AppState, can: &Can<perm::EmailTemplatesRead>, id: i32, input: PreviewRequest) -> Result<Rendered, ApiError> {
    let mut errors = FieldErrors::new();
    let contact_id = positive_id(&mut errors, "contact_id", input.contact_id);
    let deal_id = positive_id(&mut errors, "deal_id", input.deal_id);
    errors.into_result()?;
    let template = {
        let tx = state.db.tenant(&can.tenant_id).await?;
        let template = repo::by_id(&tx, id).await?.ok_or_else(|| ApiError::not_found("email template"))?;
        tx.commit().await?;
        template
    };
    let context = compose::gather(&state.clients, &can.ctx, can, contact_id, deal_id).await?;
    let content = Content { subject: template.template.subject, body_html: template.body_html, body_text: Some(template.body_text).filter(|t| !t.is_empty()) };
    compose::render_content(&content, &context.values)
}
