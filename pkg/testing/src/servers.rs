//! Servers of a test's own: a nats-server ([`NatsServer`]) and a PostgreSQL cluster
//! ([`PostgresServer`]) on free ports, with their data in a temporary directory, for tests
//! that stop and restart them (other tests keep using the shared ones meanwhile).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::wait_until;

const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A name no other test (process or thread) uses at the same time: `<prefix>-<pid>-<nanos>-<n>`.
pub fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    format!("{}-{nanos}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A port that was free a moment ago (the OS picks it from its ephemeral range).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind 127.0.0.1:0").port()
}

/// A new empty directory under the system temp dir.
pub fn temp_dir(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{prefix}-{}", unique_suffix()));
    std::fs::create_dir_all(&dir).expect("create a temp dir");
    dir
}

async fn wait_for_port(what: &str, port: u16) {
    wait_until(what, START_TIMEOUT, || async move { tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok().map(|_| ()) }).await
}

/// A nats-server of the test's own, on a free port, with its own JetStream store; killed
/// and its store removed when dropped.
pub struct NatsServer {
    pub port: u16,
    store: PathBuf,
    child: Option<Child>,
}

impl NatsServer {
    /// `/usr/sbin/nats-server` (or `NATS_SERVER_BIN`) with JetStream, on 127.0.0.1.
    pub async fn start() -> Self {
        let port = free_port();
        let store = temp_dir("crm-test-nats");
        let mut server = Self { port, store, child: None };
        server.restart().await;
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the server again on the same port and store (after [`Self::kill`]).
    pub async fn restart(&mut self) {
        let bin = std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| "/usr/sbin/nats-server".to_owned());
        let child = Command::new(&bin)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string(), "-js", "-sd"])
            .arg(&self.store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {bin}: {e}"));
        self.child = Some(child);
        wait_for_port("nats-server to accept connections", self.port).await;
    }

    /// Stops the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

/// A PostgreSQL cluster of the test's own (`initdb` into a temp dir, trust auth, user
/// `postgres`), listening on 127.0.0.1:<free port>; stopped and removed when dropped.
///
/// The binaries are taken from `PG_BIN_DIR`, else the newest `/usr/lib/postgresql/*/bin`,
/// else `PATH`. PostgreSQL refuses to run as root: as root, the commands run as the
/// `postgres` OS user (`runuser -u postgres`), which owns the temp dir.
pub struct PostgresServer {
    pub port: u16,
    dir: PathBuf,
    bin: PathBuf,
    as_postgres: bool,
    running: bool,
}

impl PostgresServer {
    /// `initdb` + start. Panics with the tool's output when either fails.
    pub async fn start() -> Self {
        let dir = temp_dir("crm-test-pg");
        let as_postgres = running_as_root();
        if as_postgres {
            run_checked(Command::new("chown").arg("postgres:").arg(&dir), "chown the cluster dir to postgres");
        }
        let mut server = Self { port: free_port(), dir, bin: pg_bin_dir(), as_postgres, running: false };
        let data = server.data_dir();
        let mut initdb = server.command("initdb");
        initdb.arg("-D").arg(&data).args(["-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"]);
        run_checked(&mut initdb, "initdb");
        server.restart().await;
        server
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The log file of the server (for failure messages).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("postgres.log")
    }

    /// `postgres://postgres@127.0.0.1:<port>/<database>`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    fn command(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn pg_ctl(&self, args: &[&str]) -> Command {
        let mut c = self.command("pg_ctl");
        c.arg("-D").arg(self.data_dir()).args(args);
        c
    }

    /// Starts the server (again) on the same port and data, and waits until it accepts connections.
    pub async fn restart(&mut self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            self.port,
            self.dir.display()
        );
        let mut start = self.pg_ctl(&["-w", "-t", "30", "-o", &options, "-l"]);
        start.arg(self.log_path()).arg("start");
        run_checked(&mut start, &format!("pg_ctl start (log: {})", self.log_path().display()));
        self.running = true;
        wait_for_port("PostgreSQL to accept connections", self.port).await;
    }

    /// `pg_ctl stop -m fast`: open connections are closed, the server is down on return.
    pub async fn stop(&mut self) {
        run_checked(&mut self.pg_ctl(&["-w", "-t", "30", "-m", "fast", "stop"]), "pg_ctl stop");
        self.running = false;
    }

    /// Creates `database` with the `pg_trgm` extension; returns its URL.
    pub async fn create_database(&self, database: &str) -> String {
        crate::database::create_database(&self.url("postgres"), database).await;
        self.url(database)
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        if self.running {
            let _ = self.pg_ctl(&["-m", "immediate", "stop"]).stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn running_as_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

fn pg_bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PG_BIN_DIR").filter(|d| !d.is_empty()) {
        return dir.into();
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin): &(u32, PathBuf)| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).unwrap_or_default()
}

fn run_checked(command: &mut Command, what: &str) {
    let out = command.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("{what}: cannot run {command:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{what} failed ({}): {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The last `lines` lines of a text file (for failure messages).
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
