"""Arithmetic over JSON-RPC: `add`, `multiply` and `divide`, each taking
`{"a": …, "b": …}` or `[a, b]`; the Python twin of the Rust calculator."""

from rpcnode import InvalidParams, Plugin

plugin = Plugin("calculator", "0.1.0")

OPERANDS = {
    "oneOf": [
        {"type": "object", "required": ["a", "b"],
         "properties": {"a": {"type": "number"}, "b": {"type": "number"}}},
        {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
    ]
}


def number(value):
    """Whole results print as integers (`3`, not `3.0`), as a client expects."""
    return int(value) if float(value).is_integer() and abs(value) < 9.0e15 else value


@plugin.method(summary="Add two numbers", params_schema=OPERANDS,
               result_schema={"type": "object", "properties": {"sum": {"type": "number"}}})
def add(a: float, b: float):
    return {"sum": number(a + b)}


@plugin.method(summary="Multiply two numbers", params_schema=OPERANDS)
def multiply(a: float, b: float):
    return {"product": number(a * b)}


@plugin.method(summary="Divide a by b", description="Fails with invalid params when b is zero.",
               params_schema=OPERANDS)
def divide(a: float, b: float):
    if b == 0:
        raise InvalidParams("Cannot divide by zero")
    return {"quotient": number(a / b)}


Handler = plugin.handler()
