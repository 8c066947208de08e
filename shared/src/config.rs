//! Configuration: the `REALNET_*` environment variables, read once at start into one typed
//! [`Config`]. A bad value stops start-up with a message naming the variable.

use std::net::IpAddr;
use std::path::PathBuf;

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
    /// The org every request acts in until accounts arrive.
    pub default_org: String,
}

/// A variable with a value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    pub var: String,
    pub message: String,
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
                let pool_size = parse("REALNET_DB_POOL_SIZE", "a number")?.unwrap_or(16);
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
            Some(other) => {
                return Err(bad(
                    "REALNET_DB_TYPE",
                    format!("{other:?} is not a store: use sqlite or postgresql"),
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
        if !default_org
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            || default_org.len() > 63
        {
            return Err(bad(
                "REALNET_DEFAULT_ORG",
                "use up to 63 lowercase letters, digits and -",
            ));
        }
        Ok(Config {
            server_host,
            server_port,
            db,
            debug: flag("REALNET_DEBUG")?,
            init_dir: get("REALNET_INIT_DIR").map(PathBuf::from),
            data_dir,
            body_limit: body_limit as usize,
            default_org,
        })
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
        ] {
            let err = config(&[(var, value)]).expect_err("refused");
            assert_eq!(err.var, var);
        }
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
}
