"""EXECUTE: a request/response call from a SmartThings client, answered by the app's `execute` handler."""

from __future__ import annotations

from smartapp.app_calls import AppHandlerFailed, call_strictly
from smartapp.context import Context, LifecycleToken
from smartapp.errors import MalformedRequest
from smartapp.handlers.services import RequestInfo, Services
from smartapp.lifecycle import Lifecycle, installed_app


def handle(lifecycle: Lifecycle, services: Services, request: RequestInfo) -> dict:
    parameters = lifecycle.data.get("parameters", {})
    if not isinstance(parameters, dict):
        raise MalformedRequest("malformed_request", "executeData.parameters is not an object")
    handler = services.app.execute_handler
    if handler is None:
        return {}
    app = installed_app(lifecycle.data, require_config=False)
    token = lifecycle.data.get("authToken")
    context = Context(services=services, installed_app_id=app.installed_app_id, location_id=app.location_id,
                      locale=lifecycle.locale, config=app.config, permissions=app.permissions,
                      deadline=request.deadline, tokens=LifecycleToken(token) if isinstance(token, str) else None)
    answer = call_strictly(handler, context, dict(parameters), installed_app_id=app.installed_app_id, what="execute")
    if answer is not None and not isinstance(answer, dict):
        raise AppHandlerFailed(detail="execute handler returned something other than a dict")
    context.save()
    return answer or {}
