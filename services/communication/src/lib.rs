//! communication-service (:8084): activities, notes and the contact and company timelines,
//! tasks and reminders,
//! email templates, sending with open/click tracking, activity reports, and the consumers
//! that turn `deal.closed_won`, `tenant.user_invited` and `user.password_reset_requested`
//! into activities, tasks and emails, and `contact.deleted`, `company.deleted` and
//! `deal.deleted` into erasure and dropped references.
//!
//! Layers: [`handlers`] (extract, call one use case, answer) -> [`service`] (rules, the
//! transaction, events, other services' clients) -> `repo` (SQL only, on the tenant-scoped
//! transaction). [`consumers`] call the same use cases for events.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use crm_client_auth::{CachedAuthClient, HttpAuthClient};
use crm_client_contact::{CachedContactClient, HttpContactClient};
use crm_client_core::ClientConfig;
use crm_client_core::names::{NameCacheConfig, NameScopes};
use crm_client_deal::{CachedDealClient, HttpDealClient};
use crm_runtime::{Built, SettingsError, settings};
use crm_tenant::{TenantDb, TenantRegistry};
use crm_web::{AuthState, CursorCodec};
use lettre::message::Mailbox;
use utoipa::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

pub mod automation;
pub mod compose;
pub mod consumers;
pub mod domain;
pub mod enrich;
pub mod handlers;
pub mod mailer;
pub mod render;
mod repo;
pub mod service;
pub mod tracking;
pub mod webhook_delivery;

pub use consumers::consumers;
pub use enrich::Clients;
pub use repo::timeline::TimelineItem;

pub const SERVICE: &str = "communication-service";
pub const DEFAULT_PORT: u16 = 8084;
/// Prefix of the durable consumer names in production.
pub const CONSUMER_PREFIX: &str = "communication";

/// Settings of communication-service, read once at start by [`Settings::from_env`]
/// (nothing else in this crate reads the environment).
#[derive(Debug, Clone)]
pub struct Settings {
    /// `SMTP_URL` (e.g. `smtp://127.0.0.1:2525`, `smtps://user:pass@smtp.example.com`);
    /// unset: emails go to the local sink.
    pub smtp: Option<mailer::SmtpUrl>,
    /// `EMAIL_SINK_DIR` (default `.data/mail`): one `.eml` file per message without SMTP.
    pub sink_dir: PathBuf,
    /// `EMAIL_FROM` (default `CRM <no-reply@crm.localhost>`).
    pub from: Mailbox,
    /// `PUBLIC_BASE_URL` (default `http://127.0.0.1:8000`): where tracking links point.
    pub public_base_url: String,
    /// `APP_BASE_URL` (default: `PUBLIC_BASE_URL`): the web app, for invitation and reset links.
    pub app_base_url: String,
    /// `FOLLOW_UP_DAYS` (0-365, default 2): due date of the follow-up task of a won deal.
    pub follow_up_days: i64,
    /// `AUTH_SERVICE_URL` (default `http://127.0.0.1:8080`).
    pub auth_url: String,
    /// `CONTACT_SERVICE_URL` (default `http://127.0.0.1:8082`).
    pub contact_url: String,
    /// `DEAL_SERVICE_URL` (default `http://127.0.0.1:8083`).
    pub deal_url: String,
    /// `TENANT_SERVICE_URL` (default `http://127.0.0.1:8081`): the tenant's settings
    /// (marketing consent policy).
    pub tenant_url: String,
    /// `AUTOMATION_POLL_MS` (default 1000), `AUTOMATION_SWEEP_SECONDS` (default 30),
    /// `AUTOMATION_RETRY_SECONDS` (default 60): the pace of reminders, sequence steps and
    /// rule runs (issue 15).
    pub automation: service::scheduler::Pace,
    /// `WEBHOOK_*`: the SSRF allow-list, timeouts, back-off and disabling of webhooks.
    pub webhooks: webhook_delivery::WebhookConfig,
    /// `ATTACHMENTS_URL` (default `file://.data/attachments`; `s3://bucket/prefix` with the
    /// `AWS_*` variables), `ATTACHMENT_MAX_BYTES` (default 25 MiB), `ATTACHMENT_SWEEP_SECONDS`
    /// (1-86400, default 60): where files are stored, the largest accepted, the pace of the
    /// removal of deleted files' objects (issue 16).
    pub attachments: service::attachments::AttachmentSettings,
}

const DEFAULT_PUBLIC_BASE_URL: &str = "http://127.0.0.1:8000";

impl Default for Settings {
    /// What a laptop run needs: no SMTP (the local sink), local URLs.
    fn default() -> Self {
        let from = Mailbox::new(Some("CRM".to_owned()), lettre::Address::new("no-reply", "crm.localhost").unwrap_or_else(|_| unreachable!("a valid address")));
        Self {
            smtp: None,
            sink_dir: PathBuf::from(".data/mail"),
            from,
            public_base_url: DEFAULT_PUBLIC_BASE_URL.to_owned(),
            app_base_url: DEFAULT_PUBLIC_BASE_URL.to_owned(),
            follow_up_days: 2,
            auth_url: "http://127.0.0.1:8080".to_owned(),
            contact_url: "http://127.0.0.1:8082".to_owned(),
            deal_url: "http://127.0.0.1:8083".to_owned(),
            tenant_url: "http://127.0.0.1:8081".to_owned(),
            automation: service::scheduler::Pace::default(),
            webhooks: webhook_delivery::WebhookConfig::default(),
            attachments: service::attachments::AttachmentSettings::default(),
        }
    }
}

impl Settings {
    pub fn from_env() -> Result<Self, SettingsError> {
        let defaults = Self::default();
        let smtp = match settings::var("SMTP_URL") {
            Some(url) => Some(mailer::SmtpUrl::parse(&url).map_err(|e| SettingsError::new("SMTP_URL", e))?),
            None => None,
        };
        let from = match settings::var("EMAIL_FROM") {
            Some(from) => from.parse().map_err(|_| SettingsError::new("EMAIL_FROM", "must be an email address, e.g. `CRM <no-reply@example.com>`"))?,
            None => defaults.from,
        };
        let public_base_url = settings::url("PUBLIC_BASE_URL", DEFAULT_PUBLIC_BASE_URL)?;
        let follow_up_rule = "must be a whole number of days, 0-365";
        let follow_up_days: i64 = settings::number("FOLLOW_UP_DAYS", defaults.follow_up_days, follow_up_rule)?;
        if !(0..=365).contains(&follow_up_days) {
            return Err(SettingsError::new("FOLLOW_UP_DAYS", follow_up_rule));
        }
        Ok(Self {
            smtp,
            sink_dir: settings::var("EMAIL_SINK_DIR").map(PathBuf::from).unwrap_or(defaults.sink_dir),
            from,
            app_base_url: settings::url("APP_BASE_URL", &public_base_url)?,
            public_base_url,
            follow_up_days,
            auth_url: settings::url("AUTH_SERVICE_URL", &defaults.auth_url)?,
            contact_url: settings::url("CONTACT_SERVICE_URL", &defaults.contact_url)?,
            deal_url: settings::url("DEAL_SERVICE_URL", &defaults.deal_url)?,
            tenant_url: settings::url("TENANT_SERVICE_URL", &defaults.tenant_url)?,
            automation: automation_pace()?,
            webhooks: webhook_delivery::WebhookConfig::from_env()?,
            attachments: attachment_settings()?,
        })
    }

    /// The tenant-service client (tenant settings).
    pub fn tenant_client(&self) -> Arc<dyn crm_client_tenant::TenantClient> {
        Arc::new(crm_client_tenant::HttpTenantClient::new(ClientConfig::new(&self.tenant_url)))
    }

    /// The domain of generated `Message-ID`s: the sender's.
    pub fn message_id_domain(&self) -> &str {
        self.from.email.domain()
    }

    /// SMTP when configured, else the file sink.
    pub fn mailer(&self) -> Arc<dyn mailer::Mailer> {
        match &self.smtp {
            Some(url) => Arc::new(mailer::SmtpMailer::new(url, self.from.clone())),
            None => Arc::new(mailer::FileSink::new(&self.sink_dir, self.from.clone())),
        }
    }

    /// The HTTP clients of auth-, contact- and deal-service, behind the per-tenant name
    /// caches of `names` (`crm_client_core::names`).
    pub fn clients(&self, names: &Arc<NameScopes>) -> Clients {
        Clients {
            auth: Arc::new(CachedAuthClient::new(HttpAuthClient::new(ClientConfig::new(&self.auth_url)), names.clone())),
            contacts: Arc::new(CachedContactClient::new(HttpContactClient::new(ClientConfig::new(&self.contact_url)), names.clone())),
            deals: Arc::new(CachedDealClient::new(HttpDealClient::new(ClientConfig::new(&self.deal_url)), names.clone())),
        }
    }
}

/// `AUTOMATION_*` settings.
fn automation_pace() -> Result<service::scheduler::Pace, SettingsError> {
    let d = service::scheduler::Pace::default();
    let poll = settings::millis("AUTOMATION_POLL_MS", d.poll.as_millis() as u64, 50)?;
    let rule = "must be a whole number of seconds, 1-86400";
    let sweep: u64 = settings::number("AUTOMATION_SWEEP_SECONDS", d.sweep.as_secs(), rule)?;
    let retry: u64 = settings::number("AUTOMATION_RETRY_SECONDS", d.retry_base.as_secs(), rule)?;
    if !(1..=86_400).contains(&sweep) {
        return Err(SettingsError::new("AUTOMATION_SWEEP_SECONDS", rule));
    }
    if !(1..=86_400).contains(&retry) {
        return Err(SettingsError::new("AUTOMATION_RETRY_SECONDS", rule));
    }
    Ok(service::scheduler::Pace { poll, sweep: std::time::Duration::from_secs(sweep), retry_base: std::time::Duration::from_secs(retry) })
}

/// `ATTACHMENTS_URL`, `ATTACHMENT_MAX_BYTES`, `ATTACHMENT_SWEEP_SECONDS`. The store is
/// opened when the service starts (`build`); a bad URL fails here.
fn attachment_settings() -> Result<service::attachments::AttachmentSettings, SettingsError> {
    use service::storage::{Location, Store};
    let d = service::attachments::AttachmentSettings::default();
    let store = match settings::var("ATTACHMENTS_URL") {
        Some(url) => Store::new(Location::parse(&url).map_err(|rule| SettingsError::new("ATTACHMENTS_URL", rule))?),
        None => d.store,
    };
    let size_rule = "must be a whole number of bytes, 1 to 5368709120 (5 GiB)";
    let max_bytes: u64 = settings::number("ATTACHMENT_MAX_BYTES", d.max_bytes, size_rule)?;
    if !(1..=5 * 1024 * 1024 * 1024).contains(&max_bytes) {
        return Err(SettingsError::new("ATTACHMENT_MAX_BYTES", size_rule));
    }
    let sweep_rule = "must be a whole number of seconds, 1-86400";
    let sweep: u64 = settings::number("ATTACHMENT_SWEEP_SECONDS", d.sweep.as_secs(), sweep_rule)?;
    if !(1..=86_400).contains(&sweep) {
        return Err(SettingsError::new("ATTACHMENT_SWEEP_SECONDS", sweep_rule));
    }
    Ok(service::attachments::AttachmentSettings { store, max_bytes, sweep: std::time::Duration::from_secs(sweep) })
}

#[derive(Clone, FromRef)]
pub struct AppState {
    pub db: TenantDb,
    pub auth: AuthState,
    pub registry: Arc<TenantRegistry>,
    pub cursors: Arc<CursorCodec>,
    pub settings: Arc<Settings>,
    pub clients: Clients,
    pub tracker: Arc<tracking::Tracker>,
    pub mailer: Arc<dyn mailer::Mailer>,
    /// tenant-service (the tenant's marketing consent policy).
    pub tenants: Arc<dyn crm_client_tenant::TenantClient>,
    /// This instance's handle on the automation poll loop (wake-ups, cached policies).
    pub automation: Arc<service::scheduler::Automation>,
    /// Webhook delivery: the guarded HTTP sender and the due hints of this instance.
    pub webhook_runtime: Arc<webhook_delivery::WebhookRuntime>,
}

/// Info, tags and the schemas of the document; the paths come from [`api`].
#[derive(OpenApi)]
#[openapi(
    info(title = "communication-service", description = "Activities, timeline, tasks, email templates, sending and tracking, reports"),
    tags(
        (name = "activities", description = "Calls, meetings, emails, notes and tasks logged against contacts, companies and deals"),
        (name = "timeline", description = "A contact's activities, emails, tasks and notes; a company's activities and notes"),
        (name = "notes", description = "Markdown notes about contacts, companies and deals (issue 16)"),
        (name = "attachments", description = "Files about contacts, companies, deals and activities: streamed upload, metadata, download (issue 16)"),
        (name = "reports", description = "Activity metrics"),
        (name = "tasks", description = "Tasks and reminders"),
        (name = "email-templates", description = "Email templates with variables"),
        (name = "emails", description = "Sending emails to contacts"),
        (name = "tracking", description = "Open and click tracking (no authentication)"),
        (name = "sequences", description = "Email sequences and the enrollments of contacts in them"),
        (name = "automation", description = "Automation rules (trigger event, conditions, actions) and their runs"),
        (name = "unsubscribe", description = "One-click unsubscribe of marketing email, RFC 8058 (no authentication)"),
        (name = "webhooks", description = "Webhooks for integrators: every event, signed (Standard Webhooks), retried for 3 days (admins)"),
    ),
    components(schemas(
        crm_client_communication::ActivityInfo,
        crm_client_communication::ActivityDetails,
        crm_client_communication::NewActivity,
        crm_client_communication::TaskInfo,
        crm_client_communication::TaskDetails,
        crm_client_communication::NewTask,
        crm_client_communication::EmailTemplateInfo,
        crm_client_communication::EmailTemplateDetails,
        crm_client_communication::EmailStatus,
        crm_client_communication::EmailEvent,
        crm_client_communication::SentEmail,
        domain::ActivityPatch,
        domain::TaskPatch,
        domain::NewEmailTemplate,
        domain::PreviewRequest,
        domain::NewEmail,
        compose::Rendered,
        service::reports::ActivityReport,
        service::reports::Count,
        service::reports::OwnerCount,
        service::reports::NextActions,
        TimelineItem,
        crm_client_communication::NewWebhook,
        crm_client_communication::WebhookPatch,
        crm_client_communication::Webhook,
        crm_client_communication::WebhookWithSecret,
        crm_client_communication::WebhookDelivery,
        service::webhooks::DeliveryDetails,
        repo::webhooks::AttemptRecord,
        crm_client_communication::Sequence,
        crm_client_communication::SequenceStep,
        crm_client_communication::Enrollment,
        crm_client_communication::EnrollmentStep,
        crm_client_communication::Rule,
        crm_client_communication::RuleRun,
        automation::NewSequence,
        automation::NewSequenceStep,
        automation::NewEnrollment,
        automation::NewRule,
        automation::RuleTrigger,
        automation::RulePatch,
        crm_client_communication::Note,
        crm_client_communication::NewNote,
        crm_client_communication::NotePatch,
        crm_client_communication::Attachment,
        handlers::attachments::AttachmentUpload,
        crm_web::PageInfo,
    ))
)]
struct ApiDoc;

/// Routes and documented operations from ONE list (utoipa-axum): handlers sharing a path
/// are in one `routes!`.
fn api() -> OpenApiRouter<AppState> {
    use handlers::*;
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(activities::create_activity, activities::list_activities))
        .routes(routes!(activities::get_activity, activities::replace_activity, activities::patch_activity, activities::delete_activity))
        .routes(routes!(reports::contact_timeline))
        // The upload streams up to ATTACHMENT_MAX_BYTES, checked while streaming (413 in our
        // shape), so the router's body limit does not apply to it; its other parts are a few
        // bytes each, refused beyond that.
        .routes(routes!(attachments::upload_attachment, attachments::list_attachments).layer(axum::extract::DefaultBodyLimit::disable()))
        .routes(routes!(attachments::get_attachment, attachments::delete_attachment))
        .routes(routes!(attachments::download_attachment))
        .routes(routes!(reports::company_timeline))
        .routes(routes!(notes::create_note, notes::list_notes))
        .routes(routes!(notes::get_note, notes::patch_note, notes::delete_note))
        .routes(routes!(reports::activity_report))
        .routes(routes!(tasks::create_task, tasks::list_tasks))
        .routes(routes!(tasks::list_my_tasks))
        .routes(routes!(tasks::get_task, tasks::replace_task, tasks::patch_task, tasks::delete_task))
        .routes(routes!(templates::create_email_template, templates::list_email_templates))
        .routes(routes!(templates::get_email_template, templates::replace_email_template, templates::delete_email_template))
        .routes(routes!(templates::preview_email_template))
        .routes(routes!(emails::send_email))
        .routes(routes!(emails::get_email))
        .routes(routes!(tracking::track_open))
        .routes(routes!(tracking::track_click))
        .routes(routes!(sequences::create_sequence, sequences::list_sequences))
        .routes(routes!(sequences::get_sequence, sequences::replace_sequence, sequences::delete_sequence))
        .routes(routes!(sequences::enroll_contact, sequences::list_enrollments))
        .routes(routes!(sequences::get_enrollment, sequences::unenroll_contact))
        .routes(routes!(rules::create_rule, rules::list_rules))
        .routes(routes!(rules::get_rule, rules::replace_rule, rules::patch_rule, rules::delete_rule))
        .routes(routes!(rules::list_rule_runs))
        .routes(routes!(rules::retry_rule_run))
        .routes(routes!(unsubscribe::unsubscribe_page, unsubscribe::unsubscribe))
        .routes(routes!(webhooks::create_webhook, webhooks::list_webhooks))
        .routes(routes!(webhooks::get_webhook, webhooks::patch_webhook, webhooks::delete_webhook))
        .routes(routes!(webhooks::rotate_webhook_secret))
        .routes(routes!(webhooks::list_webhook_deliveries))
        .routes(routes!(webhooks::get_webhook_delivery))
        .routes(routes!(webhooks::redeliver_webhook_delivery))
}

/// The service's API routes (system routes and layers are added by the caller).
pub fn router(state: AppState) -> Router {
    api().split_for_parts().0.with_state(state)
}

/// The finished OpenAPI document as JSON.
pub fn openapi() -> serde_json::Value {
    crm_web::openapi::finish(api().split_for_parts().1, SERVICE)
}

/// The state of the service from the shared platform pieces, its settings and the name
/// caches its clients fill.
pub fn state(platform: &crm_runtime::Platform, settings: Settings, names: &Arc<NameScopes>) -> AppState {
    let tracker = Arc::new(tracking::Tracker::new(platform.config.jwt_secret.expose().as_bytes(), &settings.public_base_url));
    AppState {
        db: platform.db.clone(),
        auth: platform.auth.clone(),
        registry: platform.registry.clone(),
        cursors: platform.cursors.clone(),
        clients: settings.clients(names),
        mailer: settings.mailer(),
        webhook_runtime: Arc::new(webhook_delivery::WebhookRuntime::new(&settings.webhooks)),
        tenants: settings.tenant_client(),
        automation: Arc::new(service::scheduler::Automation::default()),
        tracker,
        settings: Arc::new(settings),
    }
}

/// Builds the service: its router and document, and its event consumers as tasks (started
/// by whoever serves it, not here).
pub fn build(platform: &crm_runtime::Platform, settings: Settings) -> Built {
    match &settings.smtp {
        Some(url) => tracing::info!(smtp = ?url, "emails are delivered through SMTP_URL"),
        None => tracing::info!(dir = %settings.sink_dir.display(), "SMTP_URL not set: emails are written to the local sink"),
    }
    // Contact, company, deal and user names cached per tenant, dropped by their events.
    let names = NameScopes::new(NameCacheConfig::default());
    let state = state(platform, settings, &names);
    let mut tasks: Vec<crm_runtime::Task> =
        consumers(&state, CONSUMER_PREFIX).into_iter().map(|(spec, handler)| platform.consumer_task(spec, handler)).collect();
    let (spec, handler) = consumers::webhook_consumer(&state, CONSUMER_PREFIX);
    tasks.push(platform.consumer_task(spec, handler));
    tasks.push(crm_runtime::Task { name: "webhook deliveries", future: Box::pin(webhook_delivery::run(state.clone(), platform.shutdown())) });
    let tenants = Arc::new(service::scheduler::ActiveTenants(platform.db.clone()));
    tasks.push(crm_runtime::Task { name: "automation", future: Box::pin(service::scheduler::run(state.clone(), tenants, platform.shutdown())) });
    let (files, shutdown) = (state.clone(), platform.shutdown());
    tasks.push(crm_runtime::Task {
        name: "attachment removals",
        future: Box::pin(async move {
            // The store is opened (the directory created, the S3 client built) before the
            // first upload; a store that cannot be opened is logged (uploads answer 500).
            if let Err(e) = files.settings.attachments.store.open().await {
                tracing::error!(error = %e, "the attachment store cannot be opened (ATTACHMENTS_URL)");
            }
            let tenants = Arc::new(service::scheduler::ActiveTenants(files.db.clone()));
            service::attachments::run_removals(files, tenants, shutdown).await
        }),
    });
    tasks.push(crm_runtime::Task { name: "name cache invalidation", future: Box::pin(names.follow(platform.nats.clone(), platform.shutdown())) });
    Built { name: SERVICE, router: router(state), openapi: openapi(), tasks }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operation of the router, as (method, documented path).
    const OPERATIONS: &[(&str, &str)] = &[
        ("post", "/api/v1/activities"),
        ("get", "/api/v1/activities"),
        ("get", "/api/v1/activities/{id}"),
        ("put", "/api/v1/activities/{id}"),
        ("patch", "/api/v1/activities/{id}"),
        ("delete", "/api/v1/activities/{id}"),
        ("get", "/api/v1/contacts/{id}/timeline"),
        ("post", "/api/v1/attachments"),
        ("get", "/api/v1/attachments"),
        ("get", "/api/v1/attachments/{id}"),
        ("delete", "/api/v1/attachments/{id}"),
        ("get", "/api/v1/attachments/{id}/content"),
        ("get", "/api/v1/companies/{id}/timeline"),
        ("post", "/api/v1/notes"),
        ("get", "/api/v1/notes"),
        ("get", "/api/v1/notes/{id}"),
        ("patch", "/api/v1/notes/{id}"),
        ("delete", "/api/v1/notes/{id}"),
        ("get", "/api/v1/reports/activities"),
        ("post", "/api/v1/tasks"),
        ("get", "/api/v1/tasks"),
        ("get", "/api/v1/tasks/mine"),
        ("get", "/api/v1/tasks/{id}"),
        ("put", "/api/v1/tasks/{id}"),
        ("patch", "/api/v1/tasks/{id}"),
        ("delete", "/api/v1/tasks/{id}"),
        ("post", "/api/v1/email-templates"),
        ("get", "/api/v1/email-templates"),
        ("get", "/api/v1/email-templates/{id}"),
        ("put", "/api/v1/email-templates/{id}"),
        ("delete", "/api/v1/email-templates/{id}"),
        ("post", "/api/v1/email-templates/{id}/preview"),
        ("post", "/api/v1/emails"),
        ("get", "/api/v1/emails/{id}"),
        ("get", "/api/v1/t/o/{file}"),
        ("get", "/api/v1/t/c/{token}"),
        ("post", "/api/v1/sequences"),
        ("get", "/api/v1/sequences"),
        ("get", "/api/v1/sequences/{id}"),
        ("put", "/api/v1/sequences/{id}"),
        ("delete", "/api/v1/sequences/{id}"),
        ("post", "/api/v1/sequences/{id}/enrollments"),
        ("get", "/api/v1/sequences/{id}/enrollments"),
        ("get", "/api/v1/sequences/{id}/enrollments/{enrollment_id}"),
        ("delete", "/api/v1/sequences/{id}/enrollments/{enrollment_id}"),
        ("post", "/api/v1/automation/rules"),
        ("get", "/api/v1/automation/rules"),
        ("get", "/api/v1/automation/rules/{id}"),
        ("put", "/api/v1/automation/rules/{id}"),
        ("patch", "/api/v1/automation/rules/{id}"),
        ("delete", "/api/v1/automation/rules/{id}"),
        ("get", "/api/v1/automation/rules/{id}/runs"),
        ("post", "/api/v1/automation/runs/{id}/retry"),
        ("get", "/api/v1/unsubscribe/{token}"),
        ("post", "/api/v1/unsubscribe/{token}"),
        ("post", "/api/v1/webhooks"),
        ("get", "/api/v1/webhooks"),
        ("get", "/api/v1/webhooks/{id}"),
        ("patch", "/api/v1/webhooks/{id}"),
        ("delete", "/api/v1/webhooks/{id}"),
        ("post", "/api/v1/webhooks/{id}/rotate-secret"),
        ("get", "/api/v1/webhooks/{id}/deliveries"),
        ("get", "/api/v1/webhooks/{id}/deliveries/{delivery_id}"),
        ("post", "/api/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver"),
    ];

    #[test]
    fn the_document_has_no_structural_faults() {
        let doc = openapi();
        assert_eq!(crm_web::openapi::faults(&doc), Vec::<String>::new());
    }

    #[test]
    fn every_route_has_its_document_entry() {
        let doc = openapi();
        let paths = doc["paths"].as_object().expect("paths");
        let mut documented = Vec::new();
        for (path, item) in paths {
            for method in item.as_object().expect("path item").keys() {
                documented.push((method.clone(), path.clone()));
                let op = &item[method];
                assert!(op["operationId"].as_str().is_some_and(|id| id.starts_with("communication_")), "{method} {path}: {op}");
                assert!(op["responses"].as_object().is_some_and(|r| r.keys().any(|s| s.starts_with('2') || s.starts_with('3'))), "{method} {path}");
            }
        }
        documented.sort();
        let mut expected: Vec<(String, String)> = OPERATIONS.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
        expected.sort();
        assert_eq!(documented, expected);
    }

    #[test]
    fn path_ids_are_declared_as_integers() {
        let doc = openapi();
        let params = doc["paths"]["/api/v1/activities/{id}"]["get"]["parameters"].as_array().expect("parameters");
        let id = params.iter().find(|p| p["name"] == "id").expect("id");
        assert_eq!((id["in"].as_str(), id["schema"]["type"].as_str()), (Some("path"), Some("integer")));
        let query = doc["paths"]["/api/v1/activities"]["get"]["parameters"].as_array().expect("parameters");
        assert!(query.iter().all(|p| p["in"] == "query"), "{query:?}");
    }

    #[test]
    fn settings_defaults_work_locally() {
        let s = Settings::default();
        assert_eq!(s.message_id_domain(), "crm.localhost");
        assert!(s.smtp.is_none());
        assert_eq!(s.sink_dir, PathBuf::from(".data/mail"));
        assert_eq!(s.app_base_url, s.public_base_url);
        assert_eq!(s.attachments.max_bytes, 25 * 1024 * 1024);
        assert_eq!(s.attachments.store.location(), &service::storage::Location::Local(".data/attachments".into()));
    }

    #[test]
    fn settings_name_the_variable_and_the_rule() {
        // Unset variables take their defaults.
        let s = Settings::from_env().expect("defaults");
        assert!(s.attachments.sweep >= std::time::Duration::from_secs(1));
        let rule = service::storage::Location::parse("ftp://files.example.com/x").unwrap_err();
        assert!(rule.contains("file://") && rule.contains("s3://"), "{rule}");
    }
}
