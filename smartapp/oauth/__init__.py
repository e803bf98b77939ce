"""Third-party account linking: provider presets, PKCE, the authorize URL, the pending link, token clients."""

from smartapp.oauth.factory import build_provider
from smartapp.oauth.provider import Provider, ProviderConfig, provider_config, provider_problems

__all__ = ["Provider", "ProviderConfig", "build_provider", "provider_config", "provider_problems"]
