//! `crm demo`: seeds the demo tenant into a running platform through its public API (the same
//! calls a frontend makes), then prints how to log in.

use serde_json::{Value, json};

use super::CmdResult;

pub const DEMO_SUBDOMAIN: &str = "demo";
pub const DEMO_PASSWORD: &str = "demo-password-2026";

struct Api {
    http: reqwest::Client,
    url: String,
}

impl Api {
    async fn post(&self, path: &str, bearer: Option<&str>, body: Value) -> Result<(reqwest::StatusCode, Value), reqwest::Error> {
        let mut req = self.http.post(format!("{}{path}", self.url)).json(&body);
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await?;
        let status = resp.status();
        Ok((status, resp.json().await.unwrap_or_default()))
    }

    /// A PUT that must succeed (e.g. a contact's consent).
    async fn put(&self, what: &str, path: &str, bearer: &str, body: Value) -> Result<Value, Box<dyn std::error::Error>> {
        let resp = self.http.put(format!("{}{path}", self.url)).bearer_auth(bearer).json(&body).send().await?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or_default();
        if status.is_success() { Ok(body) } else { Err(format!("{what}: {status} {body}").into()) }
    }

    async fn expect(&self, what: &str, path: &str, bearer: Option<&str>, body: Value) -> Result<Value, Box<dyn std::error::Error>> {
        let (status, body) = self.post(path, bearer, body).await?;
        if status.is_success() { Ok(body) } else { Err(format!("{what}: {status} {body}").into()) }
    }
}

pub async fn run(url: &str) -> CmdResult {
    let api = Api { http: reqwest::Client::new(), url: url.trim_end_matches('/').to_owned() };
    let operator = super::operator_token()?;
    let (status, body) = api
        .post(
            "/api/v1/tenants",
            Some(&operator),
            json!({"name": "Demo Company", "subdomain": DEMO_SUBDOMAIN, "admin_email": "admin@demo.example"}),
        )
        .await?;
    if status == reqwest::StatusCode::CONFLICT {
        println!("demo tenant '{DEMO_SUBDOMAIN}' already exists; log in as below (delete it with `crm tenant delete <id>` to re-seed)");
        print_login(&api.url);
        return Ok(());
    }
    if !status.is_success() {
        return Err(format!("creating the demo tenant: {status} {body}").into());
    }
    let tenant_id = body["tenant"]["id"].as_str().unwrap_or_default().to_owned();
    let admin = api
        .expect(
            "registering the admin",
            "/api/v1/auth/register",
            None,
            json!({"invitation_token": body["invitation"]["token"], "password": DEMO_PASSWORD, "first_name": "Ada", "last_name": "Admin"}),
        )
        .await?;
    let admin_token = admin["access_token"].as_str().unwrap_or_default().to_owned();
    for (role, first, last) in [("manager", "Max", "Manager"), ("sales_rep", "Sam", "Seller"), ("viewer", "Vic", "Viewer")] {
        let email = format!("{role}@demo.example");
        let invitation = api
            .expect("inviting a user", &format!("/api/v1/tenants/{tenant_id}/invitations"), Some(&admin_token), json!({"email": email, "role": role}))
            .await?;
        api.expect(
            "registering a user",
            "/api/v1/auth/register",
            None,
            json!({"invitation_token": invitation["token"], "password": DEMO_PASSWORD, "first_name": first, "last_name": last}),
        )
        .await?;
    }
    seed_crm_data(&api, &admin_token).await?;
    println!();
    println!("Demo tenant '{DEMO_SUBDOMAIN}' ({tenant_id}): one user per role, companies, contacts, a deal in every");
    println!("pipeline stage, activities, tasks, email templates, and the rule \"Deal won -> follow-up sequence\"");
    println!("(on: closing a deal as won enrolls its contact in the \"Customer follow-up\" sequence).");
    print_login(&api.url);
    Ok(())
}

/// Companies, contacts, a deal in every stage, activities, tasks and a template, created as
/// the admin through the same API a frontend uses.
async fn seed_crm_data(api: &Api, token: &str) -> CmdResult {
    let id = |v: &Value| v["id"].as_i64().unwrap_or_default();
    let companies = [("Globex", "manufacturing"), ("Initech", "software"), ("Umbrella", "pharma")];
    let people = [
        ("John", "Smith", "lead"),
        ("Jane", "Doe", "prospect"),
        ("Alice", "Martin", "customer"),
        ("Bob", "Stone", "lead"),
        ("Carol", "White", "prospect"),
        ("Dave", "Brown", "customer"),
    ];
    let mut contacts = Vec::new();
    for (i, (name, industry)) in companies.iter().enumerate() {
        let company = api.expect("creating a company", "/api/v1/companies", Some(token), json!({"name": name, "industry": industry})).await?;
        for (first, last, status) in &people[i * 2..i * 2 + 2] {
            let email = format!("{}.{}@{}.example", first.to_lowercase(), last.to_lowercase(), name.to_lowercase());
            let contact = api
                .expect(
                    "creating a contact",
                    "/api/v1/contacts",
                    Some(token),
                    json!({"first_name": first, "last_name": last, "email": email, "company_id": id(&company), "status": status}),
                )
                .await?;
            contacts.push((id(&contact), id(&company)));
        }
    }
    let stages = ["lead", "qualified", "proposal", "negotiation", "closed_won", "closed_lost"];
    for (i, stage) in stages.iter().enumerate() {
        let (contact, company) = contacts[i % contacts.len()];
        let deal = api
            .expect(
                "creating a deal",
                "/api/v1/deals",
                Some(token),
                json!({"title": format!("Demo deal {}", i + 1), "value": 5000 * (i + 1), "currency": "USD", "stage": stage,
                       "company_id": company, "primary_contact_id": contact}),
            )
            .await?;
        api.expect(
            "logging an activity",
            "/api/v1/activities",
            Some(token),
            json!({"type": "call", "subject": format!("Call about demo deal {}", i + 1), "status": "completed",
                   "contact_id": contact, "deal_id": id(&deal)}),
        )
        .await?;
    }
    let due = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    for (contact, _) in contacts.iter().take(3) {
        api.expect(
            "creating a task",
            "/api/v1/tasks",
            Some(token),
            json!({"title": "Send the proposal", "priority": "high", "due_date": due, "contact_id": contact}),
        )
        .await?;
    }
    let follow_up = api
        .expect(
            "creating an email template",
            "/api/v1/email-templates",
            Some(token),
            json!({"name": "Follow-up", "subject": "Following up, {{contact.first_name}}", "category": "follow_up",
                   "body_html": "<p>Hello {{contact.first_name}},</p><p>Thanks for your time. Best, {{user.first_name}}</p>"}),
        )
        .await?;
    seed_automation(api, token, &contacts, id(&follow_up)).await
}

/// The seed flow of issue 15 (seed 004: "deal won -> follow-up email sequence"): a welcome
/// template, the "Customer follow-up" sequence (welcome at once, the follow-up 3 days later)
/// and the rule "Deal won -> follow-up sequence", switched ON so the demo shows it. Demo
/// contacts opted in to marketing (the tenant's default policy is opt-in).
async fn seed_automation(api: &Api, token: &str, contacts: &[(i64, i64)], follow_up_template: i64) -> CmdResult {
    let id = |v: &Value| v["id"].as_i64().unwrap_or_default();
    for (contact, _) in contacts {
        api.put(
            "recording a contact's marketing consent",
            &format!("/api/v1/contacts/{contact}/consent"),
            token,
            json!({"status": "granted", "source": "demo seed: opted in at signup"}),
        )
        .await?;
    }
    let welcome = api
        .expect(
            "creating the welcome template",
            "/api/v1/email-templates",
            Some(token),
            json!({"name": "Welcome aboard", "subject": "Welcome aboard, {{contact.first_name}}", "category": "welcome",
                   "body_html": "<p>Hello {{contact.first_name}},</p><p>Welcome aboard! We are glad to work with {{company.name}}.</p><p>Best, the team</p>"}),
        )
        .await?;
    let sequence = api
        .expect(
            "creating the follow-up sequence",
            "/api/v1/sequences",
            Some(token),
            json!({"name": "Customer follow-up", "description": "After a won deal: a welcome at once, a follow-up three days later.",
                   "steps": [{"template_id": id(&welcome), "delay_hours": 0}, {"template_id": follow_up_template, "delay_hours": 72}]}),
        )
        .await?;
    api.expect(
        "creating the rule \"Deal won -> follow-up sequence\"",
        "/api/v1/automation/rules",
        Some(token),
        json!({"name": "Deal won -> follow-up sequence", "enabled": true, "trigger": {"event": "deal.closed_won"},
               "description": "Enrolls the primary contact of a won deal in the Customer follow-up sequence.",
               "actions": [{"type": "enroll_in_sequence", "sequence_id": id(&sequence)}]}),
    )
    .await?;
    Ok(())
}

/// The demo tenant's web console: `http://demo.<BASE_DOMAIN>` (with the API's port on a local
/// `localhost` base, which browsers resolve to loopback).
fn console_url(url: &str) -> String {
    let base = std::env::var("BASE_DOMAIN").ok().filter(|b| !b.is_empty()).unwrap_or_else(|| crm_runtime::DEFAULT_BASE_DOMAIN.to_owned());
    let port = url.rsplit_once(':').map(|(_, p)| p.trim_end_matches('/')).filter(|p| p.bytes().all(|b| b.is_ascii_digit()));
    match port {
        Some(port) if base == "localhost" || base.ends_with(".localhost") => format!("http://{DEMO_SUBDOMAIN}.{base}:{port}"),
        _ => format!("https://{DEMO_SUBDOMAIN}.{base}"),
    }
}

fn print_login(url: &str) {
    println!("  browser:  {}  (the web console: sign in as any user below)", console_url(url));
    println!("  users:    admin@demo.example, manager@demo.example, sales_rep@demo.example, viewer@demo.example");
    println!("  password: {DEMO_PASSWORD}");
    println!("  log in:   curl -s {url}/api/v1/auth/login -H 'content-type: application/json' \\");
    println!("              -d '{{\"tenant\": \"{DEMO_SUBDOMAIN}\", \"email\": \"admin@demo.example\", \"password\": \"{DEMO_PASSWORD}\"}}'");
}
