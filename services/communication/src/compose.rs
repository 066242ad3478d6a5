//! Composing CRM emails: checking template texts (unknown variables are refused when saved),
//! gathering the values of contact, company, deal and sender, rendering.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use crm_client_contact::ContactDetails;
use crm_client_core::{CallContext, ClientError};
use crm_client_deal::DealResponse;
use crm_web::{ApiError, AuthUser, codes};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::enrich::Clients;
use crate::render::{self, Escape, TEMPLATE_VARIABLES, TemplateError, Values};

/// Subject and bodies of an email before rendering.
#[derive(Debug, Clone)]
pub struct Content {
    pub subject: String,
    pub body_html: String,
    pub body_text: Option<String>,
}

/// The variables `content` uses; 422 naming each text with unknown variables or a `{{`
/// left open.
pub fn check_variables(content: &Content) -> Result<Vec<String>, ApiError> {
    let mut used = BTreeSet::new();
    let mut unknown = serde_json::Map::new();
    let mut syntax = serde_json::Map::new();
    let texts = [("subject", Some(&content.subject)), ("body_html", Some(&content.body_html)), ("body_text", content.body_text.as_ref())];
    for (field, text) in texts {
        let Some(text) = text else { continue };
        match render::variables(text, TEMPLATE_VARIABLES) {
            Ok(vars) => used.extend(vars),
            Err(e @ TemplateError::Unknown(_)) => {
                unknown.insert(field.to_owned(), json!(e.to_string()));
            }
            Err(e @ TemplateError::Unclosed) => {
                syntax.insert(field.to_owned(), json!(e.to_string()));
            }
        }
    }
    if !syntax.is_empty() {
        return Err(ApiError::unprocessable(codes::TEMPLATE_SYNTAX_ERROR, "a template placeholder is not closed").with_details(json!({ "fields": syntax })));
    }
    if !unknown.is_empty() {
        return Err(ApiError::unprocessable(codes::UNKNOWN_TEMPLATE_VARIABLE, "the template uses unknown variables")
            .with_details(json!({ "fields": unknown, "allowed": TEMPLATE_VARIABLES })));
    }
    Ok(used.into_iter().collect())
}

/// What an email is about: the contact (required to send), a deal, the sender.
pub struct Context {
    pub contact: Option<ContactDetails>,
    pub deal: Option<DealResponse>,
    pub values: Values,
}

fn lookup_error(what: &str, id: i32, field: &str, e: ClientError) -> ApiError {
    match e {
        ClientError::NotFound => ApiError::unprocessable(codes::REFERENCE_NOT_FOUND, format!("{what} {id} does not exist"))
            .with_details(json!({ "fields": { field: format!("{what} {id} does not exist") } })),
        other => {
            tracing::warn!(error = %other, "{what} lookup failed");
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, codes::SERVICE_UNAVAILABLE, format!("cannot reach the {what} service, retry later"))
        }
    }
}

/// Fetches contact and deal (422 when they do not exist, 503 when their service is down)
/// and the sender's names (degraded to the token's email).
pub async fn gather(clients: &Clients, ctx: &CallContext, user: &AuthUser, contact_id: Option<i32>, deal_id: Option<i32>) -> Result<Context, ApiError> {
    let contact = async {
        match contact_id {
            Some(id) => clients.contacts.contact(ctx, id).await.map(Some).map_err(|e| lookup_error("contact", id, "contact_id", e)),
            None => Ok(None),
        }
    };
    let deal = async {
        match deal_id {
            Some(id) => clients.deals.deal(ctx, id).await.map(Some).map_err(|e| lookup_error("deal", id, "deal_id", e)),
            None => Ok(None),
        }
    };
    let sender = clients.auth.user_basic(ctx, user.user_id);
    let (contact, deal, sender) = futures::join!(contact, deal, sender);
    let (contact, deal) = (contact?, deal?);

    let mut values = Values::default();
    if let Some(c) = &contact {
        values.set("contact.first_name", c.first_name.clone());
        values.set("contact.last_name", c.last_name.clone());
        values.set("contact.full_name", format!("{} {}", c.first_name, c.last_name).trim().to_owned());
        values.set("contact.email", c.email.clone());
        values.set("contact.phone", c.phone.clone());
        values.set("contact.job_title", c.job_title.clone());
        values.set("company.name", c.company_name.clone().unwrap_or_default());
    }
    if let Some(d) = &deal {
        values.set("deal.title", d.title.clone());
        values.set("deal.value", d.value.map(|v| format!("{v:.2}")).unwrap_or_default());
        values.set("deal.currency", d.currency.clone());
        values.set("deal.stage", d.stage.clone());
        values.set("deal.expected_close_date", d.expected_close_date.map(|d| d.to_string()).unwrap_or_default());
        if contact.is_none() {
            values.set("company.name", d.company_name.clone().unwrap_or_default());
        }
    }
    match sender {
        Ok(u) => {
            values.set("user.first_name", u.first_name.clone());
            values.set("user.last_name", u.last_name.clone());
            values.set("user.full_name", u.full_name());
            values.set("user.email", u.email);
        }
        Err(e) => {
            tracing::warn!(error = %e, "sender lookup failed; rendering without the sender's names");
            values.set("user.email", user.email.clone());
        }
    }
    Ok(Context { contact, deal, values })
}

/// A rendered email and the variables that had no value (rendered empty).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Rendered {
    pub subject: String,
    pub body_html: String,
    pub body_text: String,
    pub missing_variables: Vec<String>,
}

/// Renders subject and text plainly and the HTML body with escaped values; without a text
/// body, one is derived from the HTML.
pub fn render_content(content: &Content, values: &Values) -> Result<Rendered, ApiError> {
    let mut missing = BTreeSet::new();
    let syntax = |e: TemplateError| ApiError::unprocessable(codes::TEMPLATE_SYNTAX_ERROR, e.to_string());
    let subject = render::render(&content.subject, values, Escape::None, &mut missing).map_err(syntax)?;
    let body_html = render::render(&content.body_html, values, Escape::Html, &mut missing).map_err(syntax)?;
    let body_text = match &content.body_text {
        Some(text) => render::render(text, values, Escape::None, &mut missing).map_err(syntax)?,
        None => render::html_to_text(&body_html),
    };
    // A subject is one line.
    let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
    Ok(Rendered { subject, body_html, body_text, missing_variables: missing.into_iter().collect() })
}
