"""Log output: one JSON object per line (or readable text), with secrets scrubbed from every record."""

from __future__ import annotations

import atexit
import contextvars
import json
import logging
import random
import re
import sys
import time
import traceback
from typing import Any, Callable, Iterable, Mapping

from smartapp.after_turn import call_after_turn

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


# The request line's fields while a webhook request is served (None outside one): `annotate` adds to them.
_request_fields: contextvars.ContextVar[dict[str, object] | None] = contextvars.ContextVar(
    "smartapp_request_fields", default=None)
# Names an app cannot annotate with: the request line's own fields, and LogRecord's attributes (a record
# built from the fields would refuse them).
CORE_FIELDS = frozenset({"time", "level", "logger", "message", "requestId", "correlationId", "lifecycle",
                         "executionId", "installedAppId", "status", "reason", "durationMs", "detail", "exception"})
MAX_ANNOTATIONS = 16
ANNOTATION_CHARS = 200
_app_log = logging.getLogger("smartapp.app")


def bind_request_fields(fields: dict[str, object]) -> contextvars.Token:
    """Make `fields` (the dict the request line will be written from) the one `annotate` adds to."""
    return _request_fields.set(fields)


def unbind_request_fields(token: contextvars.Token) -> None:
    _request_fields.reset(token)


def annotate(fields: Mapping[str, object]) -> None:
    """Add `fields` to the request line of the webhook request being served; outside one, log them as a line.

    Values other than str, int, float, bool and None are written as their str(); strings are cut to
    ANNOTATION_CHARS. A name of the core's own, or more than MAX_ANNOTATIONS names, raises ValueError.
    """
    for name in fields:
        if name in CORE_FIELDS or name in _STANDARD or name.startswith("_"):
            raise ValueError(f"annotate: {name!r} is a name the log line uses itself")
    values = {name: _annotation_value(value) for name, value in fields.items()}
    line = _request_fields.get()
    if line is None:
        _app_log.info("annotation", extra=values)
        return
    added = [name for name in values if name not in line]
    if sum(1 for name in line if name not in CORE_FIELDS) + len(added) > MAX_ANNOTATIONS:
        raise ValueError(f"annotate: at most {MAX_ANNOTATIONS} fields on one request line")
    line.update(values)


def _annotation_value(value: object) -> object:
    """A JSON scalar as it is, a string cut short, anything else as its cut-short str()."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return (value if isinstance(value, str) else str(value))[:ANNOTATION_CHARS]


class RequestIds:
    """WSGI middleware: binds a fresh requestId and SmartThings' X-ST-Correlation to the request's log lines."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        ids = {"requestId": f"{random.getrandbits(48):012x}"}  # unique, not secret: no system call for it
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


# The quoted, escaped JSON text of a str (the C function json uses): CR, LF and non-ASCII come out escaped.
_json_string = json.encoder.encode_basestring_ascii
_REQUEST_LOGGER = logging.getLogger("smartapp.request")
_PACKAGE_LOGGER = logging.getLogger("smartapp")


def _level_text(level: int) -> str:
    return f'", "level": "{logging.getLevelName(level).lower()}", "logger": "smartapp.request", "message": "request"'


# Everything of a request line before its ids and fields, but the time: per level, worked out once.
_REQUEST_LINE_LEVELS = {level: _level_text(level)
                        for level in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR)}


def _json_value(value: object) -> str:
    if type(value) is str:
        return _json_string(value)
    if value is None or isinstance(value, (bool, int, float)):
        return "null" if value is None else "true" if value is True else "false" if value is False else repr(value)
    return _ENCODER.encode(value)


# ', "key": ' for every field name seen: names are the code's own, a small set.
_KEY_TEXTS: dict[str, str] = {}
_KEY_TEXTS_MAX = 512


def _key_text(key: str) -> str:
    text = _KEY_TEXTS.get(key)
    if text is None:
        text = f", {_json_string(key)}: "
        if len(_KEY_TEXTS) < _KEY_TEXTS_MAX:
            _KEY_TEXTS[key] = text
    return text


def _direct_handler(level: int) -> logging.StreamHandler | None:
    """`configure`'s JSON handler, when it is the only thing that would see a request line at `level`."""
    if _REQUEST_LOGGER.handlers or _REQUEST_LOGGER.filters or not _REQUEST_LOGGER.propagate:
        return None
    handlers = _PACKAGE_LOGGER.handlers
    if len(handlers) != 1 or _PACKAGE_LOGGER.filters or _PACKAGE_LOGGER.propagate:
        return None
    handler = handlers[0]
    if (not getattr(handler, "_smartapp", False) or handler.filters or level < handler.level
            or type(handler.formatter) is not JsonFormatter):
        return None
    return handler  # type: ignore[return-value]


def log_request(level: int, fields: dict[str, object]) -> None:
    """The request's one line, with its ids and `fields`.

    Under `configure("json")`, with nothing else attached, the line is written straight to the stream: the
    same JSON (and the same scrubbing) as JsonFormatter gives, without a LogRecord, the handler chain or a
    formatter, which cost most of a line. Anything else (text format, an added handler or filter, a test's
    capture) gets an ordinary record through `logging`.
    """
    if not _REQUEST_LOGGER.isEnabledFor(level):
        return
    handler = _direct_handler(level)
    if handler is None:
        _REQUEST_LOGGER.log(level, "request", extra=fields)
        return
    now = time.time()
    ids = _request_ids.get()
    parts = []
    for key, value in ({**ids, **fields} if ids else fields).items():
        parts.append(_key_text(key))
        parts.append(_json_value(value))
    # The time, level, logger and message hold no secret: only the ids and fields need scrubbing.
    line = "".join(('{"time": "', handler.formatter._utc_second(now),  # type: ignore[union-attr]
                    f".{int((now % 1) * 1000):03d}Z", _REQUEST_LINE_LEVELS.get(level) or _level_text(level),
                    scrub("".join(parts)), "}\n"))
    waiting = _waiting_lines.get(handler)
    if waiting is not None:
        waiting.append(line)
    elif call_after_turn(lambda: _write_waiting(handler)):
        _waiting_lines[handler] = [line]
    else:
        _write(handler, line)


# In a gevent worker the request lines of one turn of its loop wait for its end and leave in one write (a
# system call per line cost as much as making the line). Other lines write the waiting ones first.
_waiting_lines: dict[logging.Handler, list[str]] = {}


def _write_waiting(handler: logging.StreamHandler) -> None:
    lines = _waiting_lines.pop(handler, None)
    if lines:
        _write(handler, "".join(lines))


@atexit.register  # a worker that stops between a line and the end of its turn still writes the line
def _write_all_waiting() -> None:
    for handler in list(_waiting_lines):
        _write_waiting(handler)


def _write(handler: logging.StreamHandler, text: str) -> None:
    try:
        with handler.lock:  # type: ignore[union-attr]  # threads (gthread workers) write whole lines
            handler.stream.write(text)
            handler.stream.flush()
    except Exception:  # noqa: BLE001 - a broken log stream must not fail the request, as with logging
        handler.handleError(logging.makeLogRecord({"msg": "request", "levelno": logging.INFO}))


class _StreamHandler(logging.StreamHandler):
    """The configured handler: request lines still waiting to be written go out before a line of its own."""

    def emit(self, record: logging.LogRecord) -> None:
        _write_waiting(self)
        super().emit(record)


def configured() -> bool:
    """Whether `configure` has set up the `smartapp` loggers in this process."""
    return any(getattr(handler, "_smartapp", False) for handler in logging.getLogger("smartapp").handlers)


def configure(log_format: str = "json", *, stream=None) -> None:
    """Send the `smartapp` loggers to stdout in the chosen format (idempotent)."""
    logger = logging.getLogger("smartapp")
    handler = _StreamHandler(stream or sys.stdout)
    handler.setFormatter(TextFormatter() if log_format == "text" else JsonFormatter())
    for old in [h for h in logger.handlers if getattr(h, "_smartapp", False)]:
        logger.removeHandler(old)
    handler._smartapp = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
