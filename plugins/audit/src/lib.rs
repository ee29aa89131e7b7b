//! Hooks: logs every call, counts requests and errors in host state
//! (`requests`, `errors`, read back by `audit_counts`), and rejects calls to
//! the methods listed in its configuration (`deny_methods = ["…"]` in
//! `audit.toml`).

use rpcnode_sdk::host::{self, LogLevel};
use rpcnode_sdk::{Method, Plugin, Request, RpcError, Value, export, json};

/// The application error code for a call the audit policy forbids.
const FORBIDDEN: i32 = 403;

fn before_request(request: &Request) -> Result<(), RpcError> {
    let denied: Vec<String> = host::config("deny_methods").unwrap_or_default();
    if denied.contains(&request.method) {
        return Err(RpcError::new(
            FORBIDDEN,
            format!("method {} is denied by the audit policy", request.method),
        ));
    }
    Ok(())
}

fn after_request(request: &Request, outcome: Result<&Value, &RpcError>) {
    // Counting is best effort: an audit failure must not fail the request.
    let _ = host::state_increment("requests", 1);
    let status = match outcome {
        Ok(_) => "ok".to_string(),
        Err(error) => {
            let _ = host::state_increment("errors", 1);
            format!("error {}", error.code)
        }
    };
    let context = request.context();
    let caller = context
        .client_id
        .as_deref()
        .or(context.remote_addr.as_deref())
        .unwrap_or("-");
    host::log(
        LogLevel::Info,
        &format!("{} from {caller}: {status}", request.method),
    );
}

/// The counts so far; a call's own outcome is counted after it answers.
fn audit_counts(_: &Request) -> Result<Value, RpcError> {
    let requests: i64 = host::state_get("requests").unwrap_or(0);
    let errors: i64 = host::state_get("errors").unwrap_or(0);
    Ok(json!({ "requests": requests, "errors": errors }))
}

fn plugin() -> Plugin {
    Plugin::new("audit", env!("CARGO_PKG_VERSION"))
        .method(
            Method::new("audit_counts", audit_counts)
                .summary("Requests and errors seen so far")
                .without_params(),
        )
        .before_request(before_request)
        .after_request(after_request)
}

export!(plugin);
