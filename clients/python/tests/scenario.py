"""The scenario the test suite runs against a real node (tests/all/client_libraries.rs):
connect, subscribe to `news`, make calls, then print every event and every
`seq` notification as one JSON line until stdin closes.

    python scenario.py ws://127.0.0.1:8000/ws
"""

import asyncio
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from rpcnode_client import RpcClient, RpcError  # noqa: E402


def show(value):
    print(json.dumps(value, separators=(",", ":")), flush=True)


async def outcome(call):
    try:
        return {"result": await call}
    except RpcError as error:
        return {"error": {"code": error.code, "message": error.message}}
    except Exception as error:
        return {"failed": type(error).__name__}


async def main(url):
    client = RpcClient(url, min_backoff=0.05, max_backoff=0.5, timeout=10)
    for event in ("connected", "disconnected", "not_recovered"):
        client.on_event(event, lambda detail, event=event: show({"event": event, **(detail if event != "disconnected" else {})}))
    client.on("seq", lambda params, message: show({"n": params["n"], "stream": message["position"]["stream"]}))
    client.on_topic("news", lambda message: show({"topic": "news", "n": message["params"]["n"]}))

    await client.connect()
    show({"event": "ready", "client_id": client.client_id, "subscribed": await client.subscribe(["news"])})
    show({"call": "add", **await outcome(client.call("add", {"a": 2, "b": 3}))})
    show({"call": "divide", **await outcome(client.call("divide", {"a": 1, "b": 0}))})
    show({"call": "nope", **await outcome(client.call("nope"))})
    show({"call": "slow", **await outcome(client.call("sleep", {"ms": 1000}, timeout=0.1))})
    batch = await client.batch([("add", [1, 2]), ("nope", None)])
    show({"batch": [{"code": entry.code} if isinstance(entry, RpcError) else entry for entry in batch]})

    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await client.close()
    show({"event": "closed"})


asyncio.run(main(sys.argv[1]))
