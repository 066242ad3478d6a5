//! deal-service load generator: 10,000 deals in one tenant, then list-50-with-enrichment and
//! the pipeline view under 8, 16 and 32 concurrent clients (requests/s, p50/p95/p99), next
//! to a baseline of the same SQL run straight on the pool in the same process.
//!
//! ```text
//! psql -h 127.0.0.1 -U postgres -c 'drop database if exists crm_bench_deal with (force)' -c 'create database crm_bench_deal'
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_bench_deal \
//!   cargo run --release -p crm-deal-service --example deal_bench -- --enrich real
//! ```
//!
//! `--enrich mock`: names from in-process mock clients (measures deal-service alone);
//! `--enrich real`: the real auth-service and contact-service routers served on local ports
//! in this process and reached over HTTP (the production path, one batch request each).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use crm_client_auth::{AuthClient, HttpAuthClient, MockAuthClient, UserBasicInfo};
use crm_client_contact::{ContactClient, HttpContactClient, MockContactClient};
use crm_client_core::ClientConfig;
use crm_client_tenant::MockTenantClient;
use crm_tenant::{TenantDb, TenantId};
use crm_testing::TestPlatform;
use crm_web::Role;
use deal_service::{AppState, Lookups};

#[derive(Parser)]
struct Args {
    /// Deals seeded in the tenant.
    #[arg(long, default_value_t = 10_000)]
    deals: i32,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrent clients, comma-separated.
    #[arg(long, default_value = "8,16,32")]
    concurrency: String,
    /// `mock` or `real` auth-/contact-service.
    #[arg(long, default_value = "real")]
    enrich: String,
}

const COMPANIES: i32 = 500;
const CONTACTS: i32 = 2000;
const USERS: i32 = 20;

/// Seeds the tenant in one tenant-scoped transaction (`crm_tenant`: the search path is set
/// for the transaction only; no session-level `SET search_path`).
async fn seed(platform: &TestPlatform, tenant: &TenantId, deals: i32) {
    let started = Instant::now();
    let tx = platform.db.tenant(tenant).await.expect("tenant transaction");
    let statements = [
        format!(
            "INSERT INTO users (email, password_hash, first_name, last_name, role, status)
               SELECT 'user' || g || '@bench.example', 'x', 'Owner', 'No' || g, CASE WHEN g = 1 THEN 'admin' ELSE 'sales_rep' END, 'active'
               FROM generate_series(1, {USERS}) g"
        ),
        format!("INSERT INTO companies (name, created_by) SELECT 'Company ' || g, 1 FROM generate_series(1, {COMPANIES}) g"),
        format!(
            "INSERT INTO contacts (first_name, last_name, company_id, owner_id, created_by)
               SELECT 'Person', 'No' || g, 1 + g % {COMPANIES}, 1 + g % {USERS}, 1 FROM generate_series(1, {CONTACTS}) g"
        ),
        format!(
            "INSERT INTO deals (title, value, currency, stage_key, probability, expected_close_date, actual_close_date,
                                owner_id, company_id, primary_contact_id, created_by, created_at, updated_at)
               SELECT 'Deal ' || g, round((random() * 100000)::numeric, 2), 'USD', s.key, s.probability,
                      current_date + (g % 365 - 100), CASE WHEN s.kind <> 'open' THEN current_date - (g % 200) END,
                      1 + g % {USERS}, 1 + g % {COMPANIES}, 1 + g % {CONTACTS}, 1,
                      now() - make_interval(mins => g), now() - make_interval(secs => g)
               FROM generate_series(1, {deals}) g
               CROSS JOIN LATERAL (SELECT key, probability, kind FROM pipeline_stages ORDER BY position OFFSET g % 6 LIMIT 1) s"
        ),
        "INSERT INTO deal_stage_history (deal_id, to_stage, changed_by) SELECT id, stage_key, 1 FROM deals".to_owned(),
        "ANALYZE users, companies, contacts, deals, deal_stage_history".to_owned(),
    ];
    for sql in &statements {
        tx.execute(sql.as_str(), &[]).await.expect("seed");
    }
    tx.commit().await.expect("commit the seed");
    println!("seeded {deals} deals, {COMPANIES} companies, {CONTACTS} contacts, {USERS} users in {:.1} s", started.elapsed().as_secs_f64());
}

struct Stats {
    requests: usize,
    rps: f64,
    p50: f64,
    p95: f64,
    p99: f64,
}

/// Runs `op` from `clients` concurrent tasks for `seconds`.
async fn measure<F, Fut>(clients: usize, seconds: u64, op: F) -> Stats
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (op, stop) = (op.clone(), stop.clone());
            tokio::spawn(async move {
                let mut times = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    op().await;
                    times.push(t.elapsed());
                }
                times
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut times = Vec::new();
    for task in tasks {
        times.extend(task.await.expect("client task"));
    }
    let wall = started.elapsed().as_secs_f64();
    times.sort();
    let pct = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0;
    Stats { requests: times.len(), rps: times.len() as f64 / wall, p50: pct(0.50), p95: pct(0.95), p99: pct(0.99) }
}

fn row(label: &str, clients: usize, s: &Stats) {
    println!("| {label} | {clients} | {} | {:.0} | {:.2} | {:.2} | {:.2} |", s.requests, s.rps, s.p50, s.p95, s.p99);
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let platform = TestPlatform::start().await;
    let tenant = platform.provision_tenant().await;
    seed(&platform, &tenant, args.deals).await;
    let token = platform.token(&tenant, 1, Role::Admin);

    let timeout = Duration::from_secs(1);
    let (contacts, users): (Arc<dyn ContactClient>, Arc<dyn AuthClient>) = match args.enrich.as_str() {
        "mock" => {
            let contacts = MockContactClient::default();
            for i in 1..=COMPANIES {
                contacts.companies.lock().expect("lock").insert(i, bench_company(i));
            }
            for i in 1..=CONTACTS {
                contacts.contacts.lock().expect("lock").insert(i, bench_contact(i));
            }
            let mut users = MockAuthClient::default();
            for i in 1..=USERS {
                users = users.with_user(UserBasicInfo {
                    id: i,
                    email: format!("user{i}@bench.example"),
                    first_name: "Owner".into(),
                    last_name: format!("No{i}"),
                    role: "sales_rep".into(),
                });
            }
            (Arc::new(contacts), Arc::new(users))
        }
        "real" => {
            let auth_state = auth_service::AppState::new(
                platform.db.clone(),
                platform.auth.clone(),
                platform.registry.clone(),
                platform.cursors.clone(),
                auth_service::Settings { bcrypt_cost: 4, ..auth_service::Settings::default() },
                Arc::new(MockTenantClient::default()),
            );
            let auth_url = platform.serve(auth_service::SERVICE, auth_service::router(auth_state)).await;
            let contact_state = contact_service::AppState {
                db: platform.db.clone(),
                auth: platform.auth.clone(),
                cursors: platform.cursors.clone(),
                users: Arc::new(HttpAuthClient::new(ClientConfig::new(&auth_url))),
                settings: Arc::new(contact_service::Settings::default()),
            };
            let contact_url = platform.serve(contact_service::SERVICE, contact_service::router(contact_state)).await;
            let config = |url: &str| ClientConfig { timeout, ..ClientConfig::new(url) };
            (Arc::new(HttpContactClient::new(config(&contact_url))), Arc::new(HttpAuthClient::new(config(&auth_url))))
        }
        other => panic!("--enrich must be mock or real, got {other}"),
    };
    let state = AppState {
        db: platform.db.clone(),
        auth: platform.auth.clone(),
        cursors: platform.cursors.clone(),
        lookups: Arc::new(Lookups { contacts, users, timeout }),
    };
    let url = platform.serve(deal_service::SERVICE, deal_service::router(state)).await;
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build().expect("http client");

    // Sanity: a page is full and enriched.
    let page: serde_json::Value =
        http.get(format!("{url}/api/v1/deals?limit=50")).bearer_auth(&token).send().await.expect("list").json().await.expect("json");
    let data = page["data"].as_array().expect("data");
    assert_eq!(data.len(), 50, "{page}");
    assert!(data.iter().all(|d| d["company_name"].is_string() && d["owner_name"].is_string() && d["primary_contact_name"].is_string()), "{page}");
    println!("total_count {} ; enrich = {}", page["pagination"]["total_count"], args.enrich);

    let get = |path: &'static str| {
        let (http, url, token) = (http.clone(), url.clone(), token.clone());
        move || {
            let (http, url, token) = (http.clone(), url.clone(), token.clone());
            async move {
                let r = http.get(format!("{url}{path}")).bearer_auth(&token).send().await.expect("request");
                assert!(r.status().is_success(), "{path}: {}", r.status());
                r.bytes().await.expect("body");
            }
        }
    };
    let sql = |query: &'static str| {
        let (db, tenant) = (platform.db.clone(), tenant);
        move || {
            let db: TenantDb = db.clone();
            async move {
                let tx = db.tenant(&tenant).await.expect("tx");
                for q in query.split(";;") {
                    tx.query(q, &[]).await.expect("query");
                }
                tx.commit().await.expect("commit");
            }
        }
    };
    const LIST_SQL: &str = "SELECT d.id, d.title, d.description, (d.value * 100)::int8, d.currency, d.stage_key, d.probability, \
         d.expected_close_date, d.actual_close_date, d.owner_id, d.company_id, d.primary_contact_id, d.source, d.close_reason, \
         d.custom_fields, d.created_at, d.updated_at, d.created_by FROM deals d ORDER BY d.created_at DESC, d.id DESC LIMIT 51;; \
         SELECT count(*) FROM deals d";
    const PIPELINE_SQL: &str = "WITH agg AS (SELECT d.stage_key, count(*) AS n, sum(d.value) AS total, \
         sum(d.weighted_value) AS weighted FROM deals d GROUP BY d.stage_key) \
         SELECT s.key, coalesce(a.n, 0)::int8, coalesce(a.total, 0)::float8, coalesce(a.weighted, 0)::float8 \
         FROM pipeline_stages s LEFT JOIN agg a ON a.stage_key = s.key ORDER BY s.position";

    // Warm up connections and plans.
    measure(8, 1, get("/api/v1/deals?limit=50")).await;
    measure(8, 1, get("/api/v1/deals/pipeline")).await;

    println!("\n| scenario | clients | requests | req/s | p50 ms | p95 ms | p99 ms |");
    println!("|---|---|---|---|---|---|---|");
    for clients in args.concurrency.split(',').filter_map(|c| c.trim().parse::<usize>().ok()) {
        row("GET /deals?limit=50 (enriched)", clients, &measure(clients, args.seconds, get("/api/v1/deals?limit=50")).await);
        row(
            "GET /deals?limit=50&stage=proposal&sort=-value",
            clients,
            &measure(clients, args.seconds, get("/api/v1/deals?limit=50&stage=proposal&sort=-value")).await,
        );
        row("GET /deals/pipeline (10 per stage, enriched)", clients, &measure(clients, args.seconds, get("/api/v1/deals/pipeline")).await);
        row("GET /deals/pipeline?per_stage=0 (aggregates only)", clients, &measure(clients, args.seconds, get("/api/v1/deals/pipeline?per_stage=0")).await);
        row("baseline SQL: list page + count", clients, &measure(clients, args.seconds, sql(LIST_SQL)).await);
        row("baseline SQL: pipeline aggregate", clients, &measure(clients, args.seconds, sql(PIPELINE_SQL)).await);
    }
}

fn bench_company(id: i32) -> crm_client_contact::CompanyDetails {
    let now = chrono::Utc::now();
    serde_json::from_value(serde_json::json!({
        "id": id, "name": format!("Company {id}"), "domain": "", "industry": "", "size_category": "",
        "parent_company_id": null, "address": {}, "phone": "", "website": "", "custom_fields": {}, "tags": [],
        "created_at": now, "created_by": 1, "updated_at": now
    }))
    .expect("company")
}

fn bench_contact(id: i32) -> crm_client_contact::ContactDetails {
    let now = chrono::Utc::now();
    serde_json::from_value(serde_json::json!({
        "id": id, "first_name": "Person", "last_name": format!("No{id}"), "email": "", "phone": "", "job_title": "",
        "company_id": null, "company_name": null, "owner_id": null, "owner_name": null, "status": "lead", "source": "",
        "address": {}, "custom_fields": {}, "notes": "", "tags": [], "created_at": now, "created_by": 1, "updated_at": now
    }))
    .expect("contact")
}
