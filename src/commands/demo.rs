//! `crm demo`: seeds the demo tenant into a running platform through its public API.

use serde_json::json;

use super::CmdResult;

pub const DEMO_SUBDOMAIN: &str = "demo";

pub async fn run(url: &str) -> CmdResult {
    let http = reqwest::Client::new();
    let token = super::operator_token()?;
    let resp = http
        .post(format!("{url}/api/v1/tenants"))
        .bearer_auth(&token)
        .json(&json!({"name": "Demo Company", "subdomain": DEMO_SUBDOMAIN, "admin_email": "admin@demo.example"}))
        .send()
        .await?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    if status == reqwest::StatusCode::CONFLICT {
        println!("demo tenant '{DEMO_SUBDOMAIN}' already exists (delete it with `crm tenant delete <id>` to re-seed)");
        return Ok(());
    }
    if !status.is_success() {
        return Err(format!("creating the demo tenant: {status} {body}").into());
    }
    println!();
    println!("Demo tenant created: {} (id {})", body["tenant"]["name"], body["tenant"]["id"].as_str().unwrap_or("?"));
    println!("  subdomain:         {DEMO_SUBDOMAIN}");
    println!("  admin invitation:  {}", body["invitation"]["token"].as_str().unwrap_or("?"));
    println!("  tenant details:    curl -H 'Authorization: Bearer {token}' {url}/api/v1/tenants/{}", body["tenant"]["id"].as_str().unwrap_or("?"));
    println!("User registration and login (auth-service) are not part of this build yet: the invitation");
    println!("token above is what POST /api/v1/auth/register will take.");
    Ok(())
}
