"""A data service, as in the RpcNode seed: `updateData {id, value}` stores the
value in host state, broadcasts `dataUpdated {id, value}` to every WebSocket
client and answers `{"success": true, "clients_notified": n}`; `getData {id}`
answers `{id, data: {value}, timestamp}`, the time of the update. The Python
twin of the Rust data_service."""

import json
import time
from typing import Any

from rpcnode import Plugin, RpcError, host

plugin = Plugin("data_service", "0.1.0")

# The application error code for an id with no data.
NOT_FOUND = 404


def key(id):
    return "data:" + json.dumps(id, separators=(",", ":"))


@plugin.method("updateData", summary="Store a value and broadcast dataUpdated")
def update_data(id: Any, value: Any):
    host.state_set(key(id), {"value": value, "timestamp": time.time()})
    notified = host.broadcast("dataUpdated", {"id": id, "value": value})
    return {"success": True, "clients_notified": notified}


@plugin.method("getData", summary="Read a stored value")
def get_data(id: Any):
    stored = host.state_get(key(id))
    if stored is None:
        raise RpcError(NOT_FOUND, f"no data for id {json.dumps(id)}")
    return {"id": id, "data": {"value": stored["value"]}, "timestamp": stored["timestamp"]}


Handler = plugin.handler()
