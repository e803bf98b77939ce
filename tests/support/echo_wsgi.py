"""A WSGI app that answers with what the server gave it: the tests of the HTTP worker serve it under gunicorn."""

from __future__ import annotations

import hashlib
import json
import os
from urllib.parse import parse_qs

_ENVIRON_KEYS = ("REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "RAW_URI", "SERVER_PROTOCOL", "SERVER_NAME",
                 "SERVER_PORT", "REMOTE_ADDR", "SCRIPT_NAME", "CONTENT_TYPE", "CONTENT_LENGTH", "wsgi.url_scheme")


def app(environ, start_response):
    query = parse_qs(environ.get("QUERY_STRING", ""))
    action = query.get("do", [""])[0]
    if action == "fail":
        raise RuntimeError("the app failed on purpose")
    if action == "split":
        start_response("200 OK", [("X-Injected", "a\r\nSet-Cookie: b=c")])
        return [b"{}"]
    if action == "write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written ")
        return [b"returned"]
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
