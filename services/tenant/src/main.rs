//! tenant-service binary: wiring only.

use std::sync::Arc;

use crm_runtime::Platform;
use tenant_service::{ApiDoc, AppState, DEFAULT_PORT, SERVICE, TenantConfig};
use utoipa::OpenApi;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let platform = Platform::start(SERVICE).await?;
    let state = AppState {
        db: platform.db.clone(),
        auth: platform.auth.clone(),
        registry: platform.registry.clone(),
        cursors: platform.cursors.clone(),
        config: Arc::new(TenantConfig::from_env()?),
    };
    let router = platform.finish(SERVICE, tenant_service::router(state), serde_json::to_value(ApiDoc::openapi())?);
    platform.serve(SERVICE, router, DEFAULT_PORT).await?;
    Ok(())
}
