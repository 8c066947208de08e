//! Logging set-up shared by the binaries: `tracing` with JSON lines on Lambda (where
//! CloudWatch adds the time) and readable lines elsewhere, coloured only on a terminal. `RUST_LOG` overrides the level;
//! `debug` (`REALNET_DEBUG`) raises the default to debug.

use tracing_subscriber::EnvFilter;

pub fn init(json: bool, debug: bool) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(if debug { "debug" } else { "info" }));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = if json {
        builder
            .json()
            .without_time()
            .with_current_span(true)
            .try_init()
    } else {
        // Colour codes only for a terminal; a log file or a pipe gets plain text.
        let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
        builder.with_target(false).with_ansi(terminal).try_init()
    };
    // A subscriber already set (tests, embedding) is fine.
    drop(result);
}
