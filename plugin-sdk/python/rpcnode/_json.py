"""JSON text at the WIT boundary, the same way for handlers and host calls."""

import dataclasses
import datetime
import decimal
import enum
import json
import json.decoder
import json.encoder
import json.scanner
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


def _new_encoder():
    """The C encoder ``json.dumps`` would make per call, made once: compact,
    ASCII-only, NaN and infinities refused, ``_jsonable`` for other types.
    It tracks the containers it is inside to refuse circular structures, so
    one that failed midway is replaced, not reused."""
    return json.encoder.c_make_encoder(
        {}, _jsonable, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, False
    )


_encode = _new_encoder()
_scan = json.scanner.make_scanner(json.decoder.JSONDecoder())


def dumps(value):
    """Compact JSON text; NaN and infinities are refused (JSON has neither)."""
    global _encode
    try:
        return "".join(_encode(value, 0))
    except BaseException:
        _encode = _new_encoder()
        raise


def dumps_optional(value):
    """JSON text, or ``None`` (absent) for ``None``."""
    return None if value is None else dumps(value)


def loads(text, default=None):
    """The value of JSON text, or ``default`` when the text is absent. The
    host sends JSON it has checked and trimmed, so the scanner reads it
    directly; anything else it cannot read whole goes through ``json.loads``
    for its error message."""
    if text is None:
        return default
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        return json.loads(text)
    return value if end == len(text) else json.loads(text)
