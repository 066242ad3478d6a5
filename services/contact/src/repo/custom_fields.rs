//! `custom_field_definitions`, and the typed custom-field filter and sort of the contact list.

use crm_client_contact::{CompanyDetails, ContactDetails};
use crm_tenant::TenantTx;
use tokio_postgres::Row;
use tokio_postgres::types::Json;

use super::companies::{CompanyFilter, company_cols, company_from, company_where};
use super::contacts::{CONTACT_FROM, ContactFilter, contact_cols, contact_from, contact_where};
use super::{DbResult, ListCursor, Query, where_clause};
use crate::service::custom_fields::{CfFilter, CfSort, CustomFieldDefinition, DefinitionWrite, Entity, FieldType};

const FIELDS: &str = "id, entity, key, label, field_type, options, required, position, created_at, updated_at, created_by";

fn definition_from(r: &Row) -> CustomFieldDefinition {
    let entity: String = r.get(1);
    let field_type: String = r.get(4);
    CustomFieldDefinition {
        id: r.get(0),
        // The CHECK constraints admit only these values.
        entity: Entity::parse(&entity).unwrap_or(Entity::Contact),
        key: r.get(2),
        label: r.get(3),
        field_type: FieldType::parse(&field_type).unwrap_or(FieldType::Text),
        options: r.get(5),
        required: r.get(6),
        position: r.get(7),
        created_at: r.get(8),
        updated_at: r.get(9),
        created_by: r.get(10),
    }
}

/// The definitions of one entity (or all), in position, then key order.
pub async fn definitions(tx: &TenantTx, entity: Option<Entity>) -> DbResult<Vec<CustomFieldDefinition>> {
    let stmt = tx
        .prepare_cached(&format!(
            "SELECT {FIELDS} FROM custom_field_definitions WHERE ($1::text IS NULL OR entity = $1) ORDER BY entity, position, key"
        ))
        .await?;
    Ok(tx.query(&stmt, &[&entity.map(Entity::as_str)]).await?.iter().map(definition_from).collect())
}

pub async fn definition(tx: &TenantTx, id: i32, for_update: bool) -> DbResult<Option<CustomFieldDefinition>> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    let stmt = tx.prepare_cached(&format!("SELECT {FIELDS} FROM custom_field_definitions WHERE id = $1{lock}")).await?;
    Ok(tx.query_opt(&stmt, &[&id]).await?.as_ref().map(definition_from))
}

pub async fn insert(tx: &TenantTx, w: &DefinitionWrite, created_by: i32) -> DbResult<CustomFieldDefinition> {
    let stmt = tx
        .prepare_cached(&format!(
            "INSERT INTO custom_field_definitions (entity, key, label, field_type, options, required, position, created_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {FIELDS}"
        ))
        .await?;
    let row = tx
        .query_one(
            &stmt,
            &[&w.entity.as_str(), &w.key, &w.label, &w.field_type.as_str(), &w.options, &w.required, &w.position, &created_by],
        )
        .await?;
    Ok(definition_from(&row))
}

pub async fn update(tx: &TenantTx, id: i32, w: &DefinitionWrite) -> DbResult<CustomFieldDefinition> {
    let stmt = tx
        .prepare_cached(&format!(
            "UPDATE custom_field_definitions SET label = $2, options = $3, required = $4, position = $5, updated_at = clock_timestamp()
             WHERE id = $1 RETURNING {FIELDS}"
        ))
        .await?;
    let row = tx.query_one(&stmt, &[&id, &w.label, &w.options, &w.required, &w.position]).await?;
    Ok(definition_from(&row))
}

pub async fn delete(tx: &TenantTx, id: i32) -> DbResult<bool> {
    Ok(tx.execute("DELETE FROM custom_field_definitions WHERE id = $1", &[&id]).await? == 1)
}

/// `(custom_fields @> a OR custom_fields @> b ...)` per filter, on `alias`.
pub(super) fn cf_conditions(q: &mut Query, conds: &mut Vec<String>, alias: &str, filters: &[CfFilter]) {
    for f in filters {
        let any: Vec<String> =
            f.any_of.iter().map(|v| format!("{alias}.custom_fields @> {}::jsonb", q.bind(Json(v.clone())))).collect();
        conds.push(format!("({})", any.join(" OR ")));
    }
}

/// The contact list sorted by a custom field (absent values last in both directions, then
/// id), keyset-paginated on (value, id); each contact comes with its sort value as text
/// (for the next cursor).
pub async fn list_contacts_by_field(
    tx: &TenantTx,
    f: &ContactFilter,
    sort: &CfSort,
    after: Option<&ListCursor>,
    limit: i64,
) -> DbResult<Vec<(ContactDetails, Option<String>)>> {
    let mut q = Query::default();
    // Includes the `?cf.` filters (ContactFilter::custom).
    let mut conds = contact_where(&mut q, f);
    let order = cf_keyset(&mut q, &mut conds, sort, after);
    let lim = q.bind(limit + 1);
    q.sql = format!(
        "SELECT {}, ({})::text FROM {CONTACT_FROM} {} {order} LIMIT {lim}",
        contact_cols("c", "co.name"),
        sort.expr,
        where_clause(&conds),
    );
    let value_col = super::contacts::CONTACT_COLUMNS + 1;
    Ok(q.rows(tx).await?.iter().map(|r| (contact_from(r), r.get(value_col))).collect())
}

/// Keyset condition and ORDER BY for a custom-field sort (absent values last both ways).
fn cf_keyset(q: &mut Query, conds: &mut Vec<String>, sort: &CfSort, after: Option<&ListCursor>) -> String {
    let (op, dir) = if sort.desc { ("<", "DESC") } else { (">", "ASC") };
    let e = &sort.expr;
    if let Some(c) = after {
        let id = q.bind(c.id);
        match &c.t {
            Some(v) => {
                // A text parameter cast to the sort's type (the cursor carries the value as text).
                let v = format!("({}::text)::{}", q.bind(v.clone()), sort.cast);
                conds.push(format!("(({e}) {op} {v} OR (({e}) = {v} AND c.id {op} {id}) OR ({e}) IS NULL)"));
            }
            None => conds.push(format!("(({e}) IS NULL AND c.id {op} {id})")),
        }
    }
    format!("ORDER BY ({e}) {dir} NULLS LAST, c.id {dir}")
}

/// The company list sorted by a custom field, like [`list_contacts_by_field`].
pub async fn list_companies_by_field(
    tx: &TenantTx,
    f: &CompanyFilter,
    sort: &CfSort,
    after: Option<&ListCursor>,
    limit: i64,
) -> DbResult<Vec<(CompanyDetails, Option<String>)>> {
    let mut q = Query::default();
    let mut conds = company_where(&mut q, f);
    let order = cf_keyset(&mut q, &mut conds, sort, after);
    let lim = q.bind(limit + 1);
    let cols = company_cols("c");
    let value_col = cols.split(", ").count();
    q.sql = format!("SELECT {cols}, ({})::text FROM companies c {} {order} LIMIT {lim}", sort.expr, where_clause(&conds));
    Ok(q.rows(tx).await?.iter().map(|r| (company_from(r), r.get(value_col))).collect())
}
