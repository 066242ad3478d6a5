//! The `crm` child process, an HTTP client for it, and the walkthrough's steps.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crm_testing::{NatsServer, TEST_JWT_SECRET, TEST_OPERATOR_TOKEN, TestDatabase, tail, temp_dir, wait_until};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

/// Upper bound of every wait on the platform (conditions are polled; this is the timeout).
pub const WAIT: Duration = Duration::from_secs(30);
/// Start-up: migrations of a fresh database, NATS connection, six listeners.
const START_WAIT: Duration = Duration::from_secs(60);
pub const PASSWORD: &str = "correct horse battery";

/// The services of `crm serve`, with their default ports and an endpoint any member may read
/// (`{tenant}` is replaced by the caller's tenant id).
pub const SERVICES: [(&str, u16, &str); 5] = [
    ("tenant", 8081, "/api/v1/tenants/{tenant}"),
    ("auth", 8080, "/api/v1/auth/me"),
    ("contact", 8082, "/api/v1/contacts"),
    ("deal", 8083, "/api/v1/deals"),
    ("communication", 8084, "/api/v1/activities"),
];
const SERVICE_URL_VARS: [&str; 5] =
    ["TENANT_SERVICE_URL", "AUTH_SERVICE_URL", "CONTACT_SERVICE_URL", "DEAL_SERVICE_URL", "COMMUNICATION_SERVICE_URL"];

/// Where the platform keeps its data and events.
pub struct Backends {
    pub database_url: String,
    pub nats_url: String,
    /// Extra environment of the child.
    pub env: Vec<(String, String)>,
}

/// A running `crm serve` (killed when dropped; its log is printed when the test panics).
pub struct Crm {
    child: Child,
    pub offset: u16,
    /// Temp dir with the child's log: removed on success, kept (and named) on failure.
    dir: PathBuf,
    log: PathBuf,
    pub http: reqwest::Client,
}

impl Crm {
    /// `crm serve` on a fresh database of the shared test server and a nats-server of the
    /// test's own (a shared NATS would share the durable consumers of every instance).
    pub async fn start() -> (Self, TestDatabase, NatsServer) {
        let db = TestDatabase::create("crm_e2e").await;
        let nats = NatsServer::start().await;
        let crm = Self::start_with(Backends { database_url: db.url.clone(), nats_url: nats.url(), env: vec![] }).await;
        (crm, db, nats)
    }

    /// Picks a port offset whose six ports are free, starts the child there, and waits until
    /// every port answers `/ready` 200. Another process may take a port between the check
    /// and the bind: then the child exits with "cannot listen" and the next offset is tried.
    pub async fn start_with(backends: Backends) -> Self {
        let mut last_log = String::new();
        for _attempt in 0..8 {
            let offset = pick_offset();
            let dir = temp_dir("crm-e2e");
            let log = dir.join("crm.log");
            let child = spawn(&backends, offset, &log);
            let http = reqwest::Client::builder().timeout(Duration::from_secs(15)).build().expect("HTTP client");
            let mut crm = Self { child, offset, dir, log, http };
            let started = Instant::now();
            match crm.wait_ready().await {
                Ok(()) => {
                    eprintln!("crm serve ready on offset {offset} in {:?}", started.elapsed());
                    return crm;
                }
                Err(why) if crm.log_tail().contains("cannot listen") => last_log = format!("{why}\n{}", crm.log_tail()),
                Err(why) => panic!("crm serve did not become ready: {why}\n--- crm log (tail) ---\n{}", crm.log_tail()),
            }
        }
        panic!("crm serve found no free ports in 8 attempts; last:\n{last_log}")
    }

    async fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_WAIT;
        let mut ports = self.ports();
        ports.push(self.port());
        for port in ports {
            loop {
                if let Ok(Some(status)) = self.child.try_wait() {
                    return Err(format!("crm serve exited ({status})"));
                }
                let ready = self.http.get(format!("http://127.0.0.1:{port}/ready")).timeout(Duration::from_secs(5)).send().await;
                if matches!(&ready, Ok(r) if r.status() == StatusCode::OK) {
                    break;
                }
                if Instant::now() >= deadline {
                    let detail = match ready {
                        Ok(r) => format!("{} {}", r.status(), r.text().await.unwrap_or_default()),
                        Err(e) => e.to_string(),
                    };
                    return Err(format!("port {port} not ready after {START_WAIT:?}: {detail}"));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        // Still ours: a port answered by another process would not keep this child alive.
        match self.child.try_wait() {
            Ok(Some(status)) => Err(format!("crm serve exited ({status})")),
            _ => Ok(()),
        }
    }

    /// The combined port (every service on one origin).
    pub fn port(&self) -> u16 {
        8000 + self.offset
    }

    /// The per-service ports, in [`SERVICES`] order.
    pub fn ports(&self) -> Vec<u16> {
        SERVICES.iter().map(|(_, port, _)| port + self.offset).collect()
    }

    /// `http://127.0.0.1:<combined port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port())
    }

    pub fn log_tail(&self) -> String {
        tail(&self.log, 60)
    }

    /// The combined-port API.
    pub fn api(&self) -> Api {
        Api { http: self.http.clone(), base: self.url() }
    }

    /// The API of one port.
    pub fn api_at(&self, port: u16) -> Api {
        Api { http: self.http.clone(), base: format!("http://127.0.0.1:{port}") }
    }

    /// Every per-service port plus the combined one, with the service's name.
    pub fn every_port(&self) -> Vec<(&'static str, u16, &'static str)> {
        let mut all: Vec<_> = SERVICES.iter().map(|(name, port, path)| (*name, port + self.offset, *path)).collect();
        all.push(("combined", self.port(), "/api/v1/contacts"));
        all
    }
}

impl Drop for Crm {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        if std::thread::panicking() {
            eprintln!(
                "--- crm serve log (tail; whole log: {}), offset {} ---\n{}\n--- end of crm log ---",
                self.log.display(),
                self.offset,
                tail(&self.log, 80)
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn spawn(backends: &Backends, offset: u16, log: &PathBuf) -> Child {
    let out = std::fs::File::create(log).expect("crm log file");
    let err = out.try_clone().expect("crm log file");
    let mut command = Command::new(env!("CARGO_BIN_EXE_crm"));
    command
        .arg("serve")
        .env_remove("CRM_PORT")
        .env_remove("PORT")
        .env("CRM_PORT_OFFSET", offset.to_string())
        .env("DATABASE_URL", &backends.database_url)
        .env("NATS_URL", &backends.nats_url)
        .env("JWT_SECRET", TEST_JWT_SECRET)
        .env("PLATFORM_ADMIN_TOKEN", TEST_OPERATOR_TOKEN)
        .env("BCRYPT_COST", "4")
        .env("LOG_LEVEL", "warn")
        .env("BIND_ADDR", "127.0.0.1")
        .env("MIGRATE_ON_START", "true")
        .env("TENANT_SIGNUP", "closed")
        .env("BASE_DOMAIN", "")
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .kill_on_drop(true);
    for ((_, port, _), var) in SERVICES.iter().zip(SERVICE_URL_VARS) {
        command.env(var, format!("http://127.0.0.1:{}", port + offset));
    }
    for (k, v) in &backends.env {
        command.env(k, v);
    }
    command.spawn().expect("start the crm binary")
}

/// An offset in 20000..24000 (ports 28000..32084: below the OS's ephemeral range, where
/// other tests' free ports come from) whose six ports are free right now.
fn pick_offset() -> u16 {
    for _ in 0..200 {
        let seed = crm_testing::unique_suffix().bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
        let offset = 20_000 + (seed % 4_000) as u16;
        let mut ports = vec![8000 + offset];
        ports.extend(SERVICES.iter().map(|(_, p, _)| p + offset));
        if ports.iter().all(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok()) {
            return offset;
        }
    }
    panic!("no port offset with six free ports")
}

/// A response: status and JSON body (`Null` when empty or not JSON).
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: StatusCode,
    pub body: Value,
}

impl Resp {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
}

#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
}

impl Api {
    pub async fn try_call(&self, method: Method, path: &str, token: Option<&str>, headers: &[(&str, &str)], body: Option<Value>) -> Result<Resp, reqwest::Error> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let bytes = resp.bytes().await?;
        Ok(Resp { status, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) })
    }

    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Resp {
        let what = format!("{method} {}{path}", self.base);
        self.try_call(method, path, token, &[], body).await.unwrap_or_else(|e| panic!("{what}: {e}"))
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.call(Method::POST, path, token, Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call(Method::PATCH, path, Some(token), Some(body)).await
    }

    /// POST that must answer 201; returns the created resource.
    pub async fn create(&self, path: &str, token: &str, body: Value) -> Value {
        let r = self.post(path, Some(token), body).await;
        assert_eq!(r.status, StatusCode::CREATED, "POST {path}: {}", r.body);
        r.body
    }
}

/// A logged-in user.
#[derive(Debug, Clone)]
pub struct Session {
    pub tenant_id: String,
    pub subdomain: String,
    pub email: String,
    pub user_id: i64,
    pub token: String,
    pub role: String,
}

/// Signs a tenant up (platform operator), registers its admin with the invitation, logs in.
pub async fn signup_admin(api: &Api, name: &str, subdomain: &str) -> Session {
    let email = format!("admin@{subdomain}.example");
    let r = api
        .post("/api/v1/tenants", Some(TEST_OPERATOR_TOKEN), json!({"name": name, "subdomain": subdomain, "admin_email": email}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "signup {subdomain}: {}", r.body);
    let tenant_id = r.body["tenant"]["id"].as_str().expect("tenant.id").to_owned();
    let invitation = r.body["invitation"]["token"].as_str().expect("invitation.token").to_owned();
    assert_eq!(r.body["invitation"]["role"], "admin", "{}", r.body);
    register_and_login(api, &tenant_id, subdomain, &email, &invitation).await
}

/// Invites `email` as `role` (as `inviter`), registers and logs the new user in.
pub async fn invite_user(api: &Api, inviter: &Session, email: &str, role: &str) -> Session {
    let r = api
        .post(&format!("/api/v1/tenants/{}/invitations", inviter.tenant_id), Some(&inviter.token), json!({"email": email, "role": role}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "invite {email}: {}", r.body);
    let invitation = r.body["token"].as_str().expect("invitation token").to_owned();
    register_and_login(api, &inviter.tenant_id, &inviter.subdomain, email, &invitation).await
}

async fn register_and_login(api: &Api, tenant_id: &str, subdomain: &str, email: &str, invitation: &str) -> Session {
    let r = api
        .post(
            "/api/v1/auth/register",
            None,
            json!({"invitation_token": invitation, "password": PASSWORD, "first_name": "Ada", "last_name": format!("Of {subdomain}")}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "register {email}: {}", r.body);
    let s = login(api, subdomain, email, PASSWORD).await;
    assert_eq!(s.status, StatusCode::OK, "login {email}: {}", s.body);
    session(tenant_id, subdomain, email, &s.body)
}

pub async fn login(api: &Api, subdomain: &str, email: &str, password: &str) -> Resp {
    api.post("/api/v1/auth/login", None, json!({"tenant": subdomain, "email": email, "password": password})).await
}

pub fn session(tenant_id: &str, subdomain: &str, email: &str, login: &Value) -> Session {
    Session {
        tenant_id: tenant_id.to_owned(),
        subdomain: subdomain.to_owned(),
        email: email.to_owned(),
        user_id: login["user"]["id"].as_i64().expect("user.id"),
        token: login["access_token"].as_str().expect("access_token").to_owned(),
        role: login["user"]["role"].as_str().unwrap_or_default().to_owned(),
    }
}

/// What the walkthrough created in one tenant.
#[derive(Debug, Clone)]
pub struct Pipeline {
    pub company: Value,
    pub contact: Value,
    pub deal: Value,
    pub activity: Value,
    pub task: Value,
}

/// Company -> contact -> deal -> PATCH closed_won -> the activity and follow-up task that
/// communication-service makes from `deal.closed_won`.
pub async fn close_a_deal(api: &Api, admin: &Session, label: &str) -> Pipeline {
    let company = api.create("/api/v1/companies", &admin.token, json!({"name": format!("{label} Corp")})).await;
    let contact = api
        .create(
            "/api/v1/contacts",
            &admin.token,
            json!({"first_name": "Peter", "last_name": label, "email": format!("peter@{}.example", label.to_lowercase()), "company_id": company["id"]}),
        )
        .await;
    let title = format!("{label} deal");
    let deal = api
        .create(
            "/api/v1/deals",
            &admin.token,
            json!({"title": title, "value": 4200.5, "company_id": company["id"], "primary_contact_id": contact["id"], "owner_id": admin.user_id}),
        )
        .await;
    let closed = api.patch(&format!("/api/v1/deals/{}", deal["id"]), &admin.token, json!({"stage": "closed_won"})).await;
    assert_eq!(closed.status, StatusCode::OK, "close {title}: {}", closed.body);
    assert_eq!(closed.body["stage"], "closed_won");
    let activity = wait_activity(api, &admin.token, &deal["id"]).await;
    let task = wait_task(api, &admin.token, &deal["id"]).await;
    Pipeline { company, contact, deal: closed.body, activity, task }
}

/// Waits for the "Deal closed won" activity of `deal_id`.
pub async fn wait_activity(api: &Api, token: &str, deal_id: &Value) -> Value {
    let path = format!("/api/v1/activities?deal_id={deal_id}");
    wait_until(&format!("the activity of deal {deal_id}"), WAIT, || async {
        let r = api.get(&path, token).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
        r.body["data"].as_array().and_then(|d| d.first().cloned())
    })
    .await
}

/// Waits for the follow-up task of `deal_id` among the caller's tasks.
pub async fn wait_task(api: &Api, token: &str, deal_id: &Value) -> Value {
    wait_until(&format!("the follow-up task of deal {deal_id}"), WAIT, || async {
        tasks_of(api, token, deal_id).await.into_iter().next()
    })
    .await
}

/// The caller's tasks on `deal_id` (`/tasks/mine`, every page).
pub async fn tasks_of(api: &Api, token: &str, deal_id: &Value) -> Vec<Value> {
    all_pages(api, "/api/v1/tasks/mine?limit=100", token).await.into_iter().filter(|t| &t["deal_id"] == deal_id).collect()
}

/// Every item of a list endpoint, following `next_cursor`.
pub async fn all_pages(api: &Api, path: &str, token: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = match &cursor {
            Some(c) => format!("{path}{}cursor={c}", if path.contains('?') { '&' } else { '?' }),
            None => path.to_owned(),
        };
        let r = api.get(&page, token).await;
        assert_eq!(r.status, StatusCode::OK, "{page}: {}", r.body);
        out.extend(r.body["data"].as_array().cloned().unwrap_or_default());
        match r.body["pagination"]["next_cursor"].as_str() {
            Some(next) if r.body["pagination"]["has_next"] == true => cursor = Some(next.to_owned()),
            _ => return out,
        }
    }
}
