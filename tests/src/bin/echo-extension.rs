//! A remote extension as a Lambda function, for the tests: it answers the payload Realnet
//! sent (with the extension, handler and caller it named), and fails with a function error
//! when the payload asks it to (`{"fail": "why"}`).

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

async fn echo(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let call = event.payload;
    if let Some(why) = call["payload"]["fail"].as_str() {
        return Err(why.into());
    }
    Ok(json!({
        "echo": call["payload"],
        "extension": call["extension"],
        "handler": call["handler"],
        "caller": call["caller"],
    }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(echo)).await
}
