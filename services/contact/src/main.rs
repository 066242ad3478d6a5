//! contact-service binary: wiring only.

use contact_service::{DEFAULT_PORT, SERVICE};
use crm_runtime::Platform;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read first: a bad setting fails before anything starts.
    let settings = contact_service::Settings::from_env()?;
    let platform = Platform::start(SERVICE).await?;
    platform.run(contact_service::build(&platform, settings), DEFAULT_PORT).await?;
    Ok(())
}
