"""Strict JSON decoding for request bodies: what Python's json accepts but a webhook must refuse."""

from __future__ import annotations

import json
import re
from typing import Any

from smartapp.errors import MalformedRequest

MAX_INTEGER_DIGITS = 64
# SmartThings' payloads nest about ten levels deep. Anything deeper is refused here, before any code
# (a handler, a log line, json.dumps of a stored config) walks it: deep enough input exhausts recursion.
MAX_DEPTH = 64
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


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _problem(value: Any, *, surrogates: bool) -> str | None:
    """Why a parsed document is refused (too deep, an unpaired surrogate), or None; iterative, never recursive."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        if isinstance(node, dict):
            if depth > MAX_DEPTH:
                return "nested too deeply"
            if surrogates and not all(_encodable(key) for key in node):
                return "unpaired surrogate"
            pending.extend((child, depth + 1) for child in node.values())
        elif isinstance(node, list):
            if depth > MAX_DEPTH:
                return "nested too deeply"
            pending.extend((child, depth + 1) for child in node)
        elif surrogates and isinstance(node, str) and not _encodable(node):
            return "unpaired surrogate"
    return None


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
    # Each walk only when it can find something: a document with fewer brackets than MAX_DEPTH cannot
    # be too deep (brackets inside strings count too, which only costs a walk that finds nothing).
    surrogates = _SURROGATE_ESCAPE.search(raw) is not None
    if surrogates or raw.count(b"[") + raw.count(b"{") > MAX_DEPTH:
        problem = _problem(value, surrogates=surrogates)
        if problem is not None:
            raise MalformedRequest("malformed_json", problem)
    return value
