//! auth-service binary: wiring only.

use auth_service::{DEFAULT_PORT, SERVICE};
use crm_runtime::Platform;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let platform = Platform::start(SERVICE).await?;
    let router = platform.finish(SERVICE, auth_service::build(&platform)?, auth_service::openapi());
    platform.serve(SERVICE, router, DEFAULT_PORT).await?;
    Ok(())
}
