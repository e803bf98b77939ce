"""A SmartThings webhook SmartApp framework: write the app with `SmartApp`; `create_app` serves it."""

from __future__ import annotations

import importlib
from typing import Any

# Each public name is imported on first use (type checkers read __init__.pyi). gunicorn's master imports the
# package for the worker class (smartapp.serving.worker) before it forks; importing requests there, before
# the worker's gevent patching, would leave its TLS classes blocking in every worker.
_MODULE_OF = {
    "ApiError": "smartapp.api", "SmartThingsApi": "smartapp.api", "create_app": "smartapp.app",
    "SmartApp": "smartapp.application", "ConfigValueError": "smartapp.config_values",
    "ConfigValues": "smartapp.config_values", "DeviceList": "smartapp.config_values",
    "DeviceRef": "smartapp.config_values", "Context": "smartapp.context", "ReauthRequired": "smartapp.errors",
    "SmartAppError": "smartapp.errors", "StoreUnavailable": "smartapp.errors",
    "UnknownInstallation": "smartapp.errors", "LinkedAccount": "smartapp.linked_account",
    "Page": "smartapp.pages", "Section": "smartapp.pages", "installation": "smartapp.proactive",
    "InstallationState": "smartapp.state",
}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'smartapp' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
