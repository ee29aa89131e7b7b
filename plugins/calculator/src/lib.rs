//! Arithmetic over JSON-RPC: `add`, `multiply` and `divide`, each taking
//! `{"a":…,"b":…}` or `[a, b]`.

use rpcnode_sdk::{Method, Plugin, Request, RpcError, Value, export, json};
use serde::Deserialize;

/// The two operands, by name or by position.
#[derive(Deserialize)]
struct Operands {
    a: f64,
    b: f64,
}

fn add(request: &Request) -> Result<Value, RpcError> {
    let Operands { a, b } = request.params()?;
    Ok(json!({ "sum": number(a + b) }))
}

fn multiply(request: &Request) -> Result<Value, RpcError> {
    let Operands { a, b } = request.params()?;
    Ok(json!({ "product": number(a * b) }))
}

fn divide(request: &Request) -> Result<Value, RpcError> {
    let Operands { a, b } = request.params()?;
    if b == 0.0 {
        return Err(RpcError::invalid_params("Cannot divide by zero"));
    }
    Ok(json!({ "quotient": number(a / b) }))
}

/// Whole results print as integers (`3`, not `3.0`), as a client expects.
fn number(value: f64) -> Value {
    if value.fract() == 0.0 && value.abs() < 9.0e15 {
        json!(value as i64)
    } else {
        json!(value)
    }
}

fn operands_schema() -> Value {
    json!({
        "oneOf": [
            { "type": "object", "required": ["a", "b"],
              "properties": { "a": { "type": "number" }, "b": { "type": "number" } } },
            { "type": "array", "items": { "type": "number" }, "minItems": 2, "maxItems": 2 }
        ]
    })
}

fn plugin() -> Plugin {
    Plugin::new("calculator", env!("CARGO_PKG_VERSION"))
        .method(
            Method::new("add", add)
                .summary("Add two numbers")
                .params_schema(operands_schema())
                .result_schema(
                    json!({ "type": "object", "properties": { "sum": { "type": "number" } } }),
                ),
        )
        .method(
            Method::new("multiply", multiply)
                .summary("Multiply two numbers")
                .params_schema(operands_schema()),
        )
        .method(
            Method::new("divide", divide)
                .summary("Divide a by b")
                .description("Fails with invalid params when b is zero.")
                .params_schema(operands_schema()),
        )
}

export!(plugin);
