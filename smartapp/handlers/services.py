"""What handlers work with: the long-lived services built once by the app factory, and what each request adds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from smartapp.application import SmartApp
from smartapp.deadline import Deadline
from smartapp.oauth.provider import Provider
from smartapp.settings import Settings
from smartapp.smartthings import SmartThingsClient
from smartapp.store import Store
from smartapp.tokens import TokenKeeper


@dataclass(frozen=True)
class Services:
    store: Store
    smartthings: SmartThingsClient
    settings: Settings
    clock: Callable[[], float]
    app: SmartApp                       # the developer's SmartApp (SMARTAPP_APP, or the bundled default)
    oauth: Provider | None = None       # the third-party provider; None when SMARTAPP_OAUTH_PROVIDER is unset
    tokens: TokenKeeper | None = None   # "a valid token for installation X", single-flight refresh


@dataclass(frozen=True)
class RequestInfo:
    """Per request: the time budget for remote calls and the public URL SmartThings called."""

    deadline: Deadline
    # Worked out only when asked (CONFIRMATION): rebuilding a URL from the request costs on every request.
    target_url_of: Callable[[], str]

    @property
    def target_url(self) -> str:
        return self.target_url_of()
