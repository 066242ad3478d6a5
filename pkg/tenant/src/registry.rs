use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::{DbError, TenantDb, TenantId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TenantStatus {
    Active,
    Suspended,
    Pending,
}

impl TenantStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Pending => "pending",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "suspended" => Some(Self::Suspended),
            "pending" => Some(Self::Pending),
            _ => None,
        }
    }
}

/// A row of `platform.tenants` as every service needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRecord {
    pub id: TenantId,
    pub name: String,
    pub subdomain: String,
    pub status: TenantStatus,
}

impl TenantRecord {
    pub fn is_active(&self) -> bool {
        self.status == TenantStatus::Active
    }
}

struct Entry {
    record: TenantRecord,
    loaded: Instant,
}

/// In-process cache of the tenant registry, read on every authenticated request (is the
/// tenant still active?). Entries live `ttl`; `tenant.*` events call [`Self::invalidate`]
/// so a suspension is seen at once on the instance that consumes them and within `ttl`
/// everywhere else.
pub struct TenantRegistry {
    db: TenantDb,
    ttl: Duration,
    by_id: RwLock<HashMap<TenantId, Entry>>,
}

const SELECT_BY_ID: &str = "SELECT id, name, subdomain, status FROM platform.tenants WHERE id = $1";
const SELECT_BY_SUBDOMAIN: &str =
    "SELECT id, name, subdomain, status FROM platform.tenants WHERE subdomain = lower($1)";

impl TenantRegistry {
    pub fn new(db: TenantDb, ttl: Duration) -> Self {
        Self { db, ttl, by_id: RwLock::new(HashMap::new()) }
    }

    pub async fn by_id(&self, id: &TenantId) -> Result<Option<TenantRecord>, DbError> {
        if let Some(hit) = self.cached(|r| r.id == *id) {
            return Ok(Some(hit));
        }
        self.load(SELECT_BY_ID, &id.to_string()).await
    }

    pub async fn by_subdomain(&self, subdomain: &str) -> Result<Option<TenantRecord>, DbError> {
        let subdomain = subdomain.to_ascii_lowercase();
        if let Some(hit) = self.cached(|r| r.subdomain == subdomain) {
            return Ok(Some(hit));
        }
        self.load(SELECT_BY_SUBDOMAIN, &subdomain).await
    }

    /// Forgets one tenant (on `tenant.updated` / `tenant.deleted`).
    pub fn invalidate(&self, id: &TenantId) {
        self.by_id.write().unwrap_or_else(|e| e.into_inner()).remove(id);
    }

    pub fn invalidate_all(&self) {
        self.by_id.write().unwrap_or_else(|e| e.into_inner()).clear();
    }

    fn cached(&self, matches: impl Fn(&TenantRecord) -> bool) -> Option<TenantRecord> {
        let map = self.by_id.read().unwrap_or_else(|e| e.into_inner());
        map.values()
            .find(|e| matches(&e.record) && e.loaded.elapsed() < self.ttl)
            .map(|e| e.record.clone())
    }

    async fn load(&self, sql: &str, key: &str) -> Result<Option<TenantRecord>, DbError> {
        let tx = self.db.platform().await?;
        let stmt = tx.prepare_cached(sql).await?;
        let row = tx.query_opt(&stmt, &[&key]).await?;
        tx.commit().await?;
        let Some(row) = row else { return Ok(None) };
        let id: String = row.get(0);
        let status: String = row.get(3);
        let record = TenantRecord {
            id: TenantId::parse(&id).map_err(|_| corrupt("tenants.id"))?,
            name: row.get(1),
            subdomain: row.get(2),
            status: TenantStatus::parse(&status).unwrap_or(TenantStatus::Suspended),
        };
        self.by_id
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(record.id, Entry { record: record.clone(), loaded: Instant::now() });
        Ok(Some(record))
    }
}

fn corrupt(what: &str) -> DbError {
    tracing::error!(column = what, "unexpected value in the tenant registry");
    DbError::Unavailable(crm_database::PoolError::Closed)
}
