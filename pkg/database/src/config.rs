use std::time::Duration;

/// Database settings, read once at start-up (defaults first, then the environment).
///
/// Defaults follow seed 004's pool settings: 20 connections at most, 60 min connection
/// lifetime, 5 min idle time, 30 s connect and query timeouts.
#[derive(Clone)]
pub struct DbConfig {
    pub url: String,
    pub max_connections: usize,
    pub connect_timeout: Duration,
    /// Server-side `statement_timeout` for every connection of the pool.
    pub query_timeout: Duration,
    /// How long a request waits for a free connection before it gets a 503.
    pub acquire_timeout: Duration,
    pub max_lifetime: Duration,
    pub max_idle: Duration,
    /// `DB_MAX_SCHEMAS_PER_CONNECTION`: a pooled connection that has run transactions in this
    /// many distinct schemas is closed at its next checkout (and replaced) instead of being
    /// reused; 0 turns it off. PostgreSQL keeps, per backend and for the backend's life, the
    /// catalog entries (relation, attribute, index cache) of every table it has touched: with
    /// thousands of tenant schemas a long-lived connection that meets them all grows to
    /// gigabytes (issue 14 item 3; measured in docs/PERFORMANCE.md).
    pub max_schemas_per_connection: usize,
    pub application_name: String,
    /// `DATABASE_READ_URL`: a streaming replica (hot standby) of `url`'s server, for the reads
    /// that tolerate its lag (lists, search, reports, exports; `crm_tenant::TenantDb::tenant_read`).
    /// `None` (unset or empty): every read goes to `url`, and nothing else changes.
    pub read_url: Option<String>,
}

impl std::fmt::Debug for DbConfig {
    // The URL may carry a password: print it without.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbConfig")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("connect_timeout", &self.connect_timeout)
            .field("query_timeout", &self.query_timeout)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("max_lifetime", &self.max_lifetime)
            .field("max_idle", &self.max_idle)
            .field("max_schemas_per_connection", &self.max_schemas_per_connection)
            .field("read_url", &self.read_url.as_deref().map(redact_url))
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {name} must be {expected}, got {value:?}")]
    Invalid { name: &'static str, expected: &'static str, value: String },
}

pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/crm";

/// Default of [`DbConfig::max_schemas_per_connection`]: about 100 MB of catalog cache per
/// backend at the tenant schema's size measured in docs/PERFORMANCE.md, and one reconnection
/// (a few ms) per 500 tenant switches to a schema the connection had not met.
pub const DEFAULT_MAX_SCHEMAS_PER_CONNECTION: usize = 500;

impl Default for DbConfig {
    fn default() -> Self {
        Self {
            url: DEFAULT_DATABASE_URL.to_owned(),
            max_connections: 20,
            connect_timeout: Duration::from_secs(30),
            query_timeout: Duration::from_secs(30),
            acquire_timeout: Duration::from_secs(10),
            max_lifetime: Duration::from_secs(60 * 60),
            max_idle: Duration::from_secs(5 * 60),
            max_schemas_per_connection: DEFAULT_MAX_SCHEMAS_PER_CONNECTION,
            application_name: "crm".to_owned(),
            read_url: None,
        }
    }
}

impl DbConfig {
    /// `DATABASE_URL`, `DATABASE_READ_URL`, `DB_MAX_CONNECTIONS`, `DB_CONNECT_TIMEOUT_SECS`,
    /// `DB_QUERY_TIMEOUT_SECS`, `DB_ACQUIRE_TIMEOUT_SECS`, `DB_MAX_LIFETIME_SECS`, `DB_MAX_IDLE_SECS`,
    /// `DB_MAX_SCHEMAS_PER_CONNECTION`.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        if let Some(url) = get("DATABASE_URL").filter(|v| !v.is_empty()) {
            config.url = url;
        }
        config.read_url = get("DATABASE_READ_URL").map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let secs = |name: &'static str, default: Duration| -> Result<Duration, ConfigError> {
            match get(name) {
                None => Ok(default),
                Some(value) => value
                    .parse::<u64>()
                    .map(Duration::from_secs)
                    .map_err(|_| ConfigError::Invalid { name, expected: "a whole number of seconds", value }),
            }
        };
        config.connect_timeout = secs("DB_CONNECT_TIMEOUT_SECS", config.connect_timeout)?;
        config.query_timeout = secs("DB_QUERY_TIMEOUT_SECS", config.query_timeout)?;
        config.acquire_timeout = secs("DB_ACQUIRE_TIMEOUT_SECS", config.acquire_timeout)?;
        config.max_lifetime = secs("DB_MAX_LIFETIME_SECS", config.max_lifetime)?;
        config.max_idle = secs("DB_MAX_IDLE_SECS", config.max_idle)?;
        if let Some(value) = get("DB_MAX_SCHEMAS_PER_CONNECTION") {
            config.max_schemas_per_connection = value.parse::<usize>().map_err(|_| ConfigError::Invalid {
                name: "DB_MAX_SCHEMAS_PER_CONNECTION",
                expected: "a whole number (0: no limit)",
                value,
            })?;
        }
        if let Some(value) = get("DB_MAX_CONNECTIONS") {
            config.max_connections = match value.parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => {
                    return Err(ConfigError::Invalid {
                        name: "DB_MAX_CONNECTIONS",
                        expected: "a positive whole number",
                        value,
                    });
                }
            };
        }
        Ok(config)
    }

    pub fn with_max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
    }

    pub fn with_application_name(mut self, name: &str) -> Self {
        self.application_name = name.to_owned();
        self
    }

    /// The settings of the read pool, when `DATABASE_READ_URL` is set: the same pool settings
    /// on the replica's URL, application name `<name>-read` (so the replica's
    /// `pg_stat_activity` tells the two pools apart), and a connect timeout of at most
    /// [`READ_CONNECT_TIMEOUT`]: an unreachable replica costs the read that finds out that
    /// much before it falls back to the primary, not the primary's 30 s.
    pub fn read_config(&self) -> Option<DbConfig> {
        let url = self.read_url.clone()?;
        Some(DbConfig {
            url,
            connect_timeout: self.connect_timeout.min(READ_CONNECT_TIMEOUT),
            acquire_timeout: self.acquire_timeout.min(READ_CONNECT_TIMEOUT),
            application_name: format!("{}-read", self.application_name),
            read_url: None,
            ..self.clone()
        })
    }
}

/// The longest a read waits to reach the replica (connect, or a free connection of the read
/// pool) before it is served by the primary instead.
pub const READ_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

fn redact_url(url: &str) -> String {
    // postgres://user:secret@host/db -> postgres://user:***@host/db
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!("{}{}:***{}", &url[..scheme_end + 3], &userinfo[..colon], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_seed_004() {
        let c = DbConfig::from_lookup(|_| None).unwrap();
        assert_eq!(c.max_connections, 20);
        assert_eq!(c.query_timeout, Duration::from_secs(30));
        assert_eq!(c.url, DEFAULT_DATABASE_URL);
    }

    #[test]
    fn invalid_numbers_are_reported_by_name() {
        let err = DbConfig::from_lookup(|n| (n == "DB_MAX_CONNECTIONS").then(|| "0".to_owned())).unwrap_err();
        assert!(err.to_string().contains("DB_MAX_CONNECTIONS"));
    }

    #[test]
    fn the_read_url_is_optional_and_its_pool_named_apart() {
        let c = DbConfig::from_lookup(|_| None).unwrap();
        assert!(c.read_url.is_none() && c.read_config().is_none());
        let c = DbConfig::from_lookup(|n| match n {
            "DATABASE_READ_URL" => Some("postgres://crm:pw@db-ro:5432/crm".to_owned()),
            "DB_CONNECT_TIMEOUT_SECS" => Some("30".to_owned()),
            _ => None,
        })
        .unwrap()
        .with_application_name("deal-service");
        let read = c.read_config().expect("a read pool");
        assert_eq!(read.url, "postgres://crm:pw@db-ro:5432/crm");
        assert_eq!(read.application_name, "deal-service-read");
        assert_eq!(read.connect_timeout, READ_CONNECT_TIMEOUT);
        assert!(!format!("{c:?}").contains("pw@"), "{c:?}");
        assert!(DbConfig::from_lookup(|n| (n == "DATABASE_READ_URL").then(String::new)).unwrap().read_url.is_none());
    }

    #[test]
    fn debug_output_hides_the_password() {
        let c = DbConfig { url: "postgres://crm:hunter2@db:5432/crm".into(), ..DbConfig::default() };
        let printed = format!("{c:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("crm:***@db"));
    }
}
