//! `wrk` for the benchmarks: a load of `connections` connections over `seconds`, what it
//! measured, and the CPU time the server spent meanwhile.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};

pub struct WrkResult {
    /// Requests completed.
    pub requests: u64,
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
    let requests = out
        .lines()
        .find_map(|l| l.trim().split_once(" requests in "))
        .context("wrk printed no request count")?
        .0
        .parse()?;
    Ok(WrkResult {
        requests,
        rps: field("Requests/sec:")
            .context("wrk printed no Requests/sec")?
            .parse()?,
        p50: field("50%").unwrap_or_default(),
        p99: field("99%").unwrap_or_default(),
        failures: field("Non-2xx or 3xx responses:").map_or(Ok(0), |v| v.parse())?,
    })
}

/// The CPU time (user and system, every thread) this process has used so far, from
/// `/proc/self/stat`: the server's, where it runs in the benchmark's process and `wrk` in its
/// own. Its difference over a run, divided by the requests answered, is the server's time per
/// request, which `wrk`'s share of the same cores does not blur.
pub fn process_cpu() -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("reading /proc/self/stat")?;
    // The fields after the command name: state is the 3rd of stat(5), utime the 14th, stime
    // the 15th, in clock ticks (USER_HZ, 100 a second on Linux).
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .context("/proc/self/stat has no command name")?
        .1
        .split_whitespace()
        .collect();
    let tick = |i: usize| -> anyhow::Result<u64> {
        Ok(fields.get(i).context("/proc/self/stat is short")?.parse()?)
    };
    Ok(Duration::from_millis((tick(11)? + tick(12)?) * 10))
}
