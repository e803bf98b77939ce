"""`SmartApp`: the developer's automation, registered in one module (pages, hooks, event and schedule handlers)."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from smartapp.context import Context
from smartapp.i18n import Locales, load_locales
from smartapp.pages import Page


LifecycleHook = Callable[[Context], None]
EventHandler = Callable[[Context, dict], None]
PageHandler = Callable[[Context, Page], None]
ExecuteHandler = Callable[[Context, dict], dict | None]
F = TypeVar("F", bound=Callable[..., Any])

# Event types routed by type (they carry no subscription name), with the scope their subscription needs.
EVENT_TYPE_SCOPES: dict[str, str | None] = {
    "MODE_EVENT": "r:locations:*",
    "DEVICE_HEALTH_EVENT": "r:devices:*",
    "DEVICE_LIFECYCLE_EVENT": "r:devices:*",
    "HUB_HEALTH_EVENT": "r:hubs",
    "SECURITY_ARM_STATE_EVENT": "r:security:locations:*:armstate",
    "SCENE_LIFECYCLE_EVENT": "r:scenes:*",
    "DEVICE_COMMANDS_EVENT": None,
}
# SmartThings' own pattern for page ids; subscription and schedule names are kept to the same safe set.
_NAME = re.compile(r"[a-zA-Z0-9.\-]{1,36}\Z")
_SCHEDULE_NAME = re.compile(r"[a-zA-Z0-9.\-_]{1,64}\Z")


class SmartApp:
    """What a SmartApp is made of; the webhook core asks it for pages and handlers.

    Every registration is checked when it is made, so a mistake (two handlers for one name, a
    subscription name with an underscore) stops the service at start, not at the first event.
    """

    def __init__(self, name: str, *, description: str = "", permissions: Iterable[str] = (),
                 locales: str | Path | None = None, disable_custom_display_name: bool = False,
                 disable_remove_app: bool = False) -> None:
        self.name = name
        self.description = description
        self.permissions = tuple(permissions)
        self.disable_custom_display_name = disable_custom_display_name
        self.disable_remove_app = disable_remove_app
        self.locales_dir = Path(locales) if locales is not None else _caller_locales()
        self.locales = Locales()  # read by check(), at start
        self.pages: dict[str, PageHandler] = {}
        self.installed_hook: LifecycleHook | None = None
        self.updated_hook: LifecycleHook | None = None
        self.uninstalled_hook: LifecycleHook | None = None
        self.execute_handler: ExecuteHandler | None = None
        self.subscription_handlers: dict[str, EventHandler] = {}
        self.schedule_handlers: dict[str, EventHandler] = {}
        self.event_handlers: dict[str, EventHandler] = {}

    # --- registration ---------------------------------------------------------------------------

    def page(self, page_id: str) -> Callable[[F], F]:
        """Register a configuration page; the first one registered is the one SmartThings opens first.

        Pages link up in the order they are registered (each one's Next leads to the one registered after
        it, the last completes the install); a handler changes that with `page.next_page`,
        `page.previous_page` and `page.complete`, e.g. for a page reached only through a PAGE setting.
        """
        if not _NAME.match(page_id):
            raise ValueError(f"page id {page_id!r} must be 1-36 letters, digits, '.' or '-'")
        return self._register(self.pages, page_id, "page")

    def installed(self, fn: F) -> F:
        """Runs after INSTALL's tokens and config are stored; falls back to `updated` when not registered."""
        self.installed_hook = self._single(self.installed_hook, fn, "installed")
        return fn

    def updated(self, fn: F) -> F:
        """Runs after UPDATE, once the installation's subscriptions and schedules have been deleted."""
        self.updated_hook = self._single(self.updated_hook, fn, "updated")
        return fn

    def uninstalled(self, fn: F) -> F:
        """Runs at UNINSTALL before the installation's stored data (tokens, state) is deleted."""
        self.uninstalled_hook = self._single(self.uninstalled_hook, fn, "uninstalled")
        return fn

    def execute(self, fn: F) -> F:
        """Answers EXECUTE: the handler gets the request's parameters and returns the `executeData` map."""
        self.execute_handler = self._single(self.execute_handler, fn, "execute")
        return fn

    def subscription(self, name: str) -> Callable[[F], F]:
        """Handle DEVICE_EVENTs of the subscriptions named `name` (or `name_<n>`, one per device).

        Only device events carry a subscription name: mode, health, arm-state and scene events go to
        `@app.event(...)` whatever their subscription was called."""
        if not _NAME.match(name):
            raise ValueError(f"subscription name {name!r} must be 1-36 letters, digits, '.' or '-' "
                             "(no '_': `_<n>` numbers the devices)")
        return self._register(self.subscription_handlers, name, "subscription")

    def schedule(self, name: str) -> Callable[[F], F]:
        """Handle the TIMER_EVENTs of the schedule named `name`."""
        if not _SCHEDULE_NAME.match(name):
            raise ValueError(f"schedule name {name!r} must be 1-64 letters, digits, '.', '-' or '_'")
        return self._register(self.schedule_handlers, name, "schedule")

    def event(self, event_type: str) -> Callable[[F], F]:
        """Handle events routed by type: MODE_EVENT, DEVICE_HEALTH_EVENT, HUB_HEALTH_EVENT, ..."""
        if event_type not in EVENT_TYPE_SCOPES:
            raise ValueError(f"event type {event_type!r} is not one of {', '.join(EVENT_TYPE_SCOPES)}; "
                             "device events go to @app.subscription, timer events to @app.schedule")
        return self._register(self.event_handlers, event_type, "event")

    @staticmethod
    def _register(table: dict[str, Any], key: str, kind: str) -> Callable[[F], F]:
        if key in table:
            raise ValueError(f"two {kind} handlers for {key!r}: {table[key].__qualname__} and another")

        def decorate(fn: F) -> F:
            table[key] = fn
            return fn
        return decorate

    @staticmethod
    def _single(current: Any, fn: F, kind: str) -> F:
        if current is not None:
            raise ValueError(f"two {kind} hooks: {current.__qualname__} and {fn.__qualname__}")
        return fn

    # --- what the core asks ---------------------------------------------------------------------

    @property
    def first_page_id(self) -> str:
        if not self.pages:
            raise ValueError(f"the SmartApp {self.name!r} has no page: register one with @app.page(...)")
        return next(iter(self.pages))

    def check(self) -> None:
        """Called at start: the app can answer CONFIGURATION, and its locale files load (LocaleError)."""
        self.first_page_id  # noqa: B018 - raises when there is no page
        self.locales = load_locales(self.locales_dir)

    def initialize_permissions(self) -> list[str]:
        """Scopes beyond what the device settings grant: the app's own, plus what its event types need."""
        derived = {EVENT_TYPE_SCOPES[event_type] for event_type in self.event_handlers}
        return sorted({*self.permissions, *(scope for scope in derived if scope)})

    def render(self, page_id: str, context: Context) -> Page:
        """Build one page by running its handler with a fresh Page."""
        handler = self.pages[page_id]
        page_ids = list(self.pages)
        index = page_ids.index(page_id)
        page = Page(page_id, previous_page=page_ids[index - 1] if index else None,
                    next_page=page_ids[index + 1] if index + 1 < len(page_ids) else None)
        handler(context, page)
        return page


def _caller_locales() -> Path:
    """`locales/` beside the module that made the app (like Flask's root path), found when none is given."""
    frame = sys._getframe(2)
    module_file = frame.f_globals.get("__file__")
    return (Path(module_file).resolve().parent if module_file else Path.cwd()) / "locales"
