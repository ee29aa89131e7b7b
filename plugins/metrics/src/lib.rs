//! Request metrics: `after-request` counts every request and every error in
//! host state, exactly under concurrency; `getMetrics` answers
//! `{requests, errors}`.

use rpcnode_sdk::{Method, Plugin, Request, RpcError, Value, export, host, json};

fn after_request(_: &Request, outcome: Result<&Value, &RpcError>) {
    // Counting is best effort: a metrics failure must not fail the request.
    let _ = host::state_increment("requests", 1);
    if outcome.is_err() {
        let _ = host::state_increment("errors", 1);
    }
}

fn get_metrics(_: &Request) -> Result<Value, RpcError> {
    let requests: i64 = host::state_get("requests").unwrap_or(0);
    let errors: i64 = host::state_get("errors").unwrap_or(0);
    Ok(json!({ "requests": requests, "errors": errors }))
}

fn plugin() -> Plugin {
    Plugin::new("metrics", env!("CARGO_PKG_VERSION"))
        .method(
            Method::new("getMetrics", get_metrics)
                .summary("Requests and errors counted so far")
                .without_params(),
        )
        .after_request(after_request)
}

export!(plugin);
