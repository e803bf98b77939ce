"""`smartapp doctor`'s checks: each returns findings, and each finding that is not ok says how to fix it."""

from __future__ import annotations

from dataclasses import dataclass

OK, WARN, FAIL = "ok", "WARN", "FAIL"


@dataclass(frozen=True)
class Finding:
    level: str      # OK, WARN or FAIL
    topic: str      # a short noun: "config", "public url", "store", "clock", ...
    message: str    # what is true now; never a secret
    fix: str = ""   # what to do about it (empty for ok findings)
