//! The cold-start baseline of the benchmark: a bare `lambda_http` function serving one axum
//! route, with nothing of Realnet in it.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let app = axum::Router::new().route("/ping", axum::routing::get(|| async { "pong" }));
    lambda_http::run(app).await
}
