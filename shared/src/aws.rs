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
