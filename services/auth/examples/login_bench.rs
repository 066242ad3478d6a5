//! Login under load: does hashing passwords (bcrypt cost 12) slow down the other requests of
//! the same instance?
//!
//! Starts tenant-service and auth-service in this process (test database `crm_test`, local
//! NATS), registers a user, then measures `GET /api/v1/auth/me` latency (a cheap request:
//! token checks + one scoped read) from `ME_CLIENTS` sequential clients:
//!
//! 1. baseline: nothing else running;
//! 2. while `LOGINS` (default 20) clients log in back to back, for each hashing concurrency in
//!    `HASH_CONCURRENCY` (default: cores - 1, the service default; and all cores).
//!
//! Run: `cargo run --release -p crm-auth-service --example login_bench`
//! Env: `BENCH_SECS` (per phase, default 8), `LOGINS` (20), `ME_CLIENTS` (4), `BCRYPT_COST` (12).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use auth_service::{AppState, PasswordHasher, Settings};
use crm_client_tenant::{ClientConfig, HttpTenantClient};
use crm_testing::{TEST_OPERATOR_TOKEN, TestPlatform};
use serde_json::{Value, json};

const PASSWORD: &str = "bench password 123";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct Stats {
    count: usize,
    p50: f64,
    p99: f64,
    max: f64,
}

fn stats(mut ms: Vec<f64>) -> Stats {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms.get(((ms.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(f64::NAN);
    Stats { count: ms.len(), p50: at(0.5), p99: at(0.99), max: ms.last().copied().unwrap_or(f64::NAN) }
}

async fn serve_auth(platform: &TestPlatform, tenant_url: &str, concurrency: usize, cost: u32) -> String {
    let settings = Settings { bcrypt_cost: cost, hash_concurrency: concurrency, ..Settings::default() };
    let state = AppState::new(
        platform.db.clone(),
        platform.auth.clone(),
        platform.registry.clone(),
        platform.cursors.clone(),
        settings,
        Arc::new(HttpTenantClient::new(ClientConfig::new(tenant_url))),
    );
    platform.serve("auth-service", auth_service::router(state)).await
}

/// `ME_CLIENTS` sequential clients on /auth/me for `secs`; latencies in ms.
async fn measure_me(http: &reqwest::Client, url: &str, token: &str, clients: usize, secs: u64) -> Vec<f64> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, url, token) = (http.clone(), format!("{url}/api/v1/auth/me"), token.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            while Instant::now() < deadline {
                let started = Instant::now();
                let resp = http.get(&url).bearer_auth(&token).send().await.expect("me");
                assert!(resp.status().is_success(), "{}", resp.status());
                let _ = resp.bytes().await;
                out.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            out
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client task"));
    }
    all
}

#[tokio::main]
async fn main() {
    let secs: u64 = env_or("BENCH_SECS", 8);
    let logins: usize = env_or("LOGINS", 20);
    let me_clients: usize = env_or("ME_CLIENTS", 4);
    let cost: u32 = env_or("BCRYPT_COST", 12);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let default_concurrency = Settings::default().hash_concurrency;
    let mut concurrencies = vec![default_concurrency];
    if cores != default_concurrency {
        concurrencies.push(cores);
    }

    // One bcrypt hash on an idle core.
    let single = {
        let hasher = PasswordHasher::new(cost, 1);
        let _ = hasher.hash(PASSWORD).await;
        let started = Instant::now();
        for _ in 0..3 {
            let _ = hasher.hash(PASSWORD).await;
        }
        started.elapsed().as_secs_f64() * 1000.0 / 3.0
    };

    let platform = TestPlatform::start().await;
    let tenant_state = tenant_service::AppState::new(
        platform.db.clone(),
        platform.auth.clone(),
        platform.registry.clone(),
        platform.cursors.clone(),
        tenant_service::Settings::default(),
    );
    let tenant_url = platform.serve("tenant-service", tenant_service::router(tenant_state)).await;
    let http = reqwest::Client::builder().pool_max_idle_per_host(256).build().expect("client");

    let subdomain = format!("bench-{}", ulid::Ulid::generate().to_string().to_ascii_lowercase());
    let signup: Value = http
        .post(format!("{tenant_url}/api/v1/tenants"))
        .bearer_auth(TEST_OPERATOR_TOKEN)
        .json(&json!({"name": "Bench", "subdomain": subdomain, "admin_email": format!("admin@{subdomain}.io")}))
        .send()
        .await
        .expect("signup")
        .json()
        .await
        .expect("signup body");
    let invitation = signup["invitation"]["token"].as_str().expect("invitation").to_owned();

    println!("machine: {cores} cores; bcrypt cost {cost}: {single:.0} ms per hash on one core");
    println!("phases of {secs} s; {me_clients} sequential /auth/me clients; {logins} concurrent login clients\n");
    println!("| hashing slots | logins running | /auth/me requests | p50 ms | p99 ms | max ms | logins/s | logins/s per hashing core |");
    println!("|---|---|---|---|---|---|---|---|");

    let mut registered = false;
    for concurrency in concurrencies {
        let auth_url = serve_auth(&platform, &tenant_url, concurrency, cost).await;
        if !registered {
            let resp = http
                .post(format!("{auth_url}/api/v1/auth/register"))
                .json(&json!({"invitation_token": invitation, "password": PASSWORD, "first_name": "Bench", "last_name": "User"}))
                .send()
                .await
                .expect("register");
            assert!(resp.status().is_success(), "register: {}", resp.status());
            registered = true;
        }
        let login_body = json!({"email": format!("admin@{subdomain}.io"), "password": PASSWORD, "tenant": subdomain});
        let login: Value = http.post(format!("{auth_url}/api/v1/auth/login")).json(&login_body).send().await.expect("login").json().await.expect("body");
        let token = login["access_token"].as_str().expect("access token").to_owned();

        // Warm-up, then the baseline.
        measure_me(&http, &auth_url, &token, me_clients, 1).await;
        let base = stats(measure_me(&http, &auth_url, &token, me_clients, secs).await);
        println!("| {concurrency} | 0 | {} | {:.2} | {:.2} | {:.1} | - | - |", base.count, base.p50, base.p99, base.max);

        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let mut loaders = Vec::new();
        for _ in 0..logins {
            let (http, url, body, stop, done) = (http.clone(), format!("{auth_url}/api/v1/auth/login"), login_body.clone(), stop.clone(), done.clone());
            loaders.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let resp = http.post(&url).json(&body).send().await.expect("login");
                    if resp.status().is_success() {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    let _ = resp.bytes().await;
                }
            }));
        }
        // Let the queue fill before measuring.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = done.load(Ordering::Relaxed);
        let started = Instant::now();
        let loaded = stats(measure_me(&http, &auth_url, &token, me_clients, secs).await);
        let rate = (done.load(Ordering::Relaxed) - before) as f64 / started.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        for l in loaders {
            let _ = l.await;
        }
        println!(
            "| {concurrency} | {logins} | {} | {:.2} | {:.2} | {:.1} | {rate:.2} | {:.2} |",
            loaded.count,
            loaded.p50,
            loaded.p99,
            loaded.max,
            rate / concurrency.min(cores) as f64
        );
    }
}
