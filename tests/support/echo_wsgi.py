"""A WSGI app that answers with what the server gave it: the tests of the HTTP worker serve it under gunicorn."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from urllib.parse import parse_qs

_ENVIRON_KEYS = ("REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "RAW_URI", "SERVER_PROTOCOL", "SERVER_NAME",
                 "SERVER_PORT", "REMOTE_ADDR", "SCRIPT_NAME", "CONTENT_TYPE", "CONTENT_LENGTH", "wsgi.url_scheme")

# Answers a WSGI server must not send as they are: each would let the application write fields of its own.
_BAD_ANSWERS = {
    "split": ("200 OK", [("X-Injected", "a\r\nSet-Cookie: b=c")]),
    "split-status": ("200 OK\r\nSet-Cookie: admin=1", []),
    "bad-name": ("200 OK", [("X Bad Name", "v")]),
    "control-value": ("200 OK", [("X-Value", "a\x00b")]),
    "informational": ("103 Early Hints", []),
}


def app(environ, start_response):
    query = parse_qs(environ.get("QUERY_STRING", ""))
    action = query.get("do", [""])[0]
    if action == "fail":
        raise RuntimeError("the app failed on purpose")
    if action == "write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written ")
        return [b"returned"]
    if action in _BAD_ANSWERS:
        status, headers = _BAD_ANSWERS[action]
        start_response(status, headers)
        return [b"{}"]
    if action == "write-then-fail":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"partial secret ")
        try:
            raise RuntimeError("the app failed on purpose")
        except RuntimeError:
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info())
        return [b"error page"]
    if action == "timeout":
        import gevent

        with gevent.Timeout(0.01):
            gevent.sleep(1)
    if action == "no-length":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"no length given"]
    body = b""
    lines = 0
    if action == "lines":
        for _ in environ["wsgi.input"]:
            lines += 1
    elif action != "skip-body":
        try:
            body = environ["wsgi.input"].read()
        except OSError as error:
            start_response("400 Bad Request", [("Content-Type", "text/plain")])
            return [f"body failed: {type(error).__name__}".encode()]
    answer = {key: environ[key] for key in _ENVIRON_KEYS if key in environ}
    answer["headers"] = {key: value for key, value in environ.items() if key.startswith("HTTP_")}
    answer["body_bytes"] = len(body)
    answer["body_sha256"] = hashlib.sha256(body).hexdigest()
    answer["lines"] = lines
    answer["pid"] = os.getpid()
    payload = json.dumps(answer).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
    if action == "close":
        headers.append(("Connection", "close"))
    start_response("200 OK", headers)
    return [payload]
