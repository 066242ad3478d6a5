//! tenant-service binary: wiring only.

use crm_runtime::Platform;
use tenant_service::{DEFAULT_PORT, SERVICE};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let settings = tenant_service::Settings::from_env()?; // read first: a bad setting fails before anything starts
    let platform = Platform::start(SERVICE).await?;
    platform.run(tenant_service::build(&platform, settings), DEFAULT_PORT).await?;
    Ok(())
}
