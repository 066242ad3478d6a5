pub mod console;
pub mod demo;
#[cfg(test)]
mod ingress_routes;
pub mod migrate;
pub mod serve;
pub mod tenant;

pub type CmdResult = Result<(), Box<dyn std::error::Error>>;

/// The operator bearer token, required by tenant administration.
pub fn operator_token() -> Result<String, String> {
    std::env::var("PLATFORM_ADMIN_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| "PLATFORM_ADMIN_TOKEN must be set (scripts/run.sh keeps one in .data/platform_admin_token)".into())
}
