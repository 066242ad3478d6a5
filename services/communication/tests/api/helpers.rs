//! Test app: communication-service's router on a free port over the test database and the
//! local NATS, its event consumers running, mock clients of auth, contact and deal services
//! (the tests with the real services are in `real_services.rs`), and a small SMTP server
//! receiving what the service sends. Requests go through `crm_testing::TestClient`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use communication_service::mailer::SmtpUrl;
use communication_service::tracking::Tracker;
use communication_service::{AppState, Clients, SERVICE, Settings, consumers};
use crm_client_auth::{AuthClient, MockAuthClient, UserBasicInfo};
use crm_client_contact::{CompanyDetails, ContactClient, ContactDetails, ContactStatus, MockContactClient};
use crm_client_deal::{DealClient, DealResponse, MockDealClient};
use crm_events::Envelope;
use crm_tenant::TenantId;
pub use crm_testing::{Response, TestClient, error_code};
use crm_testing::{TEST_JWT_SECRET, TestPlatform, TestTenants, start_consumers, wait_until};
use crm_web::Role;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

pub const WAIT: Duration = Duration::from_secs(15);
pub const ADMIN: i32 = 1;
pub const REP: i32 = 2;
pub const OTHER_REP: i32 = 3;
pub const VIEWER: i32 = 4;
/// Contacts, companies and deals the mocks know.
pub const ADA: i32 = 10;
pub const NO_EMAIL: i32 = 11;
pub const ACME: i32 = 100;
pub const BIG_DEAL: i32 = 20;
pub const PUBLIC_URL: &str = "https://crm.test";

pub struct TestApp {
    /// The service's URL; does not follow redirects (click tracking answers 302).
    pub client: TestClient,
    pub platform: TestPlatform,
    pub users: Arc<MockAuthClient>,
    pub contacts: Arc<MockContactClient>,
    pub deals: Arc<MockDealClient>,
    pub smtp: SmtpReceiver,
    pub tracker: Tracker,
    /// Tenants whose events this app's consumers apply (others belong to parallel tests).
    tenants: TestTenants,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The durable consumers of this app (the server drops them 2 minutes after the test).
    pub durables: Vec<String>,
    /// tenant-service's answers (tenant settings: the marketing consent policy).
    pub tenant_service: Arc<crm_client_tenant::MockTenantClient>,
    /// The service's state (to start another automation loop: a second instance).
    pub state: AppState,
    /// The tenants this app's automation loop sweeps.
    pub automation_tenants: Arc<Mutex<std::collections::HashSet<TenantId>>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// `app.get(..)`, `app.post(..)`, ...: requests to the service under test.
impl std::ops::Deref for TestApp {
    type Target = TestClient;
    fn deref(&self) -> &TestClient {
        &self.client
    }
}

pub struct Tenant {
    pub id: TenantId,
    pub admin: String,
}

/// How the app delivers email and reaches other services.
pub struct Options {
    pub sink_dir: Option<std::path::PathBuf>,
    /// Real clients instead of the mocks.
    pub clients: Option<Clients>,
    /// Short retry back-off and `max_deliver` of the consumers (poison message tests).
    pub fast_retries: bool,
    /// Run the automation poll loop (reminders, sequence steps, rule runs).
    pub scheduler: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self { sink_dir: None, clients: None, fast_retries: true, scheduler: true }
    }
}

/// The automation pace of the tests: quick ticks and sweeps, a retry back-off long enough
/// that a test sees a failed run before it is retried.
pub fn test_pace() -> communication_service::service::scheduler::Pace {
    communication_service::service::scheduler::Pace { poll: Duration::from_millis(100), sweep: Duration::from_secs(1), retry_base: Duration::from_secs(60) }
}

/// The attachment store of every test app: one directory per test database under the
/// system's temporary one, shared by the apps (keys are per tenant), so a second app finds
/// the first one's files, and a run on another database never sweeps these.
pub fn test_attachments() -> communication_service::service::attachments::AttachmentSettings {
    let url = std::env::var("DATABASE_URL").unwrap_or_default();
    let db: String = url.rsplit('/').next().unwrap_or_default().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    let store = communication_service::service::storage::Store::local(std::env::temp_dir().join(format!("crm-test-attachments-{db}")));
    communication_service::service::attachments::AttachmentSettings { store, ..Default::default() }
}

/// Starts an automation loop (one more "instance") on `state` over `tenants`.
pub fn start_scheduler(state: &AppState, tenants: &Arc<Mutex<std::collections::HashSet<TenantId>>>) -> tokio::task::JoinHandle<()> {
    let source = Arc::new(communication_service::service::scheduler::FixedTenants(tenants.clone()));
    tokio::spawn(communication_service::service::scheduler::run(state.clone(), source, std::future::pending()))
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

pub async fn spawn_app_with(options: Options) -> TestApp {
    let platform = TestPlatform::start().await;
    let smtp = SmtpReceiver::start().await;
    let users = Arc::new(MockAuthClient::default());
    let contacts = Arc::new(MockContactClient::default());
    let deals = Arc::new(MockDealClient::default());
    let clients = options.clients.unwrap_or_else(|| Clients {
        auth: users.clone() as Arc<dyn AuthClient>,
        contacts: contacts.clone() as Arc<dyn ContactClient>,
        deals: deals.clone() as Arc<dyn DealClient>,
    });
    let settings = Settings {
        public_base_url: PUBLIC_URL.into(),
        app_base_url: "https://app.crm.test".into(),
        smtp: options.sink_dir.is_none().then(|| SmtpUrl::parse(&smtp.url()).expect("SMTP URL")),
        sink_dir: options.sink_dir.clone().unwrap_or_default(),
        automation: test_pace(),
        attachments: test_attachments(),
        ..Settings::default()
    };
    let tenant_service = Arc::new(crm_client_tenant::MockTenantClient::default());
    let tracker = Tracker::new(TEST_JWT_SECRET.as_bytes(), PUBLIC_URL);
    let state = AppState {
        db: platform.db.clone(),
        auth: platform.auth.clone(),
        registry: platform.registry.clone(),
        cursors: platform.cursors.clone(),
        mailer: settings.mailer(),
        webhook_runtime: Arc::new(communication_service::webhook_delivery::WebhookRuntime::new(&settings.webhooks)),
        settings: Arc::new(settings),
        clients,
        tracker: Arc::new(tracker.clone()),
        tenants: tenant_service.clone(),
        automation: Arc::new(communication_service::service::scheduler::Automation::default()),
    };
    let tenants = TestTenants::default();
    let prefix = format!("test-comm-{}", ulid::Ulid::generate().to_string().to_ascii_lowercase());
    let consumers = consumers(&state, &prefix);
    let durables = consumers.iter().map(|(spec, _)| spec.durable_name.clone()).collect();
    let mut tasks = start_consumers(&platform, &tenants, consumers, options.fast_retries).await;
    let automation_tenants = Arc::new(Mutex::new(std::collections::HashSet::new()));
    if options.scheduler {
        tasks.push(start_scheduler(&state, &automation_tenants));
    }
    let url = platform.serve(SERVICE, communication_service::router(state.clone())).await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let client = TestClient { url, http };
    let app = TestApp { client, platform, users, contacts, deals, smtp, tracker, tenants, tasks, durables, tenant_service, state, automation_tenants };
    app.seed_mocks();
    app
}

pub fn user(id: i32, first: &str, last: &str, role: &str) -> UserBasicInfo {
    UserBasicInfo { id, email: format!("user{id}@example.com"), first_name: first.into(), last_name: last.into(), role: role.into() }
}

pub fn company(id: i32, name: &str) -> CompanyDetails {
    let now = chrono::Utc::now();
    CompanyDetails {
        id,
        name: name.into(),
        domain: String::new(),
        industry: String::new(),
        size_category: String::new(),
        parent_company_id: None,
        address: Default::default(),
        phone: String::new(),
        website: String::new(),
        custom_fields: Default::default(),
        tags: vec![],
        created_at: now,
        created_by: 1,
        updated_at: now,
    }
}

pub fn contact(id: i32, first: &str, last: &str, email: &str, company_id: Option<i32>) -> ContactDetails {
    let now = chrono::Utc::now();
    ContactDetails {
        id,
        first_name: first.into(),
        last_name: last.into(),
        email: email.into(),
        phone: "+1 555 0100".into(),
        job_title: "CTO".into(),
        company_id,
        company_name: company_id.map(|_| "Acme & Sons".into()),
        owner_id: Some(REP),
        owner_name: None,
        status: ContactStatus::Lead,
        source: String::new(),
        address: Default::default(),
        custom_fields: Default::default(),
        notes: String::new(),
        tags: vec![],
        marketing_consent: Default::default(),
        last_contacted_at: None,
        score: 0,
        created_at: now,
        created_by: 1,
        updated_at: now,
    }
}

pub fn deal(id: i32, title: &str) -> DealResponse {
    let now = chrono::Utc::now();
    DealResponse {
        id,
        title: title.into(),
        value: Some(5000.0),
        currency: "EUR".into(),
        probability: 50,
        stage: "proposal".into(),
        primary_contact_id: Some(ADA),
        company_id: Some(ACME),
        owner_id: Some(REP),
        expected_close_date: None,
        actual_close_date: None,
        deal_source: None,
        description: None,
        close_reason: None,
        custom_fields: Default::default(),
        created_at: now,
        updated_at: now,
        created_by: Some(ADMIN),
        primary_contact_name: None,
        company_name: Some("Acme & Sons".into()),
        owner_name: None,
        deal_age_days: 0,
        days_until_close: None,
        weighted_value: Some(2500.0),
        stage_history: None,
    }
}

impl TestApp {
    fn seed_mocks(&self) {
        let mut users = self.users.users.lock().unwrap();
        for u in [user(ADMIN, "Ann", "Admin", "admin"), user(REP, "Sam", "Rep", "sales_rep"), user(OTHER_REP, "Olga", "Other", "sales_rep"), user(VIEWER, "Vic", "Viewer", "viewer")] {
            users.insert(u.id, u);
        }
        self.contacts.companies.lock().unwrap().insert(ACME, company(ACME, "Acme & Sons"));
        let mut contacts = self.contacts.contacts.lock().unwrap();
        contacts.insert(ADA, contact(ADA, "Ada <b>", "Lovelace", "ada@example.com", Some(ACME)));
        contacts.insert(NO_EMAIL, contact(NO_EMAIL, "Nemo", "Nomail", "", None));
        self.deals.deals.lock().unwrap().insert(BIG_DEAL, deal(BIG_DEAL, "Big deal"));
    }

    /// A provisioned tenant (outbox relayed, events consumed by this app) and an admin token.
    pub async fn tenant(&self) -> Tenant {
        let id = self.platform.provision_tenant().await;
        self.adopt(&id);
        Tenant { admin: self.platform.token(&id, ADMIN, Role::Admin), id }
    }

    /// This app's consumers apply `tenant`'s events from now on.
    pub fn adopt(&self, tenant: &TenantId) {
        self.tenants.watch(tenant);
        self.automation_tenants.lock().unwrap().insert(*tenant);
    }

    pub fn token(&self, tenant: &Tenant, user_id: i32, role: Role) -> String {
        self.platform.token(&tenant.id, user_id, role)
    }

    pub fn fail_all(&self, error: crm_client_core::ClientError) {
        *self.users.fail_with.lock().unwrap() = Some(error.clone());
        *self.contacts.fail_with.lock().unwrap() = Some(error.clone());
        *self.deals.fail_with.lock().unwrap() = Some(error);
    }

    pub fn calls(&self) -> (usize, usize, usize) {
        (*self.users.calls.lock().unwrap(), self.contacts.calls(), self.deals.calls())
    }

    /// Rows of a tenant table matching `condition` (test assertions on what changed).
    pub async fn count(&self, tenant: &TenantId, table: &str, condition: &str) -> i64 {
        let client = self.platform.pool.get().await.expect("connection");
        let sql = format!("SELECT count(*) FROM {}.{table} WHERE {condition}", tenant.schema().quoted());
        client.query_one(&sql, &[]).await.expect("count").get(0)
    }

    /// The smallest id of a tenant table's rows matching `condition`.
    pub async fn first_id(&self, tenant: &TenantId, table: &str, condition: &str) -> i32 {
        let client = self.platform.pool.get().await.expect("connection");
        let sql = format!("SELECT min(id) FROM {}.{table} WHERE {condition}", tenant.schema().quoted());
        client.query_one(&sql, &[]).await.expect("min id").get::<_, Option<i32>>(0).unwrap_or_else(|| panic!("no row in {table} where {condition}"))
    }

    /// A request with extra headers (`If-Match`, `Host`, ...).
    pub async fn with_headers(&self, method: reqwest::Method, path: &str, token: &str, headers: &[(&str, &str)], body: Option<serde_json::Value>) -> Response {
        let mut req = self.client.builder(method, path, Some(token));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        self.client.send(req).await
    }

    /// Publishes an event straight into JetStream, as the relay does (`Nats-Msg-Id` = `msg_id`).
    pub async fn publish(&self, event: &Envelope, msg_id: &str) -> bool {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", msg_id);
        headers.insert(crm_events::TENANT_HEADER, event.tenant_id.as_str());
        let payload = serde_json::to_vec(event).expect("json");
        let ack = self
            .platform
            .jetstream
            .publish_with_headers(event.r#type.clone(), headers, payload.into())
            .await
            .expect("publish")
            .await
            .expect("publish ack");
        ack.duplicate
    }
}

pub fn field_error<'a>(r: &'a Response, field: &str) -> &'a str {
    r.body["details"]["fields"][field].as_str().unwrap_or_else(|| panic!("no error for {field}: {}", r.body))
}

/// One message received by [`SmtpReceiver`].
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub from: String,
    pub to: Vec<String>,
    /// The raw message (headers and body), dot-unstuffed.
    pub data: String,
}

impl ReceivedMail {
    /// The message with quoted-printable soft line breaks and escapes undone (good enough to
    /// find links and tokens in the text and HTML parts).
    pub fn decoded(&self) -> String {
        decode_quoted_printable(&self.data)
    }
}

pub fn decode_quoted_printable(raw: &str) -> String {
    let joined = raw.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(b) = hex {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A minimal SMTP server (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) keeping every
/// message it accepts.
pub struct SmtpReceiver {
    pub port: u16,
    pub mails: Arc<Mutex<Vec<ReceivedMail>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SmtpReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpReceiver {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind SMTP");
        let port = listener.local_addr().expect("addr").port();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let store = mails.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(session(socket, store.clone()));
            }
        });
        Self { port, mails, task }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Waits for a message to `to` whose decoded text contains `needle`.
    pub async fn wait_for(&self, to: &str, needle: &str) -> ReceivedMail {
        wait_until(&format!("an email to {to} containing {needle:?}"), WAIT, || async {
            self.mails.lock().unwrap().iter().find(|m| m.to.iter().any(|t| t == to) && m.decoded().contains(needle)).cloned()
        })
        .await
    }

    pub fn count_to(&self, to: &str) -> usize {
        self.mails.lock().unwrap().iter().filter(|m| m.to.iter().any(|t| t == to)).count()
    }
}

async fn session(socket: tokio::net::TcpStream, store: Arc<Mutex<Vec<ReceivedMail>>>) {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read);
    if write.write_all(b"220 test-smtp ESMTP ready\r\n").await.is_err() {
        return;
    }
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        match lines.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let command = line.trim_end().to_owned();
        let upper = command.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-test-smtp\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
        } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
            b"250 OK\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            from = address(&command[10..]);
            to.clear();
            b"250 OK\r\n"
        } else if upper.starts_with("RCPT TO:") {
            to.push(address(&command[8..]));
            b"250 OK\r\n"
        } else if upper.starts_with("RSET") {
            (from, to) = (String::new(), Vec::new());
            b"250 OK\r\n"
        } else if upper == "DATA" {
            if write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await.is_err() {
                return;
            }
            let mut data = String::new();
            loop {
                line.clear();
                match lines.read_line(&mut line).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
            }
            store.lock().unwrap().push(ReceivedMail { from: from.clone(), to: std::mem::take(&mut to), data });
            b"250 OK queued\r\n"
        } else if upper.starts_with("QUIT") {
            let _ = write.write_all(b"221 bye\r\n").await;
            return;
        } else {
            b"502 command not implemented\r\n"
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}

fn address(arg: &str) -> String {
    let arg = arg.trim();
    let inner = arg.split('>').next().unwrap_or(arg).trim_start_matches('<');
    inner.split_whitespace().next().unwrap_or("").to_owned()
}
