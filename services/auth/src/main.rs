//! auth-service binary: wiring only.

use auth_service::{DEFAULT_PORT, SERVICE};
use crm_runtime::Platform;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let settings = auth_service::Settings::from_env()?; // read first: a bad setting fails before anything starts
    let platform = Platform::start(SERVICE).await?;
    platform.run(auth_service::build(&platform, settings), DEFAULT_PORT).await?;
    Ok(())
}
