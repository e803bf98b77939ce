"""The WSGI environ of one request, as gunicorn builds it: PEP 3333 keys, fields as HTTP_*, the proxy's scheme."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

from smartapp.serving.request_head import Refused, RequestHead

# A repeat of one of these leaves the request ambiguous (RFC 9110 5.3): refused, as gunicorn refuses it.
_SINGLETONS = frozenset(("HTTP_HOST", "CONTENT_TYPE", "CONTENT_LENGTH"))
# Field names as sent -> environ key ("" for a dropped name): a client sends the same dozen names every time.
_KEY_OF_NAME: dict[bytes, str] = {}
_MAX_REMEMBERED_NAMES = 512


def _environ_key(raw_name: bytes) -> str:
    name = raw_name.decode("latin-1").upper()
    if "_" in name:
        key = ""  # HTTP_X_A_B could come from "X-A-B" or "X_A_B": a field that cannot be told apart is dropped
    elif name in ("CONTENT-TYPE", "CONTENT-LENGTH"):
        key = name.replace("-", "_")
    else:
        key = "HTTP_" + name.replace("-", "_")
    if len(_KEY_OF_NAME) < _MAX_REMEMBERED_NAMES:
        _KEY_OF_NAME[raw_name] = key
    return key


def connection_environ(base: dict[str, Any], peer: Any, server: tuple[str, int]) -> dict[str, Any]:
    """The keys every request of one connection shares."""
    environ = dict(base)
    environ["SCRIPT_NAME"] = ""
    environ["SERVER_NAME"] = str(server[0])
    environ["SERVER_PORT"] = str(server[1])
    environ["wsgi.url_scheme"] = "http"
    environ["wsgi.multithread"] = True
    if isinstance(peer, tuple):
        environ["REMOTE_ADDR"] = peer[0]
        environ["REMOTE_PORT"] = str(peer[1])
    else:
        environ["REMOTE_ADDR"] = peer.decode() if isinstance(peer, bytes) else str(peer)
    return environ


def request_environ(head: RequestHead, shared: dict[str, Any], secure_scheme: dict[str, str] | None) -> dict[str, Any]:
    """`shared` plus this request's keys; `secure_scheme` only when the peer is a trusted proxy."""
    environ = shared.copy()
    target = head.target.decode("latin-1")
    if target[:1] == "/":
        # Split by hand: urlsplit would read "//host/path" as a host and a path. A fragment is not part of a
        # request target (RFC 9112 3.2): dropped.
        path, _, query = target.partition("#")[0].partition("?")
    else:  # absolute form (a proxy's request) or "*"
        parts = urlsplit(target)
        path, query = parts.path, parts.query
    environ["REQUEST_METHOD"] = head.method
    environ["RAW_URI"] = target
    environ["PATH_INFO"] = unquote_to_bytes(path).decode("latin-1") if "%" in path else path
    environ["QUERY_STRING"] = query
    environ["SERVER_PROTOCOL"] = "HTTP/" + head.version

    repeated: dict[str, list[str]] | None = None
    for raw_name, raw_value in head.fields:
        key = _KEY_OF_NAME.get(raw_name)
        if key is None:
            key = _environ_key(raw_name)
        if not key:
            continue
        value = raw_value.decode("latin-1")
        if key in environ:  # a repeat: every key a field gives starts with HTTP_ or CONTENT_, no shared one does
            if key in _SINGLETONS:
                raise Refused(400, "repeated " + key)
            if repeated is None:
                repeated = {}
            repeated.setdefault(key, [environ[key]]).append(value)
        else:
            environ[key] = value
    if repeated:
        for key, values in repeated.items():
            environ[key] = ",".join(values)

    if secure_scheme:
        schemes = {("https" if environ[key].lower() == secure else "http")
                   for key, secure in secure_scheme.items() if key in environ}
        if len(schemes) > 1:
            raise Refused(400, "contradictory scheme fields")
        if schemes:
            environ["wsgi.url_scheme"] = schemes.pop()
    return environ
