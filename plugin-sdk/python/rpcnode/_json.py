"""JSON text at the WIT boundary, the same way for handlers and host calls."""

import json


def dumps(value):
    """Compact JSON text; NaN and infinities are refused (JSON has neither)."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def dumps_optional(value):
    """JSON text, or ``None`` (absent) for ``None``."""
    return None if value is None else dumps(value)


def loads(text, default=None):
    """The value of JSON text, or ``default`` when the text is absent."""
    return default if text is None else json.loads(text)
