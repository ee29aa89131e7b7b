//! Arithmetic over JSON-RPC: `add`, `multiply` and `divide`, each taking
//! `{"a":…,"b":…}` or `[a, b]`. As in the RpcNode seed's calculator, an
//! operand left out counts as 0 (`add`), 1 (`multiply`), or 0 and 1
//! (`divide`'s a and b).

use rpcnode_sdk::{Method, Plugin, Request, RpcError, Value, export, json};
use serde::Deserialize;

/// The two operands, by name or by position; either may be left out.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Operands {
    a: Option<f64>,
    b: Option<f64>,
}

/// The operands of `request`, `a` and `b` standing in for the missing ones.
fn operands(request: &Request, a: f64, b: f64) -> Result<(f64, f64), RpcError> {
    let operands: Operands = request.params()?;
    Ok((operands.a.unwrap_or(a), operands.b.unwrap_or(b)))
}

fn add(request: &Request) -> Result<Value, RpcError> {
    let (a, b) = operands(request, 0.0, 0.0)?;
    Ok(json!({ "sum": number(a + b) }))
}

fn multiply(request: &Request) -> Result<Value, RpcError> {
    let (a, b) = operands(request, 1.0, 1.0)?;
    Ok(json!({ "product": number(a * b) }))
}

fn divide(request: &Request) -> Result<Value, RpcError> {
    let (a, b) = operands(request, 0.0, 1.0)?;
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

/// `{"a": number, "b": number}`, both optional; positional params bind in
/// this order.
fn operands_schema() -> Value {
    json!({
        "type": "object",
        "properties": { "a": { "type": "number" }, "b": { "type": "number" } }
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
