"""Hooks: logs every call, counts requests and errors in host state
(`requests`, `errors`, read back by `audit_counts`), and rejects calls to the
methods listed in its configuration (`deny_methods = ["…"]` in `audit.toml`).
The Python twin of the Rust audit plugin."""

from rpcnode import Plugin, RpcError, host

plugin = Plugin("audit", "0.1.0")

# The application error code for a call the audit policy forbids.
FORBIDDEN = 403


@plugin.before_request
def check_policy(method, params, ctx):
    if method in host.config("deny_methods", []):
        raise RpcError(FORBIDDEN, f"method {method} is denied by the audit policy")


@plugin.after_request
def count(method, params, ctx, result, error):
    host.state_increment("requests")
    if error is not None:
        host.state_increment("errors")
    caller = ctx.client_id or ctx.remote_addr or "-"
    host.log("info", f"{method} from {caller}: {'ok' if error is None else f'error {error.code}'}")


@plugin.method(summary="Requests and errors seen so far")
def audit_counts():
    """The counts so far; a call's own outcome is counted after it answers."""
    return {"requests": host.state_get("requests", 0), "errors": host.state_get("errors", 0)}


Handler = plugin.handler()
