"""OAUTH_CALLBACK: a third-party account link; refused plainly while no OAuth provider is configured."""

from __future__ import annotations

from smartapp.errors import OAuthNotConfigured
from smartapp.lifecycle import Lifecycle
from smartapp.services import Context, Services


def handle(lifecycle: Lifecycle, services: Services, context: Context) -> dict:
    raise OAuthNotConfigured(detail="SMARTAPP_OAUTH_PROVIDER is not set")
