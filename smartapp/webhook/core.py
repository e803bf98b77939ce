"""The webhook's core, without WSGI or Flask: (method, path, headers, body) in, (status, headers, body) out."""

from __future__ import annotations

import functools
import json
import logging
import random
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from smartapp.deadline import Deadline
from smartapp.errors import MethodNotAllowed, NotFound, RequestInProgress, SmartAppError, StoreUnavailable
from smartapp.handlers.dispatch import dispatch, envelope
from smartapp.handlers.services import RequestInfo, Services
from smartapp.jsonbody import parse_json
from smartapp.lifecycle import lifecycle_name, parse
from smartapp.logs import bind_request_fields, log_request, unbind_request_fields
from smartapp.rejection_log import RejectionLogLimit
from smartapp.settings import Settings
from smartapp.signature import Verifier
from smartapp.store import ReplayState

log = logging.getLogger("smartapp.request")

# SmartThings waits 10 s; remote calls of one request must be done well before that.
REQUEST_BUDGET_SECONDS = 8.0
RETRY_AFTER_SECONDS = "5"
# A signed request stays acceptable while its Date is within ±300 s, so remember it a little longer.
REPLAY_TTL_SECONDS = 2 * 300 + 30
# While a request is processed its marker is only leased: if the worker dies (OOM, SIGKILL, gunicorn's
# timeout) the lease runs out and SmartThings' identical retry is processed. SmartThings stops waiting
# after 10 s, and remote calls stop at REQUEST_BUDGET_SECONDS, so a lease this old belongs to a request
# that failed or died.
CLAIM_LEASE_SECONDS = REQUEST_BUDGET_SECONDS + 2

# (status, headers, body): what the WSGI side sends back.
Answer = tuple[int, list[tuple[str, str]], bytes]
_UNAUTHORIZED = b'{"error":"unauthorized"}'


# Compact and unsorted: this runs on every request and SmartThings reads it as JSON anyway. One encoder for
# every answer: json.dumps with options builds a new one per call (three times the cost of a page's answer).
_ANSWER_ENCODER = json.JSONEncoder(separators=(",", ":"))


def json_body(body: dict) -> bytes:
    return _ANSWER_ENCODER.encode(body).encode()


@functools.lru_cache(maxsize=128)  # reasons are this service's own codes: a small, fixed set
def _error_body(status: int, reason: str) -> bytes:
    # One body for every authentication failure, so a 401 says nothing about which check failed.
    return _UNAUTHORIZED if status == 401 else json_body({"error": reason})


def _short(value: object) -> str | None:
    return value[:64] if isinstance(value, str) else None


def _answer(status: int, body: bytes) -> Answer:
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    if status == 503:
        headers.append(("Retry-After", RETRY_AFTER_SECONDS))
    elif status == 405:
        headers.append(("Allow", "POST"))
    return status, headers, body


class Webhook:
    """Answers lifecycle requests without Flask's request machinery: this runs for every SmartThings call."""

    def __init__(self, services: Services, verifier: Verifier) -> None:
        self.services = services
        self.verifier = verifier
        # Mounted at `/` and at the public path: behind a proxy that strips a prefix they differ.
        self.paths = frozenset(("/", services.settings.public_path))
        self.rejection_log = RejectionLogLimit()

    def answer(self, method: str, path: str, headers: Mapping[str, str], body: bytes, *,
               host_url: Callable[[], str] | None = None, started: float | None = None) -> Answer:
        """Check, parse, verify, claim, dispatch and log one request.

        `headers` must look names up case-insensitively (werkzeug's Headers or EnvironHeaders). `host_url` gives the scheme and host the request came to (only CONFIRMATION without
        SMARTAPP_PUBLIC_URL asks; default: https and the Host header); `started` (time.perf_counter)
        dates the logged duration, so it can include reading the body.
        """
        started = time.perf_counter() if started is None else started
        services = self.services
        settings = services.settings
        # correlationId and requestId are already on every line of this request (logs.RequestIds); handlers
        # add fields of their own with Context.annotate.
        fields: dict[str, object] = {}
        bound = bind_request_fields(fields)
        claimed: tuple[str, str, str | None] | None = None  # (replay marker, our lease's owner, installedAppId)
        status, reason, failure = 200, None, None
        try:
            if path not in self.paths:
                raise NotFound()
            if method != "POST":
                raise MethodNotAllowed()
            document = parse_json(body)
            name = lifecycle_name(document)
            fields["lifecycle"] = _short(name)
            verified = None
            if name != "PING":  # PING is the one lifecycle SmartThings does not sign
                verified = self.verifier.verify(method="POST", headers=headers, body=body)
            lifecycle = parse(document)
            fields.update(executionId=_short(lifecycle.execution_id), installedAppId=lifecycle.installed_app_id)
            if verified is not None:
                owner = f"{random.getrandbits(64):016x}"  # unique, not secret: no system call for it
                state = services.store.claim(verified.replay_marker, owner=owner, lease_seconds=CLAIM_LEASE_SECONDS,
                                             installed_app_id=lifecycle.installed_app_id)
                if state is ReplayState.DONE:
                    reason = "replay_suppressed"
                    return _answer(200, json_body(envelope(lifecycle.name, {})))
                if state is ReplayState.IN_PROGRESS:
                    raise RequestInProgress()
                claimed = (verified.replay_marker, owner, lifecycle.installed_app_id)
            request = RequestInfo(deadline=Deadline.after(REQUEST_BUDGET_SECONDS),
                                  target_url_of=lambda: _target_url(settings, headers, host_url))
            answer = json_body(dispatch(lifecycle, services, request))
            if claimed is not None:
                _complete(services, claimed[0], claimed[2])
            return _answer(200, answer)
        except SmartAppError as error:
            status, reason = error.status, error.reason
            if error.detail:
                fields["detail"] = error.detail
            if claimed is not None:
                _release(services, *claimed)
            return _answer(status, _error_body(status, reason))
        except Exception:  # noqa: BLE001 - the caller gets a generic 500, never the exception text
            status, reason, failure = 500, "internal_error", sys.exc_info()
            if claimed is not None:
                _release(services, *claimed)
            return _answer(status, _error_body(status, reason))
        finally:
            unbind_request_fields(bound)
            self._log(status, reason, fields, started, failure)

    def refuse(self, error: SmartAppError, *, started: float) -> Answer:
        """The answer to a request the WSGI side refused before its body was read (length, media type, a stall)."""
        self._log(error.status, error.reason, {"detail": error.detail} if error.detail else {}, started)
        return _answer(error.status, _error_body(error.status, error.reason))

    def _log(self, status: int, reason: str | None, fields: dict[str, object], started: float,
             failure: Any = None) -> None:
        unlogged = self.rejection_log.unlogged_report()
        if unlogged:
            # Written while serving another request, but not about it: blank that request's ids.
            log.warning("rejections_not_logged", extra={
                "requestId": None, "correlationId": None, "reason": "log_rate_limited", "counts": unlogged,
                "linesPerReason": self.rejection_log.lines_per_reason,
                "intervalSeconds": self.rejection_log.interval_seconds})
        # Every failure is capped per reason, a 500 too: input that trips one of our bugs can be sent in a flood.
        if status >= 400 and not self.rejection_log.admit(str(reason)):
            return
        level = logging.ERROR if status == 500 else logging.WARNING if status >= 400 else logging.INFO
        fields.update(status=status, reason=reason, durationMs=round((time.perf_counter() - started) * 1000, 2))
        if failure is not None:
            log.log(level, "request", exc_info=failure, extra=fields)  # with its traceback
        else:
            log_request(level, fields)


def _complete(services: Services, marker: str, installed_app_id: str | None) -> None:
    """The effects are stored: from now on an identical request is a replay."""
    try:
        services.store.complete(marker, ttl_seconds=REPLAY_TTL_SECONDS, installed_app_id=installed_app_id)
    except StoreUnavailable:
        # Answered 200 all the same: the work is done, and a retry after the lease would redo it harmlessly.
        log.warning("replay_marker_not_completed", extra={"reason": "store_unavailable"})


def _release(services: Services, marker: str, owner: str, installed_app_id: str | None) -> None:
    """The request failed: let an identical legitimate retry be processed later."""
    try:
        services.store.release_marker(marker, owner=owner, installed_app_id=installed_app_id)
    except StoreUnavailable:
        pass  # the lease expires on its own


def _target_url(settings: Settings, headers: Mapping[str, str], host_url: Callable[[], str] | None) -> str:
    """The URL SmartThings called: configured, or rebuilt from the request."""
    if settings.public_url:
        return settings.public_url
    base = host_url() if host_url is not None else f"https://{headers.get('Host', '')}"
    return base.rstrip("/") + settings.public_path
