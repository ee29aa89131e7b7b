"""Arithmetic over JSON-RPC: `add`, `multiply` and `divide`, each taking
`{"a": …, "b": …}` or `[a, b]`, either operand optional (0 for `add`, 1 for
`multiply`, 0 and 1 for `divide`, as in the RpcNode seed); the Python twin of
the Rust calculator."""

from rpcnode import InvalidParams, Plugin

plugin = Plugin("calculator", "0.1.0")

def number(value):
    """Whole results print as integers (`3`, not `3.0`), as a client expects."""
    if type(value) is int:
        return value
    return int(value) if float(value).is_integer() and abs(value) < 9.0e15 else value


# The params schemas come from the signatures: {"a": number, "b": number}, both optional.
@plugin.method(summary="Add two numbers",
               result_schema={"type": "object", "properties": {"sum": {"type": "number"}}})
def add(a: float = 0, b: float = 0):
    return {"sum": number(a + b)}


@plugin.method(summary="Multiply two numbers")
def multiply(a: float = 1, b: float = 1):
    return {"product": number(a * b)}


@plugin.method(summary="Divide a by b", description="Fails with invalid params when b is zero.")
def divide(a: float = 0, b: float = 1):
    if b == 0:
        raise InvalidParams("Cannot divide by zero")
    return {"quotient": number(a / b)}


Handler = plugin.handler()
