//! `realnet`: run Realnet locally and manage its data. Every command reads the same
//! `REALNET_*` configuration as the Lambda functions and calls into the `realnet` library;
//! nothing here holds a domain rule.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use realnet::auth::{Credential, Principal, identity};
use realnet::config::check_org_name;
use realnet::config::{Config, DbConfig};
use realnet::item::ops::{self, NewItem};
use realnet::orgs::{FIRST_ADMIN, InitReport};
use realnet::query::ItemQuery;
use realnet::types::{FieldKind, TypeRegistry};
use realnet::{Realnet, api};

/// mimalloc rather than the C library's allocator: a request allocates and frees many small
/// buffers on several threads, where glibc's malloc and free took about 8% of the CPU of
/// creates under load (the trailbase bench).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `println!` that answers the error instead of panicking when standard output is closed
/// (`realnet info | head -3`); `main` then exits quietly.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

mod first_admin;
mod identity_cli;
use serde_json::{Map, Value};

#[derive(Parser)]
#[command(name = "realnet", version, about = "Realnet: a configuration-driven backend", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API locally (SQLite in ./.realnet/ and 127.0.0.1:8080 by default) until
    /// interrupted (Ctrl-C) or terminated (SIGTERM), finishing the requests under way
    Serve {
        /// The port to listen on [default: REALNET_SERVER_PORT, else 8080]
        #[arg(long)]
        port: Option<u16>,
        /// The address to listen on [default: REALNET_SERVER_HOST, else 127.0.0.1]
        #[arg(long)]
        host: Option<std::net::IpAddr>,
    },
    /// Migrate the configured store and set up the default org (seed items, once each, and
    /// an admin account whose generated password is shown on a terminal, or else written to
    /// initial-admin-password in the data folder)
    Init,
    /// Show the version, the store, the types and how many items there are
    Info,
    /// Type definitions
    Types {
        #[command(subcommand)]
        command: TypesCommand,
    },
    /// Print one item as JSON, or the first page of items of a type
    Get {
        /// A type name (its subtypes are listed too)
        #[arg(value_name = "TYPE")]
        type_name: String,
        /// An item id
        id: Option<String>,
        /// The org [default: REALNET_DEFAULT_ORG, else "default"]
        #[arg(long)]
        org: Option<String>,
    },
    /// Orgs (tenants)
    Org {
        #[command(subcommand)]
        command: OrgCommand,
    },
    /// Accounts
    Account {
        #[command(subcommand)]
        command: AccountCommand,
    },
    /// Groups of accounts
    Group {
        #[command(subcommand)]
        command: GroupCommand,
    },
    /// Login tokens
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// API keys for services
    Apikey {
        #[command(subcommand)]
        command: ApikeyCommand,
    },
    /// The job queue
    Queue {
        #[command(subcommand)]
        command: QueueCommand,
    },
    /// Create an item and print it as JSON
    Create {
        /// The item's type
        #[arg(value_name = "TYPE")]
        type_name: String,
        /// The item's name
        #[arg(long)]
        name: String,
        /// The parent item's id
        #[arg(long)]
        parent: Option<String>,
        /// An attribute, as field=value (repeatable); values of non-text fields are JSON
        #[arg(long = "attr", value_name = "FIELD=VALUE")]
        attrs: Vec<String>,
        /// The org [default: REALNET_DEFAULT_ORG, else "default"]
        #[arg(long)]
        org: Option<String>,
        /// The account that creates (and owns) the item, with its rights; default: the
        /// org's first admin
        #[arg(long = "as", value_name = "USERNAME")]
        as_user: Option<String>,
    },
}

#[derive(Subcommand)]
enum OrgCommand {
    /// Set up an org: its seed items, default access rules and an admin account (password
    /// from REALNET_ADMIN_PASSWORD, else generated and shown once, see `realnet init`)
    Create {
        /// The org's name (lower-case letters, digits and '-')
        name: String,
    },
}

#[derive(Subcommand)]
enum AccountCommand {
    /// Create an account; reads the password from standard input, or generates one and
    /// prints it once
    Create {
        /// The new account's username
        username: String,
        /// The org [default: REALNET_DEFAULT_ORG, else "default"]
        #[arg(long)]
        org: Option<String>,
        /// The account's email address
        #[arg(long)]
        email: Option<String>,
        /// Make the account an admin of its org
        #[arg(long)]
        admin: bool,
        /// Read the password from the first line of standard input
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable an account and revoke its login tokens
    Disable {
        /// The account's username
        username: String,
        /// The org [default: REALNET_DEFAULT_ORG, else "default"]
        #[arg(long)]
        org: Option<String>,
    },
    /// Link an account to an identity provider's issuer and subject (the claims `iss` and
    /// `sub` of its tokens), so that REALNET_AUTH_MODE=authorizer acts as it
    Link {
        /// The account's username
        username: String,
        /// The org [default: REALNET_DEFAULT_ORG, else "default"]
        #[arg(long)]
        org: Option<String>,
        /// The identity provider's issuer (the `iss` claim, e.g. a Cognito user pool's URL)
        #[arg(long)]
        issuer: String,
        /// The account's subject at that provider (the `sub` claim)
        #[arg(long)]
        subject: String,
    },
}

#[derive(Subcommand)]
enum GroupCommand {
    /// Add an account to a group, creating the group if needed
    Add {
        /// The group's name
        group: String,
        /// The account's username
        username: String,
        /// The org [default: REALNET_DEFAULT_ORG, else "default"]
        #[arg(long)]
        org: Option<String>,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Issue a login token for an account and print it
    Create {
        /// The account's username
        username: String,
        /// The org [default: REALNET_DEFAULT_ORG, else "default"]
        #[arg(long)]
        org: Option<String>,
    },
    /// Revoke every login token of an account
    Revoke {
        /// The account's username
        username: String,
        /// The org [default: REALNET_DEFAULT_ORG, else "default"]
        #[arg(long)]
        org: Option<String>,
    },
}

#[derive(Subcommand)]
enum ApikeyCommand {
    /// Create an API key carrying an account's rights and print it once
    Create {
        /// A name for the key (which service uses it)
        name: String,
        /// The account whose rights the key carries
        #[arg(long)]
        account: String,
        /// When the key stops working (RFC 3339)
        #[arg(long)]
        expires: Option<String>,
        /// The org [default: REALNET_DEFAULT_ORG, else "default"]
        #[arg(long)]
        org: Option<String>,
    },
    /// Revoke (delete) an API key by its item id
    Revoke {
        /// The API key's item id (shown by `realnet get ApiKey`)
        id: String,
        /// The org [default: REALNET_DEFAULT_ORG, else "default"]
        #[arg(long)]
        org: Option<String>,
    },
}

#[derive(Subcommand)]
enum QueueCommand {
    /// Poll an SQS queue and hand each batch to the worker, deleting what it did not report as
    /// failed: an event source mapping for moto, `cargo lambda watch` or a laptop
    Bridge {
        /// Default: REALNET_QUEUE_URL
        #[arg(long)]
        queue_url: Option<String>,
        /// Hand batches to a Lambda Invoke API instead of running them in this process, e.g.
        /// http://127.0.0.1:9000/2015-03-31/functions/worker/invocations (cargo lambda watch)
        #[arg(long)]
        invoke: Option<String>,
        /// One round (waiting up to a second for messages), then exit
        #[arg(long)]
        once: bool,
    },
}

#[derive(Subcommand)]
enum TypesCommand {
    /// Check an initialization folder and print every error (exit status 1 if any)
    Check {
        /// Default: REALNET_INIT_DIR, else ./initialization
        dir: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        // Whoever read the output has stopped reading (`| head`): nothing is wrong.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Types {
        command: TypesCommand::Check { dir },
    } = &cli.command
    {
        return check_types(dir.clone());
    }
    let mut config = Config::from_env()?;
    if let Command::Serve { port, host } = &cli.command {
        config.server_port = port.unwrap_or(config.server_port);
        config.server_host = host.unwrap_or(config.server_host);
    }
    realnet::telemetry::init(false, config.debug);
    // Only the commands that set a store up may make a new one; the others would quietly
    // work on an empty store somewhere the user did not mean.
    let sets_up = matches!(
        cli.command,
        Command::Init
            | Command::Serve { .. }
            | Command::Org {
                command: OrgCommand::Create { .. }
            }
    );
    if let DbConfig::Sqlite { path } = &config.db
        && !sets_up
        && !path.exists()
    {
        bail!(
            "there is no Realnet store at {}: run `realnet init` there first, or set REALNET_DATA_DIR to the folder of an existing one",
            path.display()
        );
    }
    let rn = Arc::new(Realnet::from_config(config, realnet_extensions::linked())?);
    match cli.command {
        Command::Serve { .. } => serve(rn).await,
        Command::Init => {
            let report = rn.init().await?;
            out!(
                "initialized {} store: {} seed items created, {} already present{}",
                rn.store.kind(),
                report.created,
                report.existing,
                kept_deleted(&report)
            )?;
            announce_admin(&rn, &report, &base_url(&rn))
        }
        Command::Org {
            command: OrgCommand::Create { name },
        } => {
            rn.store.migrate().await?;
            let password = rn.config.auth.admin_password.as_ref().map(|s| s.0.clone());
            let report = rn.init_org(&name, password).await?;
            out!(
                "org {name}: {} seed items created, {} already present{}",
                report.created,
                report.existing,
                kept_deleted(&report)
            )?;
            announce_admin(&rn, &report, &base_url(&rn))
        }
        Command::Account { command } => {
            rn.store.migrate().await?;
            identity_cli::account(&rn, command).await
        }
        Command::Group {
            command:
                GroupCommand::Add {
                    group,
                    username,
                    org,
                },
        } => {
            rn.store.migrate().await?;
            identity_cli::group_add(&rn, &org_named(&rn, org).await?, &group, &username).await
        }
        Command::Token { command } => {
            rn.store.migrate().await?;
            identity_cli::token(&rn, command).await
        }
        Command::Queue {
            command:
                QueueCommand::Bridge {
                    queue_url,
                    invoke,
                    once,
                },
        } => {
            rn.store.migrate().await?;
            let url = queue_url
                .or_else(|| rn.config.queue_url.clone())
                .context("give --queue-url or set REALNET_QUEUE_URL")?;
            bridge(rn, &url, invoke, once).await
        }
        Command::Apikey { command } => {
            rn.store.migrate().await?;
            identity_cli::apikey(&rn, command).await
        }
        Command::Info => info(&rn).await,
        Command::Get { type_name, id, org } => {
            rn.store.migrate().await?;
            let admin = Principal::org_admin(&org_named(&rn, org).await?);
            let value = match id {
                Some(id) => {
                    let id = uuid::Uuid::parse_str(&id)
                        .with_context(|| format!("{id:?} is not an item id"))?;
                    serde_json::to_value(ops::get(&rn, &admin, id, Some(&type_name)).await?)?
                }
                None => {
                    let params = vec![("type".to_string(), type_name)];
                    let query = ItemQuery::parse(&rn.types, &params, None)?;
                    serde_json::to_value(ops::query(&rn, &admin, &query).await?.items)?
                }
            };
            out!("{}", serde_json::to_string_pretty(&value)?)?;
            Ok(())
        }
        Command::Create {
            type_name,
            name,
            parent,
            attrs,
            org,
            as_user,
        } => {
            rn.store.migrate().await?;
            let org = org_named(&rn, org).await?;
            let attributes = parse_attrs(&rn.types, &type_name, &attrs)?;
            for (server_made, how) in [
                ("Org", "set up orgs with `realnet org create NAME`"),
                ("Job", "send jobs with POST /api/jobs"),
            ] {
                if rn.types.is_a(&type_name, server_made) {
                    bail!("{type_name} items are made by the server alone: {how}");
                }
            }
            let creator = creator(&rn, &org, as_user).await?;
            let parent = parent
                .map(|p| {
                    uuid::Uuid::parse_str(&p).with_context(|| format!("{p:?} is not an item id"))
                })
                .transpose()?;
            let input = NewItem {
                type_name,
                name,
                parent,
                attributes,
            };
            let (item, _) = ops::create(&rn, &creator, input, None).await?;
            out!("{}", serde_json::to_string_pretty(&item)?)?;
            Ok(())
        }
        Command::Types { .. } => unreachable!("handled above"),
    }
}

fn check_types(dir: Option<PathBuf>) -> anyhow::Result<()> {
    let dir = dir
        .or_else(|| std::env::var_os("REALNET_INIT_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("initialization"));
    // With the types the linked extensions ship, as the runners load them.
    let shipped = realnet::extensions::Extensions::new(realnet_extensions::linked())?;
    let registry = TypeRegistry::load(Some(&dir), &shipped.type_files())
        .map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    out!(
        "{}: {} types, {} seed items (with the linked extensions'): ok",
        dir.display(),
        registry.all().len(),
        registry.seeds().len()
    )?;
    Ok(())
}

/// `field=value` pairs; values of text-like fields are taken as written, others as JSON.
fn parse_attrs(
    types: &TypeRegistry,
    type_name: &str,
    attrs: &[String],
) -> anyhow::Result<Map<String, Value>> {
    let t = types.get(type_name).with_context(|| {
        format!("unknown type {type_name:?}: `realnet info` says where the types come from")
    })?;
    let mut out = Map::new();
    for a in attrs {
        let Some((k, v)) = a.split_once('=') else {
            bail!("--attr {a:?} is not FIELD=VALUE");
        };
        let textual = t.field(k).is_none_or(|f| {
            matches!(
                f.kind,
                FieldKind::String
                    | FieldKind::Text
                    | FieldKind::Enum
                    | FieldKind::Datetime
                    | FieldKind::Ref
                    | FieldKind::File
            )
        });
        let value = if textual {
            Value::String(v.to_string())
        } else {
            serde_json::from_str(v)
                .with_context(|| format!("--attr {k}: {v:?} is not a JSON value"))?
        };
        out.insert(k.to_string(), value);
    }
    Ok(out)
}

async fn info(rn: &Realnet) -> anyhow::Result<()> {
    out!("realnet {}", env!("CARGO_PKG_VERSION"))?;
    match &rn.config.db {
        DbConfig::Sqlite { path } => out!("store: sqlite {}", path.display())?,
        DbConfig::Postgres { config, .. } => {
            let hosts: Vec<String> = config
                .get_hosts()
                .iter()
                .map(|h| match h {
                    tokio_postgres::config::Host::Tcp(name) => name.clone(),
                    tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
                })
                .collect();
            out!(
                "store: postgresql {}/{}",
                hosts.join(","),
                config.get_dbname().unwrap_or_default()
            )?
        }
        DbConfig::Dynamodb { table, .. } => out!("store: dynamodb table {table}")?,
    }
    out!(
        "types: {} ({})",
        rn.types.all().len(),
        match &rn.config.init_dir {
            Some(d) => d.display().to_string(),
            None => "compiled in".to_string(),
        }
    )?;
    rn.store.migrate().await?;
    let counts = rn.store.counts().await?;
    if counts.is_empty() {
        out!("items: none (run `realnet init`)")?;
    }
    for c in counts {
        out!("items: {:>8}  {} / {}", c.count, c.org, c.type_name)?;
    }
    Ok(())
}

/// Where `realnet serve` would listen with this configuration.
fn base_url(rn: &Realnet) -> String {
    format!(
        "http://{}",
        SocketAddr::new(rn.config.server_host, rn.config.server_port)
    )
}

/// The org `--org` names (default: the default org), if it has been set up.
async fn org_named(rn: &Realnet, org: Option<String>) -> anyhow::Result<String> {
    let org = org.unwrap_or_else(|| rn.config.default_org.clone());
    check_org_name(&org).map_err(anyhow::Error::msg)?;
    if rn.org_exists(&org).await? {
        return Ok(org);
    }
    if org == rn.config.default_org {
        bail!("the default org {org:?} is not set up yet: run `realnet init` first");
    }
    let orgs = rn.store.orgs().await?;
    if orgs.is_empty() {
        bail!(
            "there is no org {org:?}, nor any other yet: run `realnet init` to set up the default org, or `realnet org create {org}` to set up this one"
        );
    }
    bail!(
        "there is no org {org:?} (orgs set up: {}): check the name, or set it up with `realnet org create {org}`",
        orgs.join(", ")
    )
}

/// Who `realnet create` acts as: the account `--as` names, or the org's first admin.
async fn creator(rn: &Realnet, org: &str, as_user: Option<String>) -> anyhow::Result<Principal> {
    let username = as_user.as_deref().unwrap_or(FIRST_ADMIN);
    let account = identity::find_account(rn, org, username)
        .await?
        .filter(|a| !identity::is_disabled(a));
    match (account, as_user.is_some()) {
        (Some(a), _) => Ok(rn.principal_of(&a, Credential::Installation).await?),
        (None, true) => bail!(
            "no enabled account {username:?} in org {org:?}: give --as an account of the org (see `realnet account create`)"
        ),
        (None, false) => bail!(
            "org {org:?} has no enabled account {FIRST_ADMIN:?} to create items as: give --as USERNAME"
        ),
    }
}

/// `", N deleted since (not made again)"`, if seed items were.
fn kept_deleted(report: &InitReport) -> String {
    match report.kept_deleted {
        0 => String::new(),
        n => format!(", {n} deleted since and not made again"),
    }
}

/// Tells how to log in as a new org's first admin (see [`first_admin`]).
fn announce_admin(rn: &Realnet, report: &InitReport, base: &str) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let Some(admin) = &report.admin else {
        return Ok(());
    };
    let file = first_admin::password_file(&rn.config.data_dir, &admin.org, &rn.config.default_org);
    let stdout = std::io::stdout();
    let terminal = stdout.is_terminal();
    first_admin::announce(report, base, &mut stdout.lock(), terminal, &file)
}

async fn serve(rn: Arc<Realnet>) -> anyhow::Result<()> {
    let report = rn.init().await?;
    if report.created > 0 {
        tracing::info!(created = report.created, "seed items created");
    }
    // Without an SQS queue, jobs sent to this server run in it.
    if let Some(local) = rn.use_local_queue()
        && let Some(jobs) = local.take_receiver().await
    {
        tokio::spawn(realnet::jobs::worker::run_local(rn.clone(), jobs));
    }
    let addr = SocketAddr::new(rn.config.server_host, rn.config.server_port);
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on {addr} (REALNET_SERVER_HOST / REALNET_SERVER_PORT)")
    })?;
    let store = match &rn.config.db {
        DbConfig::Sqlite { path } => format!("sqlite {}", path.display()),
        DbConfig::Postgres { .. } => "postgresql".to_string(),
        DbConfig::Dynamodb { table, .. } => format!("dynamodb {table}"),
    };
    announce_admin(&rn, &report, &format!("http://{addr}"))?;
    out!(
        "Realnet {} listening on http://{addr} (store: {store})",
        env!("CARGO_PKG_VERSION")
    )?;
    // The scheduler's minute tick and hourly maintenance, as functions/scheduler runs them;
    // started once the banner is out, so their first lines come after it.
    tokio::spawn(realnet::schedule::run_local(rn.clone()));
    let app = api::router(rn).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(stop_signal())
        .await
        .context("server error")?;
    tracing::info!("server stopped");
    Ok(())
}

/// Ctrl-C, or SIGTERM (what `docker stop`, systemd and Kubernetes send): the server then
/// takes no new connections and finishes the requests under way.
async fn stop_signal() {
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    let signal = tokio::select! {
        _ = tokio::signal::ctrl_c() => "interrupt",
        () = terminate => "terminate",
    };
    tracing::info!(signal, "stopping: finishing the requests under way");
}

/// Runs `realnet queue bridge`.
async fn bridge(
    rn: Arc<Realnet>,
    url: &str,
    invoke: Option<String>,
    once: bool,
) -> anyhow::Result<()> {
    use realnet::queue::{QueueError, SqsQueue};
    let queue = SqsQueue::new(url);
    let http = reqwest::Client::new();
    let (mut received, mut failed) = (0, 0);
    loop {
        let worker = |event| {
            let (rn, http, invoke) = (rn.clone(), http.clone(), invoke.clone());
            async move {
                match invoke {
                    None => {
                        // As long as a Lambda function would get by default.
                        let deadline =
                            std::time::Instant::now() + std::time::Duration::from_secs(60);
                        Ok(realnet::jobs::worker::handle(rn, event, deadline).await)
                    }
                    Some(url) => {
                        let answer =
                            http.post(&url).json(&event).send().await.map_err(|e| {
                                QueueError::Unavailable(format!("invoke {url}: {e}"))
                            })?;
                        answer
                            .json()
                            .await
                            .map_err(|e| QueueError::Unavailable(format!("invoke {url}: {e}")))
                    }
                }
            }
        };
        let round = tokio::select! {
            round = queue.bridge_round(if once { 1 } else { 10 }, worker) => round?,
            _ = tokio::signal::ctrl_c() => break,
        };
        received += round.received;
        failed += round.failed;
        if round.received > 0 {
            out!(
                "batch of {}: {} to deliver again",
                round.received,
                round.failed
            )?;
        }
        if once {
            break;
        }
    }
    out!("received {received}, failed {failed}")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every command, argument and option says what it is in `--help`.
    #[test]
    fn everything_has_a_help_line() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                if !builtin && arg.get_help().is_none() {
                    missing.push(format!("{path} {}", arg.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_name() != "help" && sub.get_about().is_none() {
                    missing.push(format!("{path} {}", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "realnet", &mut missing);
        assert!(missing.is_empty(), "no help line: {missing:#?}");
    }
}
