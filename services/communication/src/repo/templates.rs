//! Email templates: insert, read, update, delete, list by name and count.

use crm_client_communication::{EmailTemplateDetails, EmailTemplateInfo};
use crm_tenant::{DbError, TenantTx};
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use tokio_postgres::types::Json;

const TEMPLATE_COLUMNS: &str = "id, name, subject, coalesce(category, ''), is_active, body_html, coalesce(body_text, ''), \
     variables, created_by, created_at, updated_at";

fn template_from(row: &Row) -> EmailTemplateDetails {
    let variables: serde_json::Value = row.get(7);
    EmailTemplateDetails {
        template: EmailTemplateInfo { id: row.get(0), name: row.get(1), subject: row.get(2), category: row.get(3), is_active: row.get(4) },
        body_html: row.get(5),
        body_text: row.get(6),
        variables: serde_json::from_value(variables).unwrap_or_default(),
        created_by: row.get(8),
        created_at: row.get(9),
        updated_at: row.get(10),
    }
}

/// A template as written (validated; `variables` computed from the texts).
pub struct TemplateWrite {
    pub name: String,
    pub subject: String,
    pub body_html: String,
    pub body_text: Option<String>,
    pub category: Option<String>,
    pub variables: Vec<String>,
    pub is_active: bool,
}

pub async fn insert(tx: &TenantTx, t: &TemplateWrite, created_by: i32) -> Result<EmailTemplateDetails, DbError> {
    let stmt = tx
        .prepare_cached(&format!(
            "INSERT INTO email_templates (name, subject, body_html, body_text, category, variables, is_active, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {TEMPLATE_COLUMNS}"
        ))
        .await?;
    let row = tx
        .query_one(&stmt, &[&t.name, &t.subject, &t.body_html, &t.body_text, &t.category, &Json(&t.variables), &t.is_active, &created_by])
        .await?;
    Ok(template_from(&row))
}

pub async fn by_id(tx: &TenantTx, id: i32) -> Result<Option<EmailTemplateDetails>, DbError> {
    let stmt = tx.prepare_cached(&format!("SELECT {TEMPLATE_COLUMNS} FROM email_templates WHERE id = $1")).await?;
    Ok(tx.query_opt(&stmt, &[&id]).await?.as_ref().map(template_from))
}

/// Same, locking the row for the rest of the transaction (read, check `If-Match`, write).
pub async fn for_update(tx: &TenantTx, id: i32) -> Result<Option<EmailTemplateDetails>, DbError> {
    let stmt = tx.prepare_cached(&format!("SELECT {TEMPLATE_COLUMNS} FROM email_templates WHERE id = $1 FOR UPDATE")).await?;
    Ok(tx.query_opt(&stmt, &[&id]).await?.as_ref().map(template_from))
}

/// `None` when there is no such template.
pub async fn update(tx: &TenantTx, id: i32, t: &TemplateWrite) -> Result<Option<EmailTemplateDetails>, DbError> {
    let stmt = tx
        .prepare_cached(&format!(
            "UPDATE email_templates SET name = $2, subject = $3, body_html = $4, body_text = $5, category = $6, variables = $7, \
             is_active = $8, updated_at = now() WHERE id = $1 RETURNING {TEMPLATE_COLUMNS}"
        ))
        .await?;
    let row = tx
        .query_opt(&stmt, &[&id, &t.name, &t.subject, &t.body_html, &t.body_text, &t.category, &Json(&t.variables), &t.is_active])
        .await?;
    Ok(row.as_ref().map(template_from))
}

pub async fn delete(tx: &TenantTx, id: i32) -> Result<bool, DbError> {
    let stmt = tx.prepare_cached("DELETE FROM email_templates WHERE id = $1").await?;
    Ok(tx.execute(&stmt, &[&id]).await? == 1)
}

#[derive(Debug, Clone, Default)]
pub struct TemplateFilter {
    pub category: Option<String>,
    pub is_active: Option<bool>,
    /// Substring of the name, case-insensitive.
    pub search: Option<String>,
}

const TEMPLATE_WHERE: &str = "($1::text IS NULL OR category = $1) AND ($2::bool IS NULL OR is_active = $2) \
     AND ($3::text IS NULL OR strpos(lower(name), lower($3)) > 0)";

/// Keyset position in the template list (by name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NameCursor {
    pub name: String,
    pub id: i32,
}

pub async fn list(tx: &TenantTx, f: &TemplateFilter, after: Option<&NameCursor>, limit: i64) -> Result<Vec<EmailTemplateDetails>, DbError> {
    let stmt = tx
        .prepare_cached(&format!(
            "SELECT {TEMPLATE_COLUMNS} FROM email_templates WHERE {TEMPLATE_WHERE} \
             AND ($4::text IS NULL OR (lower(name), id) > ($4, $5)) ORDER BY lower(name), id LIMIT $6"
        ))
        .await?;
    let (name, id) = (after.map(|c| c.name.as_str()), after.map(|c| c.id));
    let rows = tx.query(&stmt, &[&f.category, &f.is_active, &f.search, &name, &id, &(limit + 1)]).await?;
    Ok(rows.iter().map(template_from).collect())
}

pub async fn count(tx: &TenantTx, f: &TemplateFilter) -> Result<i64, DbError> {
    let stmt = tx.prepare_cached(&format!("SELECT count(*) FROM email_templates WHERE {TEMPLATE_WHERE}")).await?;
    Ok(tx.query_one(&stmt, &[&f.category, &f.is_active, &f.search]).await?.get(0))
}
