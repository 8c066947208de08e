//! The Realnet scheduler as an AWS Lambda function: it builds the context once per container
//! and runs the task each EventBridge scheduled event names in its `detail` (`tick` every
//! minute, `maintenance` less often; see `infra/` and `events/scheduler/`), through
//! `realnet::schedule`. An unknown task fails the invocation with the reason.

use std::sync::Arc;

use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn};
use realnet::Realnet;
use realnet::schedule::{self, ScheduledEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let rn = Arc::new(Realnet::start_function(
        "scheduler",
        realnet_extensions::linked(),
    ));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<ScheduledEvent>| {
        let rn = rn.clone();
        async move {
            schedule::handle(&rn, event.payload)
                .await
                .map_err(|e| Diagnostic {
                    error_type: e.kind().to_string(),
                    error_message: e.to_string(),
                })
        }
    }))
    .await
}
