"""Finding the developer's SmartApp: `SMARTAPP_APP=module:attribute`, or the bundled default app."""

from __future__ import annotations

import importlib
import os
import sys

from smartapp.application import SmartApp
from smartapp.settings import ConfigError

DEFAULT_APP = "smartapp.default_app:app"


def load_app(spec: str | None) -> SmartApp:
    """Import `module:attribute` (like Flask's --app) and check the app can answer CONFIGURATION."""
    spec = spec or DEFAULT_APP
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigError([f"SMARTAPP_APP must look like module:attribute (e.g. myapp:app), got {spec!r}"])
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())  # like `flask --app` and gunicorn: the app's module sits where you run
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ConfigError([f"SMARTAPP_APP: cannot import {module_name!r} ({error}); run from the directory that "
                           "holds it or install it"]) from None
    app = getattr(module, attribute, None)
    if not isinstance(app, SmartApp):
        raise ConfigError([f"SMARTAPP_APP: {spec!r} is not a smartapp.SmartApp "
                           f"(found {type(app).__name__})"])
    check(app)
    return app


def check(app: SmartApp) -> None:
    """The app can serve: it has a page and its locale files are well formed (ConfigError otherwise)."""
    try:
        app.check()
    except ConfigError as error:
        raise ConfigError([f"SMARTAPP_APP: {problem}" for problem in error.problems]) from None
    except ValueError as error:
        raise ConfigError([f"SMARTAPP_APP: {error}"]) from None
