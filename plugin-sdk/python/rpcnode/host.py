"""Functions the host offers to plugins: logging, notifications, clients,
topics, durable state, background work and configuration.

Values are plain Python values (anything ``json.dumps`` accepts). State lives
in the host, per plugin name: every instance of a plugin sees the same values
and they outlive any one instance. Module globals are a per-instance cache
only: the host runs several instances of a plugin at once and replaces them
at will.
"""

from componentize_py_types import Err
from wit_world.imports import host as _host
from wit_world.imports import types

from ._json import dumps, dumps_optional, loads

_LEVELS = {
    "trace": types.LogLevel.TRACE,
    "debug": types.LogLevel.DEBUG,
    "info": types.LogLevel.INFO,
    "warn": types.LogLevel.WARN,
    "error": types.LogLevel.ERROR,
}


class HostError(Exception):
    """The host refused a call (an unknown client, a full spawn queue, …)."""


def _call(function, *args):
    try:
        return function(*args)
    except Err as error:
        raise HostError(error.value) from None


# The request id (JSON text) of the call ``handle-batch`` is running, in a
# tuple: the host's ``call-context`` has none during a batch, each call
# carries its own.
_batch_call = None


def call_context():
    """Who made the call in progress: the WIT ``request-context`` record
    (``request_id`` as JSON text, ``transport``, ``client_id``,
    ``remote_addr``)."""
    context = _host.call_context()
    if _batch_call is not None:
        context.request_id = _batch_call[0]
    return context


def request_headers():
    """The headers of the call in progress as (name, value) pairs, lowercase
    names."""
    return _host.request_headers()


def request_header(name):
    """The first value of header ``name`` (case-insensitive) of the call in
    progress, or ``None``."""
    return _host.request_header(name)


def log(level, message):
    """Write ``message`` to the host log at ``level`` ("trace", "debug",
    "info", "warn" or "error"), tagged with this plugin's name."""
    _host.log(_LEVELS[level], message)


def broadcast(method, params=None, exclude=()):
    """Send notification ``method`` to every WebSocket client except those in
    ``exclude``; returns how many clients it was queued for."""
    return _call(_host.broadcast_notification, method, dumps_optional(params), list(exclude))


def notify(client_id, method, params=None):
    """Send notification ``method`` to one WebSocket client; HostError when
    the client is unknown or gone."""
    _call(_host.send_notification, client_id, method, dumps_optional(params))


def clients():
    """The ids of the connected WebSocket clients."""
    return _host.clients()


def client_count():
    """How many WebSocket clients are connected."""
    return _host.client_count()


def client_get(client_id, key, default=None):
    """Metadata ``key`` of a connected client, or ``default``."""
    return loads(_host.client_get(client_id, key), default)


def client_set(client_id, key, value):
    """Set metadata ``key`` of a connected client (dropped when it
    disconnects)."""
    _call(_host.client_set, client_id, key, dumps(value))


def subscribe(client_id, topic):
    """Subscribe a connected client to ``topic``."""
    _call(_host.subscribe, client_id, topic)


def unsubscribe(client_id, topic):
    """Unsubscribe a client from ``topic``; True if it was subscribed."""
    return _host.unsubscribe(client_id, topic)


def publish(topic, method, params=None):
    """Send notification ``method`` to the subscribers of ``topic``; returns
    how many clients it was queued for."""
    return _call(_host.publish, topic, method, dumps_optional(params))


def subscribers(topic):
    """The ids of the clients subscribed to ``topic``."""
    return _host.subscribers(topic)


def spawn(method, params=None, delay_ms=0):
    """Call this plugin's own ``method`` after ``delay_ms`` milliseconds, with
    no client attached."""
    _call(_host.spawn, method, dumps_optional(params), delay_ms)


def state_get(key, default=None):
    """A value from this plugin's durable state, or ``default``."""
    return loads(_host.state_get(key), default)


def state_set(key, value):
    """Store ``value`` in this plugin's durable state."""
    _call(_host.state_set, key, dumps(value))


def state_delete(key):
    """Remove ``key`` from this plugin's durable state; True if it existed."""
    return _host.state_delete(key)


def state_increment(key, delta=1):
    """Atomically add ``delta`` to the integer at ``key`` (missing counts as
    0) and return the new value."""
    return _call(_host.state_increment, key, delta)


def config(key, default=None):
    """Value ``key`` of this plugin's ``[config]`` table, or ``default``."""
    return loads(_host.config_get(key), default)
