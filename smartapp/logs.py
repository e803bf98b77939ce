"""Log output: one JSON object per line (or readable text), with secrets scrubbed from every record."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import secrets
import sys
import time
import traceback
from typing import Any, Callable, Iterable

# Attributes every LogRecord has; anything else on a record came from `extra=` and is a field.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}

# One pass over each line: an alternative for every token, code, secret or signature shape.
_SECRETS = re.compile(
    r"(?P<scheme>\b(?:Bearer|Basic))\s+[A-Za-z0-9._~+/=-]+"
    r"|(?P<jwt>\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)"
    r"|(?P<fernet>\bgAAAAA[A-Za-z0-9_=-]{10,})"
    r"|(?P<name>\b(?:code|state|access_token|refresh_token|id_token|client_secret|code_verifier|"
    r"authToken|refreshToken|password))(?P<sep>\"?\s*[=:]\s*\"?)[^&\s\",}]+"
    r"|(?P<signature>signature=\")[^\"]*",
    re.IGNORECASE,
)


def _redact(match: re.Match) -> str:
    if match.group("scheme"):
        return match.group("scheme") + " [redacted]"
    if match.group("jwt"):
        return "[redacted-jwt]"
    if match.group("fernet"):
        return "[redacted-fernet]"
    if match.group("name"):
        return match.group("name") + match.group("sep") + "[redacted]"
    return match.group("signature") + "[redacted]"


# Every shape above contains one of these; most lines contain none, and `in` is far cheaper than the regex.
_TRIGGERS = ("bearer", "basic", "eyj", "gaaaaa", "code", "state", "token", "secret", "verifier", "password",
             "signature")


def scrub(text: str) -> str:
    """Replace anything shaped like a token, code, secret or signature."""
    lowered = text.lower()
    if not any(trigger in lowered for trigger in _TRIGGERS):
        return text
    return _SECRETS.sub(_redact, text)


# The ids of the request being served, stamped on every line it logs (handler lines included).
_request_ids: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("smartapp_request_ids", default={})


class RequestIds:
    """WSGI middleware: binds a fresh requestId and SmartThings' X-ST-Correlation to the request's log lines."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        ids = {"requestId": secrets.token_hex(6)}
        correlation = environ.get("HTTP_X_ST_CORRELATION")
        if correlation:
            ids["correlationId"] = correlation[:64]  # attacker-supplied: bounded, and escaped by the formatters
        token = _request_ids.set(ids)
        try:
            return self.app(environ, start_response)
        finally:
            _request_ids.reset(token)


def _fields(record: logging.LogRecord) -> dict:
    fields = dict(_request_ids.get())
    fields.update({key: value for key, value in vars(record).items()
                   if key not in _STANDARD and key[0] != "_"})
    return fields


# One encoder for every line: json.dumps with options builds a new one per call. It escapes CR/LF and
# everything non-ASCII, so a hostile value cannot forge a second log line.
_ENCODER = json.JSONEncoder(default=str, ensure_ascii=True)


class _UtcSecond:
    """The ISO-8601 text of the current UTC second, worked out once per second instead of once per line."""

    def __init__(self) -> None:
        # One tuple, replaced whole: a thread never sees one second's number with another second's text.
        self.cached: tuple[int, str] = (-1, "")

    def __call__(self, created: float) -> str:
        second = int(created)
        cached_second, text = self.cached
        if second != cached_second:
            text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self.cached = (second, text)
        return text


# A traceback in the log is for finding our bug, and a few innermost frames find it. Unbounded, one
# exception from deep recursion is a 100 KB line, and a flood of them fills the disk.
TRACEBACK_FRAMES = 12
TRACEBACK_CHARS = 4000


def bounded_traceback(exc_info: Any) -> str:
    """The exception's innermost frames (of each chained exception), cut to TRACEBACK_CHARS around the middle."""
    text = "".join(traceback.format_exception(*exc_info, limit=-TRACEBACK_FRAMES)).rstrip("\n")
    if len(text) <= TRACEBACK_CHARS:
        return text
    half = TRACEBACK_CHARS // 2
    return f"{text[:half]}\n[... {len(text) - 2 * half} characters cut ...]\n{text[-half:]}"


class JsonFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        self._utc_second = _UtcSecond()

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": f"{self._utc_second(record.created)}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_fields(record))
        if record.exc_info:
            entry["exception"] = bounded_traceback(record.exc_info)
        return scrub(_ENCODER.encode(entry))


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        extras = " ".join(f"{key}={value!r}" for key, value in _fields(record).items())
        message = record.getMessage().replace("\r", "\\r").replace("\n", "\\n")
        line = f"{stamp} {record.levelname:<7} {record.name}: {message} {extras}".rstrip()
        if record.exc_info:
            line += "\n" + bounded_traceback(record.exc_info)
        return scrub(line)


def configured() -> bool:
    """Whether `configure` has set up the `smartapp` loggers in this process."""
    return any(getattr(handler, "_smartapp", False) for handler in logging.getLogger("smartapp").handlers)


def configure(log_format: str = "json", *, stream=None) -> None:
    """Send the `smartapp` loggers to stdout in the chosen format (idempotent)."""
    logger = logging.getLogger("smartapp")
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(TextFormatter() if log_format == "text" else JsonFormatter())
    for old in [h for h in logger.handlers if getattr(h, "_smartapp", False)]:
        logger.removeHandler(old)
    handler._smartapp = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
