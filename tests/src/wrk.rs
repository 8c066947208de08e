//! `wrk` for the benchmarks: a load of `connections` connections over `seconds`, and what it
//! measured.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

pub struct WrkResult {
    pub rps: f64,
    pub p50: String,
    pub p99: String,
    pub failures: u64,
}

/// Runs `wrk` against `url` (with a Lua `script` and extra `headers`, if given).
pub fn run(
    connections: usize,
    seconds: usize,
    url: &str,
    script: Option<&Path>,
    headers: &[String],
) -> anyhow::Result<WrkResult> {
    let mut cmd = Command::new("wrk");
    for h in headers {
        cmd.arg("-H").arg(h);
    }
    cmd.args([
        "-t",
        "2",
        "-c",
        &connections.to_string(),
        "-d",
        &format!("{seconds}s"),
        "--latency",
    ]);
    if let Some(script) = script {
        cmd.arg("-s").arg(script);
    }
    let out = cmd
        .arg(url)
        .output()
        .with_context(|| "cannot run wrk (Debian package wrk)".to_string())?;
    if !out.status.success() {
        bail!("wrk failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let out = String::from_utf8_lossy(&out.stdout);
    let field = |prefix: &str| {
        out.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix))
            .map(|v| v.split_whitespace().next().unwrap_or_default().to_string())
    };
    Ok(WrkResult {
        rps: field("Requests/sec:")
            .context("wrk printed no Requests/sec")?
            .parse()?,
        p50: field("50%").unwrap_or_default(),
        p99: field("99%").unwrap_or_default(),
        failures: field("Non-2xx or 3xx responses:").map_or(Ok(0), |v| v.parse())?,
    })
}
