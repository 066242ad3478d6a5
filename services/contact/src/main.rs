//! contact-service binary: wiring only.

use contact_service::{DEFAULT_PORT, SERVICE};
use crm_runtime::Platform;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let platform = Platform::start(SERVICE).await?;
    let router = platform.finish(SERVICE, contact_service::build(&platform)?, contact_service::openapi());
    platform.serve(SERVICE, router, DEFAULT_PORT).await?;
    Ok(())
}
