//! contact-service benchmark: fuzzy search latency at 10k and 1M contacts in one tenant,
//! get-by-id and list-page throughput at 32 concurrent clients (next to a raw tokio-postgres
//! loop running the same SELECT), and CSV import throughput for 100k rows. Everything goes
//! through the real router with the production layers, over HTTP on loopback.
//!
//! ```text
//! cargo run --release -p crm-contact-service --example contact_bench -- [--sizes 10000,1000000] [--secs 10]
//! ```
//! Uses (creates if needed) the database `crm_bench_contact`, or `BENCH_DATABASE_URL`. Seeded
//! tenants are kept and reused by later runs (`--reseed` starts over).
//!
//! Tenant data is only ever reached through scoped transactions (`TenantDb::connect()` then
//! `.tenant(..)`, search path set transaction-locally), like request code; the raw pool is
//! used for the database itself, the platform registry and `VACUUM` (which cannot run in a
//! transaction; its table names are schema-qualified).

use std::sync::Arc;
use std::time::{Duration, Instant};

use contact_service::{AppState, SERVICE, Settings};
use crm_client_auth::{MockAuthClient, UserBasicInfo};
use crm_database::{DbConfig, Pool, create_pool, migrate};
use crm_tenant::{TenantDb, TenantId};
use crm_web::{AuthState, Claims, CorsConfig, CursorCodec, JwtKeys, Role, TokenType};

const FIRST: &str = "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara Richard Susan Joseph Jessica Thomas Sarah Christopher Karen Charles Lisa Daniel Nancy Matthew Betty Anthony Sandra Mark Margaret Donald Ashley Steven Kimberly Andrew Emily Paul Donna Joshua Michelle Kenneth Carol Kevin Amanda Brian Melissa George Deborah Timothy Stephanie Ronald Dorothy Jason Rebecca Edward Sharon Jeffrey Laura Ryan Cynthia Jacob Amy Gary Kathleen Nicholas Angela Eric Shirley Jonathan Brenda Stephen Emma Larry Anna Justin Pamela Scott Nicole Brandon Samantha Benjamin Katherine Samuel Christine Gregory Helen Alexander Debra Patrick Rachel Frank Carolyn Raymond Janet Jack Maria Dennis Catherine Jerry Heather Tyler Diane Aaron Olivia Jose Julie Adam Joyce Nathan Victoria Henry Ruth Zachary Virginia Douglas Lauren Peter Kelly Kyle Christina Noah Joan Ethan Evelyn Jeremy Judith Walter Andrea Christian Hannah Keith Megan Roger Cheryl Terry Jacqueline Austin Martha Sean Madison Gerald Teresa Carl Gloria Harold Sara Dylan Janice Arthur Ann Lawrence Kathryn Jordan Abigail Jesse Sophia Bryan Frances Billy Jean Bruce Alice Gabriel Judy Joe Isabella Logan Julia Alan Grace Juan Amber Albert Denise Willie Danielle Elijah Marilyn Wayne Beverly Randy Charlotte Vincent Natalie Mason Theresa Roy Diana Ralph Brittany Bobby Doris Russell Kayla Bradley Alexis Philip Lori Eugene Marie";
const LAST: &str = "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward Richardson Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo Sanders Patel Myers Long Ross Foster Jimenez Powell Jenkins Perry Russell Sullivan Bell Coleman Butler Henderson Barnes Gonzales Fisher Vasquez Simmons Romero Jordan Patterson Alexander Hamilton Graham Reynolds Griffin Wallace Moreno West Cole Hayes Bryant Herrera Gibson Ellis Tran Medina Aguilar Stevens Murray Ford Castro Marshall Owens Harrison Fernandez McDonald Woods Washington Kennedy Wells Vargas Henry Chen Freeman Webb Tucker Guzman Burns Crawford Olson Simpson Porter Hunter Gordon Mendez Silva Shaw Snyder Mason Dixon Munoz Hunt Hicks Holmes Palmer Wagner Black Robertson Boyd Rose Stone Salazar Fox Warren Mills Meyer Rice Schmidt Garza Daniels Ferguson Nichols Stephens Soto Weaver Ryan Gardner Payne Grant Dunn Kelley Spencer Hawkins Arnold Pierce Vazquez Hansen Peters Santos Hart Bradley Knight Elliott Cunningham Duncan Armstrong Hudson Carroll Lane Riley Andrews Alvarado Ray Delgado Berry Perkins Hoffman Johnston Matthews Pena Richards Contreras Willis Carpenter Lawrence Sandoval Guerrero George Chapman Rios Estrada Ortega Watkins Greene Nunez Wheeler Valdez Harper Burke Larson Santiago Maldonado Morrison Franklin Carlson Austin Dominguez Carr Lawson Jacobs Obrien Lynch Singh Vega Bishop Montgomery Oliver Jensen Harvey Williamson Gilbert Dean Sims Espinoza Howell Li Wong Reid Hanson Le McCoy Garrett Burton Fuller Wang Weber Welch Rojas Lucas Marquez Fields Park Yang Little Banks Padilla Day Walsh Bowman Schultz Luna Fowler Mejia Davidson Acosta Brewer May Holland Juarez Newman Pearson Curtis Cortez Douglas Schneider Joseph Barrett Navarro Figueroa Keller Avila Wade Molina Stanley Hopkins Campos Barnett Bates Chambers Caldwell Beck Lambert Miranda Byrd Craig Ayala Lowe Frazier Powers Neal Leonard Gregory Carrillo Sutton Fleming Rhodes Shelton Schwartz Norris Jennings Watts Duran Walters Cohen McDaniel Moran Parks Steele Vaughn Becker Holt Deleon Barker Terry Hale Leon Hail Benson Haynes Horton Miles Lyons Pham Graves Bush Thornton Wolfe Warner Cabrera McKinney Mann Zimmerman Dawson Lara Fletcher Page McCarthy Love Robles Cervantes Solis Erickson Reeves Chang Klein Salinas Fuentes Baldwin Daniel Simon Velasquez Hardy Higgins Aguirre Lin Cummings Chandler Sharp Barber Bowen Ochoa Dennis Robbins Liu Ramsey Francis Griffith Paul Blair Oconnor Cardenas Pacheco Cross Calderon Quinn Moss Swanson Chan Rivas Khan Rodgers Serrano Fitzgerald Rosales Stevenson Christensen Manning Gill Curry McLaughlin Harmon McGee Gross Doyle Garner Newton Burgess Reese Walton Blake Trujillo Adkins Brady Goodman Roman Webster Goodwin Fischer Huang Potter Delacruz Montoya Todd Wu Hines Mullins Castaneda Malone Cannon Tate Mack Sherman Hubbard Hodges Zhang Guerra Wolf Valencia Saunders Franco Rowe Gallagher Farmer Hammond Hampton Townsend Ingram Wise Gallegos Clarke Barton Schroeder Maxwell Waters Logan Camacho Strickland Norman Person Colon Parsons Frank Harrington Glover Osborne Buchanan Casey Floyd Patton Ibarra Ball Tyler Suarez Bowers Orozco Salas Cobb Gibbs Andrade Bauer Conner Moody Escobar McGuire Lloyd Mueller Hartman French Kramer McBride Pope Lindsey Velazquez Norton McCormick Sparks Flynn Yates Hogan Marsh Macias Villanueva Zamora Pratt Stokes Owen Ballard Lang Brock Villarreal Charles Drake Barrera Cain Patrick Pineda Burnett Mercado Santana Shepherd Bautista Ali Shaffer Lamb Trevino McKenzie Hess";
const COMPANY_WORDS: &str = "Acme Global Apex Summit Blue River Stone Bright North Star Pacific Atlas Vertex Nova Prime Pioneer Quantum Silver Golden Eagle Harbor Iron Maple Oak Pine Cedar Falcon Horizon Liberty Metro Urban Green Valley Crest Peak Delta Omega Alpha Sigma Titan Orion Phoenix Zenith Coastal Central United Royal Crown";
const COMPANY_KINDS: &str = "Systems Solutions Industries Labs Technologies Partners Group Holdings Logistics Consulting Media Foods Energy Health Capital Ventures Networks Software Dynamics Analytics";

const CLIENTS: usize = 32;

struct Args {
    sizes: Vec<i64>,
    secs: u64,
    reseed: bool,
}

fn args() -> Args {
    let mut a = Args { sizes: vec![10_000, 1_000_000], secs: 10, reseed: false };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        match argv[i].as_str() {
            "--sizes" => {
                a.sizes = argv[i + 1].split(',').map(|s| s.parse().expect("--sizes 10000,1000000")).collect();
                i += 1;
            }
            "--secs" => {
                a.secs = argv[i + 1].parse().expect("--secs N");
                i += 1;
            }
            "--reseed" => a.reseed = true,
            "--import-only" => a.sizes.clear(),
            other => panic!("unknown argument {other}"),
        }
        i += 1;
    }
    a
}

/// Tiny deterministic PRNG (xorshift), so runs pick comparable ids and queries.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0
}

struct Stats {
    name: String,
    n: usize,
    secs: f64,
    lat: Vec<Duration>,
    errors: usize,
}

impl Stats {
    fn line(&self) -> String {
        format!(
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} |",
            self.name,
            self.n,
            self.n as f64 / self.secs,
            pct(&self.lat, 0.5),
            pct(&self.lat, 0.95),
            pct(&self.lat, 0.99),
            self.errors
        )
    }
}

/// Runs `op` from `clients` tasks for `secs` seconds.
async fn load<F, Fut>(name: &str, clients: usize, secs: u64, op: F) -> Stats
where
    F: Fn(u64) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0;
            let mut i = (c as u64 + 1) * 7_919;
            while Instant::now() < deadline {
                i = i.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                let t = Instant::now();
                if !op(i >> 11).await {
                    errors += 1;
                }
                lat.push(t.elapsed());
            }
            (lat, errors)
        }));
    }
    let mut lat = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.expect("load task");
        lat.extend(l);
        errors += e;
    }
    let secs = start.elapsed().as_secs_f64();
    lat.sort();
    Stats { name: name.to_owned(), n: lat.len(), secs, lat, errors }
}

async fn ok(r: Result<reqwest::Response, reqwest::Error>) -> bool {
    match r {
        Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
        _ => false,
    }
}

async fn ensure_database(url: &str) {
    let (base, db) = url.rsplit_once('/').expect("database URL");
    let db = db.split('?').next().unwrap_or(db).to_owned();
    let (client, conn) = tokio_postgres::connect(&format!("{base}/postgres"), tokio_postgres::NoTls).await.expect("connect to postgres");
    tokio::spawn(conn);
    let exists = client.query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&db]).await.expect("pg_database").is_some();
    if !exists {
        client.batch_execute(&format!("CREATE DATABASE \"{db}\"")).await.expect("create database");
    }
}

async fn tenant_named(pool: &Pool, name: &str, reseed: bool) -> (TenantId, bool) {
    let client = pool.get().await.expect("connection");
    let row = client.query_opt("SELECT id FROM platform.tenants WHERE name = $1", &[&name]).await.expect("lookup");
    if let Some(row) = row {
        let id = TenantId::parse(row.get::<_, &str>(0)).expect("tenant id");
        if !reseed {
            return (id, false);
        }
        let tx_client = pool.get().await.expect("connection");
        tx_client.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", id.schema().as_str())).await.expect("drop schema");
        tx_client.execute("DELETE FROM platform.tenants WHERE id = $1", &[&id.to_string()]).await.expect("delete tenant");
        tx_client.execute("DELETE FROM platform.schema_versions WHERE schema_name = $1", &[&id.schema().as_str()]).await.expect("versions");
    }
    let id = TenantId::new();
    let mut client = pool.get().await.expect("connection");
    let tx = client.transaction().await.expect("begin");
    tx.execute(
        "INSERT INTO platform.tenants (id, name, subdomain, schema_name) VALUES ($1, $2, $3, $4)",
        &[&id.to_string(), &name, &format!("b-{}", id.to_string().to_ascii_lowercase()), &id.schema().as_str()],
    )
    .await
    .expect("tenant row");
    migrate::provision_schema(tx.client(), id.schema().as_str()).await.expect("provision");
    tx.commit().await.expect("commit");
    (id, true)
}

/// Companies and contacts generated server-side (INSERT ... SELECT), through the real
/// triggers (search words, vocabulary): one scoped transaction for the companies and one per
/// chunk of contacts, each seeding `random()` itself (each may run on another pooled
/// connection), so the data is the same on every run.
async fn seed(pool: &Pool, db: &TenantDb, tenant: &TenantId, contacts: i64) {
    let companies = (contacts / 50).max(100);
    let t = Instant::now();
    let tx = db.tenant(tenant).await.expect("begin");
    tx.execute(
        "INSERT INTO companies (name, industry, created_by)
         SELECT w[1 + (g * 7919) % array_length(w, 1)] || ' ' || w[1 + (g * 104729) % array_length(w, 1)] || ' '
                || k[1 + g % array_length(k, 1)] || ' ' || g, k[1 + g % array_length(k, 1)], 1
         FROM generate_series(1, $1::int8) g, (SELECT string_to_array($2, ' ') w, string_to_array($3, ' ') k) a",
        &[&companies, &COMPANY_WORDS, &COMPANY_KINDS],
    )
    .await
    .expect("companies");
    tx.commit().await.expect("commit companies");
    let chunk = 100_000i64;
    let mut done = 0;
    while done < contacts {
        let n = chunk.min(contacts - done);
        let tx = db.tenant(tenant).await.expect("begin");
        let seed = 0.42 - (done / chunk) as f64 * 1e-3;
        tx.execute("SELECT setseed($1)", &[&seed]).await.expect("setseed");
        tx.execute(
            "INSERT INTO contacts (first_name, last_name, email, phone, company_id, owner_id, status, created_by, created_at)
             SELECT f, l, lower(f || '.' || l || g || '@' || (ARRAY['gmail.com','yahoo.com','outlook.com','example.com','acme.io','corp.net'])[1 + g % 6]),
                    '+1 555 ' || lpad((g % 10000)::text, 4, '0'), 1 + (g % $4::int8)::int4, 1 + (g % 10)::int4,
                    (ARRAY['lead','lead','prospect','customer','churned'])[1 + g % 5], 1, now() - make_interval(secs => g)
             FROM (SELECT g, fa[1 + floor(random() * array_length(fa, 1))::int] f, la[1 + floor(random() * array_length(la, 1))::int] l
                   FROM generate_series($1::int8, $2::int8) g, (SELECT string_to_array($3, ' ') fa, string_to_array($5, ' ') la) a) s",
            &[&(done + 1), &(done + n), &FIRST, &companies, &LAST],
        )
        .await
        .expect("contacts");
        tx.commit().await.expect("commit contacts");
        done += n;
        eprintln!("  seeded {done}/{contacts} contacts ({:.0} s)", t.elapsed().as_secs_f64());
    }
    // VACUUM cannot run inside a transaction: a raw connection, schema-qualified names.
    let client = pool.get().await.expect("connection");
    for table in ["contacts", "companies", "contact_search_terms"] {
        client.batch_execute(&format!("VACUUM ANALYZE {}.{table}", tenant.schema().as_str())).await.expect("vacuum");
    }
    eprintln!("  seeded in {:.0} s", t.elapsed().as_secs_f64());
}

/// Search queries from real rows: a full name with a transposition typo in the last name,
/// a last name alone, a first-name prefix + last name, an email, a company name.
async fn queries(db: &TenantDb, tenant: &TenantId, n: usize) -> Vec<String> {
    let tx = db.tenant(tenant).await.expect("begin");
    let rows = tx
        .query(
            "SELECT c.first_name, c.last_name, c.email, co.name FROM contacts c JOIN companies co ON co.id = c.company_id
             ORDER BY md5(c.id::text) LIMIT $1",
            &[&(n as i64)],
        )
        .await
        .expect("sample");
    tx.commit().await.expect("commit");
    rows.iter()
        .enumerate()
        .map(|(i, r)| {
            let (first, last, email, company): (String, String, String, String) = (r.get(0), r.get(1), r.get(2), r.get(3));
            match i % 5 {
                0 => {
                    let mut chars: Vec<char> = last.chars().collect();
                    if chars.len() > 3 {
                        chars.swap(1, 2);
                    }
                    format!("{first} {}", chars.into_iter().collect::<String>())
                }
                1 => last,
                2 => format!("{} {last}", &first[..first.len().min(3)]),
                3 => email,
                _ => company.split(' ').take(2).collect::<Vec<_>>().join(" "),
            }
        })
        .collect()
}

fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

#[tokio::main]
async fn main() {
    let args = args();
    let url = std::env::var("BENCH_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/crm_bench_contact".into());
    ensure_database(&url).await;
    {
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("connect");
        tokio::spawn(conn);
        client
            .batch_execute("CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public; CREATE EXTENSION IF NOT EXISTS unaccent WITH SCHEMA public")
            .await
            .expect("pg_trgm, unaccent");
    }
    let config = DbConfig { url: url.clone(), ..DbConfig::default() }.with_application_name("contact-bench");
    let max_conn = config.max_connections;
    let pool = create_pool(&config).expect("pool");
    migrate::migrate_platform(&pool).await.expect("platform schema");

    let auth = AuthState::new(JwtKeys::new(b"contact-bench-secret-0123456789-0123456789", "crm"));
    let keys = auth.keys.clone();
    let mut users = MockAuthClient::default();
    for id in 1..=10 {
        users = users.with_user(UserBasicInfo { id, email: format!("u{id}@x.io"), first_name: format!("User{id}"), last_name: "Bench".into(), role: "sales_rep".into() });
    }
    let db = TenantDb::new(pool.clone());
    let state = AppState {
        db: db.clone(),
        auth,
        cursors: Arc::new(CursorCodec::new(b"bench")),
        users: Arc::new(users),
        settings: Arc::new(Settings::default()),
    };
    let router = crm_web::finish_router(contact_service::router(state), SERVICE, CorsConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(crm_web::serve(router, listener, std::future::pending()));
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build().expect("http client");
    println!("machine: {} cores; pool {max_conn} connections; {CLIENTS} clients; {} s per measurement", std::thread::available_parallelism().map_or(0, |n| n.get()), args.secs);

    for &size in &args.sizes {
        let (tenant, fresh) = tenant_named(&pool, &format!("contact-bench-{size}"), args.reseed).await;
        if fresh {
            eprintln!("seeding {size} contacts into {}", tenant.schema().as_str());
            seed(&pool, &db, &tenant, size).await;
        }
        let token = keys.issue(&Claims::new(TokenType::Access, 1, tenant, "u1@x.io", Role::Admin, "crm", Duration::from_secs(86_400))).expect("token");
        let qs = Arc::new(queries(&db, &tenant, 500).await);
        println!("\n## {size} contacts (tenant {})\n", tenant.schema().as_str());
        println!("| measurement | requests | req/s | p50 ms | p95 ms | p99 ms | errors |\n|---|---|---|---|---|---|---|");

        // Search latency: one client (the latency a user sees), then 8 clients.
        for clients in [1, 8] {
            let (http, base, token, qs) = (http.clone(), base.clone(), token.clone(), qs.clone());
            let stats = load(&format!("search, {clients} client(s)"), clients, args.secs, move |i| {
                let (http, base, token, qs) = (http.clone(), base.clone(), token.clone(), qs.clone());
                async move {
                    let q = &qs[(i % qs.len() as u64) as usize];
                    let r = http.get(format!("{base}/api/v1/contacts?search={}&count=false", encode(q))).bearer_auth(&token).send().await;
                    ok(r).await
                }
            })
            .await;
            println!("{}", stats.line());
        }
        // Recall of the typo queries: is the seeded contact's full name in the first page?
        let mut hits = 0;
        let mut total = 0;
        for q in qs.iter().step_by(5).take(40) {
            total += 1;
            let body: serde_json::Value = http.get(format!("{base}/api/v1/contacts?search={}", encode(q))).bearer_auth(&token).send().await.expect("search").json().await.expect("json");
            let first = q.split(' ').next().unwrap_or_default();
            if body["data"].as_array().is_some_and(|d| d.iter().any(|c| c["first_name"] == first)) {
                hits += 1;
            }
        }
        println!("| typo queries with the first name in page 1 | {hits}/{total} | | | | | |");

        let (http2, base2, token2) = (http.clone(), base.clone(), token.clone());
        let stats = load("GET /contacts/{id}", CLIENTS, args.secs, move |i| {
            let (http, base, token) = (http2.clone(), base2.clone(), token2.clone());
            async move {
                let id = 1 + i % size as u64;
                let r = http.get(format!("{base}/api/v1/contacts/{id}")).bearer_auth(&token).send().await;
                ok(r).await
            }
        })
        .await;
        println!("{}", stats.line());

        // The same scoped SELECT without HTTP/JSON/enrichment: BEGIN, set_config (local),
        // SELECT, COMMIT, through crm_tenant's scoped transaction.
        let scoped_db = db.clone();
        let stats = load("scoped transaction without HTTP, same SELECT", CLIENTS, args.secs, move |i| {
            let db = scoped_db.clone();
            async move {
                let Ok(tx) = db.tenant(&tenant).await else { return false };
                let Ok(stmt) = tx
                    .prepare_cached(
                        "SELECT c.id, c.first_name, c.last_name, c.email, c.phone, c.job_title, c.company_id, c.owner_id, c.status, c.source,
                            c.street_address, c.city, c.state, c.country, c.postal_code, c.custom_fields, c.notes, c.tags, c.created_at,
                            c.created_by, c.updated_at, co.name FROM contacts c LEFT JOIN companies co ON co.id = c.company_id WHERE c.id = $1",
                    )
                    .await
                else {
                    return false;
                };
                let id = (1 + i % size as u64) as i32;
                tx.query_opt(&stmt, &[&id]).await.is_ok() && tx.commit().await.is_ok()
            }
        })
        .await;
        println!("{}", stats.line());

        for (label, query) in [("GET /contacts?limit=50&count=false", "limit=50&count=false"), ("GET /contacts?limit=50 (with total_count)", "limit=50")] {
            let (http, base, token) = (http.clone(), base.clone(), token.clone());
            let stats = load(label, CLIENTS, args.secs, move |i| {
                let (http, base, token) = (http.clone(), base.clone(), token.clone());
                let status = ["lead", "prospect", "customer"][(i % 3) as usize];
                let owner = 1 + i % 10;
                let q = match i % 3 {
                    0 => query.to_owned(),
                    1 => format!("{query}&status={status}"),
                    _ => format!("{query}&owner_id={owner}&sort=last_name"),
                };
                async move {
                    let r = http.get(format!("{base}/api/v1/contacts?{q}")).bearer_auth(&token).send().await;
                    ok(r).await
                }
            })
            .await;
            println!("{}", stats.line());
        }
    }

    // Import: 100k rows (10% duplicates of earlier rows, 1% invalid emails) into a fresh tenant.
    let (tenant, _) = tenant_named(&pool, "contact-bench-import", true).await;
    let token = keys.issue(&Claims::new(TokenType::Access, 1, tenant, "u1@x.io", Role::Admin, "crm", Duration::from_secs(86_400))).expect("token");
    let first: Vec<&str> = FIRST.split(' ').collect();
    let last: Vec<&str> = LAST.split(' ').collect();
    let companies: Vec<&str> = COMPANY_WORDS.split(' ').collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut csv = String::from("first_name,last_name,email,phone,company,status,city,tags\n");
    for i in 0..100_000u64 {
        let (f, l) = (first[rng.below(first.len() as u64) as usize], last[rng.below(last.len() as u64) as usize]);
        let n = if i % 10 == 9 { i - 5 } else { i };
        let email = if i % 100 == 42 { "broken-email".to_owned() } else { format!("person{n}@import.example") };
        let company = format!("{} {}", companies[rng.below(companies.len() as u64) as usize], ["Inc", "LLC", "GmbH"][(i % 3) as usize]);
        csv.push_str(&format!("{f},{l},{email},+1 555 {:04},{company},lead,Springfield,\"a,b\"\n", i % 10_000));
    }
    let bytes = csv.len();
    let t = Instant::now();
    let r = http
        .post(format!("{base}/api/v1/contacts/import"))
        .bearer_auth(&token)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .expect("import");
    let status = r.status();
    let report: serde_json::Value = r.json().await.unwrap_or_default();
    let secs = t.elapsed().as_secs_f64();
    println!("\n## CSV import\n\n100,000 rows ({:.1} MB): HTTP {status} in {secs:.2} s = {:.0} rows/s; report: rows {} created {} skipped {} failed {} companies_created {}",
        bytes as f64 / 1e6, 100_000.0 / secs, report["rows"], report["created"], report["skipped"], report["failed"], report["companies_created"]);
    let rss = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = rss.lines().find(|l| l.starts_with("VmHWM")).unwrap_or("VmHWM: ?").to_owned();
    println!("\nbench process peak RSS (server + load generator + the 100k-row CSV held by the client): {}", hwm.trim_start_matches("VmHWM:").trim());
}
