//! The Realnet SQS worker as an AWS Lambda function: it builds the context once per container
//! and hands each SQS batch, with the invocation's deadline, to `realnet::jobs::worker`, which
//! answers with the records to deliver again (partial batch failures; enable
//! `ReportBatchItemFailures` on the event source mapping).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use realnet::Realnet;
use realnet::jobs::worker;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let rn = Arc::new(Realnet::start_function(
        "worker",
        realnet_extensions::linked(),
    ));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let rn = rn.clone();
        async move {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            let left = Duration::from_millis(event.context.deadline.saturating_sub(now));
            Ok::<SqsBatchResponse, Error>(
                worker::handle(rn, event.payload, Instant::now() + left).await,
            )
        }
    }))
    .await
}
