"""Why Redis could not answer, in words fit for a log line and `doctor`: the TLS reason is never thrown away."""

from __future__ import annotations

import re

from smartapp.store.redis_scripts import ReplicasBehind

_VERIFY_FAILED = re.compile(r"certificate verify failed: (.*?)\.?(?: \(_ssl\.c:\d+\))?\.?$")
_SSL_REASON = re.compile(r"\[SSL: ([A-Z0-9_]+)\]")


def unavailable_detail(error: BaseException) -> str:
    """`redis: <error type>`, with the TLS failure or the missing replicas when that is the cause."""
    if isinstance(error, ReplicasBehind):
        return f"redis: {error}"
    tls = tls_failure(error)
    return f"redis: {type(error).__name__}" + (f" ({tls})" if tls else "")


def tls_failure(error: BaseException) -> str | None:
    """What went wrong in the TLS handshake (certificate, host name, protocol), if that is what failed."""
    seen = 0
    current: BaseException | None = error
    while current is not None and seen < 5:
        text = str(current)
        verify = _VERIFY_FAILED.search(text)
        if verify:
            reason = verify.group(1)
            if "mismatch" in reason:
                return f"TLS host name: {reason}"
            return f"TLS certificate: {reason}"
        if "WRONG_VERSION_NUMBER" in text or "wrong version number" in text:
            return "TLS handshake: this port does not speak TLS (rediss:// to a plain port?)"
        other = _SSL_REASON.search(text)
        if other:
            return f"TLS: {other.group(1).lower().replace('_', ' ')}"
        current, seen = current.__cause__ or current.__context__, seen + 1
    return None
