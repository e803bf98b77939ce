"""A second handle on the store a service environment configures, to look at what the service wrote."""

from __future__ import annotations

from smartapp.settings import Settings
from smartapp.store import open_store
from smartapp.wiring import build_cipher


def open_store_like(env: dict[str, str]):
    """The store (and cipher) that `env` configures, opened anew."""
    settings = Settings.from_env(env, dotenv=None)
    return open_store(redis_url=settings.redis_url, sqlite_path=settings.db_path, cipher=build_cipher(settings))
