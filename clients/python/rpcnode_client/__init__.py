"""rpcnode's Python client: JSON-RPC 2.0 over one WebSocket in a resumable
session (asyncio, on `websockets`). It reconnects with backoff and jitter and
resumes, so notifications missed while disconnected arrive once and in order;
when the node's history cannot cover a gap it says so with a `not_recovered`
event. The same ideas and names as the JavaScript client; see docs/clients.md.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import random
import urllib.parse
from typing import Any, Callable

import websockets

__all__ = ["RpcClient", "RpcError", "ConnectionError", "TimeoutError"]


class RpcError(Exception):
    """A JSON-RPC error answer: `code`, `message` and `data` as the node sent them."""

    def __init__(self, error: dict):
        super().__init__(error.get("message", ""))
        self.code = error.get("code")
        self.message = error.get("message", "")
        self.data = error.get("data")


class ConnectionError(Exception):  # noqa: A001 - the same name as in the JavaScript client
    """A call that could not be answered: the connection dropped, or the client was closed."""


class TimeoutError(Exception):  # noqa: A001
    """A call not answered within its timeout."""


class RpcClient:
    """A client of one node's WebSocket endpoint, `ws(s)://HOST:PORT/ws`.

    `timeout` is per call, in seconds; reconnects wait `min_backoff` seconds,
    doubled up to `max_backoff`, moved by up to a fifth either way.
    """

    def __init__(self, url: str, *, timeout: float = 30.0, min_backoff: float = 0.25, max_backoff: float = 30.0):
        parts = urllib.parse.urlsplit(url)
        self.url = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path or "/ws", "session", ""))
        self.timeout = timeout
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.client_id: str | None = None
        self._session: dict | None = None
        self._positions: dict[str, dict] = {}
        self._topics: set[str] = set()
        self._pending: dict[int, tuple[str, asyncio.Future]] = {}
        self._handlers: dict[str, list[Callable]] = {}
        self._ids = itertools.count(1)
        self._ws = None
        self._open = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._closed = False

    async def __aenter__(self) -> "RpcClient":
        await self.connect()
        return self

    async def __aexit__(self, *_: Any) -> None:
        await self.close()

    async def connect(self) -> None:
        """Open the session (reconnects are automatic after that); returns once it is open."""
        self._closed = False
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        await self._wait_open(self.timeout, "connect")

    async def call(self, method: str, params: Any = None, *, timeout: float | None = None) -> Any:
        """Call `method`: its result, or RpcError, TimeoutError or ConnectionError."""
        [answer] = await self._send([(method, params)], timeout)
        if "error" in answer:
            raise RpcError(answer["error"])
        return answer.get("result")

    async def notify(self, method: str, params: Any = None) -> None:
        """Send a notification: no answer."""
        await self.connect()
        await self._write(_request(method, params))

    async def batch(self, calls: list[tuple[str, Any]], *, timeout: float | None = None) -> list[Any]:
        """Send `calls` ([(method, params)]) as one batch: one entry per call, in order, its result or an RpcError."""
        answers = await self._send(calls, timeout)
        return [RpcError(answer["error"]) if "error" in answer else answer.get("result") for answer in answers]

    async def subscribe(self, topics: list[str]) -> list[str]:
        """Subscribe to `topics`, kept across reconnects; the topics subscribed."""
        result = await self.call("rpc.subscribe", {"topics": topics})
        self._topics.update(topics)
        self._remember(result.get("streams", []))
        return result["subscribed"]

    async def unsubscribe(self, topics: list[str]) -> list[str]:
        """Unsubscribe from `topics`; the topics that were subscribed."""
        self._topics.difference_update(topics)
        return (await self.call("rpc.unsubscribe", {"topics": topics}))["unsubscribed"]

    def on(self, method: str, handler: Callable) -> Callable[[], None]:
        """Call `handler(params, message)` (a function or a coroutine function) for each notification of `method`."""
        return self._listen(f"method:{method}", handler)

    def on_topic(self, topic: str, handler: Callable) -> Callable[[], None]:
        """Call `handler(message)` for each notification published to `topic`."""
        return self._listen(f"topic:{topic}", handler)

    def on_event(self, event: str, handler: Callable) -> Callable[[], None]:
        """Call `handler(detail)` on `connected` ({client_id, resumed}), `disconnected`,
        `not_recovered` ({streams, reason}: refresh that data) or `error`."""
        return self._listen(f"event:{event}", handler)

    async def close(self) -> None:
        """Close the connection and end the session; pending calls raise ConnectionError."""
        self._closed = True
        self._fail_pending("the client was closed")
        if self._ws is not None:
            await self._ws.close()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    # --- inside ---

    async def _wait_open(self, timeout: float, what: str) -> None:
        try:
            await asyncio.wait_for(self._open.wait(), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"{what}: no session within {timeout} s") from None

    async def _send(self, calls: list[tuple[str, Any]], timeout: float | None) -> list[dict]:
        timeout = self.timeout if timeout is None else timeout
        if self._task is None:
            await self.connect()
        # Calls made while reconnecting wait for the session, within their timeout.
        await self._wait_open(timeout, calls[0][0] if calls else "batch")
        loop = asyncio.get_running_loop()
        messages = []
        for method, params in calls:
            message = {**_request(method, params), "id": next(self._ids)}
            self._pending[message["id"]] = (method, loop.create_future())
            messages.append(message)
        futures = [self._pending[message["id"]][1] for message in messages]
        try:
            await self._write(messages[0] if len(messages) == 1 else messages)
            return await asyncio.wait_for(asyncio.gather(*futures), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"{calls[0][0]}: no answer within {timeout} s") from None
        finally:
            for message in messages:
                self._pending.pop(message["id"], None)

    async def _write(self, message: Any) -> None:
        if self._ws is None or not self._open.is_set():
            raise ConnectionError("not connected")
        await self._ws.send(json.dumps(message))

    def _listen(self, key: str, handler: Callable) -> Callable[[], None]:
        self._handlers.setdefault(key, []).append(handler)
        return lambda: self._handlers[key].remove(handler)

    async def _emit(self, key: str, *args: Any) -> None:
        for handler in list(self._handlers.get(key, [])):
            try:
                outcome = handler(*args)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception as error:  # a handler's failure must not stop the client
                if key != "event:error":
                    await self._emit("event:error", error)

    async def _run(self) -> None:
        backoff = self.min_backoff
        while not self._closed:
            try:
                async with websockets.connect(self.url, max_size=None) as ws:
                    self._ws = ws
                    if await self._open_session(ws):
                        backoff = self.min_backoff
                        async for text in ws:
                            await self._receive(json.loads(text))
            except (OSError, asyncio.TimeoutError, websockets.WebSocketException):
                pass
            finally:
                self._ws = None
                was_open = self._open.is_set()
                self._open.clear()
                self._fail_pending("the connection closed before the answer came")
            if self._closed:
                return
            if was_open:
                await self._emit("event:disconnected", {})
            await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
            backoff = min(backoff * 2, self.max_backoff)

    async def _open_session(self, ws) -> bool:
        params = {**self._session, "positions": list(self._positions.values())} if self._session else {}
        await ws.send(json.dumps({"jsonrpc": "2.0", "method": "rpc.session", "params": params, "id": "session"}))
        answer = json.loads(await asyncio.wait_for(ws.recv(), self.timeout))
        if "error" in answer:
            # The session ended (or the node lost it): start a new one, and say
            # that everything of the old one's streams may be lost.
            streams = list(self._positions)
            self._session, self._positions = None, {}
            await self._emit("event:not_recovered", {"streams": streams, "reason": answer["error"].get("message")})
            await ws.close()
            return False
        result = answer["result"]
        self._remember(result.get("streams", []))
        if result.get("resumed"):
            lost = [stream["stream"] for stream in result["streams"] if not stream.get("recovered")]
            if lost:
                await self._emit("event:not_recovered", {"streams": lost, "reason": "history does not cover the gap"})
            self._open.set()
            await self._emit("event:connected", {"client_id": result["client_id"], "resumed": True})
            return True
        self._session = {"client_id": result["client_id"], "token": result["token"]}
        self.client_id = result["client_id"]
        self._open.set()
        if self._topics:
            asyncio.create_task(self._resubscribe())
        await self._emit("event:connected", {"client_id": result["client_id"], "resumed": False})
        return True

    async def _resubscribe(self) -> None:
        try:
            result = await self.call("rpc.subscribe", {"topics": sorted(self._topics)})
            self._remember(result.get("streams", []))
        except Exception as error:
            await self._emit("event:error", error)

    async def _receive(self, message: Any) -> None:
        if isinstance(message, list):
            for answer in message:
                self._answer(answer)
        elif "id" in message:
            self._answer(message)
        elif "method" in message:
            position = message.get("position")
            if position:
                self._positions[position["stream"]] = position
            await self._emit(f"method:{message['method']}", message.get("params"), message)
            stream = (position or {}).get("stream", "")
            if stream.startswith("topic:"):
                await self._emit(f"topic:{stream[6:]}", message)

    def _answer(self, message: dict) -> None:
        waiting = self._pending.get(message.get("id"))
        if waiting and not waiting[1].done():
            waiting[1].set_result(message)

    def _remember(self, streams: list[dict]) -> None:
        for stream in streams:
            self._positions[stream["stream"]] = {key: stream[key] for key in ("stream", "epoch", "offset")}

    def _fail_pending(self, why: str) -> None:
        for method, future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionError(f"{method}: {why}"))


def _request(method: str, params: Any) -> dict:
    return {"jsonrpc": "2.0", "method": method} if params is None else {"jsonrpc": "2.0", "method": method, "params": params}
