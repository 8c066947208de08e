//! Configuration: the `REALNET_*` environment variables, read once at start into one typed
//! [`Config`]. A bad value stops start-up with a message naming the variable.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Where file contents are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageConfig {
    /// A local folder: `REALNET_DATA_DIR`, whose `files/` then holds the contents.
    Local { root: PathBuf },
    /// An S3 bucket; `endpoint` overrides the SDK's (for an emulator) and uses path-style
    /// addressing.
    S3 {
        bucket: String,
        endpoint: Option<String>,
    },
}

/// How API requests are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Bearer tokens issued by Realnet (login tokens and API keys).
    Token,
    /// The verified claims of an API Gateway JWT authorizer, mapped to an account.
    Authorizer,
    /// Authorizer claims when the request has them, bearer tokens otherwise.
    Both,
}

/// A value that must not appear in logs or `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Identity settings.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub mode: AuthMode,
    /// How long a login token is valid.
    pub token_ttl: Duration,
    /// How long a container keeps a resolved principal and an org's rules; revocations made
    /// elsewhere take effect within it.
    pub cache_ttl: Duration,
    /// The authorizer claims holding the identity provider's issuer and its subject, which
    /// an account's `idp_issuer` and `idp_subject` link to it.
    pub issuer_claim: String,
    pub subject_claim: String,
    /// An authorizer claim holding the org, which must agree with the linked account's org;
    /// it must be one users cannot change.
    pub org_claim: Option<String>,
    /// The first admin's password; generated when unset.
    pub admin_password: Option<Secret>,
    /// Login attempts are counted over this window, before their passwords are checked
    /// (a success takes its own back)...
    pub login_window: Duration,
    /// ... and refused once a username has this many from one client address...
    pub max_failures: i64,
    /// ... or a client address this many, across usernames...
    pub max_failures_per_address: i64,
    /// ... or a username this many, across addresses (at least `max_failures`).
    pub max_failures_per_username: i64,
}

/// Where items are stored.
#[derive(Debug, Clone)]
pub enum DbConfig {
    /// A SQLite file (the embedded default).
    Sqlite { path: PathBuf },
    /// A PostgreSQL server; `tokio_postgres::Config` redacts the password in `Debug`.
    Postgres {
        config: Box<tokio_postgres::Config>,
        pool_size: usize,
        /// Extra certificate authorities (PEM) to trust for TLS, beside the Mozilla roots.
        ca_file: Option<PathBuf>,
    },
    /// A DynamoDB table; region, credentials and endpoint come from the AWS SDK's own
    /// configuration (`AWS_REGION`, the Lambda role, `AWS_ENDPOINT_URL`, ...). A page of a
    /// query reads at most `page_reads` records (`REALNET_DYNAMODB_PAGE_READS`).
    Dynamodb { table: String, page_reads: usize },
}

#[derive(Debug, Clone)]
pub struct Config {
    pub server_host: IpAddr,
    pub server_port: u16,
    pub db: DbConfig,
    pub debug: bool,
    /// Read type definitions from this folder instead of the ones compiled in.
    pub init_dir: Option<PathBuf>,
    pub data_dir: PathBuf,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// The org of requests that name none: the public principal's, and logins without `org`.
    pub default_org: String,
    pub auth: AuthConfig,
    pub storage: StorageConfig,
    /// Largest file accepted, in bytes.
    pub file_max_size: u64,
    /// How long upload and download URLs are valid.
    pub file_url_ttl: Duration,
    /// How long a finished job's record keeps a redelivery from running it again.
    pub job_record_ttl: Duration,
    /// The most levels an item hierarchy may have: a root item is at level 1, and an item
    /// may not be created or moved deeper. Ancestor walks stop there too.
    pub max_depth: usize,
    /// The SQS queue jobs are sent to; without one, only `realnet serve` runs jobs (in
    /// process).
    pub queue_url: Option<String>,
    /// The dead-letter queue of `queue_url`, where the `ops` extension finds the jobs that
    /// failed for good (the local queue keeps its own).
    pub dead_letter_queue_url: Option<String>,
    /// The key job envelopes are signed with; without one, a key generated once per
    /// installation and kept in the store.
    pub job_signing_key: Option<Secret>,
    /// Keys signatures are still accepted with, never signed with: the keys replaced by a
    /// rotation of `job_signing_key`, until the jobs they signed have run.
    pub previous_job_signing_keys: Vec<Secret>,
    /// Browser origins given CORS answers.
    pub cors_origins: CorsOrigins,
    /// How long a request may run before it is stopped with a `503` (below the Lambda
    /// function's timeout, so the caller gets the JSON answer).
    pub request_timeout: Duration,
    /// Requests in flight at once; more are refused with a `503` instead of queued.
    pub max_concurrent_requests: usize,
    /// Whether webhook extensions may be called on loopback addresses, and over plain
    /// http (`REALNET_EXTENSION_ALLOW_LOOPBACK`; for local test servers only). Private,
    /// link-local and metadata addresses are refused always.
    pub extension_allow_loopback: bool,
}

/// The browser origins that may call the API (`REALNET_CORS_ORIGINS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    /// No CORS answers (the default): browsers call only from the API's own origin.
    None,
    /// `*`: any origin (credentials are bearer headers, never cookies).
    Any,
    /// These origins (`https://app.example.com`, with a port unless the scheme's own).
    List(Vec<String>),
}

impl CorsOrigins {
    /// Reads `*`, or origins separated by commas.
    fn parse(value: Option<&str>) -> Result<CorsOrigins, String> {
        let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
            return Ok(CorsOrigins::None);
        };
        if value == "*" {
            return Ok(CorsOrigins::Any);
        }
        value
            .split(',')
            .map(str::trim)
            .map(|origin| {
                let host = match origin.split_once("://") {
                    Some(("http" | "https", host)) => host,
                    _ => "",
                };
                if host.is_empty() || host.contains(['/', '?', '#', '*', ' ', '@']) {
                    return Err(format!(
                        "{origin:?} is not an origin: write scheme://host[:port] without a path or a trailing slash (e.g. https://app.example.com), several separated by commas, or * alone"
                    ));
                }
                Ok(origin.to_string())
            })
            .collect::<Result<_, _>>()
            .map(CorsOrigins::List)
    }
}

/// How many levels an item hierarchy may have unless `REALNET_MAX_DEPTH` says otherwise.
pub const DEFAULT_MAX_DEPTH: u64 = 64;

/// The largest `REALNET_MAX_DEPTH`: every check of rights walks up to that many ancestors.
const MAX_DEPTH_CEILING: u64 = 1000;

/// A variable with a value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    pub var: String,
    pub message: String,
}

/// A job signing key as `var` gives it: at least 32 characters.
fn signing_key(key: String, var: &str) -> Result<Secret, ConfigError> {
    if key.trim().len() < 32 || key.trim() != key {
        return Err(bad(
            var,
            "a signing key must be at least 32 characters, without surrounding spaces (for example: openssl rand -base64 32)",
        ));
    }
    Ok(Secret(key))
}

fn bad(var: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        var: var.to_string(),
        message: message.into(),
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads variables through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |k: &str| lookup(k).filter(|v| !v.is_empty());
        let parse = |k: &str, what: &str| -> Result<Option<u64>, ConfigError> {
            get(k)
                .map(|v| {
                    v.parse::<u64>()
                        .map_err(|_| bad(k, format!("{v:?} is not {what}")))
                })
                .transpose()
        };
        let duration = |k: &str, default: Duration| -> Result<Duration, ConfigError> {
            match get(k) {
                None => Ok(default),
                Some(v) => v
                    .parse::<u64>()
                    .map(Duration::from_secs)
                    .or_else(|_| humantime::parse_duration(&v))
                    .map_err(|_| {
                        bad(
                            k,
                            format!("{v:?} is not a duration: use seconds or 30s, 15m, 12h, 7d"),
                        )
                    }),
            }
        };
        let flag = |k: &str| -> Result<bool, ConfigError> {
            match get(k).as_deref() {
                None | Some("0" | "false" | "no") => Ok(false),
                Some("1" | "true" | "yes") => Ok(true),
                Some(v) => Err(bad(k, format!("{v:?} is not true or false"))),
            }
        };

        let server_host = match get("REALNET_SERVER_HOST") {
            None => IpAddr::from([127, 0, 0, 1]),
            Some(v) => v
                .parse()
                .map_err(|_| bad("REALNET_SERVER_HOST", format!("{v:?} is not an IP address")))?,
        };
        let server_port = match parse("REALNET_SERVER_PORT", "a port number")? {
            None => 8080,
            Some(p) => u16::try_from(p)
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| bad("REALNET_SERVER_PORT", format!("{p} is not a port number")))?,
        };
        let data_dir = get("REALNET_DATA_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(".realnet"));
        let db = match get("REALNET_DB_TYPE").as_deref() {
            None | Some("sqlite") => DbConfig::Sqlite {
                path: data_dir.join("realnet.db"),
            },
            Some("postgresql" | "postgres") => {
                let config = match get("REALNET_DB_URL") {
                    Some(url) => url.parse::<tokio_postgres::Config>().map_err(|e| {
                        bad(
                            "REALNET_DB_URL",
                            format!("not a PostgreSQL connection string: {e}"),
                        )
                    })?,
                    None => {
                        let mut c = tokio_postgres::Config::new();
                        c.host(get("REALNET_DB_HOST").as_deref().unwrap_or("localhost"));
                        let port = parse("REALNET_DB_PORT", "a port number")?.unwrap_or(5432);
                        c.port(u16::try_from(port).map_err(|_| {
                            bad("REALNET_DB_PORT", format!("{port} is not a port number"))
                        })?);
                        c.user(get("REALNET_DB_USER").ok_or_else(|| {
                            bad("REALNET_DB_USER", "required when REALNET_DB_TYPE=postgresql and REALNET_DB_URL is not set")
                        })?);
                        if let Some(pass) = get("REALNET_DB_PASS") {
                            c.password(pass);
                        }
                        c.dbname(get("REALNET_DB_NAME").ok_or_else(|| {
                            bad("REALNET_DB_NAME", "required when REALNET_DB_TYPE=postgresql and REALNET_DB_URL is not set")
                        })?);
                        c
                    }
                };
                // A Lambda container serves one request at a time and needs few connections;
                // a server takes many requests at once.
                let pool_default = if get("AWS_LAMBDA_FUNCTION_NAME").is_some() {
                    2
                } else {
                    16
                };
                let pool_size = parse("REALNET_DB_POOL_SIZE", "a number")?.unwrap_or(pool_default);
                if !(1..=1000).contains(&pool_size) {
                    return Err(bad("REALNET_DB_POOL_SIZE", "must be from 1 to 1000"));
                }
                let ca_file = get("REALNET_DB_CA_FILE").map(PathBuf::from);
                if let Some(f) = &ca_file
                    && !f.is_file()
                {
                    return Err(bad(
                        "REALNET_DB_CA_FILE",
                        format!("{} is not a readable file", f.display()),
                    ));
                }
                DbConfig::Postgres {
                    config: Box::new(config),
                    pool_size: pool_size as usize,
                    ca_file,
                }
            }
            Some("dynamodb") => {
                let table = get("REALNET_DYNAMODB_TABLE").ok_or_else(|| {
                    bad(
                        "REALNET_DYNAMODB_TABLE",
                        "required when REALNET_DB_TYPE=dynamodb",
                    )
                })?;
                let valid = (3..=255).contains(&table.len())
                    && table
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
                if !valid {
                    return Err(bad(
                        "REALNET_DYNAMODB_TABLE",
                        format!(
                            "{table:?} is not a DynamoDB table name (3 to 255 of a-z A-Z 0-9 _ . -)"
                        ),
                    ));
                }
                let page_reads = parse("REALNET_DYNAMODB_PAGE_READS", "a number of records")?
                    .unwrap_or(crate::store::DEFAULT_PAGE_READS as u64);
                if !(10..=100_000).contains(&page_reads) {
                    return Err(bad(
                        "REALNET_DYNAMODB_PAGE_READS",
                        "must be from 10 to 100000 records",
                    ));
                }
                DbConfig::Dynamodb {
                    table,
                    page_reads: page_reads as usize,
                }
            }
            Some(other) => {
                return Err(bad(
                    "REALNET_DB_TYPE",
                    format!("{other:?} is not a store: use sqlite, postgresql or dynamodb"),
                ));
            }
        };
        let body_limit = parse("REALNET_BODY_LIMIT", "a size in bytes")?.unwrap_or(1024 * 1024);
        if !(1024..=64 * 1024 * 1024).contains(&body_limit) {
            return Err(bad(
                "REALNET_BODY_LIMIT",
                "must be from 1024 to 67108864 bytes",
            ));
        }
        let default_org = get("REALNET_DEFAULT_ORG").unwrap_or_else(|| "default".to_string());
        check_org_name(&default_org).map_err(|m| bad("REALNET_DEFAULT_ORG", m))?;
        let mode = match get("REALNET_AUTH_MODE").as_deref() {
            None | Some("token") => AuthMode::Token,
            Some("authorizer") => AuthMode::Authorizer,
            Some("both") => AuthMode::Both,
            Some(v) => {
                return Err(bad(
                    "REALNET_AUTH_MODE",
                    format!("{v:?} is not a mode: use token, authorizer or both"),
                ));
            }
        };
        let token_ttl = duration("REALNET_TOKEN_TTL", Duration::from_secs(12 * 3600))?;
        if token_ttl < Duration::from_secs(60) || token_ttl > Duration::from_secs(366 * 86400) {
            return Err(bad(
                "REALNET_TOKEN_TTL",
                "must be from one minute to a year",
            ));
        }
        if get("REALNET_AUTH_USERNAME_CLAIM").is_some() {
            return Err(bad(
                "REALNET_AUTH_USERNAME_CLAIM",
                "is no longer read: a username claim is one a user may pick. Accounts are linked to the identity provider's issuer and subject (REALNET_AUTH_ISSUER_CLAIM, REALNET_AUTH_SUBJECT_CLAIM): set idp_issuer and idp_subject on each Account (realnet account link), then unset this variable",
            ));
        }
        let cache_ttl = duration("REALNET_AUTH_CACHE_TTL", Duration::from_secs(30))?;
        if cache_ttl > Duration::from_secs(3600) {
            return Err(bad("REALNET_AUTH_CACHE_TTL", "must be an hour at most"));
        }
        let login_window = duration("REALNET_LOGIN_WINDOW", Duration::from_secs(15 * 60))?;
        if login_window < Duration::from_secs(1) || login_window > Duration::from_secs(86400) {
            return Err(bad(
                "REALNET_LOGIN_WINDOW",
                "must be from one second to a day",
            ));
        }
        let failures = |k: &str, default: u64| -> Result<i64, ConfigError> {
            let n = parse(k, "a number")?.unwrap_or(default);
            if !(1..=10_000).contains(&n) {
                return Err(bad(k, "must be from 1 to 10000"));
            }
            Ok(n as i64)
        };
        let max_failures = failures("REALNET_LOGIN_MAX_FAILURES", 5)?;
        let max_failures_per_address = failures("REALNET_LOGIN_MAX_FAILURES_PER_ADDRESS", 20)?;
        let max_failures_per_username = failures("REALNET_LOGIN_MAX_FAILURES_PER_USERNAME", 50)?;
        for (var, ceiling) in [
            (
                "REALNET_LOGIN_MAX_FAILURES_PER_ADDRESS",
                max_failures_per_address,
            ),
            (
                "REALNET_LOGIN_MAX_FAILURES_PER_USERNAME",
                max_failures_per_username,
            ),
        ] {
            if ceiling < max_failures {
                return Err(bad(
                    var,
                    format!(
                        "must be at least REALNET_LOGIN_MAX_FAILURES ({max_failures}): it counts the failures of every address, or of every username"
                    ),
                ));
            }
        }
        let admin_password = get("REALNET_ADMIN_PASSWORD").map(Secret);
        if let Some(Secret(p)) = &admin_password
            && let Err(m) = crate::auth::password::check_strength(p)
        {
            return Err(bad("REALNET_ADMIN_PASSWORD", m));
        }
        let auth = AuthConfig {
            mode,
            token_ttl,
            cache_ttl,
            issuer_claim: get("REALNET_AUTH_ISSUER_CLAIM").unwrap_or_else(|| "iss".to_string()),
            subject_claim: get("REALNET_AUTH_SUBJECT_CLAIM").unwrap_or_else(|| "sub".to_string()),
            org_claim: get("REALNET_AUTH_ORG_CLAIM"),
            admin_password,
            login_window,
            max_failures,
            max_failures_per_address,
            max_failures_per_username,
        };
        let storage = match get("REALNET_STORAGE_TYPE").as_deref() {
            None | Some("local") => StorageConfig::Local {
                root: data_dir.clone(),
            },
            Some("s3") => StorageConfig::S3 {
                bucket: get("REALNET_STORAGE_S3_BUCKET").ok_or_else(|| {
                    bad(
                        "REALNET_STORAGE_S3_BUCKET",
                        "required when REALNET_STORAGE_TYPE=s3",
                    )
                })?,
                endpoint: match get("REALNET_STORAGE_S3_ENDPOINT") {
                    Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => {
                        return Err(bad(
                            "REALNET_STORAGE_S3_ENDPOINT",
                            format!("{url:?} is not an http(s) URL"),
                        ));
                    }
                    other => other,
                },
            },
            Some(v) => {
                return Err(bad(
                    "REALNET_STORAGE_TYPE",
                    format!("{v:?} is not a storage: use local or s3"),
                ));
            }
        };
        let file_max_size =
            parse("REALNET_FILE_MAX_SIZE", "a size in bytes")?.unwrap_or(100 * 1024 * 1024);
        if !(1..=5 * 1024 * 1024 * 1024).contains(&file_max_size) {
            return Err(bad("REALNET_FILE_MAX_SIZE", "must be from 1 byte to 5 GiB"));
        }
        let file_url_ttl = duration("REALNET_FILE_URL_TTL", Duration::from_secs(15 * 60))?;
        if file_url_ttl < Duration::from_secs(1) || file_url_ttl > Duration::from_secs(7 * 86400) {
            return Err(bad(
                "REALNET_FILE_URL_TTL",
                "must be from one second to seven days",
            ));
        }
        let job_record_ttl = duration("REALNET_JOB_RECORD_TTL", Duration::from_secs(4 * 86400))?;
        if job_record_ttl < Duration::from_secs(60)
            || job_record_ttl > Duration::from_secs(30 * 86400)
        {
            return Err(bad(
                "REALNET_JOB_RECORD_TTL",
                "must be from one minute to 30 days (at least the queue's message retention)",
            ));
        }
        let max_depth = parse("REALNET_MAX_DEPTH", "a whole number")?.unwrap_or(DEFAULT_MAX_DEPTH);
        if !(1..=MAX_DEPTH_CEILING).contains(&max_depth) {
            return Err(bad(
                "REALNET_MAX_DEPTH",
                format!("must be from 1 to {MAX_DEPTH_CEILING} levels"),
            ));
        }
        let cors_origins = CorsOrigins::parse(get("REALNET_CORS_ORIGINS").as_deref())
            .map_err(|m| bad("REALNET_CORS_ORIGINS", m))?;
        let request_timeout = duration("REALNET_REQUEST_TIMEOUT", Duration::from_secs(25))?;
        if request_timeout < Duration::from_millis(100)
            || request_timeout > Duration::from_secs(3600)
        {
            return Err(bad(
                "REALNET_REQUEST_TIMEOUT",
                "must be from 100ms to an hour",
            ));
        }
        let max_concurrent_requests =
            parse("REALNET_MAX_CONCURRENT_REQUESTS", "a number")?.unwrap_or(512);
        if !(1..=100_000).contains(&max_concurrent_requests) {
            return Err(bad(
                "REALNET_MAX_CONCURRENT_REQUESTS",
                "must be from 1 to 100000",
            ));
        }
        Ok(Config {
            cors_origins,
            request_timeout,
            max_concurrent_requests: max_concurrent_requests as usize,
            server_host,
            server_port,
            db,
            debug: flag("REALNET_DEBUG")?,
            init_dir: get("REALNET_INIT_DIR").map(PathBuf::from),
            data_dir,
            body_limit: body_limit as usize,
            default_org,
            auth,
            storage,
            file_max_size,
            file_url_ttl,
            job_record_ttl,
            job_signing_key: get("REALNET_JOB_SIGNING_KEY")
                .map(|k| signing_key(k, "REALNET_JOB_SIGNING_KEY"))
                .transpose()?,
            previous_job_signing_keys: match get("REALNET_JOB_SIGNING_KEY_PREVIOUS") {
                Some(_) if get("REALNET_JOB_SIGNING_KEY").is_none() => {
                    return Err(bad(
                        "REALNET_JOB_SIGNING_KEY_PREVIOUS",
                        "previous keys are accepted beside a current one: set REALNET_JOB_SIGNING_KEY too",
                    ));
                }
                Some(list) => list
                    .split(',')
                    .map(|k| signing_key(k.trim().to_string(), "REALNET_JOB_SIGNING_KEY_PREVIOUS"))
                    .collect::<Result<_, _>>()?,
                None => Vec::new(),
            },
            max_depth: max_depth as usize,
            queue_url: queue_url(get("REALNET_QUEUE_URL"), "REALNET_QUEUE_URL")?,
            dead_letter_queue_url: queue_url(
                get("REALNET_DEAD_LETTER_QUEUE_URL"),
                "REALNET_DEAD_LETTER_QUEUE_URL",
            )?,
            extension_allow_loopback: flag("REALNET_EXTENSION_ALLOW_LOOPBACK")?,
        })
    }
}

/// An SQS queue URL from `var`, if it is set.
fn queue_url(value: Option<String>, var: &'static str) -> Result<Option<String>, ConfigError> {
    match value {
        Some(url) if !(url.starts_with("https://") || url.starts_with("http://")) => {
            Err(bad(var, format!("{url:?} is not an SQS queue URL")))
        }
        other => Ok(other),
    }
}

/// Why `name` cannot name an org, if it cannot.
pub fn check_org_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not an org name: use 1 to 63 lowercase letters, digits and -, not starting with -"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_local_and_embedded() {
        let c = config(&[]).expect("defaults");
        assert_eq!(c.server_host.to_string(), "127.0.0.1");
        assert_eq!(c.server_port, 8080);
        assert!(matches!(c.db, DbConfig::Sqlite { .. }));
        assert_eq!(c.auth.mode, AuthMode::Token);
        assert_eq!(c.auth.token_ttl, Duration::from_secs(12 * 3600));
        assert_eq!(c.auth.cache_ttl, Duration::from_secs(30));
        assert_eq!(
            (c.auth.issuer_claim.as_str(), c.auth.subject_claim.as_str()),
            ("iss", "sub")
        );
        assert_eq!(
            (
                c.auth.max_failures,
                c.auth.max_failures_per_address,
                c.auth.max_failures_per_username
            ),
            (5, 20, 50)
        );
        assert_eq!(c.max_depth, 64);
        assert_eq!(
            config(&[("REALNET_MAX_DEPTH", "8")])
                .expect("valid")
                .max_depth,
            8
        );
    }

    #[test]
    fn durations_take_seconds_or_units_and_the_admin_password_stays_secret() {
        let c = config(&[
            ("REALNET_TOKEN_TTL", "90m"),
            ("REALNET_AUTH_CACHE_TTL", "0"),
            ("REALNET_ADMIN_PASSWORD", "correct horse battery"),
            (
                "REALNET_JOB_SIGNING_KEY",
                "a job signing key of at least 32 characters",
            ),
        ])
        .expect("valid");
        assert_eq!(c.auth.token_ttl, Duration::from_secs(5400));
        assert_eq!(c.auth.cache_ttl, Duration::ZERO);
        assert!(!format!("{c:?}").contains("correct horse"));
        assert!(!format!("{c:?}").contains("job signing key"));
    }

    #[test]
    fn previous_signing_keys_are_listed_beside_the_current_one() {
        let current = (
            "REALNET_JOB_SIGNING_KEY",
            "the current job signing key, 32 characters",
        );
        let c = config(&[
            current,
            (
                "REALNET_JOB_SIGNING_KEY_PREVIOUS",
                "the previous job signing key of 32 characters , the one before it of 32 characters",
            ),
        ])
        .expect("valid");
        assert_eq!(
            c.previous_job_signing_keys,
            [
                Secret("the previous job signing key of 32 characters".into()),
                Secret("the one before it of 32 characters".into())
            ]
        );
        assert!(!format!("{c:?}").contains("previous job signing key"));
        assert!(
            config(&[current])
                .expect("valid")
                .previous_job_signing_keys
                .is_empty()
        );
        let err = config(&[
            current,
            (
                "REALNET_JOB_SIGNING_KEY_PREVIOUS",
                "the previous job signing key of 32 characters,short",
            ),
        ])
        .expect_err("a short previous key");
        assert_eq!(err.var, "REALNET_JOB_SIGNING_KEY_PREVIOUS");
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (var, value) in [
            ("REALNET_SERVER_PORT", "eighty"),
            ("REALNET_SERVER_PORT", "70000"),
            ("REALNET_SERVER_HOST", "my laptop"),
            ("REALNET_DB_TYPE", "mysql"),
            ("REALNET_DEBUG", "maybe"),
            ("REALNET_BODY_LIMIT", "12"),
            ("REALNET_AUTH_MODE", "jwt"),
            ("REALNET_AUTH_USERNAME_CLAIM", "cognito:username"),
            ("REALNET_TOKEN_TTL", "forever"),
            ("REALNET_TOKEN_TTL", "5s"),
            ("REALNET_AUTH_CACHE_TTL", "2d"),
            ("REALNET_LOGIN_MAX_FAILURES", "0"),
            ("REALNET_LOGIN_MAX_FAILURES_PER_ADDRESS", "4"),
            ("REALNET_LOGIN_MAX_FAILURES_PER_USERNAME", "10001"),
            ("REALNET_ADMIN_PASSWORD", "short"),
            ("REALNET_STORAGE_TYPE", "ftp"),
            ("REALNET_FILE_MAX_SIZE", "0"),
            ("REALNET_FILE_URL_TTL", "30d"),
            ("REALNET_JOB_RECORD_TTL", "10s"),
            ("REALNET_MAX_DEPTH", "0"),
            ("REALNET_MAX_DEPTH", "1001"),
            ("REALNET_MAX_DEPTH", "deep"),
            ("REALNET_CORS_ORIGINS", "app.example.com"),
            ("REALNET_CORS_ORIGINS", "https://app.example.com/"),
            ("REALNET_CORS_ORIGINS", "https://a.example, *"),
            ("REALNET_REQUEST_TIMEOUT", "10ms"),
            ("REALNET_MAX_CONCURRENT_REQUESTS", "0"),
            ("REALNET_QUEUE_URL", "my-queue"),
            ("REALNET_DEAD_LETTER_QUEUE_URL", "my-dead-letters"),
            ("REALNET_JOB_SIGNING_KEY", "too short"),
            (
                "REALNET_JOB_SIGNING_KEY_PREVIOUS",
                "previous keys without a current one, 32 characters",
            ),
            ("REALNET_EXTENSION_ALLOW_LOOPBACK", "sometimes"),
        ] {
            let err = config(&[(var, value)]).expect_err("refused");
            assert_eq!(err.var, var);
        }
        let err = config(&[("REALNET_STORAGE_TYPE", "s3")]).expect_err("no bucket");
        assert_eq!(err.var, "REALNET_STORAGE_S3_BUCKET");
        let err = config(&[
            ("REALNET_STORAGE_TYPE", "s3"),
            ("REALNET_STORAGE_S3_BUCKET", "b"),
            ("REALNET_STORAGE_S3_ENDPOINT", "localhost:9000"),
        ])
        .expect_err("not a URL");
        assert_eq!(err.var, "REALNET_STORAGE_S3_ENDPOINT");
        let err = config(&[("REALNET_DB_TYPE", "dynamodb")]).expect_err("no table");
        assert_eq!(err.var, "REALNET_DYNAMODB_TABLE");
        for reads in ["5", "lots"] {
            let err = config(&[
                ("REALNET_DB_TYPE", "dynamodb"),
                ("REALNET_DYNAMODB_TABLE", "items"),
                ("REALNET_DYNAMODB_PAGE_READS", reads),
            ])
            .expect_err("a bad budget");
            assert_eq!(err.var, "REALNET_DYNAMODB_PAGE_READS");
        }
        let err = config(&[
            ("REALNET_DB_TYPE", "dynamodb"),
            ("REALNET_DYNAMODB_TABLE", "no spaces allowed"),
        ])
        .expect_err("bad table");
        assert_eq!(err.var, "REALNET_DYNAMODB_TABLE");
        let err = config(&[("REALNET_DB_TYPE", "postgresql")]).expect_err("no user");
        assert_eq!(err.var, "REALNET_DB_USER");
        let err = config(&[
            ("REALNET_DB_TYPE", "postgresql"),
            ("REALNET_DB_URL", "host=db user=u"),
            ("REALNET_DB_CA_FILE", "/nonexistent/rds-ca.pem"),
        ])
        .expect_err("missing CA file");
        assert_eq!(err.var, "REALNET_DB_CA_FILE");
        let err = config(&[
            ("REALNET_DB_TYPE", "postgresql"),
            ("REALNET_DB_URL", "host=db port=x"),
        ])
        .expect_err("bad URL");
        assert_eq!(err.var, "REALNET_DB_URL");
    }

    #[test]
    fn postgres_from_parts_keeps_the_password_out_of_debug() {
        let c = config(&[
            ("REALNET_DB_TYPE", "postgresql"),
            ("REALNET_DB_USER", "realnet"),
            ("REALNET_DB_PASS", "s3cret-value"),
            ("REALNET_DB_NAME", "realnet"),
        ])
        .expect("valid");
        assert!(!format!("{c:?}").contains("s3cret-value"));
    }

    #[test]
    fn a_lambda_container_holds_two_postgresql_connections_unless_told() {
        let pool = |vars: &[(&str, &str)]| match config(vars).expect("valid").db {
            DbConfig::Postgres { pool_size, .. } => pool_size,
            other => panic!("{other:?}"),
        };
        let pg = [
            ("REALNET_DB_TYPE", "postgresql"),
            ("REALNET_DB_URL", "host=db user=u dbname=d"),
        ];
        assert_eq!(pool(&pg), 16);
        assert_eq!(
            pool(&[pg[0], pg[1], ("AWS_LAMBDA_FUNCTION_NAME", "api")]),
            2
        );
        assert_eq!(
            pool(&[
                pg[0],
                pg[1],
                ("AWS_LAMBDA_FUNCTION_NAME", "api"),
                ("REALNET_DB_POOL_SIZE", "1")
            ]),
            1
        );
    }

    #[test]
    fn cors_origins_are_none_any_or_a_list() {
        assert_eq!(
            config(&[]).expect("default").cors_origins,
            CorsOrigins::None
        );
        assert_eq!(
            config(&[("REALNET_CORS_ORIGINS", "*")])
                .expect("any")
                .cors_origins,
            CorsOrigins::Any
        );
        assert_eq!(
            config(&[(
                "REALNET_CORS_ORIGINS",
                "https://app.example.com, http://localhost:3000"
            )])
            .expect("list")
            .cors_origins,
            CorsOrigins::List(vec![
                "https://app.example.com".into(),
                "http://localhost:3000".into()
            ])
        );
    }
}
