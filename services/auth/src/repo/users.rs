//! Users (`users`), their audit trail (`user_audit`) and the token revocations their access
//! changes write (`platform.token_revocations`, schema-qualified so it commits with the
//! change it records).

use chrono::{DateTime, Utc};
use crm_client_auth::{UserAuditEntry, UserBasicInfo, UserDetails};
use crm_tenant::TenantTx;
use tokio_postgres::Row;
use tokio_postgres::types::{ToSql, Type};

use super::Result;

const USER_COLUMNS: &str = "id, email, first_name, last_name, role, status, email_verified, last_login_at, created_at, updated_at";

fn user_from(row: &Row) -> UserDetails {
    UserDetails {
        id: row.get(0),
        email: row.get(1),
        first_name: row.get(2),
        last_name: row.get(3),
        role: row.get(4),
        status: row.get(5),
        email_verified: row.get(6),
        last_login_at: row.get(7),
        created_at: row.get(8),
        updated_at: row.get(9),
    }
}

pub struct NewUser<'a> {
    pub email: &'a str,
    pub password_hash: &'a str,
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub role: &'a str,
    pub status: &'a str,
    pub email_verified: bool,
    pub created_by: Option<i32>,
}

/// Unique violation on `users_email_lower` when the email is taken in this tenant.
pub async fn insert_user(tx: &TenantTx, new: &NewUser<'_>) -> Result<UserDetails> {
    let sql = format!(
        "INSERT INTO users (email, password_hash, first_name, last_name, role, status, email_verified, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {USER_COLUMNS}"
    );
    let row = tx
        .query_one(
            sql.as_str(),
            &[
                &new.email,
                &new.password_hash,
                &new.first_name,
                &new.last_name,
                &new.role,
                &new.status,
                &new.email_verified,
                &new.created_by,
            ],
        )
        .await?;
    Ok(user_from(&row))
}

/// What login needs of a user.
pub struct Credentials {
    pub id: i32,
    pub password_hash: String,
    pub status: String,
}

pub async fn credentials_by_email(tx: &TenantTx, email: &str) -> Result<Option<Credentials>> {
    let stmt = tx.prepare_cached("SELECT id, password_hash, status FROM users WHERE lower(email) = lower($1)").await?;
    Ok(tx
        .query_opt(&stmt, &[&email])
        .await?
        .map(|r| Credentials { id: r.get(0), password_hash: r.get(1), status: r.get(2) }))
}

/// Stamps a successful login, if the user is still active with the hash that was verified
/// (a concurrent deactivation or password reset wins). Locks the row until commit, so a
/// role change waits for the tokens issued in this transaction and then revokes them.
pub async fn record_login(tx: &TenantTx, id: i32, verified_hash: &str) -> Result<Option<UserDetails>> {
    let stmt = tx
        .prepare_cached(&format!(
            "UPDATE users SET last_login_at = now() WHERE id = $1 AND status = 'active' AND password_hash = $2
             RETURNING {USER_COLUMNS}"
        ))
        .await?;
    Ok(tx.query_opt(&stmt, &[&id, &verified_hash]).await?.as_ref().map(user_from))
}

pub async fn user_by_id(tx: &TenantTx, id: i32) -> Result<Option<UserDetails>> {
    let stmt = tx.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1")).await?;
    Ok(tx.query_opt(&stmt, &[&id]).await?.as_ref().map(user_from))
}

pub async fn user_by_email(tx: &TenantTx, email: &str) -> Result<Option<UserDetails>> {
    let stmt = tx.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE lower(email) = lower($1)")).await?;
    Ok(tx.query_opt(&stmt, &[&email]).await?.as_ref().map(user_from))
}

/// Locks the row for the rest of the transaction.
pub async fn user_for_update(tx: &TenantTx, id: i32) -> Result<Option<UserDetails>> {
    let stmt = tx.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1 FOR UPDATE")).await?;
    Ok(tx.query_opt(&stmt, &[&id]).await?.as_ref().map(user_from))
}

/// Ids of the active admins, locked in id order: two concurrent demotions serialize here
/// (and cannot deadlock), so the last admin is always seen as the last.
pub async fn lock_active_admins(tx: &TenantTx) -> Result<Vec<i32>> {
    let stmt =
        tx.prepare_cached("SELECT id FROM users WHERE role = 'admin' AND status = 'active' ORDER BY id FOR UPDATE").await?;
    Ok(tx.query(&stmt, &[]).await?.iter().map(|r| r.get(0)).collect())
}

pub async fn users_basic(tx: &TenantTx, ids: &[i32]) -> Result<Vec<UserBasicInfo>> {
    let stmt = tx
        .prepare_cached("SELECT id, email, first_name, last_name, role FROM users WHERE id = ANY($1) ORDER BY id")
        .await?;
    Ok(tx
        .query(&stmt, &[&ids])
        .await?
        .iter()
        .map(|r| UserBasicInfo { id: r.get(0), email: r.get(1), first_name: r.get(2), last_name: r.get(3), role: r.get(4) })
        .collect())
}

/// Changes of PATCH /users/{id}; `None` keeps the value.
#[derive(Default)]
pub struct UserForUpdate<'a> {
    pub first_name: Option<&'a str>,
    pub last_name: Option<&'a str>,
    pub role: Option<&'a str>,
    pub status: Option<&'a str>,
}

pub async fn update_user(tx: &TenantTx, id: i32, update: &UserForUpdate<'_>) -> Result<UserDetails> {
    let sql = format!(
        "UPDATE users SET first_name = coalesce($2, first_name), last_name = coalesce($3, last_name),
                role = coalesce($4, role), status = coalesce($5, status), updated_at = now()
         WHERE id = $1 RETURNING {USER_COLUMNS}"
    );
    let row = tx.query_one(sql.as_str(), &[&id, &update.first_name, &update.last_name, &update.role, &update.status]).await?;
    Ok(user_from(&row))
}

/// Sets a new password hash; returns the user.
pub async fn set_password(tx: &TenantTx, id: i32, password_hash: &str) -> Result<Option<UserDetails>> {
    let sql = format!("UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1 RETURNING {USER_COLUMNS}");
    Ok(tx.query_opt(sql.as_str(), &[&id, &password_hash]).await?.as_ref().map(user_from))
}

/// Filters of `GET /users`.
pub struct UserFilter<'a> {
    pub role: Option<&'a str>,
    pub status: Option<&'a str>,
    /// A LIKE pattern over the lowercased email and full name.
    pub search: Option<&'a str>,
}

/// The sort keys of the user list: the column is spliced into SQL from this whitelist only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Id,
    Email,
    LastName,
    CreatedAt,
}

impl SortKey {
    pub const NAMES: [&'static str; 4] = ["id", "email", "last_name", "created_at"];

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "id" => Some(Self::Id),
            "email" => Some(Self::Email),
            "last_name" => Some(Self::LastName),
            "created_at" => Some(Self::CreatedAt),
            _ => None,
        }
    }

    fn column(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::Email => "email",
            Self::LastName => "last_name",
            Self::CreatedAt => "created_at",
        }
    }
}

/// Keyset position after the last row of a page: the sort value and the id.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct UserCursor {
    /// The sort it belongs to (`-created_at`): a cursor of another sort is refused.
    pub sort: String,
    pub text: Option<String>,
    pub at: Option<DateTime<Utc>>,
    pub id: i32,
}

pub fn cursor_after(sort_param: &str, key: SortKey, last: &UserDetails) -> UserCursor {
    let (text, at) = match key {
        SortKey::Id => (None, None),
        SortKey::Email => (Some(last.email.clone()), None),
        SortKey::LastName => (Some(last.last_name.clone()), None),
        SortKey::CreatedAt => (None, Some(last.created_at)),
    };
    UserCursor { sort: sort_param.to_owned(), text, at, id: last.id }
}

const USER_FILTER: &str = "($1::text IS NULL OR role = $1) AND ($2::text IS NULL OR status = $2)
     AND ($3::text IS NULL OR email LIKE $3 OR lower(first_name || ' ' || last_name) LIKE $3)";

pub async fn list_users(
    tx: &TenantTx,
    filter: &UserFilter<'_>,
    key: SortKey,
    descending: bool,
    after: Option<&UserCursor>,
    limit: i64,
) -> Result<Vec<UserDetails>> {
    let (cmp, dir) = if descending { ("<", "DESC") } else { (">", "ASC") };
    let col = key.column();
    let keyset = match key {
        SortKey::Id => format!("($4::int IS NULL OR id {cmp} $4)"),
        SortKey::Email | SortKey::LastName => format!("($4::int IS NULL OR ({col}, id) {cmp} ($5::text, $4))"),
        SortKey::CreatedAt => format!("($4::int IS NULL OR ({col}, id) {cmp} ($6::timestamptz, $4))"),
    };
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM users WHERE {USER_FILTER} AND {keyset}
         ORDER BY {col} {dir}, id {dir} LIMIT $7"
    );
    let after_id = after.map(|c| c.id);
    let after_text = after.and_then(|c| c.text.clone());
    let after_at = after.and_then(|c| c.at);
    let params: [&(dyn ToSql + Sync); 7] =
        [&filter.role, &filter.status, &filter.search, &after_id, &after_text, &after_at, &(limit + 1)];
    // $5/$6 are unused by some sorts: their types are given here instead of inferred.
    let types = [Type::TEXT, Type::TEXT, Type::TEXT, Type::INT4, Type::TEXT, Type::TIMESTAMPTZ, Type::INT8];
    let stmt = tx.prepare_typed_cached(sql.as_str(), &types).await?;
    let rows = tx.query(&stmt, &params).await?;
    Ok(rows.iter().map(user_from).collect())
}

pub async fn count_users(tx: &TenantTx, filter: &UserFilter<'_>) -> Result<i64> {
    let sql = format!("SELECT count(*) FROM users WHERE {USER_FILTER}");
    Ok(tx.query_one(sql.as_str(), &[&filter.role, &filter.status, &filter.search]).await?.get(0))
}

pub async fn insert_audit(
    tx: &TenantTx,
    user_id: i32,
    actor_id: Option<i32>,
    field: &str,
    old_value: Option<&str>,
    new_value: Option<&str>,
) -> Result<()> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO user_audit (user_id, actor_id, field, old_value, new_value) VALUES ($1, $2, $3, $4, $5)",
        )
        .await?;
    tx.execute(&stmt, &[&user_id, &actor_id, &field, &old_value, &new_value]).await?;
    Ok(())
}

/// Newest first, before the audit id `before` when given.
pub async fn list_audit(tx: &TenantTx, user_id: i32, before: Option<i64>, limit: i64) -> Result<Vec<UserAuditEntry>> {
    let stmt = tx
        .prepare_cached(
            "SELECT id, user_id, actor_id, field, old_value, new_value, changed_at FROM user_audit
             WHERE user_id = $1 AND ($2::bigint IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
        )
        .await?;
    Ok(tx
        .query(&stmt, &[&user_id, &before, &(limit + 1)])
        .await?
        .iter()
        .map(|r| UserAuditEntry {
            id: r.get(0),
            user_id: r.get(1),
            actor_id: r.get(2),
            field: r.get(3),
            old_value: r.get(4),
            new_value: r.get(5),
            changed_at: r.get(6),
        })
        .collect())
}

pub async fn count_audit(tx: &TenantTx, user_id: i32) -> Result<i64> {
    Ok(tx.query_one("SELECT count(*) FROM user_audit WHERE user_id = $1", &[&user_id]).await?.get(0))
}

/// Tokens of this user issued before now are refused by every service from the next poll
/// of their revocation guard (or at once on the `user.*` event). Written in the transaction
/// of the change: no change without its revocation, no revocation without the change.
pub async fn record_revocation(tx: &TenantTx, user_id: i32, deactivated: bool) -> Result<()> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO platform.token_revocations (tenant_id, user_id, valid_after, deactivated, changed_at)
             VALUES ($1, $2, clock_timestamp(), $3, clock_timestamp())
             ON CONFLICT (tenant_id, user_id) DO UPDATE
             SET valid_after = EXCLUDED.valid_after, deactivated = EXCLUDED.deactivated, changed_at = EXCLUDED.changed_at",
        )
        .await?;
    tx.execute(&stmt, &[&tx.tenant_id().to_string(), &user_id, &deactivated]).await?;
    Ok(())
}
