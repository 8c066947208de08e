//! `realnet`: run Realnet locally and manage its data. Every command reads the same
//! `REALNET_*` configuration as the Lambda functions and calls into the `realnet` library;
//! nothing here holds a domain rule.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use realnet::auth::Principal;
use realnet::config::{Config, DbConfig};
use realnet::item::ops::{self, NewItem};
use realnet::query::ItemQuery;
use realnet::types::{FieldKind, TypeRegistry};
use realnet::{Realnet, api};
use serde_json::{Map, Value};

#[derive(Parser)]
#[command(name = "realnet", version, about = "Realnet: a configuration-driven backend", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API locally (SQLite in ./.realnet/ and 127.0.0.1:8080 by default)
    Serve,
    /// Migrate the configured store and create the seed items
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
    },
    /// Create an item and print it as JSON
    Create {
        #[arg(value_name = "TYPE")]
        type_name: String,
        #[arg(long)]
        name: String,
        /// The parent item's id
        #[arg(long)]
        parent: Option<String>,
        /// An attribute, as field=value (repeatable); values of non-text fields are JSON
        #[arg(long = "attr", value_name = "FIELD=VALUE")]
        attrs: Vec<String>,
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
    let config = Config::from_env()?;
    realnet::telemetry::init(false, config.debug);
    let rn = Arc::new(Realnet::from_config(config)?);
    let admin = Principal::org_admin(&rn.config.default_org);
    match cli.command {
        Command::Serve => serve(rn).await,
        Command::Init => {
            let report = rn.init().await?;
            println!(
                "initialized {} store: {} seed items created, {} already present",
                rn.store.kind(),
                report.created,
                report.existing
            );
            Ok(())
        }
        Command::Info => info(&rn).await,
        Command::Get { type_name, id } => {
            rn.store.migrate().await?;
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
            println!("{}", serde_json::to_string_pretty(&value)?);
            Ok(())
        }
        Command::Create {
            type_name,
            name,
            parent,
            attrs,
        } => {
            rn.store.migrate().await?;
            let attributes = parse_attrs(&rn.types, &type_name, &attrs)?;
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
            let item = ops::create(&rn, &admin, input, None).await?;
            println!("{}", serde_json::to_string_pretty(&item)?);
            Ok(())
        }
        Command::Types { .. } => unreachable!("handled above"),
    }
}

fn check_types(dir: Option<PathBuf>) -> anyhow::Result<()> {
    let dir = dir
        .or_else(|| std::env::var_os("REALNET_INIT_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("initialization"));
    let registry =
        TypeRegistry::from_dir(&dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    println!(
        "{}: {} types, {} seed items: ok",
        dir.display(),
        registry.all().len(),
        registry.seeds().len()
    );
    Ok(())
}

/// `field=value` pairs; values of text-like fields are taken as written, others as JSON.
fn parse_attrs(
    types: &TypeRegistry,
    type_name: &str,
    attrs: &[String],
) -> anyhow::Result<Map<String, Value>> {
    let t = types
        .get(type_name)
        .with_context(|| format!("unknown type {type_name:?}"))?;
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
    println!("realnet {}", env!("CARGO_PKG_VERSION"));
    match &rn.config.db {
        DbConfig::Sqlite { path } => println!("store: sqlite {}", path.display()),
        DbConfig::Postgres { config, .. } => {
            let hosts: Vec<String> = config
                .get_hosts()
                .iter()
                .map(|h| match h {
                    tokio_postgres::config::Host::Tcp(name) => name.clone(),
                    tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
                })
                .collect();
            println!(
                "store: postgresql {}/{}",
                hosts.join(","),
                config.get_dbname().unwrap_or_default()
            )
        }
    }
    println!(
        "types: {} ({})",
        rn.types.all().len(),
        match &rn.config.init_dir {
            Some(d) => d.display().to_string(),
            None => "compiled in".to_string(),
        }
    );
    rn.store.migrate().await?;
    let counts = rn.store.counts().await?;
    if counts.is_empty() {
        println!("items: none (run `realnet init`)");
    }
    for c in counts {
        println!("items: {:>8}  {} / {}", c.count, c.org, c.type_name);
    }
    Ok(())
}

async fn serve(rn: Arc<Realnet>) -> anyhow::Result<()> {
    if !rn.config.server_host.is_loopback() {
        bail!(
            "REALNET_SERVER_HOST: {} is not a loopback address; until accounts and tokens exist, realnet serve answers only on this machine",
            rn.config.server_host
        );
    }
    let report = rn.init().await?;
    if report.created > 0 {
        tracing::info!(created = report.created, "seed items created");
    }
    let addr = SocketAddr::new(rn.config.server_host, rn.config.server_port);
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on {addr} (REALNET_SERVER_HOST / REALNET_SERVER_PORT)")
    })?;
    let store = match &rn.config.db {
        DbConfig::Sqlite { path } => format!("sqlite {}", path.display()),
        DbConfig::Postgres { .. } => "postgresql".to_string(),
    };
    println!(
        "Realnet {} listening on http://{addr} (store: {store})",
        env!("CARGO_PKG_VERSION")
    );
    axum::serve(listener, api::router(rn))
        .with_graceful_shutdown(async {
            tokio::signal::ctrl_c().await.ok();
        })
        .await
        .context("server error")
}
