"""Calling the developer's handlers: which failures answer the request with an error and which are only logged."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from smartapp.config_values import ConfigValueError
from smartapp.errors import MalformedRequest, SmartAppError, StoreUnavailable

log = logging.getLogger("smartapp.app")


class AppHandlerFailed(SmartAppError):
    """The SmartApp's own code raised: a bug to fix, answered 500 (never with the exception's text)."""

    status = 500
    reason = "app_handler_failed"


def failure_reason(error: BaseException) -> str:
    return getattr(error, "reason", None) or "app_handler_failed"


def call_strictly(fn: Callable[..., Any], *args: Any, installed_app_id: str | None, what: str) -> Any:
    """Run a handler whose failure must fail the lifecycle (INSTALL, UPDATE, PAGE, EXECUTE)."""
    try:
        return fn(*args)
    except ConfigValueError as error:
        # A setting of the wrong type is the request's fault, not the app's: 400 naming the setting.
        raise MalformedRequest("config_value_invalid", f"setting {error.setting_id}"[:80]) from None
    except SmartAppError:
        raise  # already carries its status: 503 for the store or SmartThings, 400 for a bad request
    except Exception:  # noqa: BLE001 - the developer's bug: logged once with its traceback, answered 500
        log.exception("app_handler_failed", extra={"reason": "app_handler_failed", "installedAppId": installed_app_id,
                                                   "handler": what})
        raise AppHandlerFailed(detail=what[:80]) from None


def call_leniently(fn: Callable[..., Any], *args: Any, installed_app_id: str | None, what: str) -> bool:
    """Run a handler whose failure is only logged (EVENT, UNINSTALL); True when it succeeded.

    SmartThings disables subscriptions whose deliveries keep failing, so an event is acknowledged even
    when its handler failed. Only an unavailable store fails the request, so the event comes again.
    """
    try:
        fn(*args)
        return True
    except StoreUnavailable:
        raise
    except (ConfigValueError, SmartAppError) as error:
        log.warning("app_handler_failed", extra={"reason": failure_reason(error), "installedAppId": installed_app_id,
                                                 "handler": what, "detail": getattr(error, "detail", "")[:120]
                                                 if isinstance(error, SmartAppError) else str(error)[:120]})
    except Exception:  # noqa: BLE001 - one failing handler must not fail the batch
        log.exception("app_handler_failed", extra={"reason": "app_handler_failed", "installedAppId": installed_app_id,
                                                   "handler": what})
    return False
