"""Log output: one JSON object per line (or readable text), with secrets scrubbed from every record."""

from __future__ import annotations

import json
import logging
import re
import sys
import time

# Attributes every LogRecord has; anything else on a record came from `extra=` and is a field.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}

_SECRET_PATTERNS = (
    (re.compile(r"(?i)\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 [redacted]"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), "[redacted-jwt]"),
    (re.compile(r"\bgAAAAA[A-Za-z0-9_=-]{10,}"), "[redacted-fernet]"),
    (re.compile(r"(?i)\b(code|state|access_token|refresh_token|id_token|client_secret|code_verifier|"
                r"authToken|refreshToken|password)(\"?\s*[=:]\s*\"?)[^&\s\",}]+"), r"\1\2[redacted]"),
    (re.compile(r"(?i)(signature=\")[^\"]*"), r"\1[redacted]"),
)


def scrub(text: str) -> str:
    """Replace anything shaped like a token, code, secret or signature."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _fields(record: logging.LogRecord) -> dict:
    return {key: value for key, value in vars(record).items() if key not in _STANDARD and not key.startswith("_")}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_fields(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        # json.dumps escapes CR/LF, so a hostile value cannot forge a second log line.
        return scrub(json.dumps(entry, default=str, ensure_ascii=True))


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        extras = " ".join(f"{key}={value!r}" for key, value in _fields(record).items())
        message = record.getMessage().replace("\r", "\\r").replace("\n", "\\n")
        line = f"{stamp} {record.levelname:<7} {record.name}: {message} {extras}".rstrip()
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return scrub(line)


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
