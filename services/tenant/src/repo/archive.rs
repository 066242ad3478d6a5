//! The SQL of tenant archives (export and import, issue 16): a tenant schema's tables read
//! as JSON rows and written back, whatever service owns them. Tenant-service provisions and
//! drops whole tenant schemas already; an archive is the same whole-schema view, so it does
//! not need to know any other service's tables (a table a service adds is carried without a
//! change here).
//!
//! Names come from the catalog or from [`crm_tenant::SchemaName`] (validated) and are always
//! quoted ([`ident`]).

use crm_tenant::{Scoped, TenantId};

use super::Result;

/// `name` as a quoted SQL identifier.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The ordinary tables of `schema`, by name.
pub async fn tables(tx: &Scoped, schema: &str) -> Result<Vec<String>> {
    let rows = tx
        .query(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1",
            &[&schema],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The columns of `schema.table` an INSERT can write (not dropped, not generated), in order.
pub async fn writable_columns(tx: &Scoped, schema: &str, table: &str) -> Result<Vec<String>> {
    let rows = tx
        .query(
            "SELECT a.attname::text FROM pg_attribute a
             JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
             ORDER BY a.attnum",
            &[&schema, &table],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The highest applied version of each migration history table of `schema`
/// (`<set>_schema_history` -> `(set, version)`).
pub async fn migration_versions(tx: &Scoped, schema: &str) -> Result<Vec<(String, i32)>> {
    let mut versions = Vec::new();
    for table in tables(tx, schema).await? {
        if let Some(set) = table.strip_suffix("_schema_history") {
            let sql = format!("SELECT coalesce(max(version), 0) FROM {}.{}", ident(schema), ident(&table));
            let version: i32 = tx.query_one(sql.as_str(), &[]).await?.get(0);
            versions.push((set.to_owned(), version));
        }
    }
    Ok(versions)
}

/// One page of `schema.table`'s rows as JSON text, after the row at `after` (a `ctid`; start
/// with `(0,0)`), in physical order; with the last row's `ctid`. Stable inside one snapshot
/// (the export's `REPEATABLE READ` transaction), and each page one index-free TID range scan.
pub async fn rows_after(tx: &Scoped, schema: &str, table: &str, after: &str, limit: i64) -> Result<(Vec<String>, Option<String>)> {
    let sql = format!(
        "SELECT t.ctid::text, row_to_json(t)::text FROM {}.{} t WHERE t.ctid > $1::text::tid ORDER BY t.ctid LIMIT $2",
        ident(schema),
        ident(table)
    );
    let rows = tx.query(sql.as_str(), &[&after, &limit]).await?;
    let last = rows.last().map(|r| r.get::<_, String>(0));
    Ok((rows.iter().map(|r| r.get(1)).collect(), last))
}

/// The tenant's settings row (`platform.tenant_settings`) as JSON, if it has one.
pub async fn settings_json(tx: &Scoped, tenant: &TenantId) -> Result<Option<String>> {
    let row = tx
        .query_opt("SELECT row_to_json(s)::text FROM platform.tenant_settings s WHERE tenant_id = $1", &[&tenant.to_string()])
        .await?;
    Ok(row.map(|r| r.get(0)))
}

/// A foreign key of a tenant table: where it is and its definition (`pg_get_constraintdef`).
pub struct ForeignKey {
    pub table: String,
    pub name: String,
    pub definition: String,
}

/// The foreign keys of `schema`'s tables.
pub async fn foreign_keys(tx: &Scoped, schema: &str) -> Result<Vec<ForeignKey>> {
    let rows = tx
        .query(
            "SELECT c.relname::text, k.conname::text, pg_get_constraintdef(k.oid)
             FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND k.contype = 'f' ORDER BY 1, 2",
            &[&schema],
        )
        .await?;
    Ok(rows.iter().map(|r| ForeignKey { table: r.get(0), name: r.get(1), definition: r.get(2) }).collect())
}

/// Drops `fk` (an import loads tables in any order, then adds it back: [`add_foreign_key`]).
pub async fn drop_foreign_key(tx: &Scoped, schema: &str, fk: &ForeignKey) -> Result<()> {
    let sql = format!("ALTER TABLE {}.{} DROP CONSTRAINT {}", ident(schema), ident(&fk.table), ident(&fk.name));
    tx.execute(sql.as_str(), &[]).await?;
    Ok(())
}

/// Adds `fk` back; PostgreSQL checks every loaded row against it (a broken archive fails here).
pub async fn add_foreign_key(tx: &Scoped, schema: &str, fk: &ForeignKey) -> Result<()> {
    let sql = format!("ALTER TABLE {}.{} ADD CONSTRAINT {} {}", ident(schema), ident(&fk.table), ident(&fk.name), fk.definition);
    tx.execute(sql.as_str(), &[]).await?;
    Ok(())
}

/// Empties `tables` of `schema` (the rows migrations seed, e.g. default pipeline stages,
/// make way for the archive's).
pub async fn truncate(tx: &Scoped, schema: &str, tables: &[String]) -> Result<()> {
    if tables.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = tables.iter().map(|t| format!("{}.{}", ident(schema), ident(t))).collect();
    tx.execute(format!("TRUNCATE {}", list.join(", ")).as_str(), &[]).await?;
    Ok(())
}

/// Inserts `rows_json` (a JSON array of row objects) into `schema.table`, writing `columns`
/// only (the others take their defaults: an archive from an older schema lacks newer columns).
/// Identity columns keep the archive's values. Returns the number of rows written.
pub async fn insert_rows(tx: &Scoped, schema: &str, table: &str, columns: &[String], rows_json: &str) -> Result<u64> {
    let cols = columns.iter().map(|c| ident(c)).collect::<Vec<_>>().join(", ");
    let target = format!("{}.{}", ident(schema), ident(table));
    let sql = format!("INSERT INTO {target} ({cols}) OVERRIDING SYSTEM VALUE SELECT {cols} FROM json_populate_recordset(NULL::{target}, $1::text::json)");
    Ok(tx.execute(sql.as_str(), &[&rows_json]).await?)
}

/// Sets every sequence owned by a column of `schema` past the column's highest value, so
/// the next insert after an import does not collide with an imported id.
pub async fn advance_sequences(tx: &Scoped, schema: &str) -> Result<()> {
    let rows = tx
        .query(
            "SELECT s.relname::text, t.relname::text, a.attname::text
             FROM pg_depend d
             JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
             JOIN pg_class t ON t.oid = d.refobjid
             JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
             JOIN pg_namespace n ON n.oid = s.relnamespace
             WHERE n.nspname = $1 AND d.deptype IN ('a', 'i')",
            &[&schema],
        )
        .await?;
    for row in rows {
        let (seq, table, column): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        let qualified_seq = format!("{}.{}", ident(schema), ident(&seq));
        let sql = format!(
            "SELECT setval($1::text::regclass, coalesce(max({col})::bigint, 0) + 1, false) FROM {}.{}",
            ident(schema),
            ident(&table),
            col = ident(&column)
        );
        tx.query_one(sql.as_str(), &[&qualified_seq]).await?;
    }
    Ok(())
}

/// Moves stored files' keys from one tenant prefix to another in every `storage_key` column
/// of `schema` (an import under a new tenant id; keys are `<tenant id>/...`).
pub async fn rewrite_storage_keys(tx: &Scoped, schema: &str, old_prefix: &str, new_prefix: &str) -> Result<()> {
    let tables = tx
        .query(
            "SELECT c.relname::text FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relkind = 'r' AND a.attname = 'storage_key' AND NOT a.attisdropped",
            &[&schema],
        )
        .await?;
    for row in tables {
        let table: String = row.get(0);
        let sql = format!(
            "UPDATE {}.{} SET storage_key = $2 || substr(storage_key, length($1) + 1) WHERE starts_with(storage_key, $1)",
            ident(schema),
            ident(&table)
        );
        tx.execute(sql.as_str(), &[&old_prefix, &new_prefix]).await?;
    }
    Ok(())
}
