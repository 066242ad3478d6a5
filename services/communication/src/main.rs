//! communication-service binary: wiring only.

use communication_service::{DEFAULT_PORT, SERVICE, Settings};
use crm_runtime::Platform;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read first: a bad setting fails before anything starts.
    let settings = Settings::from_env()?;
    let platform = Platform::start(SERVICE).await?;
    platform.run(communication_service::build(&platform, settings), DEFAULT_PORT).await?;
    Ok(())
}
