//! deal-service binary: wiring only.

use crm_runtime::Platform;
use deal_service::{DEFAULT_PORT, SERVICE};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let platform = Platform::start(SERVICE).await?;
    let router = platform.finish(SERVICE, deal_service::build(&platform)?, deal_service::openapi());
    platform.serve(SERVICE, router, DEFAULT_PORT).await?;
    Ok(())
}
