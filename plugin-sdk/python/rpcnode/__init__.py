"""Write rpcnode JSON-RPC plugins in plain Python.

A plugin is a :class:`Plugin` with decorated functions plus one line that
hands the component export to componentize-py::

    from rpcnode import Plugin, InvalidParams

    plugin = Plugin("calculator", "0.1.0")

    @plugin.method(summary="Add two numbers")
    def add(a: float, b: float):
        return {"sum": a + b}          # {"a": 1, "b": 2} or [1, 2]

    Handler = plugin.handler()

Params arrive as arguments: named params as keyword arguments (names the
function does not take are ignored), positional params in order. A missing
or mistyped argument is an invalid-params error (-32602). A function that takes a ``ctx`` argument also
receives the :class:`Context` of the call. Raise :class:`RpcError` (or
:class:`InvalidParams`) to answer with an error; any other exception answers
-32603 and its traceback goes to the host log. Functions may be ``async def``:
the call runs the coroutine to completion (``await asyncio.sleep`` and other
timers included) within the host's request timeout.
"""

import inspect
import typing
from types import UnionType as _UnionType
import sys
import traceback

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports import types

from . import _loop, host
from ._json import dumps, dumps_optional, loads

__all__ = ["Context", "HostError", "InvalidParams", "Plugin", "RpcError", "host"]

HostError = host.HostError

INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
WEBSOCKET_REQUIRED = -32001


class RpcError(Exception):
    """A JSON-RPC error object: raise it from a handler or a hook."""

    def __init__(self, code, message, data=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def _to_wit(self):
        data = dumps_optional(self.data)
        return types.RpcError(self.code, self.message, data)


class InvalidParams(RpcError):
    """The params do not fit the method (-32602); the client sees
    ``"Invalid params: <message>"``."""

    def __init__(self, message, data=None):
        super().__init__(INVALID_PARAMS, message, data)


_TRANSPORTS = {
    types.Transport.HTTP: "http",
    types.Transport.WEBSOCKET: "websocket",
    types.Transport.BACKGROUND: "background",
}


class Context:
    """Who made a call, and how.

    ``transport`` is ``"http"``, ``"websocket"`` or ``"background"``;
    ``client_id`` is set for calls over WebSocket; ``headers`` maps lowercase
    names to values (of the HTTP request or the WebSocket handshake). Asked
    of the host on first use.
    """

    def __init__(self, method):
        self.method = method
        self._raw = None
        self._headers = None

    @property
    def _context(self):
        if self._raw is None:
            self._raw = host.call_context()
        return self._raw

    @property
    def transport(self):
        return _TRANSPORTS[self._context.transport]

    @property
    def client_id(self):
        return self._context.client_id

    @property
    def remote_addr(self):
        return self._context.remote_addr

    @property
    def request_id(self):
        """The request id (``None`` for notifications), parsed on use."""
        return loads(self._context.request_id)

    @property
    def headers(self):
        """The headers of the call in progress as a dict with lowercase names
        (a repeated header's first value), asked of the host on first use."""
        if self._headers is None:
            self._headers = dict(reversed(host.request_headers()))
        return self._headers

    def header(self, name):
        """The first value of header ``name`` (case-insensitive) of the call
        in progress, or ``None``."""
        return host.request_header(name)

    def require_client(self):
        """The caller's WebSocket client id, or a -32001 error saying the
        method needs a WebSocket connection."""
        if self.client_id is None:
            raise RpcError(WEBSOCKET_REQUIRED, f"{self.method} needs a WebSocket connection")
        return self.client_id


class _Method:
    """A registered handler and how its params map to arguments: each
    parameter's name, whether it is required, the exact JSON types that fit
    its annotation at a glance, and the full check of the annotation
    (``None`` when unchecked), worked out once."""

    def __init__(self, function, info):
        self.function = function
        self.info = info
        signature = inspect.signature(function)
        self.wants_ctx = "ctx" in signature.parameters
        self.parameters = [
            (p.name, p.default is inspect.Parameter.empty, *_checker(p))
            for p in signature.parameters.values()
            if p.name != "ctx"
        ]

    def call(self, params, method):
        """Call the function with ``params`` matched to its parameters, by
        name or in order."""
        if params is None:
            params = {}
        elif type(params) is list:
            if len(params) > len(self.parameters):
                raise InvalidParams(f"expected at most {len(self.parameters)} parameters, got {len(params)}")
            params = {parameter[0]: value for parameter, value in zip(self.parameters, params)}
        arguments = {}
        for name, required, exact, check in self.parameters:
            if name in params:
                value = params[name]
                if check is not None and type(value) not in exact:
                    check(value)
                arguments[name] = value
            elif required:
                raise InvalidParams(f"missing parameter `{name}`")
        if self.wants_ctx:
            arguments["ctx"] = Context(method)
        return self.function(**arguments)


_JSON_TYPES = {float: "number", int: "integer", str: "string", bool: "boolean", list: "array",
               dict: "object", type(None): "null"}


def _schema_of(function):
    """The params schema a function's signature stands for: an object with a
    property per parameter (but ``ctx``), in order, typed from its annotation,
    required unless it has a default. ``None`` for ``*args`` or ``**kwargs``."""
    properties, required = {}, []
    for parameter in inspect.signature(function).parameters.values():
        if parameter.name == "ctx":
            continue
        if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            return None
        properties[parameter.name] = _annotation_schema(parameter.annotation)
        if parameter.default is inspect.Parameter.empty:
            required.append(parameter.name)
    schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def _annotation_schema(annotation):
    """The JSON Schema of one annotation: plain types, ``list[...]``,
    ``dict[str, ...]``, ``Optional``/unions and ``Literal``; anything else
    allows any value."""
    if annotation in _JSON_TYPES:
        return {"type": _JSON_TYPES[annotation]}
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is list:
        return {"type": "array", "items": _annotation_schema(args[0])} if args else {"type": "array"}
    if origin is dict:
        schema = {"type": "object"}
        if len(args) == 2:
            schema["additionalProperties"] = _annotation_schema(args[1])
        return schema
    if origin is typing.Union or origin is _UnionType:
        return {"anyOf": [_annotation_schema(arg) for arg in args]}
    if origin is typing.Literal:
        return {"enum": list(args)}
    return {}


_TYPE_NAMES = {float: "a number", int: "an integer", str: "a string", bool: "a boolean", list: "an array",
               dict: "an object", type(None): "null"}


# The exact types of the JSON values that fit a plain annotation: checked
# first, so that the common case skips the general walk of ``_fits``.
_EXACT_TYPES = {float: frozenset({int, float}), int: frozenset({int}), str: frozenset({str}),
                bool: frozenset({bool}), list: frozenset({list}), dict: frozenset({dict})}


def _checker(parameter):
    """The check of a parameter's annotation (plain types, ``list[...]``,
    ``dict[str, ...]``, ``Optional``/unions and ``Literal``) as the exact
    JSON types that pass at once and the function that checks any other
    value; ``None`` for that function when there is no annotation."""
    expected = parameter.annotation
    if expected is inspect.Parameter.empty:
        return frozenset(), None
    wanted = _TYPE_NAMES.get(expected) or _annotation_text(expected)
    message = f"parameter `{parameter.name}` must be {wanted}"

    def check(value):
        if not _fits(expected, value):
            raise InvalidParams(message)

    return _EXACT_TYPES.get(expected, frozenset()), check


def _fits(annotation, value):
    """Whether JSON ``value`` fits ``annotation``."""
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation in (str, bool, list, dict):
        return isinstance(value, annotation)
    if annotation is None or annotation is type(None):
        return value is None
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is list:
        return isinstance(value, list) and (not args or all(_fits(args[0], item) for item in value))
    if origin is dict:
        return isinstance(value, dict) and (len(args) != 2 or all(_fits(args[1], item) for item in value.values()))
    if origin is typing.Union or origin is _UnionType:
        return any(_fits(arg, value) for arg in args)
    if origin is typing.Literal:
        return any(value == arg and type(value) is type(arg) for arg in args)
    return True


def _annotation_text(annotation):
    """An annotation as its source reads: ``list[float]``, ``int | None``."""
    if typing.get_origin(annotation) is typing.Literal:
        return "one of " + ", ".join(repr(arg) for arg in typing.get_args(annotation))
    text = annotation.__name__ if isinstance(annotation, type) else repr(annotation)
    return text.replace("typing.", "")


def _wit_error(error):
    """A handler's or hook's exception as the WIT error: an RpcError as it
    says; anything else is logged and answers -32603."""
    if isinstance(error, RpcError):
        return error._to_wit()
    traceback.print_exception(error, file=sys.stderr)
    return types.RpcError(INTERNAL_ERROR, f"{type(error).__name__}: {error}", None)


class Plugin:
    """A plugin's name, version, methods, hooks and timers."""

    def __init__(self, name, version):
        self.name = name
        self.version = version
        self._methods = {}
        self._timers = []
        self._hooks = {}

    def method(self, name=None, *, summary=None, description=None, params_schema=None,
               result_schema=None, notification=False, internal=False):
        """Register the decorated function as a method, named after the
        function unless ``name`` says otherwise. A ``notification`` method has
        no result (callers with an id get ``null``); an ``internal`` one is
        only callable by the plugin's own background work (``host.spawn`` and
        timers)."""

        def register(function):
            method_name = name or function.__name__
            if method_name in self._methods:
                raise ValueError(f"plugin {self.name}: method {method_name} is declared twice")
            schema = params_schema if params_schema is not None else _schema_of(function)
            info = types.MethodInfo(
                method_name,
                summary,
                description,
                dumps_optional(schema),
                dumps_optional(result_schema),
                notification,
                internal,
            )
            self._methods[method_name] = _Method(function, info)
            return function

        return register

    def timer(self, method, every_ms):
        """Have the host call ``method`` (listed in this plugin) every
        ``every_ms`` milliseconds, with no client and no params."""
        self._timers.append(types.Timer(method, every_ms))

    def before_request(self, function):
        """Decorate ``f(method, params, ctx)``: raise RpcError to reject a
        request before its handler runs."""
        self._hooks[types.Hook.BEFORE_REQUEST] = function
        return function

    def after_request(self, function):
        """Decorate ``f(method, params, ctx, result, error)``: sees every
        request's outcome (``error`` is an RpcError or ``None``)."""
        self._hooks[types.Hook.AFTER_REQUEST] = function
        return function

    def on_connect(self, function):
        """Decorate ``f(client_id, ctx)``: a WebSocket client connected."""
        self._hooks[types.Hook.ON_CONNECT] = function
        return function

    def on_disconnect(self, function):
        """Decorate ``f(client_id)``: a WebSocket client went away."""
        self._hooks[types.Hook.ON_DISCONNECT] = function
        return function

    def handler(self):
        """The class componentize-py exports: assign it to ``Handler``."""
        return _handler_class(self)


def _handler_class(plugin):
    hooks = plugin._hooks

    class Handler(exports.Handler):
        def describe(self):
            methods = [method.info for method in plugin._methods.values()]
            return types.Manifest(plugin.name, plugin.version, methods, list(hooks), plugin._timers)

        def handle(self, method, params):
            found = plugin._methods.get(method)
            if found is None:
                raise Err(types.RpcError(-32601, f"no method `{method}`", None))
            try:
                result = _settled(found.call(loads(params), method))
                return "null" if found.info.notification else dumps(result)
            except Exception as error:
                raise Err(_wit_error(error))

        def before_request(self, method, params):
            hook = hooks.get(types.Hook.BEFORE_REQUEST)
            if hook is not None:
                try:
                    _settled(hook(method, loads(params), Context(method)))
                except Exception as error:
                    raise Err(_wit_error(error))

        def after_request(self, method, params, outcome):
            hook = hooks.get(types.Hook.AFTER_REQUEST)
            if hook is None:
                return
            if isinstance(outcome, Err):
                wit = outcome.value
                result, error = None, RpcError(wit.code, wit.message, loads(wit.data))
            else:
                result, error = loads(outcome.value), None
            _quietly(lambda: hook(method, loads(params), Context(method), result, error))

        def on_connect(self, client_id):
            hook = hooks.get(types.Hook.ON_CONNECT)
            if hook is not None:
                _quietly(lambda: hook(client_id, Context("")))

        def on_disconnect(self, client_id):
            hook = hooks.get(types.Hook.ON_DISCONNECT)
            if hook is not None:
                _quietly(lambda: hook(client_id))

    return Handler


def batch_handler_for(handler_class):
    """The class componentize-py exports as ``BatchHandler`` for
    ``handler_class``: each call answered as its ``handle`` answers it, one
    at a time, in order. The plugin build adds it to an ``app`` module that
    does not define ``BatchHandler``."""
    handler = handler_class()

    class BatchHandler(exports.BatchHandler):
        def handle_batch(self, calls):
            outcomes = []
            for call in calls:
                host._batch_call = (call.request_id,)
                try:
                    outcomes.append(Ok(handler.handle(call.method, call.params)))
                except Err as error:
                    outcomes.append(error)
                finally:
                    host._batch_call = None
            return outcomes

    return BatchHandler


_PLAIN = frozenset({dict, list, str, int, float, bool, type(None)})


def _settled(value):
    """A handler's or hook's value; a coroutine (an ``async def``) or other
    awaitable runs to completion first. Plain JSON values, what most handlers
    return, skip the check."""
    if type(value) in _PLAIN:
        return value
    return _loop.run(value) if inspect.isawaitable(value) else value


def _quietly(call):
    """Run a hook that has no way to answer: failures go to the host log."""
    try:
        _settled(call())
    except Exception:
        traceback.print_exc(file=sys.stderr)
