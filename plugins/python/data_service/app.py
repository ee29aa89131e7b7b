"""A data service: `updateData {id, value}` stores the value in host state and
broadcasts `dataUpdated {id, value}` to every WebSocket client; `getData {id}`
reads it back. The Python twin of the Rust data_service."""

import json

from rpcnode import Plugin, RpcError, host

plugin = Plugin("data_service", "0.1.0")

# The application error code for an id with no data.
NOT_FOUND = 404


def key(id):
    return "data:" + json.dumps(id, separators=(",", ":"))


@plugin.method("updateData", summary="Store a value and broadcast dataUpdated")
def update_data(id, value):
    host.state_set(key(id), value)
    notified = host.broadcast("dataUpdated", {"id": id, "value": value})
    return {"status": "updated", "id": id, "notified": notified}


@plugin.method("getData", summary="Read a stored value")
def get_data(id):
    missing = object()
    value = host.state_get(key(id), missing)
    if value is missing:
        raise RpcError(NOT_FOUND, f"no data for id {json.dumps(id)}")
    return {"id": id, "value": value}


Handler = plugin.handler()
