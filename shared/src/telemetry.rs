//! Logging set-up shared by the binaries: `tracing` with JSON lines on Lambda (where
//! CloudWatch adds the time) and readable lines elsewhere, coloured only on a terminal.
//! `RUST_LOG` overrides the level; `debug` (`REALNET_DEBUG`) raises the default to debug.
//!
//! On Lambda every line is one JSON object with `level`, the event's fields at the top, the
//! function's name and version (`function`, `version`: which deployment wrote it) and the
//! spans it happened in (`spans`): the runtime's invocation (`requestId`, `xrayTraceId`), then
//! Realnet's own (a request's `request_id`, a job's `message_id`, `kind` and the `request_id`
//! of the API request that sent it).

use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::{FmtContext, format};
use tracing_subscriber::registry::LookupSpan;

pub fn init(json: bool, debug: bool) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(if debug { "debug" } else { "info" }));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = if json {
        let lines = format()
            .json()
            .without_time()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true);
        builder
            .json()
            .event_format(WithFunction::from_env(lines))
            .try_init()
    } else {
        // Colour codes only for a terminal; a log file or a pipe gets plain text.
        let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
        builder.with_target(false).with_ansi(terminal).try_init()
    };
    // A subscriber already set (tests, embedding) is fine.
    drop(result);
}

/// A JSON line format with the Lambda function's name and version added to every line.
struct WithFunction<F> {
    inner: F,
    /// `"function":"…","version":"…",`
    fields: String,
}

impl<F> WithFunction<F> {
    fn from_env(inner: F) -> Self {
        let var = |k: &str| std::env::var(k).unwrap_or_default();
        let fields = format!(
            "\"function\":{},\"version\":{},",
            serde_json::Value::from(var("AWS_LAMBDA_FUNCTION_NAME")),
            serde_json::Value::from(var("AWS_LAMBDA_FUNCTION_VERSION")),
        );
        WithFunction { inner, fields }
    }
}

impl<S, N, F> FormatEvent<S, N> for WithFunction<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        match line.strip_prefix('{') {
            Some(rest) => {
                writer.write_char('{')?;
                writer.write_str(&self.fields)?;
                writer.write_str(rest)
            }
            None => writer.write_str(&line),
        }
    }
}
