//! `crm serve`: each service on its own port (as in production) plus one combined router.
//!
//! `CRM_PORT_OFFSET` (default 0) is added to every port it listens on: each service's
//! default port and the combined port (`--port` / `CRM_PORT`, default 8000). Several
//! instances then run side by side on one machine (the end-to-end tests do); point the
//! services at each other with the `*_SERVICE_URL` variables accordingly.
//!
//! The combined port also serves the web console at `/` (see [`super::console`]).

use axum::Router;
use crm_runtime::{Built, Platform, SettingsError, settings};

use super::CmdResult;

/// Every setting of the five services, read and validated once, before anything starts.
struct Settings {
    tenant: tenant_service::Settings,
    auth: auth_service::Settings,
    contact: contact_service::Settings,
    deal: deal_service::Settings,
    communication: communication_service::Settings,
    /// `CRM_PORT_OFFSET`: added to every port `crm serve` listens on.
    port_offset: u16,
}

impl Settings {
    fn from_env() -> Result<Self, SettingsError> {
        Ok(Self {
            tenant: tenant_service::Settings::from_env()?,
            auth: auth_service::Settings::from_env()?,
            contact: contact_service::Settings::from_env()?,
            deal: deal_service::Settings::from_env()?,
            communication: communication_service::Settings::from_env()?,
            port_offset: settings::number("CRM_PORT_OFFSET", 0, "must be a port offset (0-65535)")?,
        })
    }

    /// The five services, built, with their default ports.
    fn build(self, platform: &Platform) -> Vec<(Built, u16)> {
        vec![
            (tenant_service::build(platform, self.tenant), tenant_service::DEFAULT_PORT),
            (auth_service::build(platform, self.auth), auth_service::DEFAULT_PORT),
            (contact_service::build(platform, self.contact), contact_service::DEFAULT_PORT),
            (deal_service::build(platform, self.deal), deal_service::DEFAULT_PORT),
            (communication_service::build(platform, self.communication), communication_service::DEFAULT_PORT),
        ]
    }
}

fn shifted(port: u16, offset: u16) -> Result<u16, String> {
    port.checked_add(offset).ok_or_else(|| format!("port {port} + CRM_PORT_OFFSET {offset} is above 65535"))
}

pub async fn run(port: u16, demo: bool) -> CmdResult {
    let settings = Settings::from_env()?;
    let offset = settings.port_offset;
    let port = shifted(port, offset)?;
    let platform = Platform::start("crm").await?;

    let mut combined = Router::new();
    let mut openapi = serde_json::json!({
        "openapi": "3.1.0",
        "info": {"title": "crm (all services)", "version": env!("CARGO_PKG_VERSION")},
        "paths": {},
        "components": {"schemas": {}},
    });
    let mut servers = tokio::task::JoinSet::new();
    for (built, default_port) in settings.build(&platform) {
        let Built { name, router, openapi: doc, tasks } = built;
        platform.spawn_tasks(tasks);
        combined = combined.merge(router.clone());
        crm_web::openapi::merge(&mut openapi, &doc);
        let port = shifted(default_port, offset)?;
        let listener = platform.bind(port).await?;
        tracing::info!(service = name, port, "listening");
        servers.spawn(crm_web_serve(platform.finish(name, router, doc), listener, platform.clone()));
    }
    // The web console at `/`: a catch-all, so every API and system route above wins.
    let console_dir = super::console::dir_from_env();
    match &console_dir {
        Some(dir) => tracing::info!(dir = %dir.display(), "serving the web console"),
        None => tracing::warn!("the web console is not built (web/dist): run `npm ci && npm run build` in web/"),
    }
    let combined = platform.finish("crm", combined.merge(super::console::routes(console_dir)), openapi);
    let listener = platform.bind(port).await?;
    tracing::info!(port, "all services on one port");
    servers.spawn(crm_web_serve(combined, listener, platform.clone()));
    println!("crm: every service is up; all of them on http://{}:{port}", platform.config.bind_host);

    if demo {
        let url = format!("http://127.0.0.1:{port}");
        if let Err(e) = super::demo::run(&url).await {
            eprintln!("demo seeding failed: {e}");
        }
    }
    while let Some(result) = servers.join_next().await {
        result??;
    }
    Ok(())
}

async fn crm_web_serve(router: Router, listener: tokio::net::TcpListener, platform: Platform) -> Result<(), std::io::Error> {
    crm_web::serve(router, listener, platform.shutdown()).await
}
