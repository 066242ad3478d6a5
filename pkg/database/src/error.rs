//! Why the database cannot be used, said so that an operator can act on it: the whole error
//! chain (tokio-postgres and deadpool only say "db error" or "error connecting to server" at
//! the top), which server, database and user were tried (never the password), and a hint.
//! [`DbProblem::retryable`] tells a start-up retry loop whether waiting can help: an
//! unreachable or starting server, yes; a missing database or a refused user, no.

use std::error::Error as StdError;
use std::fmt;

use tokio_postgres::error::SqlState;

use crate::DbConfig;

/// Where the platform connects: everything of `DATABASE_URL` but the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbTarget {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
}

impl DbTarget {
    /// From a `postgres://` URL (or key=value string); `None` when it does not parse.
    pub fn from_url(url: &str) -> Option<Self> {
        let config: tokio_postgres::Config = url.parse().ok()?;
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
            #[cfg(unix)]
            Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
            None => "localhost".to_owned(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let user = config.get_user().unwrap_or("postgres").to_owned();
        let database = config.get_dbname().map(str::to_owned).unwrap_or_else(|| user.clone());
        Some(Self { host, port, database, user })
    }
}

impl fmt::Display for DbTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "database \"{}\" on {}:{} as user \"{}\"", self.database, self.host, self.port, self.user)
    }
}

/// What kind of problem an error is, as far as the operator is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbProblemKind {
    /// Nothing answers at host:port, or it did not answer in time, or it is starting up.
    Unreachable,
    /// The server answers, but the database does not exist.
    MissingDatabase,
    /// The server refused the user (unknown role, wrong or missing password, pg_hba.conf).
    Refused,
    /// Anything else (a failed statement, a broken connection, ...).
    Other,
}

/// An error on the way to (or in) the database, explained. `Display` is one line per part:
/// `cannot use <target>: <error chain>` and `hint: ...`.
#[derive(Debug, Clone)]
pub struct DbProblem {
    pub target: Option<DbTarget>,
    pub kind: DbProblemKind,
    /// Every message of the error chain, outermost first, joined with ": " (repeats removed).
    pub chain: String,
}

impl DbProblem {
    /// Explains `error`, an error from the pool, tokio-postgres or anything wrapping them.
    pub fn new(config: &DbConfig, error: &(dyn StdError + 'static)) -> Self {
        Self { target: DbTarget::from_url(&config.url), kind: classify(error), chain: error_chain(error) }
    }

    /// Waiting can help: the server may come up (containers, CI, a restart).
    pub fn retryable(&self) -> bool {
        matches!(self.kind, DbProblemKind::Unreachable | DbProblemKind::Other)
    }

    pub fn hint(&self) -> String {
        let (host, port, database, user) = match &self.target {
            Some(t) => (t.host.as_str(), t.port, t.database.as_str(), t.user.as_str()),
            None => ("<host>", 5432, "<database>", "<user>"),
        };
        match self.kind {
            DbProblemKind::Unreachable => format!(
                "is PostgreSQL running and listening on {host}:{port}? `scripts/deps.sh` installs and starts it \
                 (for the port in DATABASE_URL); or point DATABASE_URL at a running server"
            ),
            DbProblemKind::MissingDatabase => format!(
                "the server runs but has no database \"{database}\": create it with `scripts/deps.sh` \
                 (creates the database named in DATABASE_URL) or `crm migrate --create-database`"
            ),
            DbProblemKind::Refused => format!(
                "the server refused user \"{user}\": check the user and password in DATABASE_URL; \
                 `scripts/deps.sh` lets a local user connect from 127.0.0.1 without a password (pg_hba.conf)"
            ),
            DbProblemKind::Other => "check DATABASE_URL and the PostgreSQL server's log".to_owned(),
        }
    }
}

impl fmt::Display for DbProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            Some(target) => write!(f, "cannot use {target}: {}", self.chain)?,
            None => write!(f, "cannot use the database (DATABASE_URL does not parse): {}", self.chain)?,
        }
        write!(f, "\n  hint: {}", self.hint())
    }
}

impl StdError for DbProblem {}

/// Every message of the chain, outermost first. A message its parent already ends with
/// ("...: db error" above "db error") is left out, so each part appears once.
pub fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut out = error.to_string();
    let mut last = out.clone();
    let mut source = error.source();
    while let Some(e) = source {
        let message = e.to_string();
        if !message.is_empty() && !last.ends_with(&message) {
            out.push_str(": ");
            out.push_str(&message);
        }
        last = message;
        source = e.source();
    }
    out
}

fn classify(error: &(dyn StdError + 'static)) -> DbProblemKind {
    let mut current = Some(error);
    let mut kind = DbProblemKind::Other;
    while let Some(e) = current {
        if let Some(db) = e.downcast_ref::<tokio_postgres::error::DbError>() {
            return classify_sqlstate(db.code());
        }
        if let Some(pg) = e.downcast_ref::<tokio_postgres::Error>() {
            if let Some(code) = pg.code() {
                return classify_sqlstate(code);
            }
            let text = error_chain(pg);
            if text.contains("password missing") || text.starts_with("authentication error") {
                return DbProblemKind::Refused;
            }
            if text.starts_with("error connecting to server") || text.starts_with("timeout waiting for server") {
                kind = DbProblemKind::Unreachable;
            }
        }
        if let Some(deadpool_postgres::PoolError::Timeout(_)) = e.downcast_ref::<deadpool_postgres::PoolError>() {
            kind = DbProblemKind::Unreachable;
        }
        if e.downcast_ref::<std::io::Error>().is_some() {
            kind = DbProblemKind::Unreachable;
        }
        current = e.source();
    }
    kind
}

fn classify_sqlstate(code: &SqlState) -> DbProblemKind {
    if *code == SqlState::INVALID_CATALOG_NAME {
        DbProblemKind::MissingDatabase
    } else if *code == SqlState::INVALID_PASSWORD || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION {
        DbProblemKind::Refused
    } else if *code == SqlState::CANNOT_CONNECT_NOW || *code == SqlState::ADMIN_SHUTDOWN || *code == SqlState::TOO_MANY_CONNECTIONS {
        DbProblemKind::Unreachable
    } else {
        DbProblemKind::Other
    }
}

/// Creates the database `config.url` names when it does not exist (connecting to the
/// server's `postgres` database with the same user), and `pg_trgm` in it. Returns whether it
/// created it.
pub async fn create_database_if_missing(config: &DbConfig) -> Result<bool, DbProblem> {
    let explain = |e: &(dyn StdError + 'static)| DbProblem::new(config, e);
    let mut pg: tokio_postgres::Config = config.url.parse().map_err(|e: tokio_postgres::Error| explain(&e))?;
    let target = DbTarget::from_url(&config.url).ok_or_else(|| {
        DbProblem { target: None, kind: DbProblemKind::Other, chain: "DATABASE_URL does not parse".into() }
    })?;
    pg.dbname("postgres");
    pg.connect_timeout(config.connect_timeout);
    pg.application_name(&config.application_name);
    let client = connect(&pg).await.map_err(|e| {
        let mut problem = explain(&e);
        if let Some(t) = &mut problem.target {
            t.database = "postgres".into(); // the one this connection tried
        }
        problem
    })?;
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&target.database])
        .await
        .map_err(|e| explain(&e))?
        .is_some();
    if !exists {
        let create = format!("CREATE DATABASE {}", crate::ident::quote_ident(&target.database));
        if let Err(e) = client.batch_execute(&create).await {
            // Created meanwhile by someone else: fine.
            if e.code() != Some(&SqlState::DUPLICATE_DATABASE) {
                return Err(explain(&e));
            }
        }
    }
    drop(client);
    let mut pg: tokio_postgres::Config = config.url.parse().map_err(|e: tokio_postgres::Error| explain(&e))?;
    pg.connect_timeout(config.connect_timeout);
    pg.application_name(&config.application_name);
    let client = connect(&pg).await.map_err(|e| explain(&e))?;
    client.batch_execute("CREATE EXTENSION IF NOT EXISTS pg_trgm").await.map_err(|e| explain(&e))?;
    Ok(!exists)
}

/// A plain connection (not pooled) whose connection task runs until the client is dropped.
async fn connect(config: &tokio_postgres::Config) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_has_no_password() {
        let t = DbTarget::from_url("postgres://crm:hunter2@db.example:5544/crm_prod").unwrap();
        assert_eq!(t, DbTarget { host: "db.example".into(), port: 5544, database: "crm_prod".into(), user: "crm".into() });
        assert!(!t.to_string().contains("hunter2"));
    }

    #[test]
    fn chain_drops_repeats() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl fmt::Display for Outer {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "pool: {}", self.0)
            }
        }
        impl StdError for Outer {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                Some(&self.0)
            }
        }
        let e = Outer(std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused"));
        assert_eq!(error_chain(&e), "pool: connection refused");
        assert_eq!(classify(&e), DbProblemKind::Unreachable);
    }

    #[tokio::test]
    async fn closed_port_is_unreachable_and_retryable() {
        // Port 1 on localhost: nothing listens there.
        let config = DbConfig { url: "postgres://someone:secret@127.0.0.1:1/nowhere".into(), ..DbConfig::default() };
        let Err(err) = tokio_postgres::connect(&config.url, tokio_postgres::NoTls).await else { panic!("nothing listens on port 1") };
        let problem = DbProblem::new(&config, &err);
        let text = problem.to_string();
        assert_eq!(problem.kind, DbProblemKind::Unreachable, "{text}");
        assert!(problem.retryable());
        assert!(text.contains("127.0.0.1:1") && text.contains("\"nowhere\"") && text.contains("\"someone\""), "{text}");
        assert!(text.contains("hint:") && !text.contains("secret"), "{text}");
        assert!(text.contains("refused"), "the cause is in the chain: {text}");
    }
}
