"""Acting for a stored installation outside any lifecycle (a cron job, a queue worker, `smartapp api`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from smartapp.application import SmartApp
from smartapp.context import Context, StoredToken, context_for
from smartapp.deadline import Deadline
from smartapp.errors import UnknownInstallation
from smartapp.handlers.services import Services
from smartapp.lifecycle import validate_installed_app_id
from smartapp.settings import ConfigError, Settings
from smartapp.wiring import build_services, merged_environment, missing_store_problems, problems

# Outside a lifecycle nobody waits 10 s for us, but a frozen remote must still not hang a job forever.
DEFAULT_BUDGET_SECONDS = 30.0

_services: dict[tuple, Services] = {}
_services_lock = threading.Lock()


def services_for(config: Mapping[str, Any] | None = None, *, app: SmartApp | None = None) -> Services:
    """The services the environment (plus `config` overrides) describes, built once per process."""
    key = (tuple(sorted((config or {}).items())), id(app))
    with _services_lock:
        if key not in _services:
            settings = Settings.from_env(merged_environment(config))
            found = problems(settings) + missing_store_problems(settings)
            if found:
                raise ConfigError(found)
            _services[key] = build_services(settings, app=app)
        return _services[key]


@contextmanager
def installation(installed_app_id: str, *, config: Mapping[str, Any] | None = None, app: SmartApp | None = None,
                 budget_seconds: float = DEFAULT_BUDGET_SECONDS) -> Iterator[Context]:
    """A handler's Context for a stored installation, acting with its stored SmartThings token.

    The token is refreshed first when it is expired or about to be (single-flight across processes and
    hosts), and once more after a 401. State changes are saved when the block ends without an error.

        with smartapp.installation(installed_app_id) as ctx:
            ctx.api.devices.send_command(device_id, "switch", "off")
    """
    services = services_for(config, app=app)
    record = services.store.get(validate_installed_app_id(installed_app_id))
    if record is None:
        raise UnknownInstallation(detail="no such installation")
    context = context_for(services, record, Deadline.after(budget_seconds),
                          tokens=StoredToken(services, record.installed_app_id))
    yield context
    context.save()

