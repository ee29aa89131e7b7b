"""JSON text at the WIT boundary, the same way for handlers and host calls."""

import dataclasses
import datetime
import decimal
import enum
import json
import uuid


def _jsonable(value):
    """What ``json`` cannot write by itself, as FastAPI's encoder writes it:
    an object's ``__json__()`` (the conversion hook) or a pydantic model's
    ``model_dump()``, a dataclass as a dict, an enum as its value, a date or
    time in ISO 8601, a ``Decimal`` as an integer when whole and a float
    otherwise, a set as a list, a UUID as a string. Anything else is a
    TypeError naming the type."""
    if hasattr(value, "__json__"):
        return value.__json__()
    if hasattr(value, "model_dump"):
        return value.model_dump()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (set, frozenset)):
        return list(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def dumps(value):
    """Compact JSON text; NaN and infinities are refused (JSON has neither)."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False, default=_jsonable)


def dumps_optional(value):
    """JSON text, or ``None`` (absent) for ``None``."""
    return None if value is None else dumps(value)


def loads(text, default=None):
    """The value of JSON text, or ``default`` when the text is absent."""
    return default if text is None else json.loads(text)
