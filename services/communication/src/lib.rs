//! communication-service (:8084): activities and the contact timeline, tasks and reminders,
//! email templates, sending with open/click tracking, activity reports, and the consumers
//! that turn `deal.closed_won`, `tenant.user_invited` and `user.password_reset_requested`
//! into activities, tasks and emails.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post};
use crm_client_auth::HttpAuthClient;
use crm_client_contact::HttpContactClient;
use crm_client_deal::HttpDealClient;
use crm_tenant::{TenantDb, TenantRegistry};
use crm_web::{AuthState, CursorCodec};
use lettre::message::Mailbox;
use utoipa::OpenApi;

pub mod compose;
pub mod consumers;
pub mod domain;
pub mod enrich;
pub mod handlers;
pub mod mailer;
pub mod render;
mod repo;
pub mod tracking;

pub use consumers::{ConsumerDeps, consumers};
pub use enrich::Clients;
pub use repo::TimelineItem;

pub const SERVICE: &str = "communication-service";
pub const DEFAULT_PORT: u16 = 8084;
/// Prefix of the durable consumer names in production.
pub const CONSUMER_PREFIX: &str = "communication";

/// Settings of communication-service (see [`CommunicationConfig::from_env`]).
#[derive(Debug, Clone)]
pub struct CommunicationConfig {
    /// `SMTP_URL` (e.g. `smtp://127.0.0.1:2525`, `smtps://user:pass@smtp.example.com`); unset:
    /// emails go to the local sink.
    pub smtp_url: Option<String>,
    /// `EMAIL_SINK_DIR` (default `.data/mail`): one `.eml` file per message without SMTP.
    pub sink_dir: PathBuf,
    /// `EMAIL_FROM` (default `CRM <no-reply@crm.localhost>`).
    pub from: Mailbox,
    /// `PUBLIC_BASE_URL` (default `http://127.0.0.1:8000`): where tracking links point.
    pub public_base_url: String,
    /// `APP_BASE_URL` (default: `PUBLIC_BASE_URL`): the web app, for invitation and reset links.
    pub app_base_url: String,
    /// `FOLLOW_UP_DAYS` (default 2): due date of the follow-up task of a won deal.
    pub follow_up_days: i64,
}

impl Default for CommunicationConfig {
    fn default() -> Self {
        let from = Mailbox::new(Some("CRM".to_owned()), lettre::Address::new("no-reply", "crm.localhost").unwrap_or_else(|_| unreachable!("a valid address")));
        Self {
            smtp_url: None,
            sink_dir: PathBuf::from(".data/mail"),
            from,
            public_base_url: "http://127.0.0.1:8000".to_owned(),
            app_base_url: "http://127.0.0.1:8000".to_owned(),
            follow_up_days: 2,
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

impl CommunicationConfig {
    pub fn from_env() -> Result<Self, String> {
        let mut c = Self { smtp_url: env("SMTP_URL"), ..Self::default() };
        if let Some(dir) = env("EMAIL_SINK_DIR") {
            c.sink_dir = PathBuf::from(dir);
        }
        if let Some(from) = env("EMAIL_FROM") {
            c.from = from.parse().map_err(|_| format!("EMAIL_FROM is not an email address: {from:?}"))?;
        }
        if let Some(url) = env("PUBLIC_BASE_URL") {
            c.public_base_url = url.trim_end_matches('/').to_owned();
        }
        c.app_base_url = env("APP_BASE_URL").map(|u| u.trim_end_matches('/').to_owned()).unwrap_or_else(|| c.public_base_url.clone());
        if let Some(days) = env("FOLLOW_UP_DAYS") {
            c.follow_up_days = days.parse().ok().filter(|d| (0..=365).contains(d)).ok_or(format!("FOLLOW_UP_DAYS must be 0-365, got {days:?}"))?;
        }
        Ok(c)
    }

    /// The domain of generated `Message-ID`s: the sender's.
    pub fn message_id_domain(&self) -> &str {
        self.from.email.domain()
    }

    /// SMTP when configured, else the file sink.
    pub fn mailer(&self) -> Result<Arc<dyn mailer::Mailer>, String> {
        Ok(match &self.smtp_url {
            Some(url) => Arc::new(mailer::SmtpMailer::new(url, self.from.clone())?),
            None => Arc::new(mailer::FileSink::new(&self.sink_dir, self.from.clone())),
        })
    }
}

#[derive(Clone, FromRef)]
pub struct AppState {
    pub db: TenantDb,
    pub auth: AuthState,
    pub registry: Arc<TenantRegistry>,
    pub cursors: Arc<CursorCodec>,
    pub config: Arc<CommunicationConfig>,
    pub clients: Clients,
    pub tracker: Arc<tracking::Tracker>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "communication-service", description = "Activities, timeline, tasks, email templates, sending and tracking, reports"),
    paths(
        handlers::activities::create,
        handlers::activities::list,
        handlers::activities::get,
        handlers::activities::replace,
        handlers::activities::patch,
        handlers::activities::delete,
        handlers::reports::timeline,
        handlers::reports::activities,
        handlers::tasks::create,
        handlers::tasks::list,
        handlers::tasks::mine,
        handlers::tasks::get,
        handlers::tasks::replace,
        handlers::tasks::patch,
        handlers::tasks::delete,
        handlers::templates::create,
        handlers::templates::list,
        handlers::templates::get,
        handlers::templates::replace,
        handlers::templates::delete,
        handlers::templates::preview,
        handlers::emails::send,
        handlers::emails::get,
        handlers::emails::open_pixel,
        handlers::emails::click,
    ),
    components(schemas(
        crm_client_communication::ActivityInfo,
        crm_client_communication::ActivityDetails,
        crm_client_communication::TaskInfo,
        crm_client_communication::TaskDetails,
        crm_client_communication::EmailTemplateInfo,
        crm_client_communication::EmailTemplateDetails,
        crm_client_communication::EmailStatus,
        crm_client_communication::EmailEvent,
        crm_client_communication::SentEmail,
        TimelineItem,
    ))
)]
pub struct ApiDoc;

/// The OpenAPI document as JSON.
pub fn openapi() -> serde_json::Value {
    serde_json::to_value(ApiDoc::openapi()).unwrap_or_default()
}

/// Builds the service from the shared platform pieces: HTTP clients of auth, contact and
/// deal services (`*_SERVICE_URL`), the mailer, and the event consumers (spawned here).
pub fn build(platform: &crm_runtime::Platform) -> Result<Router, String> {
    let config = Arc::new(CommunicationConfig::from_env()?);
    let clients = Clients {
        auth: Arc::new(HttpAuthClient::from_env()),
        contacts: Arc::new(HttpContactClient::from_env()),
        deals: Arc::new(HttpDealClient::from_env()),
    };
    let tracker = Arc::new(tracking::Tracker::new(platform.config.jwt_secret.expose().as_bytes(), &config.public_base_url));
    let deps = ConsumerDeps {
        clients: clients.clone(),
        keys: platform.auth.keys.clone(),
        registry: platform.registry.clone(),
        mailer: config.mailer()?,
        tracker: tracker.clone(),
        config: config.clone(),
    };
    match &config.smtp_url {
        Some(_) => tracing::info!("emails are delivered through SMTP_URL"),
        None => tracing::info!(dir = %config.sink_dir.display(), "SMTP_URL not set: emails are written to the local sink"),
    }
    for (spec, handler) in consumers(&deps, CONSUMER_PREFIX) {
        platform.spawn_consumer(spec, handler);
    }
    let state = AppState {
        db: platform.db.clone(),
        auth: platform.auth.clone(),
        registry: platform.registry.clone(),
        cursors: platform.cursors.clone(),
        config,
        clients,
        tracker,
    };
    Ok(router(state))
}

/// The service's API routes (system routes and layers are added by the caller).
pub fn router(state: AppState) -> Router {
    use handlers::*;
    Router::new()
        .route("/api/v1/activities", post(activities::create).get(activities::list))
        .route("/api/v1/activities/{id}", get(activities::get).put(activities::replace).patch(activities::patch).delete(activities::delete))
        .route("/api/v1/contacts/{id}/timeline", get(reports::timeline))
        .route("/api/v1/reports/activities", get(reports::activities))
        .route("/api/v1/tasks", post(tasks::create).get(tasks::list))
        .route("/api/v1/tasks/mine", get(tasks::mine))
        .route("/api/v1/tasks/{id}", get(tasks::get).put(tasks::replace).patch(tasks::patch).delete(tasks::delete))
        .route("/api/v1/email-templates", post(templates::create).get(templates::list))
        .route("/api/v1/email-templates/{id}", get(templates::get).put(templates::replace).delete(templates::delete))
        .route("/api/v1/email-templates/{id}/preview", post(templates::preview))
        .route("/api/v1/emails", post(emails::send))
        .route("/api/v1/emails/{id}", get(emails::get))
        .route("/api/v1/t/o/{token}", get(emails::open_pixel))
        .route("/api/v1/t/c/{token}", get(emails::click))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    #[test]
    fn openapi_lists_every_route() {
        let doc = super::openapi();
        let paths = doc["paths"].as_object().expect("paths");
        for path in [
            "/api/v1/activities",
            "/api/v1/activities/{id}",
            "/api/v1/contacts/{id}/timeline",
            "/api/v1/reports/activities",
            "/api/v1/tasks",
            "/api/v1/tasks/mine",
            "/api/v1/tasks/{id}",
            "/api/v1/email-templates",
            "/api/v1/email-templates/{id}",
            "/api/v1/email-templates/{id}/preview",
            "/api/v1/emails",
            "/api/v1/emails/{id}",
            "/api/v1/t/o/{token}.gif",
            "/api/v1/t/c/{token}",
        ] {
            assert!(paths.contains_key(path), "{path} missing from {:?}", paths.keys().collect::<Vec<_>>());
        }
    }

    #[test]
    fn config_defaults_work_locally() {
        let c = super::CommunicationConfig::default();
        assert_eq!(c.message_id_domain(), "crm.localhost");
        assert!(c.smtp_url.is_none());
        assert_eq!(c.sink_dir, std::path::PathBuf::from(".data/mail"));
    }
}
