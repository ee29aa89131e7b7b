"""A client of a resumable session: it opens a session, subscribes to the
topics given on the command line, prints every notification as one JSON line,
and when the connection drops it reconnects and resumes, so that it receives
what it missed once and in order.

    python resume.py ws://127.0.0.1:8000/ws?session news

Needs the `websockets` package (pip install websockets).
"""

import asyncio
import json
import sys

import websockets


async def main(url, topics):
    session = None  # {"client_id", "token"} once the server gave us one
    positions = {}  # stream name -> its last position we received
    delay = 0.1  # reconnect backoff, in seconds
    while True:
        try:
            async with websockets.connect(url) as ws:
                # A resume sends the last position of every stream; a new session sends nothing.
                params = {**session, "positions": list(positions.values())} if session else {}
                await ws.send(json.dumps({"jsonrpc": "2.0", "method": "rpc.session", "params": params, "id": "session"}))
                answer = json.loads(await ws.recv())
                if "error" in answer:
                    # -32005: the session ended (or the server lost it): start a new one.
                    print(json.dumps({"event": "session lost", "error": answer["error"]}), flush=True)
                    session = None
                    positions.clear()
                    continue
                result = answer["result"]
                remember(positions, result["streams"])
                if result.get("resumed"):
                    # What could not be recovered is gone for good: refresh from the source.
                    lost = [stream["stream"] for stream in result["streams"] if not stream["recovered"]]
                    print(json.dumps({"event": "resumed", "client_id": result["client_id"], "lost": lost}), flush=True)
                else:
                    session = {"client_id": result["client_id"], "token": result["token"]}
                    print(json.dumps({"event": "session", "client_id": result["client_id"]}), flush=True)
                    if topics:
                        subscribe = {"jsonrpc": "2.0", "method": "rpc.subscribe", "params": {"topics": topics}, "id": "subscribe"}
                        await ws.send(json.dumps(subscribe))
                delay = 0.1
                async for text in ws:
                    message = json.loads(text)
                    if message.get("id") == "subscribe":
                        remember(positions, message["result"]["streams"])
                        print(json.dumps({"event": "subscribed", "topics": message["result"]["subscribed"]}), flush=True)
                    elif "position" in message:
                        positions[message["position"]["stream"]] = message["position"]
                        line = {key: message.get(key) for key in ("method", "params", "position")}
                        print(json.dumps(line), flush=True)
        except (OSError, websockets.WebSocketException):
            pass
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5)


def remember(positions, streams):
    for stream in streams:
        positions[stream["stream"]] = {key: stream[key] for key in ("stream", "epoch", "offset")}


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "ws://127.0.0.1:8000/ws?session", sys.argv[2:]))
