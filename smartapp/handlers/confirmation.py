"""CONFIRMATION: answer at once; visit the confirmationUrl only when it is ours and on the SmartThings API host."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit, urlunsplit

from smartapp.errors import UpstreamUnavailable
from smartapp.handlers.services import RequestInfo, Services
from smartapp.lifecycle import Lifecycle, optional_str, require_str

log = logging.getLogger(__name__)


def _without_query(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def handle(lifecycle: Lifecycle, services: Services, request: RequestInfo) -> dict:
    url = require_str(lifecycle.data, "confirmationUrl")
    app_id = optional_str(lifecycle.data, "appId")
    expected = services.settings.app_id
    if not expected or app_id != expected:
        reason = "app_id_not_configured" if not expected else "app_id_mismatch"
    elif not services.smartthings.confirmation_url_allowed(url):
        reason = "host_not_allowed"
    else:
        reason = None
    if reason:
        # Not fetched: the developer confirms by opening the URL, so the log must show it whole.
        log.warning(
            "CONFIRMATION received; open this URL once in a browser to confirm the target: %s",
            url, extra={"reason": f"confirmation_not_fetched:{reason}", "appId": app_id},
        )
        return {"targetUrl": request.target_url}
    try:
        status = services.smartthings.confirm_registration(url, deadline=request.deadline)
    except UpstreamUnavailable as error:
        status, reason = None, error.reason
    log.warning(
        "CONFIRMATION for app %s: visited %s -> %s", app_id, _without_query(url), status,
        extra={"reason": "confirmation_fetched" if status and status < 300 else f"confirmation_failed:{reason or status}"},
    )
    return {"targetUrl": request.target_url}
