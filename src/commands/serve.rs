//! `crm serve`: each service on its own port (as in production) plus one combined router.
//!
//! `CRM_PORT_OFFSET` (default 0) is added to every port it listens on: each service's
//! default port and the combined port (`--port` / `CRM_PORT`, default 8000). Several
//! instances then run side by side on one machine (the end-to-end tests do); point the
//! services at each other with the `*_SERVICE_URL` variables accordingly.

use axum::Router;
use crm_runtime::Platform;

use super::CmdResult;

/// One service of the platform: name, default port, API routes, OpenAPI document.
struct Service {
    name: &'static str,
    port: u16,
    api: Router,
    openapi: serde_json::Value,
}

fn services(platform: &Platform) -> Result<Vec<Service>, String> {
    Ok(vec![
        Service {
            name: tenant_service::SERVICE,
            port: tenant_service::DEFAULT_PORT,
            api: tenant_service::build(platform)?,
            openapi: tenant_service::openapi(),
        },
        Service {
            name: auth_service::SERVICE,
            port: auth_service::DEFAULT_PORT,
            api: auth_service::build(platform)?,
            openapi: auth_service::openapi(),
        },
        Service {
            name: contact_service::SERVICE,
            port: contact_service::DEFAULT_PORT,
            api: contact_service::build(platform)?,
            openapi: contact_service::openapi(),
        },
        Service {
            name: deal_service::SERVICE,
            port: deal_service::DEFAULT_PORT,
            api: deal_service::build(platform)?,
            openapi: deal_service::openapi(),
        },
        Service {
            name: communication_service::SERVICE,
            port: communication_service::DEFAULT_PORT,
            api: communication_service::build(platform)?,
            openapi: communication_service::openapi(),
        },
    ])
}

/// `CRM_PORT_OFFSET`: added to every port `crm serve` listens on.
fn port_offset() -> Result<u16, String> {
    match std::env::var("CRM_PORT_OFFSET") {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().map_err(|_| format!("CRM_PORT_OFFSET {v:?} is not a port offset (0-65535)")),
        _ => Ok(0),
    }
}

fn shifted(port: u16, offset: u16) -> Result<u16, String> {
    port.checked_add(offset).ok_or_else(|| format!("port {port} + CRM_PORT_OFFSET {offset} is above 65535"))
}

pub async fn run(port: u16, demo: bool) -> CmdResult {
    let offset = port_offset()?;
    let port = shifted(port, offset)?;
    let platform = Platform::start("crm").await?;
    let mut services = services(&platform)?;
    for service in &mut services {
        service.port = shifted(service.port, offset)?;
    }

    let mut combined = Router::new();
    let mut openapi = serde_json::json!({
        "openapi": "3.1.0",
        "info": {"title": "crm (all services)", "version": env!("CARGO_PKG_VERSION")},
        "paths": {},
        "components": {"schemas": {}},
    });
    let mut servers = tokio::task::JoinSet::new();
    for service in services {
        combined = combined.merge(service.api.clone());
        merge_openapi(&mut openapi, &service.openapi);
        let router = platform.finish(service.name, service.api, service.openapi);
        let listener = platform.bind(service.port).await?;
        tracing::info!(service = service.name, port = service.port, "listening");
        servers.spawn(crm_web_serve(router, listener, platform.clone()));
    }
    let combined = platform.finish("crm", combined, openapi);
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

/// Adds a service's paths and schemas to the combined document.
fn merge_openapi(into: &mut serde_json::Value, doc: &serde_json::Value) {
    for section in [&["paths"][..], &["components", "schemas"][..]] {
        let source = section.iter().try_fold(doc, |v, key| v.get(key)).and_then(|v| v.as_object());
        let target = section.iter().try_fold(&mut *into, |v, key| v.get_mut(key)).and_then(|v| v.as_object_mut());
        if let (Some(source), Some(target)) = (source, target) {
            target.extend(source.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
}
