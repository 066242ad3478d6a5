//! deal-service binary: wiring only.

use crm_runtime::Platform;
use deal_service::{DEFAULT_PORT, SERVICE};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read first: a bad setting fails before anything starts.
    let settings = deal_service::Settings::from_env()?;
    let platform = Platform::start(SERVICE).await?;
    platform.run(deal_service::build(&platform, settings), DEFAULT_PORT).await?;
    Ok(())
}
