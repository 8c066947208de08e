//! The AWS SDK configuration every client shares, loaded once per process: region,
//! credentials and endpoint as the SDK resolves them (environment, profile, the Lambda role;
//! `AWS_ENDPOINT_URL` points every client at an emulator such as moto), over rustls with the
//! same `ring` provider as the rest of Realnet.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use tokio::sync::OnceCell;

pub async fn sdk_config() -> SdkConfig {
    static CONFIG: OnceCell<SdkConfig> = OnceCell::const_new();
    CONFIG
        .get_or_init(|| async {
            let http = aws_smithy_http_client::Builder::new()
                .tls_provider(Provider::Rustls(CryptoMode::Ring))
                .build_https();
            aws_config::defaults(BehaviorVersion::latest())
                .http_client(http)
                .load()
                .await
        })
        .await
        .clone()
}

/// An AWS SDK error as one line for people: each error of its chain, `: `-separated
/// (`service error: QueueDoesNotExist: The specified queue does not exist.`). The SDK's own
/// `DisplayErrorContext` adds the error's debug form, the raw HTTP response included, which
/// buried the message of `realnet queue bridge` under a screenful of Rust structures.
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut error = Some(self.0);
        let mut last = String::new();
        let mut first = true;
        while let Some(e) = error {
            let text = e.to_string();
            // An error often repeats its source's message: say it once.
            if text != last && !last.ends_with(&text) {
                if !first {
                    f.write_str(": ")?;
                }
                f.write_str(&text)?;
                first = false;
            }
            last = text;
            error = e.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    #[test]
    fn the_chain_is_one_line_without_debug_text_or_repeats() {
        let e = Layer(
            "service error",
            Some(Box::new(Layer(
                "QueueDoesNotExist: gone",
                Some(Box::new(Layer("QueueDoesNotExist: gone", None))),
            ))),
        );
        assert_eq!(
            ErrorChain(&e).to_string(),
            "service error: QueueDoesNotExist: gone"
        );
    }
}
