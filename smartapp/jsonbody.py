"""Strict JSON decoding for request bodies: what Python's json accepts but a webhook must refuse."""

from __future__ import annotations

import json
import re
from typing import Any

from smartapp.errors import MalformedRequest

MAX_INTEGER_DIGITS = 64
# Any \uD800-\uDFFF escape: only then do we pay for a walk looking for unpaired surrogates.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _reject_constant(name: str) -> Any:
    raise MalformedRequest("malformed_json", f"non-standard constant {name}")


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise MalformedRequest("malformed_json", "integer too long")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise MalformedRequest("malformed_json", "number out of range")
    return value


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise MalformedRequest("malformed_json", "duplicate key")
    return obj


_DECODER = json.JSONDecoder(
    object_pairs_hook=_unique_object,
    parse_int=_parse_int,
    parse_float=_parse_float,
    parse_constant=_reject_constant,
)


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False


def parse_json(raw: bytes) -> Any:
    """Decode a UTF-8 JSON body; anything ambiguous or unrepresentable raises MalformedRequest (400)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedRequest("malformed_json", "body is not UTF-8") from None
    try:
        value = _DECODER.decode(text)
    except MalformedRequest:
        raise
    except (ValueError, RecursionError):
        # RecursionError: deep nesting, which stock Flask turns into a 500.
        raise MalformedRequest("malformed_json", "body is not valid JSON") from None
    if _SURROGATE_ESCAPE.search(raw) and _has_lone_surrogate(value):
        raise MalformedRequest("malformed_json", "unpaired surrogate")
    return value
