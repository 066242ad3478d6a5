//! `crm`: the whole platform in one binary, and its operator CLI.
//!
//! * `crm serve [--demo]`  every service on its own port, and all of them on one port (8000)
//! * `crm migrate`         platform + every tenant schema, with progress and a summary;
//!   `--create-database` creates the database first when it is missing
//! * `crm tenant ...`      create / list / suspend / activate / delete tenants (platform operator)
//! * `crm demo`            seed a demo tenant into a running platform and print how to log in

mod commands;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "crm",
    version,
    about = "Multi-tenant CRM platform: every service in one binary, and its operator commands",
    after_help = "Configuration comes from the environment (DATABASE_URL, NATS_URL, JWT_SECRET, PLATFORM_ADMIN_TOKEN, ...; see README.md). From the repository root, ./crm runs this binary with scripts/run.sh's defaults."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every service in this process: each on its own port, all on one combined port.
    Serve {
        /// Port of the combined router (all services on one origin).
        #[arg(long, env = "CRM_PORT", default_value_t = 8000)]
        port: u16,
        /// Seed the demo tenant once the services listen, and print how to log in.
        #[arg(long)]
        demo: bool,
    },
    /// Bring the platform schema and every tenant schema up to date.
    Migrate {
        /// Tenant schemas migrated at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Create the database named in DATABASE_URL first when it does not exist (and pg_trgm in it).
        #[arg(long)]
        create_database: bool,
    },
    /// Tenant administration as the platform operator: create, list, suspend, activate, delete.
    #[command(subcommand)]
    Tenant(commands::tenant::TenantCommand),
    /// Seed the demo tenant into a running platform and print how to log in.
    Demo {
        /// Base URL of the running platform.
        #[arg(long, env = "CRM_URL", default_value = "http://127.0.0.1:8000")]
        url: String,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let result = match Cli::parse().command {
        Command::Serve { port, demo } => commands::serve::run(port, demo).await,
        Command::Migrate { concurrency, create_database } => commands::migrate::run(concurrency, create_database).await,
        Command::Tenant(command) => commands::tenant::run(command).await,
        Command::Demo { url } => commands::demo::run(&url).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The whole chain: the top of a database error alone says little ("db error").
            eprintln!("error: {}", crm_database::error_chain(e.as_ref()));
            std::process::ExitCode::FAILURE
        }
    }
}
